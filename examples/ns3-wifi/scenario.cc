// scenario.cc — an ns-3 Wi-Fi uplink example for simswarm.
//
// One 802.11a access point sits at the origin; nStations stations are placed
// uniformly at random on a disc of radius `radius` metres around it. Every
// station sends a constant-bit-rate UDP stream of `dataRate` to a sink on the
// access point. Data frames go at a fixed PHY rate (6 Mbit/s by default, so
// that runs stay cheap), or with --phyMode=ideal at the rate ns-3's
// IdealWifiManager picks. As the offered load grows past what the shared
// channel carries, goodput levels off while delay and loss climb.
//
// Per station and in total the program reports the goodput (UDP payload
// received at the sink while the sources are on), and from FlowMonitor the
// mean one-way delay, mean jitter and the share of packets never delivered
// (by the end of a drain period after the sources stop).
//
// The default radius (20 m) keeps every station within carrier-sense range of
// every other (about 51 m with ns-3's default propagation loss and its -82 dBm
// preamble detection threshold). With a radius over ~25 m stations can be
// hidden from each other, and --rtsCts=true becomes interesting.
//
// The results are written as an OMNeT++ style scalar file (format "version 3"),
// so simswarm and downstream tools can treat ns-3 and OMNeT++ results alike.
//
// Randomness (positions, application start offsets, MAC back-off) comes from
// ns-3's RNG, controlled by --RngSeed and --RngRun: the same arguments always
// give the same scalar values.

#include "ns3/command-line.h"
#include "ns3/data-rate.h"
#include "ns3/double.h"
#include "ns3/flow-monitor-helper.h"
#include "ns3/flow-monitor.h"
#include "ns3/inet-socket-address.h"
#include "ns3/internet-stack-helper.h"
#include "ns3/ipv4-address-helper.h"
#include "ns3/ipv4-flow-classifier.h"
#include "ns3/mobility-helper.h"
#include "ns3/mobility-model.h"
#include "ns3/neighbor-cache-helper.h"
#include "ns3/nstime.h"
#include "ns3/packet.h"
#include "ns3/on-off-helper.h"
#include "ns3/packet-sink-helper.h"
#include "ns3/packet-sink.h"
#include "ns3/position-allocator.h"
#include "ns3/random-variable-stream.h"
#include "ns3/rng-seed-manager.h"
#include "ns3/simulator.h"
#include "ns3/ssid.h"
#include "ns3/string.h"
#include "ns3/uinteger.h"
#include "ns3/wifi-helper.h"
#include "ns3/wifi-mac-helper.h"
#include "ns3/yans-wifi-helper.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

using namespace ns3;

namespace
{

const char* const kNetwork = "WifiNet";
const uint16_t kSinkPort = 9;

// Quotes a value the way OMNeT++ result files do when it is empty or holds
// characters that would break the whitespace-separated line format.
std::string
Quote(const std::string& s)
{
    bool plain = !s.empty();
    for (char c : s)
    {
        if (c == ' ' || c == '\t' || c == '"' || c == '\\' || c == '\n' || c == '\r')
        {
            plain = false;
            break;
        }
    }
    if (plain)
    {
        return s;
    }
    std::string q = "\"";
    for (char c : s)
    {
        switch (c)
        {
        case '"':
            q += "\\\"";
            break;
        case '\\':
            q += "\\\\";
            break;
        case '\n':
            q += "\\n";
            break;
        case '\r':
            q += "\\r";
            break;
        default:
            q += c;
        }
    }
    return q + "\"";
}

std::vector<std::string>
SplitList(const std::string& s)
{
    std::vector<std::string> out;
    std::string item;
    std::istringstream in(s);
    while (std::getline(in, item, ','))
    {
        if (!item.empty())
        {
            out.push_back(item);
        }
    }
    return out;
}

// Collects scalars and writes them in OMNeT++ scalar file format.
class ScaWriter
{
  public:
    void Attr(const std::string& name, const std::string& value)
    {
        m_attrs.emplace_back(name, value);
    }

    void ItervarOrder(const std::vector<std::string>& names)
    {
        m_itervars = names;
    }

    void Param(const std::string& name, const std::string& value)
    {
        m_params.emplace_back(name, value);
    }

    void Scalar(const std::string& module,
                const std::string& name,
                double value,
                const std::string& unit = "")
    {
        m_scalars.push_back({module, name, value, unit});
    }

    // Returns the value of a parameter, or "" if it is unknown.
    std::string ParamValue(const std::string& name) const
    {
        for (const auto& p : m_params)
        {
            if (p.first == name)
            {
                return p.second;
            }
        }
        return "";
    }

    void Write(std::ostream& os, const std::string& runId) const
    {
        os << std::setprecision(14);
        os << "version 3\n";
        os << "run " << Quote(runId) << "\n";
        for (const auto& a : m_attrs)
        {
            os << "attr " << a.first << " " << Quote(a.second) << "\n";
        }
        for (const auto& v : m_itervars)
        {
            os << "itervar " << v << " " << Quote(ParamValue(v)) << "\n";
        }
        for (const auto& p : m_params)
        {
            os << "config " << p.first << " " << Quote(p.second) << "\n";
        }
        os << "\n";
        for (const auto& s : m_scalars)
        {
            os << "scalar " << Quote(s.module) << " " << Quote(s.name) << " " << s.value << "\n";
            if (!s.unit.empty())
            {
                os << "attr unit " << Quote(s.unit) << "\n";
            }
        }
    }

  private:
    struct ScalarRec
    {
        std::string module;
        std::string name;
        double value;
        std::string unit;
    };

    std::vector<std::pair<std::string, std::string>> m_attrs;
    std::vector<std::pair<std::string, std::string>> m_params;
    std::vector<std::string> m_itervars;
    std::vector<ScalarRec> m_scalars;
};

std::string
ToString(double v)
{
    std::ostringstream os;
    os << std::setprecision(14) << v;
    return os.str();
}

// Counts the UDP payload bytes the sink receives from each source address
// until a cut-off time (the moment the sources stop).
class WindowCounter
{
  public:
    explicit WindowCounter(Time until)
        : m_until(until)
    {
    }

    void OnRx(Ptr<const Packet> packet, const Address& from)
    {
        if (Simulator::Now() > m_until || !InetSocketAddress::IsMatchingType(from))
        {
            return;
        }
        m_bytes[InetSocketAddress::ConvertFrom(from).GetIpv4()] += packet->GetSize();
    }

    uint64_t Bytes(Ipv4Address source) const
    {
        auto it = m_bytes.find(source);
        return it == m_bytes.end() ? 0 : it->second;
    }

  private:
    Time m_until;
    std::map<Ipv4Address, uint64_t> m_bytes;
};

} // namespace

int
main(int argc, char* argv[])
{
    // Swept parameter and scenario knobs.
    std::string dataRate = "1Mbps"; // offered load per station
    uint32_t nStations = 4;
    std::string phyMode = "OfdmRate6Mbps";
    bool rtsCts = false;
    double radius = 20.0;      // metres
    uint32_t packetSize = 1400; // UDP payload bytes
    double simTime = 1.0;      // seconds of traffic
    double warmup = 0.5;       // seconds before traffic starts (association)
    double drain = 0.5;        // seconds after traffic stops
    // Result file and bookkeeping.
    std::string out;
    std::string resultDir;
    std::string configName = "Sweep";
    std::string itervars = "dataRate";
    int64_t runNumber = -1;
    int64_t repetition = -1;

    CommandLine cmd(__FILE__);
    cmd.Usage("Wi-Fi uplink: nStations stations send CBR UDP to one access point.\n"
              "Writes an OMNeT++ style scalar file (--out or --resultDir).\n"
              "Seed the RNG with the global values --RngSeed and --RngRun.");
    cmd.AddValue("dataRate", "Offered UDP load per station (e.g. 2Mbps)", dataRate);
    cmd.AddValue("nStations", "Number of stations", nStations);
    cmd.AddValue("phyMode",
                 "802.11a PHY rate for data frames (OfdmRate6Mbps ... OfdmRate54Mbps), "
                 "or 'ideal' for rate adaptation by IdealWifiManager",
                 phyMode);
    cmd.AddValue("rtsCts", "Protect every data frame with RTS/CTS", rtsCts);
    cmd.AddValue("radius", "Radius (m) of the disc the stations are placed on", radius);
    cmd.AddValue("packetSize", "UDP payload size in bytes", packetSize);
    cmd.AddValue("simTime", "Duration of the traffic in seconds", simTime);
    cmd.AddValue("warmup", "Seconds before traffic starts", warmup);
    cmd.AddValue("drain", "Seconds after traffic stops before the simulation ends", drain);
    cmd.AddValue("out", "Scalar file to write ('-' or empty: standard output)", out);
    cmd.AddValue("resultDir",
                 "Directory for <configName>-#<runNumber>.sca (used when --out is not given)",
                 resultDir);
    cmd.AddValue("configName", "Configuration name recorded in the result file", configName);
    cmd.AddValue("itervars",
                 "Comma-separated parameter names to record as itervars",
                 itervars);
    cmd.AddValue("runNumber", "Run number recorded in the result file (default: RngRun)", runNumber);
    cmd.AddValue("repetition",
                 "Repetition recorded in the result file (default: RngRun)",
                 repetition);
    cmd.Parse(argc, argv);

    const uint64_t rngRun = RngSeedManager::GetRun();
    const uint32_t rngSeed = RngSeedManager::GetSeed();
    if (runNumber < 0)
    {
        runNumber = static_cast<int64_t>(rngRun);
    }
    if (repetition < 0)
    {
        repetition = static_cast<int64_t>(rngRun);
    }
    if (nStations == 0 || simTime <= 0 || packetSize == 0 || radius < 0 || warmup < 0 ||
        drain < 0)
    {
        std::cerr << "error: need nStations >= 1, simTime > 0, packetSize >= 1, "
                     "radius >= 0, warmup >= 0, drain >= 0\n";
        return 1;
    }
    static const char* const kModes[] = {"ideal",
                                         "OfdmRate6Mbps",
                                         "OfdmRate9Mbps",
                                         "OfdmRate12Mbps",
                                         "OfdmRate18Mbps",
                                         "OfdmRate24Mbps",
                                         "OfdmRate36Mbps",
                                         "OfdmRate48Mbps",
                                         "OfdmRate54Mbps"};
    bool knownMode = false;
    for (const char* m : kModes)
    {
        knownMode = knownMode || phyMode == m;
    }
    if (!knownMode)
    {
        std::cerr << "error: bad --phyMode '" << phyMode
                  << "' (want ideal or OfdmRate{6,9,12,18,24,36,48,54}Mbps)\n";
        return 1;
    }
    DataRateValue rateValue;
    if (!rateValue.DeserializeFromString(dataRate, MakeDataRateChecker()))
    {
        std::cerr << "error: bad --dataRate '" << dataRate << "'\n";
        return 1;
    }
    const DataRate rate = rateValue.Get();

    // Everything the result file records about the run itself.
    std::ostringstream iterationVars;
    std::vector<std::string> itervarNames = SplitList(itervars);

    ScaWriter sca;
    sca.Param("dataRate", dataRate);
    sca.Param("nStations", std::to_string(nStations));
    sca.Param("phyMode", phyMode);
    sca.Param("rtsCts", rtsCts ? "true" : "false");
    sca.Param("radius", ToString(radius));
    sca.Param("packetSize", std::to_string(packetSize));
    sca.Param("simTime", ToString(simTime));
    sca.Param("warmup", ToString(warmup));
    sca.Param("drain", ToString(drain));
    sca.Param("RngSeed", std::to_string(rngSeed));
    sca.Param("RngRun", std::to_string(rngRun));
    for (size_t i = 0; i < itervarNames.size(); ++i)
    {
        if (sca.ParamValue(itervarNames[i]).empty())
        {
            std::cerr << "error: --itervars names unknown parameter '" << itervarNames[i]
                      << "'\n";
            return 1;
        }
        iterationVars << (i ? ", " : "") << "$" << itervarNames[i] << "="
                      << sca.ParamValue(itervarNames[i]);
    }
    sca.ItervarOrder(itervarNames);

    sca.Attr("configname", configName);
    sca.Attr("experiment", configName);
    sca.Attr("iterationvars", iterationVars.str());
    sca.Attr("measurement", iterationVars.str());
    sca.Attr("network", kNetwork);
    sca.Attr("repetition", std::to_string(repetition));
    sca.Attr("replication", "#" + std::to_string(repetition));
    sca.Attr("runnumber", std::to_string(runNumber));
    sca.Attr("seedset", std::to_string(rngRun));
    sca.Attr("simulator", "ns-3");

    // Topology: node 0 is the access point, nodes 1..n the stations.
    NodeContainer apNode;
    apNode.Create(1);
    NodeContainer staNodes;
    staNodes.Create(nStations);

    YansWifiChannelHelper channel = YansWifiChannelHelper::Default();
    YansWifiPhyHelper phy;
    phy.SetChannel(channel.Create());

    WifiHelper wifi;
    wifi.SetStandard(WIFI_STANDARD_80211a);
    const UintegerValue rtsThreshold(rtsCts ? 0 : 65535);
    if (phyMode == "ideal")
    {
        wifi.SetRemoteStationManager("ns3::IdealWifiManager", "RtsCtsThreshold", rtsThreshold);
    }
    else
    {
        // Control frames (ACK, CTS) go at 6 Mbps, the most robust rate.
        wifi.SetRemoteStationManager("ns3::ConstantRateWifiManager",
                                     "DataMode",
                                     StringValue(phyMode),
                                     "ControlMode",
                                     StringValue("OfdmRate6Mbps"),
                                     "RtsCtsThreshold",
                                     rtsThreshold);
    }

    Ssid ssid("simswarm");
    WifiMacHelper mac;
    mac.SetType("ns3::StaWifiMac", "Ssid", SsidValue(ssid));
    NetDeviceContainer staDevs = wifi.Install(phy, mac, staNodes);
    mac.SetType("ns3::ApWifiMac", "Ssid", SsidValue(ssid));
    NetDeviceContainer apDevs = wifi.Install(phy, mac, apNode);

    MobilityHelper mobility;
    mobility.SetMobilityModel("ns3::ConstantPositionMobilityModel");
    mobility.Install(apNode); // at the origin
    Ptr<UniformDiscPositionAllocator> disc = CreateObject<UniformDiscPositionAllocator>();
    disc->SetRho(radius);
    disc->SetX(0.0);
    disc->SetY(0.0);
    disc->SetZ(0.0);
    mobility.SetPositionAllocator(disc);
    mobility.Install(staNodes);

    InternetStackHelper stack;
    stack.Install(apNode);
    stack.Install(staNodes);
    Ipv4AddressHelper address;
    address.SetBase("10.1.0.0", "255.255.255.0");
    Ipv4InterfaceContainer apIf = address.Assign(apDevs);
    address.Assign(staDevs);
    // Static ARP entries: an ARP request lost in a collision would otherwise
    // silence a station for a second or more and swamp the load effect.
    NeighborCacheHelper neighbors;
    neighbors.PopulateNeighborCache();

    // Traffic: CBR UDP from every station to a sink on the access point.
    PacketSinkHelper sinkHelper("ns3::UdpSocketFactory",
                                InetSocketAddress(Ipv4Address::GetAny(), kSinkPort));
    ApplicationContainer sinkApps = sinkHelper.Install(apNode);
    sinkApps.Start(Seconds(0.0));

    OnOffHelper onoff("ns3::UdpSocketFactory",
                      InetSocketAddress(apIf.GetAddress(0), kSinkPort));
    onoff.SetConstantRate(rate, packetSize);
    ApplicationContainer srcApps = onoff.Install(staNodes);

    // Fixed stream numbers keep each random variable's stream the same
    // whatever else changes in the scenario.
    int64_t stream = 1;
    stream += disc->AssignStreams(stream);
    stream += wifi.AssignStreams(apDevs, stream);
    stream += wifi.AssignStreams(staDevs, stream);
    stream += stack.AssignStreams(apNode, stream);
    stream += stack.AssignStreams(staNodes, stream);
    Ptr<UniformRandomVariable> jitter = CreateObject<UniformRandomVariable>();
    jitter->SetAttribute("Min", DoubleValue(0.0));
    jitter->SetAttribute("Max", DoubleValue(std::min(0.01, simTime / 10)));
    jitter->SetStream(stream++);

    // Stagger the start times by up to 10 ms (at most a tenth of simTime) so the stations do not start in
    // lock-step; every source stops at the same time.
    const Time stopAt = Seconds(warmup + simTime);
    std::vector<Time> startAt(staNodes.GetN());
    for (uint32_t i = 0; i < srcApps.GetN(); ++i)
    {
        startAt[i] = Seconds(warmup + jitter->GetValue());
        srcApps.Get(i)->SetStartTime(startAt[i]);
        srcApps.Get(i)->SetStopTime(stopAt);
    }

    WindowCounter window(stopAt);
    sinkApps.Get(0)->TraceConnectWithoutContext(
        "Rx",
        MakeCallback(&WindowCounter::OnRx, &window));

    FlowMonitorHelper flowHelper;
    Ptr<FlowMonitor> monitor = flowHelper.InstallAll();

    // The drain period lets queued packets arrive, so that they count as
    // delivered (with their delay) rather than lost.
    Simulator::Stop(stopAt + Seconds(drain));
    Simulator::Run();

    // Results.
    monitor->CheckForLostPackets();
    Ptr<Ipv4FlowClassifier> classifier =
        DynamicCast<Ipv4FlowClassifier>(flowHelper.GetClassifier());
    const FlowMonitor::FlowStatsContainer& stats = monitor->GetFlowStats();

    std::vector<Ipv4Address> staAddr(staNodes.GetN());
    std::map<Ipv4Address, uint32_t> staIndex;
    for (uint32_t i = 0; i < staNodes.GetN(); ++i)
    {
        staAddr[i] = staNodes.Get(i)->GetObject<Ipv4>()->GetAddress(1, 0).GetLocal();
        staIndex[staAddr[i]] = i;
    }
    // FlowMonitor numbers flows in the order they first appear; report by station.
    std::vector<const FlowMonitor::FlowStats*> flowOf(staNodes.GetN(), nullptr);
    for (const auto& entry : stats)
    {
        Ipv4FlowClassifier::FiveTuple t = classifier->FindFlow(entry.first);
        auto it = staIndex.find(t.sourceAddress);
        if (it != staIndex.end() && t.destinationPort == kSinkPort)
        {
            flowOf[it->second] = &entry.second;
        }
    }

    uint64_t totTx = 0;
    uint64_t totRx = 0;
    double totThroughput = 0.0;
    double totDelay = 0.0;
    for (uint32_t i = 0; i < staNodes.GetN(); ++i)
    {
        std::string module = std::string(kNetwork) + ".sta[" + std::to_string(i) + "]";
        Vector pos = staNodes.Get(i)->GetObject<MobilityModel>()->GetPosition();
        double active = (stopAt - startAt[i]).GetSeconds();
        double throughput = active > 0 ? window.Bytes(staAddr[i]) * 8.0 / active : 0.0;
        sca.Scalar(module, "distance", std::sqrt(pos.x * pos.x + pos.y * pos.y), "m");
        sca.Scalar(module, "throughput", throughput, "bps");
        totThroughput += throughput;

        // A station without a flow (it sent nothing) reports zeros.
        const FlowMonitor::FlowStats* f = flowOf[i];
        if (!f)
        {
            std::cerr << "warning: station " << i << " sent nothing\n";
        }
        const uint32_t tx = f ? f->txPackets : 0;
        const uint32_t rx = f ? f->rxPackets : 0;
        const double delaySum = f ? f->delaySum.GetSeconds() : 0.0;
        const double jitterSum = f ? f->jitterSum.GetSeconds() : 0.0;
        sca.Scalar(module, "txPackets", tx);
        sca.Scalar(module, "rxPackets", rx);
        sca.Scalar(module, "meanDelay", rx ? delaySum / rx : 0.0, "s");
        sca.Scalar(module, "meanJitter", rx > 1 ? jitterSum / (rx - 1) : 0.0, "s");
        sca.Scalar(module, "lossRatio", tx ? 1.0 - static_cast<double>(rx) / tx : 0.0);
        totTx += tx;
        totRx += rx;
        totDelay += delaySum;
    }

    uint64_t sinkBytes = DynamicCast<PacketSink>(sinkApps.Get(0))->GetTotalRx();
    std::string net = kNetwork;
    sca.Scalar(net + ".ap.sink", "rxBytes", static_cast<double>(sinkBytes), "B");
    sca.Scalar(net, "offeredLoad", rate.GetBitRate() * static_cast<double>(nStations), "bps");
    sca.Scalar(net, "txPackets", static_cast<double>(totTx));
    sca.Scalar(net, "rxPackets", static_cast<double>(totRx));
    sca.Scalar(net, "throughput", totThroughput, "bps");
    sca.Scalar(net, "meanDelay", totRx ? totDelay / totRx : 0.0, "s");
    sca.Scalar(net, "lossRatio", totTx ? 1.0 - static_cast<double>(totRx) / totTx : 0.0);

    Simulator::Destroy();

    std::string runId = configName + "-" + std::to_string(runNumber);
    if (out.empty() && !resultDir.empty())
    {
        out = resultDir + "/" + configName + "-#" + std::to_string(runNumber) + ".sca";
    }
    if (out.empty() || out == "-")
    {
        sca.Write(std::cout, runId);
        return 0;
    }
    std::ofstream file(out);
    if (!file)
    {
        std::cerr << "error: cannot write " << out << "\n";
        return 1;
    }
    sca.Write(file, runId);
    file.close();
    if (!file)
    {
        std::cerr << "error: writing " << out << " failed\n";
        return 1;
    }
    return 0;
}

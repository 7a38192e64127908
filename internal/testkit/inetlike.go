package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// INETLike is a generated project built and run the way INET is, small
// enough to build in seconds, for tests of what INET's users meet (INET
// itself is neither shipped nor built by the tests):
//
//   - a root Makefile whose `make makefiles` runs opp_makemake in src/ with
//     the options of the enabled features (opp_featuretool options), needs
//     `inet_root` on PATH (as INET's checkenvir does), and writes the
//     generated, git-ignored src/inet/features.h (.oppfeatures' definesFile)
//     that every object includes;
//   - features in .oppfeatures, one of them (Extra) disabled with
//     opp_featuretool: its sources would not compile and its NED package
//     does not load, so both -X and .nedexclusions must be honoured;
//   - src/makefrag taking an option from the compiler it finds (INET turns
//     precompiled headers off when `which $(CC)` names ccache);
//   - the launcher bin/inet, which takes the NED folders and exclusions from
//     $INET_ROOT and the library from its own directory, as INET's does;
//   - inet::FingerprintCalculator with INET's extra ingredients ~ (packets
//     only), N (node paths) and D (packet data), and a crcMode parameter
//     that INET's fingerprint tool sets to "computed" for ~tND;
//   - examples/pingpong, in the NED package inet.examples.pingpong, whose
//     omnetpp.ini names its network unqualified (found only when the
//     working directory lies in a NED folder); config Sweep has 12 runs.
//
// It is a git repository with one commit; nothing is built.
type INETLike struct {
	Root    string // INET_ROOT
	Example string // examples/pingpong
}

// GenerateINETLike writes the project into dir (which must not exist or be
// empty) and commits it.
func (o *OMNeT) GenerateINETLike(t testing.TB, dir string) *INETLike {
	t.Helper()
	p := &INETLike{Root: dir, Example: filepath.Join(dir, "examples", "pingpong")}
	write := func(name, content string, mode os.FileMode) {
		t.Helper()
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range inetLikeFiles {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "bin/") {
			mode = 0o755
		}
		write(name, content, mode)
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		cmd.Env = append(o.Env, "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
		}
	}
	run("git", "init", "-q")
	run("git", "add", "-A")
	run("git", "commit", "-q", "-m", "inet-like project")
	// As a user reduces INET's features: the state files opp_featuretool
	// writes are git-ignored.
	run(filepath.Join(o.Bin, "opp_featuretool"), "disable", "Extra")
	return p
}

// Env is the environment after INET's `source setenv`: INET_ROOT set and
// bin/ first on PATH, on top of base.
func (p *INETLike) Env(base []string) []string {
	var out []string
	for _, kv := range base {
		switch {
		case strings.HasPrefix(kv, "PATH="):
			out = append(out, "PATH="+filepath.Join(p.Root, "bin")+":"+kv[len("PATH="):])
		case strings.HasPrefix(kv, "INET_ROOT="):
		default:
			out = append(out, kv)
		}
	}
	return append(out, "INET_ROOT="+p.Root)
}

var inetLikeFiles = map[string]string{
	".gitignore": `src/Makefile
src/inet/features.h
*_m.h
*_m.cc
.oppfeaturestate
.nedexclusions
out/
results/
*.UPDATED
*.FAILED
*.ERROR
`,
	"Makefile": `FEATURETOOL = opp_featuretool
FEATURES_H = src/inet/features.h

.PHONY: all clean makefiles checkenvir checkmakefiles

all: checkmakefiles $(FEATURES_H)
	@cd src && $(MAKE)

clean: checkmakefiles
	@cd src && $(MAKE) clean

INET_PROJ = $(shell inet_root)

makefiles: checkenvir $(FEATURES_H)
	@FEATURE_OPTIONS=$$($(FEATURETOOL) options -f -l) && cd src && opp_makemake --make-so -f --deep -o INET -O out -pINET -I. $$FEATURE_OPTIONS

checkenvir:
	@if [ "$(INET_PROJ)" = "" ]; then echo 'inet_root is not on PATH: source setenv first'; exit 1; fi

checkmakefiles:
	@if [ ! -f src/Makefile ]; then echo 'src/Makefile does not exist: make makefiles first'; exit 1; fi

$(FEATURES_H): $(wildcard .oppfeaturestate) .oppfeatures
	@$(FEATURETOOL) defines >$(FEATURES_H)
`,
	".oppfeatures": `<features cppSourceRoots = "src" definesFile = "src/inet/features.h">
    <feature
        id = "Nodes"
        name = "Nodes"
        description = "The hosts of the examples."
        initiallyEnabled = "true"
        requires = ""
        labels = ""
        nedPackages = "
                       inet.node
                      "
        extraSourceFolders = ""
        compileFlags = "-DINET_WITH_NODES"
        linkerFlags = ""
        />
    <feature
        id = "Extra"
        name = "Extra"
        description = "A feature the user disabled: it neither compiles nor loads."
        initiallyEnabled = "true"
        requires = ""
        labels = ""
        nedPackages = "
                       inet.extra
                      "
        extraSourceFolders = ""
        compileFlags = "-DINET_WITH_EXTRA"
        linkerFlags = ""
        />
</features>
`,
	".nedfolders": "src\nexamples\n",
	".project": `<?xml version="1.0" encoding="UTF-8"?>
<projectDescription>
	<name>inet</name>
	<comment></comment>
	<projects>
	</projects>
	<natures>
		<nature>org.omnetpp.main.omnetppnature</nature>
	</natures>
</projectDescription>
`,
	"bin/inet_root": "#!/bin/sh\ncd \"$(dirname \"$0\")/..\" && pwd\n",
	"bin/inet": `#!/bin/sh
# Runs a simulation of this project as INET's launcher does: the library
# beside the launcher, the NED folders and exclusions of $INET_ROOT.
DIR=$(dirname $0)
OUT=$DIR/../src
NEDFOLDERS=$(sed "s|^|$INET_ROOT/|" "$INET_ROOT/.nedfolders" | tr '\n' ':')
EXCLUSIONS=$(tr '\n' ';' < "$INET_ROOT/.nedexclusions")
if [ -n "$EXCLUSIONS" ]; then
  set -- -x "$EXCLUSIONS" "$@"
fi
exec opp_run -l $OUT/INET -n "$NEDFOLDERS" $INET_OMNETPP_OPTIONS "$@"
`,
	"src/makefrag": `# Options from the compiler found, as INET's precompiled-header switch.
ifneq (,$(findstring ccache,$(shell which $(CC))))
  CFLAGS += -DINET_BUILT_THROUGH_CCACHE
endif
`,
	"src/inet/package.ned": "package inet;\n\n@namespace(inet);\n",
	"src/inet/common/INETDefs.h": `#ifndef INET_COMMON_INETDEFS_H
#define INET_COMMON_INETDEFS_H

#include <omnetpp.h>
#include "inet/features.h"

namespace inet {
using namespace omnetpp;
}

#endif
`,
	"src/inet/common/FingerprintCalculator.h": `#ifndef INET_COMMON_FINGERPRINTCALCULATOR_H
#define INET_COMMON_FINGERPRINTCALCULATOR_H

#include "inet/common/INETDefs.h"

namespace inet {

// Adds ingredients to OMNeT++'s: ~ keeps only packets, N hashes the nodes a
// packet travels between, D its length in bytes.
class FingerprintCalculator : public cSingleFingerprintCalculator
{
  protected:
    bool packetsOnly = false;

    virtual void parseIngredients(const char *s) override;
    virtual FingerprintIngredient validateIngredient(char ch) override;
    virtual bool addEventIngredient(cEvent *event, FingerprintIngredient ingredient) override;

  public:
    virtual FingerprintCalculator *dup() const override { return new FingerprintCalculator(); }
    virtual void addEvent(cEvent *event) override;
};

}

#endif
`,
	"src/inet/common/FingerprintCalculator.cc": `#include "inet/common/FingerprintCalculator.h"

#include <cstring>

namespace inet {

Register_Class(FingerprintCalculator);

void FingerprintCalculator::parseIngredients(const char *s)
{
    cSingleFingerprintCalculator::parseIngredients(s);
    packetsOnly = strchr(s, '~') != nullptr;
}

cSingleFingerprintCalculator::FingerprintIngredient FingerprintCalculator::validateIngredient(char ch)
{
    if (strchr("~ND", ch) != nullptr)
        return (FingerprintIngredient)ch;
    return cSingleFingerprintCalculator::validateIngredient(ch);
}

bool FingerprintCalculator::addEventIngredient(cEvent *event, FingerprintIngredient ingredient)
{
    cPacket *packet = dynamic_cast<cPacket *>(event);
    switch ((char)ingredient) {
        case '~':
            return true;
        case 'N':
            if (packet != nullptr) {
                hasher_ << packet->getSenderModule()->getParentModule()->getFullPath();
                hasher_ << packet->getArrivalModule()->getParentModule()->getFullPath();
            }
            return true;
        case 'D':
            if (packet != nullptr)
                hasher_ << packet->getByteLength();
            return true;
        default:
            return cSingleFingerprintCalculator::addEventIngredient(event, ingredient);
    }
}

void FingerprintCalculator::addEvent(cEvent *event)
{
    if (packetsOnly && !(event->isMessage() && static_cast<cMessage *>(event)->isPacket()))
        return;
    cSingleFingerprintCalculator::addEvent(event);
}

}
`,
	"src/inet/node/Node.ned": `package inet.node;

simple Node
{
    parameters:
        volatile double sendInterval @unit(s) = default(exponential(1s));
        int packetLength @unit(B) = default(100B);
        string crcMode = default("declared"); // "computed" adds 4 bytes, as a real CRC would
    gates:
        input in;
        output out;
}
`,
	"src/inet/node/Host.ned": `package inet.node;

module Host
{
    parameters:
        @networkNode;
    gates:
        input in;
        output out;
    submodules:
        app: Node;
    connections:
        in --> app.in;
        app.out --> out;
}
`,
	"src/inet/node/Node.cc": `#include "inet/common/INETDefs.h"

#ifndef INET_WITH_NODES
#error "features.h does not enable Nodes"
#endif

#include <cstring>

namespace inet {

class Node : public cSimpleModule
{
    cMessage *timer = nullptr;
    long sent = 0, received = 0;
    cHistogram lengths{"lengths"};

  protected:
    virtual void initialize() override
    {
        timer = new cMessage("send");
        scheduleAt(par("sendInterval"), timer);
    }

    virtual void handleMessage(cMessage *msg) override
    {
        if (msg == timer) {
            cPacket *packet = new cPacket("data");
            int crc = strcmp(par("crcMode").stringValue(), "computed") == 0 ? 4 : 0;
            packet->setByteLength(par("packetLength").intValue() + crc + intuniform(0, 10));
            send(packet, "out");
            sent++;
            scheduleAt(simTime() + par("sendInterval"), timer);
        }
        else {
            received++;
            lengths.collect(check_and_cast<cPacket *>(msg)->getByteLength());
            delete msg;
        }
    }

    virtual void finish() override
    {
        recordScalar("sent", sent);
        recordScalar("received", received);
        lengths.record();
    }

  public:
    virtual ~Node() { cancelAndDelete(timer); }
};

Define_Module(Node);

}
`,
	"src/inet/extra/Extra.ned": `package inet.extra;

import inet.nosuch.Thing; // loads only when the feature is enabled

simple Extra
{
}
`,
	"src/inet/extra/Extra.cc": `#error "the Extra feature is disabled: this file must not be compiled"
`,
	"examples/package.ned": "package inet.examples;\n",
	"examples/pingpong/PingPong.ned": `package inet.examples.pingpong;

import inet.node.Host;

network PingPong
{
    parameters:
        int n = default(2);
    submodules:
        host[n]: Host;
    connections:
        for i=0..n-1 {
            host[i].out --> {  delay = 10ms; } --> host[(i+1)%n].in;
        }
}
`,
	"examples/pingpong/omnetpp.ini": `[General]
network = PingPong
sim-time-limit = 100s

[Sweep]
*.n = ${n=2,3,4}
**.sendInterval = exponential(${mean=0.5,1}s)
repeat = 2

[Fp]
*.n = 3
repeat = 2
`,
}

package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
)

// The lease benchmark: what keeping jobs leased costs the engine while a
// cluster is busy. A server runs in a process of its own (this test binary
// re-executed), so that its CPU is its own; simulated runners (one NATS
// connection each, SLOTS/8 of them with 8 slots) each hold one job per
// slot plus the spares a runner's pool keeps (a quarter of its slots), and
// send heartbeats, as real runners do while their simulations run. Over
// the window it reports the messages the server received and sent per
// second and per busy slot (from /varz) and the server's CPU (from
// /proc/PID/stat), with the idle server measured first.
//
//	go test -run '^$' -bench Leases -benchtime 1x ./internal/engine/
//
// Env: SIMSWARM_BENCH_SLOTS (512), SIMSWARM_BENCH_WINDOW (30s),
// SIMSWARM_BENCH_LEASE (the default lease).
func BenchmarkLeases(b *testing.B) {
	slots := envInt("SIMSWARM_BENCH_SLOTS", 512)
	window := envDuration("SIMSWARM_BENCH_WINDOW", 30*time.Second)
	lease := envDuration("SIMSWARM_BENCH_LEASE", DefaultLease)
	const perRunner = 8
	runners := (slots + perRunner - 1) / perRunner
	held := perRunner + max(1, (perRunner+3)/4) // busy slots + the pool's spares

	port, mon := freePort(b), freePort(b)
	srv := exec.Command(os.Args[0], "-test.run=^TestLeaseBenchServer$")
	srv.Env = append(os.Environ(), fmt.Sprintf("SIMSWARM_BENCH_SERVER=%s,%d,%d,%s", b.TempDir(), port, mon, lease))
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Process.Signal(syscall.SIGTERM); _ = srv.Wait() }()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), window+5*time.Minute)
	defer cancel()
	var engines []*Engine
	defer func() {
		for _, e := range engines {
			e.Close()
		}
	}()
	open := func(name string) *Engine {
		e, err := Connect(ctx, DialOptions{URL: url, Name: name, Wait: true}, nil)
		if err != nil {
			b.Fatal(err)
		}
		engines = append(engines, e)
		return e
	}
	client := open("bench-client")
	idle := measure(b, mon, srv.Process.Pid, 5*time.Second)

	c := simswarm.Campaign{ID: "be4c4be4c4be4c4b", Workdir: ".", Command: simswarm.Command{Kind: simswarm.KindOmnetpp, Argv: []string{"./sim"}}}
	if err := client.SubmitRuns(ctx, runners*held, func(i int) simswarm.RunJob { return c.RunJob(i, "", "bench") }); err != nil {
		b.Fatal(err)
	}
	hctx, stopBeats := context.WithCancel(ctx)
	defer stopBeats()
	for i := range runners {
		e := open(fmt.Sprintf("bench-runner-%d", i))
		got, err := e.Take(ctx, QueueRun, held, 10*time.Second)
		if err != nil || len(got) != held {
			b.Fatalf("runner %d took %d jobs: %v", i, len(got), err)
		}
		w := simswarm.Worker{ID: fmt.Sprintf("sim-%d", i), Host: "sim", Role: simswarm.RoleRunner, Slots: perRunner, Busy: perRunner, Version: simswarm.Version}
		go e.Heartbeat(hctx, func() simswarm.Worker { w.Seen = time.Now(); return w }, nil)
	}
	time.Sleep(lease) // every lease renewed at least once before measuring
	busy := measure(b, mon, srv.Process.Pid, window)
	var renewals uint64
	for _, e := range engines {
		_, n := e.held()
		renewals += n
	}
	in := (busy.in - idle.in)
	out := (busy.out - idle.out)
	b.ReportMetric(float64(slots), "busy_slots")
	b.ReportMetric(float64(runners*held), "leases")
	b.ReportMetric((in+out)/float64(slots), "msgs/s/slot")
	b.ReportMetric(in+out, "msgs/s")
	b.ReportMetric(busy.cpu*100, "server_cpu_%")
	b.ReportMetric(idle.cpu*100, "idle_server_cpu_%")
	b.Logf("lease %s: %d runners x %d slots, %d leases held; server in %.0f/s out %.0f/s above idle (%.2f msgs/s per busy slot); server CPU %.1f %% of a core (idle %.1f %%); %d renewals sent in all; load average %s",
		lease, runners, perRunner, runners*held, in, out, (in+out)/float64(slots), busy.cpu*100, idle.cpu*100, renewals, loadavg())
}

type rates struct{ in, out, cpu float64 } // msgs/s, msgs/s, cores

func measure(b *testing.B, mon, pid int, d time.Duration) rates {
	i0, o0 := varz(b, mon)
	c0 := cpuSeconds(b, pid)
	t0 := time.Now()
	time.Sleep(d)
	i1, o1 := varz(b, mon)
	c1 := cpuSeconds(b, pid)
	s := time.Since(t0).Seconds()
	return rates{in: float64(i1-i0) / s, out: float64(o1-o0) / s, cpu: (c1 - c0) / s}
}

func varz(b *testing.B, mon int) (in, out uint64) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/varz", mon))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		In  uint64 `json:"in_msgs"`
		Out uint64 `json:"out_msgs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		b.Fatal(err)
	}
	return v.In, v.Out
}

// cpuSeconds is a process's user+system CPU time.
func cpuSeconds(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

// TestLeaseBenchServer is the benchmark's server process; it does nothing
// unless BenchmarkLeases started it.
func TestLeaseBenchServer(t *testing.T) {
	spec := os.Getenv("SIMSWARM_BENCH_SERVER")
	if spec == "" {
		t.Skip("the server process of BenchmarkLeases")
	}
	p := strings.Split(spec, ",")
	port, _ := strconv.Atoi(p[1])
	mon, _ := strconv.Atoi(p[2])
	lease, _ := time.ParseDuration(p[3])
	srv, err := StartServer(ServerOptions{Dir: p[0], Host: "127.0.0.1", Port: port, MonitorHost: "127.0.0.1", MonitorPort: mon, Name: "bench"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	eng, err := srv.SetupCluster(context.Background(), 1, lease)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}

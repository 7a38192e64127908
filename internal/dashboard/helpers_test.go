package dashboard

import (
	"context"
	"encoding/json"
	"github.com/simswarm/simswarm/internal/engine/enginetest"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/embedded"
	"github.com/simswarm/simswarm/internal/engine"
)

// bareEngine is an embedded engine without workers, for tests that write
// records themselves.
func bareEngine(t testing.TB) *engine.Engine {
	t.Helper()
	return enginetest.Start(t).Engine
}

// cluster is a whole embedded simswarm: engine, builder and a runner.
func cluster(t testing.TB, slots int) (*embedded.Instance, string) {
	t.Helper()
	state := t.TempDir()
	inst, err := embedded.Start(context.Background(), embedded.Options{StateDir: state, Slots: slots, Host: "testhost", Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inst.Stop)
	return inst, state
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serve starts a dashboard on eng behind an httptest server and waits until
// it has read the engine.
func serve(t testing.TB, eng *engine.Engine, o Options) (*Server, *httptest.Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if o.Log == nil {
		o.Log = quiet()
	}
	s, err := New(ctx, eng, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.CloseClientConnections()
		cancel()
		hs.Close()
		s.Wait()
	})
	select {
	case <-s.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("dashboard did not read the engine within 30s")
	}
	return s, hs
}

// campaignOn runs a campaign of the simulation in dir on an embedded
// cluster, as `simswarm run` does.
func campaignOn(t testing.TB, inst *embedded.Instance, state, dir string, o campaign.Options, argv ...string) *campaign.Summary {
	t.Helper()
	o.Dir, o.Argv, o.StateDir = dir, argv, state
	if o.Results == "" {
		o.Results = "results"
	}
	o.Progress, o.Stdout, o.Quiet = io.Discard, io.Discard, true
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := &campaign.Client{Eng: inst.Eng, Opt: o}
	sum, err := c.Run(ctx)
	if err != nil {
		t.Fatalf("campaign %v: %v", argv, err)
	}
	return sum
}

// writeFiles creates files (name -> content) under dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

type response struct {
	code int
	body string
	hdr  http.Header
}

// do sends a request to the test server.
func do(t testing.TB, method, url string, body io.Reader, hdr map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: res.StatusCode, body: string(b), hdr: res.Header}
}

func get(t testing.TB, url string) response { t.Helper(); return do(t, "GET", url, nil, nil) }

// getJSON fetches url, requires 200 and decodes the body into v.
func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	r := get(t, url)
	if r.code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, r.code, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, r.body)
	}
}

// eventually polls cond until it holds or the time is up.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func form(kv ...string) io.Reader {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(kv[i] + "=" + kv[i+1])
	}
	return strings.NewReader(b.String())
}

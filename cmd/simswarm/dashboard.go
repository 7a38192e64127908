package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/simswarm/simswarm/internal/dashboard"
	"github.com/simswarm/simswarm/internal/embedded"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/spf13/cobra"
)

func dashboardCommand() *cobra.Command {
	var (
		conn                            connFlags
		state, listen, token, tokenFile string
		verbose                         bool
	)
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve the web dashboard: campaigns, queues, workers, runs, live",
		Long: `Dashboard serves a web UI of an engine on --listen (default 127.0.0.1:9181):
campaigns with progress and ETA, queues, workers, runs per minute, each run's
output and result files, and a few actions (cancel a campaign, retry its
failed runs, drain a runner). JSON under /api/, Prometheus metrics at /metrics.

On loopback anyone on this machine may read; any other address needs a token,
which then guards reading and actions alike: --token-file FILE or
$SIMSWARM_DASHBOARD_TOKEN (--token works too, but every user sees it in ps).
Without --server it opens the embedded engine's state directory, which only
works while no 'simswarm run' uses it: to watch an embedded campaign, give
'simswarm run' the --dashboard flag instead.`,
		Example: `  simswarm dashboard --server nats://localhost:4222 --creds client.creds
  openssl rand -hex 16 > token && chmod 600 token
  simswarm dashboard --listen 0.0.0.0:9181 --token-file token --server nats://manager:4222 --creds client.creds`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn.resolve()
			switch {
			case token != "" && tokenFile != "":
				return usageErr("--token and --token-file contradict each other: give one")
			case tokenFile != "":
				t, err := dashboard.ReadTokenFile(tokenFile)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				token = t
			case token != "":
				fmt.Fprintln(cmd.ErrOrStderr(), "simswarm: warning: --token shows in ps to every user of this machine; prefer --token-file or $"+dashboard.TokenEnv)
			default:
				token = os.Getenv(dashboard.TokenEnv)
			}
			if _, err := dashboard.CheckListen(listen, token); err != nil {
				return &exitError{code: 2, err: err}
			}
			log := logger(verbose)
			ctx, stop := untilSignal()
			defer stop()
			var eng *engine.Engine
			label := withoutPassword(conn.server)
			if conn.server != "" {
				// A dashboard is long-lived, like a worker: it waits for the engine.
				e, err := conn.connect(ctx, "simswarm-dashboard", true, log)
				if err != nil {
					return err
				}
				defer e.Close()
				eng = e
			} else {
				// A dashboard may watch a state directory before its first
				// campaign: it is not refused as status is.
				if state == "" {
					state = defaultState()
				}
				inst, err := embedded.Open(ctx, state)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				defer inst.Stop()
				eng, label = inst.Eng, "embedded: "+state
			}
			srv, err := dashboard.Serve(ctx, eng, dashboard.Options{Listen: listen, Token: token, Engine: label,
				LocalFiles: conn.server == "", Log: log})
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "simswarm: dashboard on %s\n", srv.URL())
			<-ctx.Done()
			srv.Wait()
			return nil
		},
	}
	f := cmd.Flags()
	conn.add(f)
	addStateFlag(f, &state, "embedded engine state directory (default $SIMSWARM_STATE or the user cache dir)")
	f.StringVar(&listen, "listen", dashboard.DefaultListen, "address to serve on; other than loopback needs --token")
	f.StringVar(&tokenFile, "token-file", "", "read the token from `FILE` (mode 0600)")
	f.StringVar(&token, "token", "", "token for actions, and for reading off loopback (env "+dashboard.TokenEnv+"; visible in ps: prefer --token-file)")
	f.BoolVarP(&verbose, "verbose", "v", false, "log requests' actions and watch problems")
	return cmd
}

// withoutPassword drops user information from engine URLs before the page
// header shows them.
func withoutPassword(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = nil
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// startDashboard serves the dashboard on the engine of a running campaign
// (simswarm run --dashboard ADDR) until stop is called. The token, needed
// off loopback, comes from the environment only, to keep run's flags few.
func startDashboard(ctx context.Context, eng *engine.Engine, addr string, embeddedEngine bool, log *slog.Logger) (stop func(), err error) {
	token := os.Getenv(dashboard.TokenEnv)
	if _, err := dashboard.CheckListen(addr, token); err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("--dashboard: %w", err)}
	}
	ctx, cancel := context.WithCancel(ctx)
	label := "embedded"
	if !embeddedEngine {
		label = "cluster"
	}
	srv, err := dashboard.Serve(ctx, eng, dashboard.Options{Listen: addr, Token: token, Engine: label, LocalFiles: embeddedEngine, Log: log})
	if err != nil {
		cancel()
		return nil, &exitError{code: 2, err: err}
	}
	fmt.Fprintf(os.Stderr, "simswarm: dashboard on %s\n", srv.URL())
	return func() { cancel(); srv.Wait() }, nil
}

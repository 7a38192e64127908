package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/simswarm/simswarm/internal/creds"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/units"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func serverCommand() *cobra.Command {
	var (
		listen, state, credsFile, tlsCert, tlsKey string
		addressFile                               string
		cluster, clusterName, routes, sync, name  string
		monitor, maxStore, resultTTL              string
		replicas                                  int
		leaseFlag                                 string
		verbose                                   bool
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Serve the engine (NATS JetStream) for a cluster",
		Long: `Server runs the engine that clients, builders and runners of a cluster
share. It requires authentication: on first start it generates credentials
and writes them to <state>/client.creds (mode 0600), unless --creds names a
file (e.g. a Docker secret). Give that file to clients and workers.

Three servers with --cluster and --routes form a JetStream cluster whose
streams are replicated (--replicas 3), so losing one server loses nothing.`,
		Example: `  simswarm server --listen 0.0.0.0:4222 --state /data
  simswarm server --listen 0.0.0.0:4222 --state /data --name s1 \
      --cluster 0.0.0.0:6222 --routes nats://s2:6222,nats://s3:6222 --replicas 3`,
		RunE: func(cmd *cobra.Command, args []string) error {
			host, port, err := splitHostPort(listen, "--listen")
			if err != nil {
				return err
			}
			if state == "" {
				return usageErr("--state is required: the engine keeps its files there")
			}
			bound, ttl, err := parseStoreFlags(maxStore, resultTTL)
			if err != nil {
				return err
			}
			o := engine.ServerOptions{Dir: state, Host: host, Port: port, Name: name, TLSCert: tlsCert, TLSKey: tlsKey, ClusterName: clusterName}
			switch sync {
			case "always":
				o.SyncAlways = true
			default:
				d, err := units.ParseDuration(sync)
				if err != nil || d <= 0 {
					return usageErr("invalid --sync %q: always, or a positive duration such as 1s", sync)
				}
				o.SyncInterval = d
			}
			if cluster != "" {
				if o.ClusterHost, o.ClusterPort, err = splitHostPort(cluster, "--cluster"); err != nil {
					return err
				}
				for _, r := range strings.Split(routes, ",") {
					if r = strings.TrimSpace(r); r != "" {
						o.Routes = append(o.Routes, r)
					}
				}
			} else if replicas > 1 {
				return usageErr("--replicas %d needs a cluster (--cluster and --routes)", replicas)
			}
			lease, err := parseLease(leaseFlag)
			if err != nil {
				return err
			}
			if err := units.Check("--replicas", replicas, 1, units.MaxReplicas); err != nil {
				return usageErr("%v", err)
			}
			if monitor != "" {
				if o.MonitorHost, o.MonitorPort, err = splitHostPort(monitor, "--monitor"); err != nil {
					return err
				}
			}
			if (tlsCert == "") != (tlsKey == "") {
				return usageErr("--tls-cert and --tls-key go together")
			}
			if err := os.MkdirAll(state, 0o755); err != nil {
				return usageErr("state dir %s: %v", state, err)
			}
			c, path, created, err := creds.LoadOrCreate(credsFile, state)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			o.User, o.Password = c.User, c.Password
			log := logger(verbose)
			o.Log = verbose
			srv, err := engine.StartServer(o)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer srv.Shutdown()
			ctx, stop := untilSignal()
			defer stop()
			eng, err := srv.SetupCluster(ctx, replicas, lease)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("set up the engine: %w", err)}
			}
			defer eng.Close()
			if err := startStoreLifecycle(ctx, eng, bound, ttl, log); err != nil {
				return &exitError{code: 2, err: err}
			}
			scheme := "nats"
			if tlsCert != "" {
				scheme = "tls"
			}
			verb := "read"
			if created {
				verb = "generated"
			}
			abs, _ := filepath.Abs(path)
			if addressFile != "" {
				if err := writeAddress(addressFile, scheme, listen); err != nil {
					return &exitError{code: 2, err: err}
				}
				defer os.Remove(addressFile)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "simswarm server %s://%s listening; credentials %s in %s\n", scheme, listen, verb, abs)
			log.Info("engine ready", "replicas", replicas, "lease", eng.Lease)
			<-ctx.Done()
			fmt.Fprintln(cmd.OutOrStdout(), "simswarm server stopping")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:4222", "client address to listen on (host:port)")
	addStateFlag(f, &state, "directory for the engine's files and credentials")
	f.StringVar(&credsFile, "creds", "", "credentials file to use instead of generating one (e.g. /run/secrets/simswarm_creds)")
	f.StringVar(&tlsCert, "tls-cert", "", "TLS certificate (PEM); clients then use tls://")
	f.StringVar(&tlsKey, "tls-key", "", "TLS private key (PEM)")
	f.StringVar(&name, "name", "", "server name, unique in a cluster (default: the hostname)")
	f.StringVar(&cluster, "cluster", "", "route address to listen on for the other servers (host:port)")
	f.StringVar(&clusterName, "cluster-name", "simswarm", "JetStream cluster name")
	f.StringVar(&routes, "routes", "", "comma-separated route URLs of the other servers (nats://host:6222)")
	f.IntVar(&replicas, "replicas", 1, "copies of every stream, 1 to 5 (3 in a 3-server cluster)")
	f.StringVar(&sync, "sync", "1s", "how often JetStream fsyncs: a duration, or always")
	addLease(f, &leaseFlag)
	f.StringVar(&monitor, "monitor", "", "serve NATS HTTP monitoring (/varz, /jsz) on host:port")
	f.StringVar(&maxStore, "max-store", "0", "bound of the object store, e.g. 200GiB (0: none); uploads and results past it are refused")
	f.StringVar(&resultTTL, "results-ttl", "7d", "delete results no client fetched after this long, at most 3650d (0: keep them)")
	f.BoolVarP(&verbose, "verbose", "v", false, "log more")
	f.StringVar(&addressFile, "address-file", "", "write the URL clients and workers dial (nats://HOST:PORT) to `FILE` once listening, removed at exit (a server run as a Slurm job, on a shared file system)")
	return cmd
}

// addLease adds --lease, the same for server and init.
func addLease(f *pflag.FlagSet, v *string) {
	f.StringVar(v, "lease", engine.DefaultLease.String(), fmt.Sprintf("how long a job stays with a worker that shows no sign of life (%s to %s)", units.Describe(engine.MinLease), units.Describe(units.MaxLease)))
}

// parseLease reads --lease: below engine.MinLease renewals every third of
// it crowd the engine and a loaded host misses them; past units.MaxLease a
// dead worker's jobs wait longer than anyone would notice.
func parseLease(s string) (time.Duration, error) {
	d, err := units.ParseDuration(s)
	if err != nil || d < engine.MinLease || d > units.MaxLease {
		return 0, usageErr("invalid --lease %s: at least %s and at most %s (workers renew a job's lease every third of it)", s, units.Describe(engine.MinLease), units.Describe(units.MaxLease))
	}
	return d, nil
}

// writeAddress publishes where the server listens.
func writeAddress(file, scheme, listen string) error {
	u, err := engine.AdvertisedURL(scheme, listen, hostname())
	if err != nil {
		return usageErr("invalid --listen: %v", err)
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(u+"\n"), 0o644); err != nil {
		return fmt.Errorf("--address-file: %w", err)
	}
	return os.Rename(tmp, file)
}

func splitHostPort(s, flag string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, usageErr("invalid %s %q: want host:port", flag, s)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, usageErr("invalid %s %q: bad port", flag, s)
	}
	return host, port, nil
}

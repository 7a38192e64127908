// Package dashboard is simswarm's web UI: campaigns, queues, workers and
// runs of an engine, live, with a few actions (cancel a campaign, retry its
// failed runs, drain a runner). Pages are rendered on the server with
// html/template, so command lines and output (user data) are escaped in one
// place; a few lines of JavaScript swap in fresh page regions when the
// server announces a change over server-sent events. Every page's data is
// also JSON under /api/, and /metrics serves Prometheus metrics.
//
// The dashboard keeps an index of every run in memory, fed by watches of
// the engine's buckets, so a page of a 100 000-run campaign is rendered
// without reading the engine.
package dashboard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/status"
)

// DefaultListen is where the dashboard listens unless told otherwise: the
// reference's rq-dashboard port, on loopback only.
const DefaultListen = "127.0.0.1:9181"

// TokenEnv names the environment variable that may hold the token.
const TokenEnv = "SIMSWARM_DASHBOARD_TOKEN"

//go:embed templates static
var assets embed.FS

// Options configure a dashboard.
type Options struct {
	// Listen is the address to serve on (DefaultListen when empty). Any
	// address but loopback requires Token.
	Listen string
	// Token, when set, is required for actions; on a listener that is not
	// loopback it is required for reading too (header, or cookie from /login).
	Token string
	// Engine names the engine in the page header ("embedded", a URL).
	Engine string
	// LocalFiles lets the dashboard serve result files that runners wrote
	// straight into a results directory on this host (embedded mode).
	LocalFiles bool
	Log        *slog.Logger
}

// Server is a running dashboard.
type Server struct {
	eng      *engine.Engine
	opt      Options
	loopback bool
	m        *model
	hub      *hub
	scalars  *scalarStore
	tmpl     map[string]*template.Template
	reg      *prometheus.Registry
	metrics  *metrics
	mux      http.Handler
	ready    chan struct{}
	log      *slog.Logger
	ctx      context.Context
	wg       sync.WaitGroup

	httpSrv *http.Server
	addr    string
}

// CheckListen refuses a listen address other than loopback without a token:
// the dashboard would let anyone on the network cancel campaigns.
func CheckListen(listen, token string) (loopback bool, err error) {
	if listen == "" {
		listen = DefaultListen
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false, fmt.Errorf("dashboard listen address %q: %w", listen, err)
	}
	loopback = isLoopbackHost(host)
	if !loopback && token == "" {
		return false, fmt.Errorf("dashboard listen address %s is reachable from other machines: give a token (--token or $%s), or listen on 127.0.0.1", listen, TokenEnv)
	}
	return loopback, nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// New builds a dashboard on an engine and starts following the engine's
// state; it stops when ctx ends. It does not listen: see Serve, or use
// Handler.
func New(ctx context.Context, eng *engine.Engine, o Options) (*Server, error) {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	loopback, err := CheckListen(o.Listen, o.Token)
	if err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Engine == "" {
		o.Engine = "engine"
	}
	s := &Server{eng: eng, opt: o, loopback: loopback, m: newModel(), hub: newHub(), scalars: newScalarStore(), ready: make(chan struct{}),
		log: o.Log, ctx: ctx}
	if s.tmpl, err = parseTemplates(); err != nil {
		return nil, err
	}
	s.reg = prometheus.NewRegistry()
	s.metrics = newMetrics(s)
	if err := s.reg.Register(s.metrics); err != nil {
		return nil, fmt.Errorf("dashboard metrics: %w", err)
	}
	s.mux = s.routes()
	s.follow(ctx)
	return s, nil
}

// Serve builds a dashboard and serves it on o.Listen until ctx ends.
// It returns once the listener is open.
func Serve(ctx context.Context, eng *engine.Engine, o Options) (*Server, error) {
	s, err := New(ctx, eng, o)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", s.opt.Listen)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	s.addr = ln.Addr().String()
	// No write timeout: event streams stay open for as long as a page does.
	s.httpSrv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("dashboard stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.httpSrv.Shutdown(sctx)
		_ = s.httpSrv.Close()
	}()
	return s, nil
}

// URL is where the dashboard can be opened.
func (s *Server) URL() string {
	host, port, _ := net.SplitHostPort(s.addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// Handler serves the dashboard (for tests and for embedding in another server).
func (s *Server) Handler() http.Handler { return s.mux }

// Ready is closed once the dashboard has read the engine's current state.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Wait blocks until the dashboard has stopped after its context ended.
func (s *Server) Wait() { s.wg.Wait() }

// follow starts the watches and pollers that keep the model current.
func (s *Server) follow(ctx context.Context) {
	readies := []chan struct{}{make(chan struct{}), make(chan struct{}), make(chan struct{})}
	run := func(name string, b engine.Bucket, ready chan struct{}, fn func(engine.Entry)) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			once := sync.Once{}
			closeReady := func() { once.Do(func() { close(ready) }) }
			for ctx.Err() == nil {
				err := s.eng.Follow(ctx, b, closeReady, fn)
				if ctx.Err() != nil {
					break
				}
				// The engine went away (restart, network): watch again.
				s.log.Warn("dashboard: watch", "bucket", name, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(2 * time.Second):
				}
			}
			closeReady()
		}()
	}
	run("campaigns", engine.BucketCampaigns, readies[0], func(e engine.Entry) {
		if rec, ok := s.m.applyCampaign(e.Key, e.Deleted, e.Value); ok {
			if rec != nil {
				s.loadList(ctx, rec)
			}
			s.hub.mark("overview", "campaign:"+e.Key)
		}
	})
	run("status", engine.BucketStatus, readies[1], func(e engine.Entry) {
		ch, ok := s.m.applyStatus(e.Key, e.Deleted, e.Value, time.Now())
		if !ok {
			return
		}
		if ch.finished {
			s.metrics.observe(ch, e.Initial)
		}
		if !e.Deleted {
			s.noteSucceeded(e.Key, e.Value)
		}
		s.hub.mark("overview", "campaign:"+ch.campaign)
	})
	run("workers", engine.BucketWorkers, readies[2], func(e engine.Entry) {
		if s.m.applyWorker(e.Key, e.Deleted, e.Value, time.Now(), e.Initial) {
			s.hub.mark("overview", "workers")
		}
	})
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		for _, r := range readies {
			select {
			case <-r:
			case <-ctx.Done():
				return
			}
		}
		// Queue depths and stored bytes too, so the first page is complete.
		q, _ := s.queues(ctx)
		stored, _ := s.eng.StoredBytes(ctx)
		s.m.mu.Lock()
		if s.m.queues == nil {
			s.m.queues = q
		}
		if s.m.stored == 0 {
			s.m.stored = stored
		}
		s.m.mu.Unlock()
		close(s.ready)
	}()
	go func() {
		defer s.wg.Done()
		s.poll(ctx)
	}()
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.hub.run(ctx)
	}()
	go func() {
		defer s.wg.Done()
		s.readScalars(ctx)
	}()
}

// loadList merges a campaign's run list into its index, in the background
// so that the watch goes on; it tries a few times, since a list can still
// be on its way when the campaign record arrives.
func (s *Server) loadList(ctx context.Context, rec *simswarm.Campaign) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for try := 0; try < 5 && ctx.Err() == nil; try++ {
			runs, vars, err := loadList(ctx, s.eng, rec)
			if err == nil && runs != nil {
				s.m.mergeList(rec.ID, rec.Artifact, runs, vars)
				s.hub.mark("overview", "campaign:"+rec.ID)
				return
			}
			if err != nil {
				s.log.Debug("dashboard: run list", "campaign", rec.ID, "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(try+1) * time.Second):
			}
		}
	}()
}

// poll reads what no watch tells: queue depths and stored bytes, and
// notices workers falling silent and the graph's minute turning.
func (s *Server) poll(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lost := map[string]bool{}
	var lastQueues time.Time
	var lastStored time.Time
	minute := time.Now().Unix() / 60
	for {
		now := time.Now()
		if now.Sub(lastQueues) >= 2*time.Second {
			lastQueues = now
			if q, err := s.queues(ctx); err == nil {
				s.m.mu.Lock()
				changed := fmt.Sprint(q) != fmt.Sprint(s.m.queues)
				s.m.queues = q
				s.m.mu.Unlock()
				if changed {
					s.hub.mark("overview")
				}
			}
		}
		if now.Sub(lastStored) >= 10*time.Second {
			lastStored = now
			if n, err := s.eng.StoredBytes(ctx); err == nil {
				s.m.mu.Lock()
				s.m.stored = n
				s.m.mu.Unlock()
			}
		}
		if s.m.expireWorkers(now, lost) {
			s.hub.mark("overview", "workers")
		}
		if m := now.Unix() / 60; m != minute {
			minute = m
			s.hub.mark("overview")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// queues reads the depth of each job queue.
func (s *Server) queues(ctx context.Context) ([]status.Queue, error) {
	return s.eng.Depths(ctx)
}

// tokenOK compares a presented token with the configured one in constant
// time (hashes first, so lengths leak nothing either).
func (s *Server) tokenOK(t string) bool {
	if s.opt.Token == "" || t == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(t)), sha256.Sum256([]byte(s.opt.Token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// staticFS is the embedded assets under /static/.
func staticFS() fs.FS {
	sub, err := fs.Sub(assets, "static")
	if err != nil {
		panic(err) // the embed directive guarantees it
	}
	return sub
}

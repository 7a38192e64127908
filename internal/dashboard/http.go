package dashboard

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/status"
)

const cookieName = "simswarm_dashboard_token"

// securityPolicy lets pages load only the dashboard's own scripts and
// styles: even markup that slipped past escaping could not run a script.
const securityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.pageOverview)
	mux.HandleFunc("GET /campaigns/{id}", s.pageCampaign)
	mux.HandleFunc("GET /campaigns/{id}/runs/{n}", s.pageRun)
	mux.HandleFunc("GET /campaigns/{id}/runs/{n}/files/{name...}", s.serveFile)
	mux.HandleFunc("GET /campaigns/{id}/build/log", s.serveBuildLog)
	mux.HandleFunc("GET /workers", s.pageWorkers)
	mux.HandleFunc("GET /login", s.login)
	mux.HandleFunc("POST /login", s.login)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS())))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))

	mux.HandleFunc("GET /api/{$}", s.apiIndex)
	mux.HandleFunc("GET /api/overview", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.m.overview(time.Now()))
	})
	mux.HandleFunc("GET /api/campaigns", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"campaigns": s.m.campaignList(time.Now())})
	})
	mux.HandleFunc("GET /api/campaigns/{id}", s.apiCampaign)
	mux.HandleFunc("GET /api/campaigns/{id}/runs", s.apiRuns)
	mux.HandleFunc("GET /api/campaigns/{id}/runs/{n}", s.apiRun)
	mux.HandleFunc("GET /api/campaigns/{id}/build", s.apiBuild)
	mux.HandleFunc("GET /api/workers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.m.workersPage(time.Now()))
	})
	mux.HandleFunc("GET /api/queues", func(w http.ResponseWriter, r *http.Request) {
		o := s.m.overview(time.Now())
		writeJSON(w, http.StatusOK, map[string]any{"queues": o.Queues})
	})
	mux.HandleFunc("GET /api/throughput", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.m.overview(time.Now()).Throughput)
	})
	mux.HandleFunc("GET /api/events", s.events)
	mux.HandleFunc("POST /api/campaigns/{id}/cancel", s.actCancel)
	mux.HandleFunc("POST /api/campaigns/{id}/retry", s.actRetry)
	mux.HandleFunc("POST /api/workers/{id}/drain", s.actDrain)
	mux.HandleFunc("POST /api/workers/{id}/resume", s.actDrain)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.notFound(w, r, "There is no page at "+r.URL.Path+".")
	})
	return s.guard(mux)
}

// guard applies the access rules before any handler: on loopback anyone on
// this machine may read; elsewhere the token is needed for everything.
// Actions need the token whenever one is set, and never come from another
// site (cross-origin requests are refused, so a web page cannot post to a
// dashboard on localhost).
func (s *Server) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", securityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		authed := s.tokenOK(bearer(r)) || s.cookieOK(r)
		// A loopback dashboard answers only to loopback names, so that a web
		// page whose name was rebound to 127.0.0.1 cannot read it.
		if s.loopback && !authed && !loopbackHostHeader(r.Host) {
			s.forbidden(w, r, "this dashboard answers to localhost only")
			return
		}
		if strings.HasPrefix(r.URL.Path, "/static/") || r.URL.Path == "/login" {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				if err := cop.Check(r); err != nil {
					s.forbidden(w, r, "cross-origin request refused")
					return
				}
			}
			next.ServeHTTP(w, r)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			if !s.loopback && !authed {
				s.forbidden(w, r, "this dashboard needs its token: open /login?token=TOKEN or send Authorization: Bearer TOKEN")
				return
			}
		default:
			if err := cop.Check(r); err != nil {
				s.forbidden(w, r, "cross-origin request refused")
				return
			}
			if s.opt.Token != "" && !authed && !s.tokenOK(r.PostFormValue("token")) {
				s.forbidden(w, r, "actions need the dashboard's token (Authorization: Bearer TOKEN, or the token form field)")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func bearer(r *http.Request) string {
	t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return strings.TrimSpace(t)
}

func (s *Server) cookieOK(r *http.Request) bool {
	c, err := r.Cookie(cookieName)
	return err == nil && s.tokenOK(c.Value)
}

func loopbackHostHeader(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	return isLoopbackHost(host)
}

// login trades the token for a cookie, so a browser can read a dashboard
// that is not on loopback.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	tok := r.FormValue("token")
	if tok == "" {
		s.render(w, r, http.StatusOK, "login", "Sign in", "", map[string]any{"Error": ""})
		return
	}
	if !s.tokenOK(tok) {
		s.render(w, r, http.StatusForbidden, "login", "Sign in", "", map[string]any{"Error": "That token is not this dashboard's."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: 30 * 24 * 3600})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) forbidden(w http.ResponseWriter, r *http.Request, msg string) {
	if wantsJSON(r) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": msg})
		return
	}
	s.render(w, r, http.StatusForbidden, "login", "Forbidden", "", map[string]any{"Error": msg})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request, msg string) {
	if wantsJSON(r) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": msg})
		return
	}
	s.render(w, r, http.StatusNotFound, "notfound", "Not found", "", map[string]any{"Message": msg})
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	if code >= 500 {
		s.log.Error("dashboard", "path", r.URL.Path, "err", err)
	}
	if wantsJSON(r) {
		writeJSON(w, code, map[string]string{"error": err.Error()})
		return
	}
	s.render(w, r, code, "error", http.StatusText(code), "", map[string]any{"Message": err.Error(), "Code": code})
}

// wantsJSON: API paths, and clients that ask for JSON (the page's script
// posting an action).
func wantsJSON(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") && !strings.Contains(r.Header.Get("Accept"), "text/html") ||
		strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// layout is what every page's frame needs.
type layout struct {
	Title     string
	Nav       string
	Topics    string // change topics that refresh this page
	Engine    string
	Now       time.Time
	NeedToken bool // actions need a token this browser has not given
	Data      any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, page, title, topics string, data any) {
	t := s.tmpl[page]
	nav := page
	if page == "campaign" || page == "run" {
		nav = "overview"
	}
	l := layout{Title: title, Nav: nav, Topics: topics, Engine: s.opt.Engine, Now: time.Now(), Data: data,
		NeedToken: s.opt.Token != "" && !s.tokenOK(bearer(r)) && !s.cookieOK(r)}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", l); err != nil {
		s.log.Error("dashboard: render", "page", page, "err", err)
		http.Error(w, "cannot render page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// Pages.

func (s *Server) pageOverview(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "overview", "Overview", "overview", s.m.overview(time.Now()))
}

func (s *Server) pageWorkers(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "workers", "Workers", "workers", s.m.workersPage(time.Now()))
}

func (s *Server) campaignData(w http.ResponseWriter, r *http.Request) (*CampaignPage, bool) {
	q, err := parseTableQuery(r.URL.Query().Get)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return nil, false
	}
	id := r.PathValue("id")
	p, err := s.m.campaignPage(id, q, time.Now())
	if errors.Is(err, errNotFound) {
		s.notFound(w, r, "There is no campaign "+strconv.Quote(id)+" in this engine.")
		return nil, false
	}
	return p, true
}

func (s *Server) pageCampaign(w http.ResponseWriter, r *http.Request) {
	p, ok := s.campaignData(w, r)
	if !ok {
		return
	}
	p.Build = s.buildView(r, p.Record)
	if s.scalars.touch(p.ID, time.Now()) {
		s.backfill(s.ctx, p.ID)
	}
	q := r.URL.Query()
	p.Plots = s.scalars.plots(p.ID, q.Get("y"), q.Get("x"), q.Get("series"))
	p.Plots.Walls = s.m.wallHistogram(p.ID)
	s.render(w, r, http.StatusOK, "campaign", "Campaign "+p.ID, "campaign:"+p.ID, p)
}

func (s *Server) buildView(r *http.Request, c simswarm.Campaign) *BuildView {
	b := s.build(r.Context(), c.Artifact)
	if b == nil {
		return nil
	}
	v := &BuildView{BuildRecord: *b, WallSeconds: b.Wall.Seconds()}
	if b.Log != "" {
		v.LogURL = "/campaigns/" + url.PathEscape(c.ID) + "/build/log"
	}
	return v
}

func (s *Server) runData(w http.ResponseWriter, r *http.Request) (*RunPage, bool) {
	id := r.PathValue("id")
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil {
		s.notFound(w, r, "There is no run "+strconv.Quote(r.PathValue("n"))+" in campaign "+strconv.Quote(id)+".")
		return nil, false
	}
	p, err := s.runPage(r.Context(), id, n, time.Now())
	if errors.Is(err, errNotFound) {
		s.notFound(w, r, "There is no run "+strconv.Itoa(n)+" in campaign "+strconv.Quote(id)+".")
		return nil, false
	}
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return nil, false
	}
	return p, true
}

func (s *Server) pageRun(w http.ResponseWriter, r *http.Request) {
	p, ok := s.runData(w, r)
	if !ok {
		return
	}
	s.render(w, r, http.StatusOK, "run", "Run "+strconv.Itoa(p.Run)+" of "+p.Campaign.ID, "campaign:"+p.Campaign.ID, p)
}

// API.

func (s *Server) apiIndex(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"version": simswarm.Version,
		"routes": []string{
			"GET /api/overview", "GET /api/campaigns", "GET /api/campaigns/{id}",
			"GET /api/campaigns/{id}/runs?state=&sort=&order=&page=&per_page=", "GET /api/campaigns/{id}/runs/{n}",
			"GET /api/campaigns/{id}/build", "GET /api/workers", "GET /api/queues", "GET /api/throughput",
			"GET /api/events (text/event-stream)", "POST /api/campaigns/{id}/cancel", "POST /api/campaigns/{id}/retry",
			"POST /api/workers/{id}/drain", "POST /api/workers/{id}/resume", "GET /metrics",
		},
	})
}

func (s *Server) apiCampaign(w http.ResponseWriter, r *http.Request) {
	p, ok := s.campaignData(w, r)
	if !ok {
		return
	}
	p.Build = s.buildView(r, p.Record)
	writeJSON(w, http.StatusOK, map[string]any{"campaign": p.CampaignSummary, "record": p.Record, "build": p.Build})
}

func (s *Server) apiRuns(w http.ResponseWriter, r *http.Request) {
	p, ok := s.campaignData(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, p.Table)
}

func (s *Server) apiRun(w http.ResponseWriter, r *http.Request) {
	p, ok := s.runData(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) apiBuild(w http.ResponseWriter, r *http.Request) {
	p, ok := s.campaignData(w, r)
	if !ok {
		return
	}
	b := s.buildView(r, p.Record)
	if b == nil {
		s.notFound(w, r, "no build record for the artifact of campaign "+p.ID)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// parseTemplates reads the embedded templates: one set per page, each with
// the shared layout.
func parseTemplates() (map[string]*template.Template, error) {
	pages := []string{"overview", "campaign", "run", "workers", "login", "notfound", "error"}
	out := map[string]*template.Template{}
	for _, p := range pages {
		t, err := template.New(p).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/parts.html", "templates/"+p+".html")
		if err != nil {
			return nil, err
		}
		out[p] = t
	}
	return out, nil
}

var funcs = template.FuncMap{
	"bytes":     func(n any) string { return status.HumanBytes(toInt64(n)) },
	"secs":      humanSeconds,
	"ago":       humanAgo,
	"thousands": func(n any) string { return thousands(int(toInt64(n))) },
	"short":     simswarm.Short,
	"pct":       func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"rate":      func(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" },
	"eta": func(p *float64) string {
		if p == nil {
			return ""
		}
		return humanSeconds(*p)
	},
	"iso":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"clock":  func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	"states": func() []simswarm.RunState { return simswarm.RunStates },
	"chart":  chartOf,
	"f1":     func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"addf":   func(a, b float64) float64 { return a + b },
	"f2":     func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
	"join":   strings.Join,
	"firstLine": func(s string) string {
		l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
		return l
	},
	"runURL": func(id string, n int) string {
		return runURL(id, n)
	},
	"campURL": func(id string) string { return "/campaigns/" + url.PathEscape(id) },
	"pathEsc": url.PathEscape,
	"add":     func(a, b int) int { return a + b },
	"sub":     func(a, b int) int { return a - b },
	// dict passes several values to a shared template part.
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			if k, ok := kv[i].(string); ok {
				m[k] = kv[i+1]
			}
		}
		return m
	},
}

func toInt64(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int64:
		return n
	case uint64:
		return int64(n)
	case int32:
		return int64(n)
	}
	return 0
}

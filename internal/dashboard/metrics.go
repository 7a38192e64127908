package dashboard

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/simswarm/simswarm"
)

// metrics exports the dashboard's view of the engine to Prometheus. Gauges
// are read from the model at scrape time; the duration histogram and the
// finished-runs counter grow as runs finish.
type metrics struct {
	s         *Server
	duration  prometheus.Histogram
	finished  *prometheus.CounterVec
	runs      *prometheus.Desc
	campaigns *prometheus.Desc
	queue     *prometheus.Desc
	workers   *prometheus.Desc
	slots     *prometheus.Desc
	stored    *prometheus.Desc
}

func newMetrics(s *Server) *metrics {
	return &metrics{
		s: s,
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "simswarm_run_duration_seconds",
			Help: "Wall-clock time of executed runs (succeeded or failed), including those finished before the dashboard started.",
			// 0.1 s to about 4 h: short test runs to long INET simulations.
			Buckets: prometheus.ExponentialBuckets(0.1, 3, 12),
		}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "simswarm_runs_finished_total",
			Help: "Runs that finished while the dashboard watched, by outcome.",
		}, []string{"state"}),
		runs:      prometheus.NewDesc("simswarm_runs", "Runs of the campaigns the dashboard tracks, by state.", []string{"state"}, nil),
		campaigns: prometheus.NewDesc("simswarm_campaigns", "Campaigns by state.", []string{"state"}, nil),
		queue:     prometheus.NewDesc("simswarm_queue_jobs", "Jobs in a queue: waiting (not taken) or taken by a worker.", []string{"queue", "state"}, nil),
		workers:   prometheus.NewDesc("simswarm_workers", "Workers by role and state (online, draining, lost).", []string{"role", "state"}, nil),
		slots:     prometheus.NewDesc("simswarm_runner_slots", "Run slots of online runners: total and busy.", []string{"state"}, nil),
		stored:    prometheus.NewDesc("simswarm_stored_bytes", "Bytes in the engine's object store.", nil, nil),
	}
}

// observe counts a run that reached a final state. Runs already finished
// when the dashboard started feed the histogram but not the counter, whose
// rate must mean "finishing now".
func (m *metrics) observe(ch change, initial bool) {
	m.duration.Observe(ch.wall.Seconds())
	if !initial {
		m.finished.WithLabelValues(string(stateNames[ch.state])).Inc()
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.duration.Describe(ch)
	m.finished.Describe(ch)
	for _, d := range []*prometheus.Desc{m.runs, m.campaigns, m.queue, m.workers, m.slots, m.stored} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.duration.Collect(ch)
	m.finished.Collect(ch)
	now := time.Now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	var runs Counts
	camps := map[simswarm.CampaignState]int{simswarm.CampaignActive: 0, simswarm.CampaignDone: 0, simswarm.CampaignCancelled: 0}
	for _, c := range m.s.m.campaignList(now) {
		runs.Pending += c.Counts.Pending
		runs.Running += c.Counts.Running
		runs.Succeeded += c.Counts.Succeeded
		runs.Failed += c.Counts.Failed
		runs.Cancelled += c.Counts.Cancelled
		camps[c.State]++
	}
	for _, st := range stateNames {
		gauge(m.runs, float64(runs.Of(st)), string(st))
	}
	for st, n := range camps {
		gauge(m.campaigns, float64(n), string(st))
	}
	w := m.s.m.workersPage(now)
	type roleState struct {
		role  simswarm.Role
		state simswarm.WorkerState
	}
	byRole := map[roleState]int{}
	for _, role := range []simswarm.Role{simswarm.RoleRunner, simswarm.RoleBuilder} {
		for _, st := range []simswarm.WorkerState{simswarm.WorkerOnline, simswarm.WorkerDraining, simswarm.WorkerLost} {
			byRole[roleState{role, st}] = 0
		}
	}
	for _, h := range w.Hosts {
		for _, wk := range h.Workers {
			if wk.State != simswarm.WorkerStopped {
				byRole[roleState{wk.Role, wk.State}]++
			}
		}
	}
	for k, n := range byRole {
		gauge(m.workers, float64(n), string(k.role), string(k.state))
	}
	gauge(m.slots, float64(w.Counts.Slots), "total")
	gauge(m.slots, float64(w.Counts.Busy), "busy")
	m.s.m.mu.RLock()
	queues := append([]queueDepth(nil), depths(m.s.m)...)
	stored := m.s.m.stored
	m.s.m.mu.RUnlock()
	for _, q := range queues {
		gauge(m.queue, float64(q.waiting), q.name, "waiting")
		gauge(m.queue, float64(q.taken), q.name, "taken")
	}
	gauge(m.stored, float64(stored))
}

type queueDepth struct {
	name           string
	waiting, taken uint64
}

// depths copies the queue depths; the caller holds the lock.
func depths(m *model) []queueDepth {
	out := make([]queueDepth, len(m.queues))
	for i, q := range m.queues {
		out[i] = queueDepth{name: q.Name, waiting: q.Waiting, taken: uint64(q.Taken)}
	}
	return out
}

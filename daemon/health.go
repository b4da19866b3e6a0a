package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/breakwater/breakwater/consumer"
)

// storeProbe is the rate store as readiness sees it.
type storeProbe interface {
	Initialised(ctx context.Context) (bool, error)
}

// pipelineHealth is the pipeline as the health endpoints see it.
type pipelineHealth interface {
	Health(now time.Time) consumer.Health
}

// health answers /healthz and /readyz from the state of the daemon. It is
// served from the first moment of the start, before the pipeline exists;
// the fields that come later are set through atomics.
type health struct {
	ready    atomic.Bool                     // set once the states are restored and the pipeline starts
	starting atomic.Pointer[string]          // what the start waits for, until ready
	stopping atomic.Pointer[<-chan struct{}] // closed when shutdown begins
	pipeline atomic.Pointer[pipelineHealth]  // set once built
	probe    atomic.Pointer[probeResult]     // the store probe's last answer
	// staleAfter is how old the store probe's last answer may be before
	// readiness stops trusting it; 0 means defaultStaleAfter.
	staleAfter time.Duration
	now        func() time.Time
}

// probeResult is one answer of the rate store to the readiness probe.
type probeResult struct {
	at          time.Time // when the probe was sent
	initialised bool
	err         error
}

// The readiness probe of the rate store: every probeEvery, one call
// bounded by probeTimeout; an answer older than defaultStaleAfter (from
// when it was sent) counts as none. /readyz answers from the last answer
// at once, so that a hung Redis makes it answer 503 rather than make the
// orchestrator's probe time out.
const (
	probeEvery        = 500 * time.Millisecond
	probeTimeout      = 2 * time.Second
	defaultStaleAfter = 2 * time.Second
)

// setPipeline makes the pipeline's health known to the endpoints.
func (h *health) setPipeline(p pipelineHealth) { h.pipeline.Store(&p) }

// setStopping sets the channel closed when shutdown begins.
func (h *health) setStopping(c <-chan struct{}) { h.stopping.Store(&c) }

// runProbe asks store every interval whether it holds its data, each call
// bounded by timeout, and keeps the last answer, until ctx ends.
func (h *health) runProbe(ctx context.Context, store storeProbe, every, timeout time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		at := h.clock()
		pctx, cancel := context.WithTimeout(ctx, timeout)
		ok, err := store.Initialised(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		h.probe.Store(&probeResult{at: at, initialised: ok, err: err})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// healthBody is the JSON body of /healthz and /readyz.
type healthBody struct {
	Status string `json:"status"`
	// Reason says why the daemon is not ready or not live.
	Reason string `json:"reason,omitempty"`
	// Since is when the pause began.
	Since *time.Time `json:"since,omitempty"`
	// Stalled is how long the batches in flight made no attempt.
	Stalled string `json:"stalled,omitempty"`
}

func (h *health) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

// live answers /healthz: 200 while the process can still work, 503 once
// the pipeline is wedged (a batch in flight saw no attempt finish for
// longer than kafka.stall_timeout) and only a restart can help. A pause on
// an unreachable Redis is not a wedge: it resumes by itself.
func (h *health) live(w http.ResponseWriter, _ *http.Request) {
	p := h.pipeline.Load()
	if p == nil {
		// Starting: the start retries by itself what it waits for.
		writeHealth(w, http.StatusOK, healthBody{Status: "ok"})
		return
	}
	if ph := (*p).Health(h.clock()); ph.Stalled > 0 {
		writeHealth(w, http.StatusServiceUnavailable, healthBody{
			Status: "wedged", Stalled: ph.Stalled.Round(time.Second).String(), Reason: ph.StallReason,
		})
		return
	}
	writeHealth(w, http.StatusOK, healthBody{Status: "ok"})
}

// readiness is the daemon's readiness now, from the state the daemon and
// the store probe keep (it waits for nothing): 200 when it can do its
// job, else 503 with the status and reason: stopping; starting (the
// start-up has not checked Kafka, verified the permissions and restored
// the breaker states yet; the reason says what it waits for, such as
// "checking the Kafka permissions" or "restoring: rate store
// unreachable"); joining group (the pipeline holds no generation of the
// consumer group yet, or is in a rebalance); paused (the rate store does
// not answer; consumption is paused with the offsets kept, and resumes by
// itself); restoring (Redis lost its data and the breaker states are being
// restored); or rate store unreachable (the store probe's last answer
// failed, or is older than staleAfter, or there is none yet; the reason
// says which). A ready replica that waits now for another replica's
// frontier before it decides more of a backlog answers 200 with the
// reason "waiting for replica X's frontier".
func (h *health) readiness() (int, healthBody) {
	if s := h.stopping.Load(); s != nil {
		select {
		case <-*s:
			return http.StatusServiceUnavailable, healthBody{Status: "stopping"}
		default:
		}
	}
	p := h.pipeline.Load()
	if !h.ready.Load() || p == nil {
		reason := "restoring: loading the breaker states from the state topic"
		if r := h.starting.Load(); r != nil {
			reason = *r
		}
		return http.StatusServiceUnavailable, healthBody{Status: "starting", Reason: reason}
	}
	now := h.clock()
	ph := (*p).Health(now)
	if !ph.Member {
		return http.StatusServiceUnavailable, healthBody{
			Status: "joining group", Reason: "the consumer group has not given this replica its partitions yet",
		}
	}
	if since := ph.PausedSince; !since.IsZero() {
		return http.StatusServiceUnavailable, healthBody{
			Status: "paused", Since: &since,
			Reason: "the rate store does not answer: consumption is paused, offsets kept; it resumes by itself",
		}
	}
	stale := h.staleAfter
	if stale <= 0 {
		stale = defaultStaleAfter
	}
	switch pr := h.probe.Load(); {
	case pr == nil:
		return http.StatusServiceUnavailable, healthBody{
			Status: "rate store unreachable", Reason: "the readiness probe of the rate store has no answer yet",
		}
	case now.Sub(pr.at) > stale:
		return http.StatusServiceUnavailable, healthBody{
			Status: "rate store unreachable",
			Reason: fmt.Sprintf("the rate store has not answered the readiness probe for %s", now.Sub(pr.at).Round(100*time.Millisecond)),
		}
	case pr.err != nil:
		return http.StatusServiceUnavailable, healthBody{
			Status: "rate store unreachable", Reason: "the rate store did not answer the readiness probe",
		}
	case !pr.initialised:
		return http.StatusServiceUnavailable, healthBody{
			Status: "restoring", Reason: "the rate store lost its data: restoring the breaker states from the state topic",
		}
	}
	if ph.WaitingFor != "" {
		// Ready, and saying what holds it back: a replica waits for
		// another one's frontier only briefly at a time while a backlog
		// drains, and answering 503 would take its API out of service
		// between two waits.
		return http.StatusOK, healthBody{Status: "ready", Reason: "waiting for replica " + ph.WaitingFor + "'s frontier"}
	}
	return http.StatusOK, healthBody{Status: "ready"}
}

// setStarting records what the start waits for.
func (h *health) setStarting(reason string) { h.starting.Store(&reason) }

// readyz answers /readyz with the readiness.
func (h *health) readyz(w http.ResponseWriter, r *http.Request) {
	code, body := h.readiness()
	writeHealth(w, code, body)
}

// readinessDesc describes breakwater_readiness.
var readinessDesc = prometheus.NewDesc("breakwater_readiness",
	"1 for the daemon's readiness now, as /readyz says it: status is ready, stopping, starting, joining group, paused, restoring or rate store unreachable; reason says what a start waits for (such as restoring: rate store unreachable), or what a ready replica waits for (waiting for replica X's frontier).",
	[]string{"status", "reason"}, nil)

// Describe implements prometheus.Collector.
func (h *health) Describe(ch chan<- *prometheus.Desc) { ch <- readinessDesc }

// Collect implements prometheus.Collector: the readiness at the scrape.
func (h *health) Collect(ch chan<- prometheus.Metric) {
	_, b := h.readiness()
	reason := ""
	if b.Status == "starting" || b.Status == "ready" {
		reason = b.Reason
	}
	ch <- prometheus.MustNewConstMetric(readinessDesc, prometheus.GaugeValue, 1, b.Status, reason)
}

func writeHealth(w http.ResponseWriter, code int, b healthBody) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(b)
}

// newMux returns the daemon's HTTP routes: the admin API under /v1/,
// /metrics, /healthz and /readyz. Further routes can be added to it before
// the daemon runs.
func newMux(reg *prometheus.Registry, h *health, api http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/v1/", api)
	healthRoutes(mux, reg, h)
	return mux
}

func healthRoutes(mux *http.ServeMux, reg *prometheus.Registry, h *health) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", h.live)
	mux.HandleFunc("GET /readyz", h.readyz)
}

// front is what the listener serves from the first moment of the start:
// /healthz, /readyz and /metrics at once, and every other route (the
// admin API, the console, sign-in) only once the daemon is built and set
// them; until then they answer 503 with what the start waits for.
type front struct {
	early *http.ServeMux
	h     *health
	full  atomic.Pointer[http.ServeMux]
}

func newFront(reg *prometheus.Registry, h *health) *front {
	f := &front{early: http.NewServeMux(), h: h}
	healthRoutes(f.early, reg, h)
	f.early.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		_, b := h.readiness()
		msg := b.Status
		if b.Reason != "" {
			msg += ": " + b.Reason
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(struct {
			Error string `json:"error"`
		}{msg})
	})
	return f
}

// ServeHTTP implements http.Handler.
func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m := f.full.Load(); m != nil {
		m.ServeHTTP(w, r)
		return
	}
	f.early.ServeHTTP(w, r)
}

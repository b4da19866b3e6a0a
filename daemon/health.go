package daemon

import (
	"context"
	"encoding/json"
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

// health answers /healthz and /readyz from the state of the daemon.
type health struct {
	ready    atomic.Bool            // set once the states are restored and the pipeline starts
	starting atomic.Pointer[string] // what the start waits for, until ready
	stopping <-chan struct{}        // closed when shutdown begins; set before serving
	store    storeProbe
	pipeline pipelineHealth
	now      func() time.Time
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
	if ph := h.pipeline.Health(h.clock()); ph.Stalled > 0 {
		writeHealth(w, http.StatusServiceUnavailable, healthBody{
			Status: "wedged", Stalled: ph.Stalled.Round(time.Second).String(), Reason: ph.StallReason,
		})
		return
	}
	writeHealth(w, http.StatusOK, healthBody{Status: "ok"})
}

// readiness is the daemon's readiness now: 200 when it can do its job,
// else 503 with the status and reason: stopping; starting (the start-up
// has not verified the permissions and restored the breaker states yet;
// the reason says what it waits for, such as "restoring: rate store
// unreachable"); joining group (the pipeline holds
// no generation of the consumer group yet, or is in a rebalance); paused
// (the rate store does not answer; consumption is paused with the offsets
// kept, and resumes by itself); restoring (Redis lost its data and the
// breaker states are being restored); or the rate store unreachable. A
// ready replica that waits now for another replica's frontier before it
// decides more of a backlog answers 200 with the reason "waiting for
// replica X's frontier".
func (h *health) readiness(ctx context.Context) (int, healthBody) {
	select {
	case <-h.stopping:
		return http.StatusServiceUnavailable, healthBody{Status: "stopping"}
	default:
	}
	if !h.ready.Load() {
		reason := "restoring: loading the breaker states from the state topic"
		if r := h.starting.Load(); r != nil {
			reason = *r
		}
		return http.StatusServiceUnavailable, healthBody{Status: "starting", Reason: reason}
	}
	ph := h.pipeline.Health(h.clock())
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
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	switch ok, err := h.store.Initialised(ctx); {
	case err != nil:
		return http.StatusServiceUnavailable, healthBody{Status: "rate store unreachable"}
	case !ok:
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
	code, body := h.readiness(r.Context())
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
	_, b := h.readiness(context.Background())
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
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", h.live)
	mux.HandleFunc("GET /readyz", h.readyz)
	return mux
}

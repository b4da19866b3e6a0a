// Package metrics defines Breakwater's Prometheus metrics.
//
// Labels are bounded: scopes beyond a configured number share the label
// value "_other", and no label ever carries a per-action value.
package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/breakwater/breakwater/breaker"
)

// OtherScope is the scope label of every scope past the label limit.
const OtherScope = "_other"

// Metrics are the collectors of one daemon.
type Metrics struct {
	// Actions counts decided actions by decision and scope.
	Actions *prometheus.CounterVec
	// BreakerState is 1 for each scope's current state, 0 for its others.
	BreakerState *prometheus.GaugeVec
	// Transitions counts breaker transitions by scope and new state.
	Transitions *prometheus.CounterVec
	// BatchSeconds observes the time from a batch's fetch to its commit.
	BatchSeconds prometheus.Histogram
	// BatchSize observes the actions per batch.
	BatchSize prometheus.Histogram
	// StoreSeconds observes one decision call to the rate store.
	StoreSeconds prometheus.Histogram
	// StoreErrors counts failed rate store calls.
	StoreErrors prometheus.Counter
	// KafkaErrors counts failed Kafka operations by operation.
	KafkaErrors *prometheus.CounterVec
	// Paused is 1 while consumption is paused because the rate store is unreachable.
	Paused prometheus.Gauge
	// Restores counts restores of breaker state from the durable record.
	Restores prometheus.Counter

	maxScopes int
	mu        sync.Mutex // guards scopes
	scopes    map[breaker.Scope]struct{}
}

// New registers the metrics on reg. At most maxScopes distinct scopes get
// their own label value.
func New(reg prometheus.Registerer, maxScopes int) *Metrics {
	m := &Metrics{
		Actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breakwater_actions_total",
			Help: "Actions decided, by decision (gated, held, dead_letter) and deciding scope.",
		}, []string{"decision", "scope"}),
		BreakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "breakwater_breaker_state",
			Help: "1 for the current state of each breaker, 0 for its other states.",
		}, []string{"scope", "state"}),
		Transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breakwater_breaker_transitions_total",
			Help: "Breaker transitions by scope and new state.",
		}, []string{"scope", "state"}),
		BatchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "breakwater_batch_duration_seconds",
			Help:    "Time from a batch's fetch to its commit.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "breakwater_batch_actions",
			Help:    "Actions per batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		StoreSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "breakwater_store_call_duration_seconds",
			Help:    "Duration of one decision call to the rate store.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		StoreErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "breakwater_store_errors_total",
			Help: "Failed calls to the rate store.",
		}),
		KafkaErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breakwater_kafka_errors_total",
			Help: "Failed Kafka operations by operation (fetch, write, commit, state).",
		}, []string{"op"}),
		Paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "breakwater_paused",
			Help: "1 while consumption is paused because the rate store is unreachable.",
		}),
		Restores: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "breakwater_state_restores_total",
			Help: "Restores of breaker state from the durable state topic into the rate store.",
		}),
		maxScopes: maxScopes,
		scopes:    map[breaker.Scope]struct{}{},
	}
	reg.MustRegister(m.Actions, m.BreakerState, m.Transitions, m.BatchSeconds, m.BatchSize,
		m.StoreSeconds, m.StoreErrors, m.KafkaErrors, m.Paused, m.Restores)
	return m
}

// Scope returns the label value of s.
func (m *Metrics) Scope(s breaker.Scope) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.scopes[s]; ok {
		return string(s)
	}
	if len(m.scopes) >= m.maxScopes {
		return OtherScope
	}
	m.scopes[s] = struct{}{}
	return string(s)
}

// SetState records s as the current state of scope.
func (m *Metrics) SetState(scope breaker.Scope, s breaker.State) {
	l := m.Scope(scope)
	if l == OtherScope {
		return
	}
	for _, st := range breaker.States {
		v := 0.0
		if st == s {
			v = 1
		}
		m.BreakerState.WithLabelValues(l, string(st)).Set(v)
	}
}

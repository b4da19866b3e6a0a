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

	// HeldBacklog is the number of held actions awaiting review, by scope.
	// The pipeline sets it from the review store.
	HeldBacklog *prometheus.GaugeVec
	// HeldOldestAge is the age in seconds of the oldest held action awaiting
	// review, by scope; 0 when none waits.
	HeldOldestAge *prometheus.GaugeVec
	// KafkaSeconds observes Kafka operations (fetch, write, commit) by operation.
	KafkaSeconds *prometheus.HistogramVec
	// ConsumerLag is the input consumer lag in messages, by partition.
	ConsumerLag *prometheus.GaugeVec
	// LastBatch is the Unix time of the last committed batch.
	LastBatch prometheus.Gauge
	// StageSeconds counts the wall time the pipeline spent in each stage,
	// by lane (decide: the loop that fetches, decides and encodes batches;
	// write: the stage that writes them; commit: the stage that commits
	// them; read: the partition readers' decoding) and stage. The stages
	// of the decide, write and commit lanes add up to the lane's wall time
	// from the first batch in hand to the lane's last batch.
	StageSeconds *prometheus.CounterVec
	// Frontier is, while replicas consume a backlog together, the event
	// time up to which this replica has decided its partitions (of="own")
	// and the earliest of the other replicas' (of="others", the one it
	// waits for when it is more than the smallest window ahead), as Unix
	// time; 0 when there is none.
	Frontier *prometheus.GaugeVec

	// AlertsRaised counts alert events raised into the outbox by kind and
	// result (new, duplicate).
	AlertsRaised *prometheus.CounterVec
	// Notifications counts notifications by receiver and outcome (sent,
	// failed, retried).
	Notifications *prometheus.CounterVec
	// NotifySeconds observes one attempt to deliver to a receiver.
	NotifySeconds *prometheus.HistogramVec
	// OutboxErrors counts failed Redis calls of the alert outbox and its
	// delivery workers.
	OutboxErrors prometheus.Counter

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
		HeldBacklog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "breakwater_held_actions",
			Help: "Held actions awaiting review, by scope.",
		}, []string{"scope"}),
		HeldOldestAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "breakwater_held_oldest_age_seconds",
			Help: "Age of the oldest held action awaiting review, by scope; 0 when none waits.",
		}, []string{"scope"}),
		KafkaSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "breakwater_kafka_duration_seconds",
			Help:    "Duration of Kafka operations by operation (fetch, write, commit).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"op"}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "breakwater_consumer_lag_messages",
			Help: "Input messages not yet consumed, by partition.",
		}, []string{"partition"}),
		LastBatch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "breakwater_last_batch_timestamp_seconds",
			Help: "Unix time of the last committed batch.",
		}),
		StageSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breakwater_pipeline_stage_seconds_total",
			Help: "Wall time of the pipeline by lane (decide, write, commit, read) and stage (decide: fetch, store, decide, encode, handoff; write: wait, write, handoff; commit: wait, commit, account; read: decode).",
		}, []string{"lane", "stage"}),
		Frontier: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "breakwater_frontier_timestamp_seconds",
			Help: "Event time up to which this replica decided its partitions (of=own) and the earliest of the other replicas' (of=others), as Unix time; 0 when none.",
		}, []string{"of"}),
		AlertsRaised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breakwater_alerts_raised_total",
			Help: "Alert events raised into the outbox, by kind and result (new, duplicate).",
		}, []string{"kind", "result"}),
		Notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breakwater_notifications_total",
			Help: "Notifications by receiver and outcome (sent, failed, retried).",
		}, []string{"receiver", "outcome"}),
		NotifySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "breakwater_notification_duration_seconds",
			Help:    "Duration of one delivery attempt to a receiver.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"receiver"}),
		OutboxErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "breakwater_alert_outbox_errors_total",
			Help: "Failed Redis calls of the alert outbox and its delivery workers.",
		}),
		maxScopes: maxScopes,
		scopes:    map[breaker.Scope]struct{}{},
	}
	reg.MustRegister(m.Actions, m.BreakerState, m.Transitions, m.BatchSeconds, m.BatchSize,
		m.StoreSeconds, m.StoreErrors, m.KafkaErrors, m.Paused, m.Restores,
		m.HeldBacklog, m.HeldOldestAge, m.KafkaSeconds, m.ConsumerLag, m.LastBatch, m.StageSeconds, m.Frontier,
		m.AlertsRaised, m.Notifications, m.NotifySeconds, m.OutboxErrors)
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

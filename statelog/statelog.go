// Package statelog keeps the durable record of breaker states: a compacted
// Kafka topic keyed by scope. Redis is the fast shared view; when it loses
// its data, the states are restored from here, so that a tripped breaker is
// never closed by a Redis restart.
package statelog

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/internal/partition"
	"github.com/breakwater/breakwater/store"
)

// Entry is one record of the state topic.
type Entry struct {
	// Transition is the change that produced this state.
	breaker.Transition
	// At is when the change was decided (the store's wall clock).
	At time.Time `json:"at"`
}

// Log writes and reads the state topic.
type Log struct {
	kafka *kafkaconn.Endpoint
	topic string
	w     *kafka.Writer
	tr    *kafka.Transport

	mu   sync.Mutex // guards seen
	seen map[breaker.Scope]uint64
}

// New returns a log on topic of the cluster k. The writer waits for all
// in-sync replicas.
func New(k *kafkaconn.Endpoint, topic string, timeout time.Duration) *Log {
	tr := k.Transport()
	return &Log{
		kafka: k,
		topic: topic,
		tr:    tr,
		seen:  map[breaker.Scope]uint64{},
		w: &kafka.Writer{
			Addr:         k.Addr(),
			Transport:    tr,
			Topic:        topic,
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 100 * time.Microsecond,
			WriteTimeout: timeout,
			MaxAttempts:  5,
		},
	}
}

// Record writes the transitions, keyed by scope, and returns once all
// in-sync replicas have them.
func (l *Log) Record(ctx context.Context, at time.Time, ts []breaker.Transition) error {
	if len(ts) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(ts))
	for i, t := range ts {
		v, err := json.Marshal(Entry{Transition: t, At: at})
		if err != nil {
			return fmt.Errorf("encode transition of %s: %w", t.Scope, err)
		}
		msgs[i] = kafka.Message{Key: []byte(t.Scope), Value: v}
	}
	if err := l.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("write %d transitions to %s: %w", len(ts), l.topic, err)
	}
	l.mu.Lock()
	for _, t := range ts {
		l.seen[t.Scope] = max(l.seen[t.Scope], t.To.Generation)
	}
	l.mu.Unlock()
	return nil
}

// Recorded returns the highest generation of scope that this log has
// written or loaded: the topic holds at least that generation.
func (l *Log) Recorded(scope breaker.Scope) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[scope]
}

// Load reads the whole topic and returns the newest status of every scope.
func (l *Log) Load(ctx context.Context) ([]store.ScopeStatus, error) {
	parts, err := partition.List(ctx, l.kafka, l.topic)
	if err != nil {
		return nil, err
	}
	latest := map[breaker.Scope]breaker.Status{}
	for _, p := range parts {
		if err := l.loadPartition(ctx, p, latest); err != nil {
			return nil, err
		}
	}
	out := make([]store.ScopeStatus, 0, len(latest))
	l.mu.Lock()
	for s, st := range latest {
		out = append(out, store.ScopeStatus{Scope: s, Status: st})
		l.seen[s] = max(l.seen[s], st.Generation)
	}
	l.mu.Unlock()
	return out, nil
}

func (l *Log) loadPartition(ctx context.Context, p int, latest map[breaker.Scope]breaker.Status) error {
	return partition.Read(ctx, l.kafka, l.topic, p, 0, partition.End, func(msgs []kafka.Message, _, _ int64) error {
		for _, m := range msgs {
			if m.Value == nil {
				continue // a tombstone: nothing to restore for this key
			}
			var e Entry
			if err := json.Unmarshal(m.Value, &e); err != nil {
				return fmt.Errorf("decode %s/%d@%d: %w", l.topic, p, m.Offset, err)
			}
			if cur, ok := latest[e.Scope]; !ok || e.To.Generation >= cur.Generation {
				latest[e.Scope] = e.To
			}
		}
		return nil
	})
}

// Close flushes and closes the writer.
func (l *Log) Close() error {
	err := l.w.Close()
	l.tr.CloseIdleConnections()
	return err
}

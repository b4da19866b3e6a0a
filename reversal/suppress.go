package reversal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/event"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/internal/partition"
)

// ReasonSuppressed begins the hold reason of an action held because the
// same rule's action on its target was reversed (Suppressions).
const ReasonSuppressed = "suppressed"

// suppressKey is what a suppression matches: the rule, the model version
// and the target of a reversed action.
type suppressKey struct {
	rule, model, targetType, targetID string
}

// Suppression is one reversed target the same rule (and model version)
// may not act on again until Until.
type Suppression struct {
	// From is the earliest reversal record's reversed_at; Until the
	// latest one's plus the suppression time.
	From, Until time.Time
	// Job and Incident name the reversal and the trip it undid.
	Job, Incident string
	// ActionID is the reversed action.
	ActionID string
}

// Reason is the hold reason of an action held by s.
func (s Suppression) Reason() string {
	return fmt.Sprintf("%s: this rule's action %s on the target was reversed (reversal %s, incident %s); the rule's actions on it are held until %s",
		ReasonSuppressed, s.ActionID, s.Job, s.Incident, s.Until.UTC().Format(time.RFC3339))
}

// Suppressions keeps, in each replica, the targets reversed within the
// suppression time, read from the reversals topic itself: the topic is the
// record of what was reversed, so the set holds across replicas (each
// reads the topic), restarts (Load reads it again before the pipeline
// consumes) and Redis losing its data (it is not kept there). A lookup is
// a map read in memory: it adds no call to a batch.
//
// A record reaches the replicas within one poll (Run's every) of its
// write: an action decided in between is not held by it.
type Suppressions struct {
	kafka *kafkaconn.Endpoint
	topic string
	// For is how long after a reversal the target stays suppressed.
	For time.Duration
	now func() time.Time
	log *zap.Logger

	mu     sync.RWMutex // guards m
	m      map[suppressKey]Suppression
	size   atomic.Int64
	next   map[int]int64 // the next offset to read per partition; Run's alone
	pruned time.Time
}

// NewSuppressions returns the suppressions of the reversals topic topic,
// each lasting d after its record was written.
func NewSuppressions(k *kafkaconn.Endpoint, topic string, d time.Duration, log *zap.Logger) *Suppressions {
	return &Suppressions{kafka: k, topic: topic, For: d, now: time.Now, log: log, m: map[suppressKey]Suppression{}, next: map[int]int64{}}
}

// Add suppresses the rule of r on r's target until r.ReversedAt plus
// the suppression time; a later record of the same key extends it.
func (s *Suppressions) Add(r Record) {
	if r.RuleID == "" || r.Target.ID == "" {
		return
	}
	until := r.ReversedAt.Add(s.For)
	if !until.After(s.now()) {
		return
	}
	k := suppressKey{r.RuleID, r.ModelVersion, r.Target.Type, r.Target.ID}
	s.mu.Lock()
	old, ok := s.m[k]
	switch {
	case !ok:
		s.m[k] = Suppression{From: r.ReversedAt, Until: until, Job: r.Job, Incident: r.Incident, ActionID: r.ActionID}
	case old.Until.Before(until):
		from := old.From
		if r.ReversedAt.Before(from) {
			from = r.ReversedAt
		}
		s.m[k] = Suppression{From: from, Until: until, Job: r.Job, Incident: r.Incident, ActionID: r.ActionID}
	case r.ReversedAt.Before(old.From):
		old.From = r.ReversedAt
		s.m[k] = old
	}
	s.size.Store(int64(len(s.m)))
	s.mu.Unlock()
}

// Len is the number of suppressions kept, the expired ones not yet
// pruned included.
func (s *Suppressions) Len() int { return int(s.size.Load()) }

// Lookup returns the suppression that holds a, if one does at at (the
// input record's timestamp, so that a redelivery is answered alike): an
// action of a's rule and model version on a's target was reversed at or
// before at, less than the suppression time before it.
func (s *Suppressions) Lookup(a *event.Action, at time.Time) (Suppression, bool) {
	if s.size.Load() == 0 {
		return Suppression{}, false
	}
	s.mu.RLock()
	sp, ok := s.m[suppressKey{a.RuleID, a.ModelVersion, a.TargetType, a.TargetID}]
	s.mu.RUnlock()
	if !ok || at.Before(sp.From) || !at.Before(sp.Until) {
		return Suppression{}, false
	}
	return sp, true
}

// Load reads the reversals topic's records of the last suppression time,
// from every partition to its end. The pipeline consumes after it.
func (s *Suppressions) Load(ctx context.Context) error {
	parts, err := partition.List(ctx, s.kafka, s.topic)
	if errors.Is(err, kafka.UnknownTopicOrPartition) {
		// Nothing was ever reversed; Poll reads the topic once it exists.
		s.log.Warn("the reversals topic does not exist: no suppressions", zap.String("topic", s.topic))
		return nil
	}
	if err != nil {
		return fmt.Errorf("suppressions: list %s: %w", s.topic, err)
	}
	since := s.now().Add(-s.For)
	for _, p := range parts {
		if _, ok := s.next[p]; ok {
			continue
		}
		from, err := partition.At(ctx, s.kafka, s.topic, p, since)
		if err != nil {
			return fmt.Errorf("suppressions: find %s/%d at %s: %w", s.topic, p, since.Format(time.RFC3339), err)
		}
		if from < 0 {
			// Nothing stamped that late: start at the end.
			if from, err = partition.Last(ctx, s.kafka, s.topic, p); err != nil {
				return fmt.Errorf("suppressions: %w", err)
			}
		}
		s.next[p] = from
	}
	return s.Poll(ctx)
}

// Poll reads every partition from where the last read ended to its end.
func (s *Suppressions) Poll(ctx context.Context) error {
	parts, err := partition.List(ctx, s.kafka, s.topic)
	if errors.Is(err, kafka.UnknownTopicOrPartition) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("suppressions: list %s: %w", s.topic, err)
	}
	for _, p := range parts {
		from, ok := s.next[p]
		if !ok {
			from = 0 // a partition added since the load
		}
		err := partition.Read(ctx, s.kafka, s.topic, p, from, partition.End, func(msgs []kafka.Message, _, next int64) error {
			for _, m := range msgs {
				if r, ok := recordOf(m); ok {
					s.Add(r)
				}
			}
			s.next[p] = next
			return nil
		})
		if err != nil {
			return fmt.Errorf("suppressions: read %s/%d: %w", s.topic, p, err)
		}
	}
	s.prune()
	return nil
}

// recordOf decodes a reversal record; one that is not (the topic is
// Breakwater's, but anyone with write access can add to it) is skipped.
func recordOf(m kafka.Message) (Record, bool) {
	var r Record
	if json.Unmarshal(m.Value, &r) != nil {
		return Record{}, false
	}
	if r.ReversedAt.IsZero() {
		r.ReversedAt = m.Time
	}
	return r, true
}

// prune drops the expired suppressions, at most once a minute.
func (s *Suppressions) prune() {
	now := s.now()
	if now.Sub(s.pruned) < time.Minute {
		return
	}
	s.pruned = now
	s.mu.Lock()
	for k, sp := range s.m {
		if !now.Before(sp.Until) {
			delete(s.m, k)
		}
	}
	s.size.Store(int64(len(s.m)))
	s.mu.Unlock()
}

// Run polls the topic every every until ctx ends.
func (s *Suppressions) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.Poll(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("read the reversals topic for suppressions", zap.Error(err))
		}
	}
}

// Suppressed returns the hold reason of a when a suppression holds it at
// at (consumer.Suppressor).
func (s *Suppressions) Suppressed(a *event.Action, at time.Time) (string, bool) {
	sp, ok := s.Lookup(a, at)
	if !ok {
		return "", false
	}
	return sp.Reason(), true
}

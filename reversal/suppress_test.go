package reversal

import (
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/event"
)

// TestSuppressions: a reversed action suppresses its rule and model
// version on its target for the suppression time, and nothing else.
func TestSuppressions(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	s := NewSuppressions(nil, "reversals", time.Hour, zap.NewNop())
	s.now = func() time.Time { return now }
	act := func(rule, model, id string) *event.Action {
		return &event.Action{RuleID: rule, ModelVersion: model, TargetType: "account", TargetID: id}
	}
	if _, ok := s.Lookup(act("r1", "v1", "u-1"), now); ok {
		t.Fatal("an empty set suppresses")
	}
	s.Add(Record{RuleID: "r1", ModelVersion: "v1", Target: Target{Type: "account", ID: "u-1"}, ActionID: "a-1", Job: "j", Incident: "rule:r1@2", ReversedAt: t0})
	// Expired already when read: not kept.
	s.Add(Record{RuleID: "r9", Target: Target{Type: "account", ID: "u-9"}, ReversedAt: t0.Add(-2 * time.Hour)})
	if s.Len() != 1 {
		t.Fatalf("Len = %d; want 1", s.Len())
	}
	if _, ok := s.Lookup(act("r1", "v1", "u-1"), t0.Add(-time.Second)); ok {
		t.Error("an action stamped before the reversal is suppressed")
	}
	sp, ok := s.Lookup(act("r1", "v1", "u-1"), t0.Add(59*time.Minute))
	if !ok || !sp.Until.Equal(t0.Add(time.Hour)) || !strings.HasPrefix(sp.Reason(), "suppressed: ") || !strings.Contains(sp.Reason(), "reversal j") {
		t.Errorf("Lookup = %+v %v (%q); want suppressed until %s by reversal j", sp, ok, sp.Reason(), t0.Add(time.Hour))
	}
	for _, a := range []*event.Action{act("r2", "v1", "u-1"), act("r1", "v2", "u-1"), act("r1", "", "u-1"), act("r1", "v1", "u-2"), act("r9", "", "u-9")} {
		if _, ok := s.Lookup(a, t0.Add(time.Minute)); ok {
			t.Errorf("%+v is suppressed; only r1 at v1 on u-1 is", *a)
		}
	}
	if _, ok := s.Lookup(act("r1", "v1", "u-1"), t0.Add(time.Hour)); ok {
		t.Error("suppressed after the suppression time")
	}
	// A later reversal of the same key extends it; pruning drops the
	// expired.
	s.Add(Record{RuleID: "r1", ModelVersion: "v1", Target: Target{Type: "account", ID: "u-1"}, ReversedAt: t0.Add(30 * time.Minute)})
	if _, ok := s.Lookup(act("r1", "v1", "u-1"), t0.Add(80*time.Minute)); !ok {
		t.Error("a later reversal did not extend the suppression")
	}
	now = t0.Add(2 * time.Hour)
	s.prune()
	if s.Len() != 0 {
		t.Errorf("Len after the pruning = %d; want 0", s.Len())
	}
}

// FuzzSuppressionRecord: any value on the reversals topic is decoded or
// skipped, and a decoded one is added or ignored, without a panic; an
// added one suppresses exactly its rule, model version and target.
func FuzzSuppressionRecord(f *testing.F) {
	f.Add([]byte(`{"version":1,"action_id":"a","rule_id":"r","action":"ban","target":{"type":"account","id":"u"},"model_version":"v","reversed_at":"2026-05-01T12:00:00Z"}`))
	f.Add([]byte(`{"rule_id":"r","target":{"id":""}}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`{"reversed_at":"9999-12-31T23:59:59Z","rule_id":"r","target":{"id":"u"}}`))
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, value []byte) {
		s := NewSuppressions(nil, "reversals", time.Hour, zap.NewNop())
		s.now = func() time.Time { return at }
		r, ok := recordOf(kafka.Message{Value: value, Time: at})
		if !ok {
			return
		}
		s.Add(r)
		a := &event.Action{RuleID: r.RuleID, ModelVersion: r.ModelVersion, TargetType: r.Target.Type, TargetID: r.Target.ID}
		_, held := s.Lookup(a, r.ReversedAt)
		want := r.RuleID != "" && r.Target.ID != "" && r.ReversedAt.Add(time.Hour).After(at)
		if held != want {
			t.Fatalf("record %+v: suppressed at its reversal = %v; want %v", r, held, want)
		}
		other := *a
		other.RuleID += "x"
		if _, held := s.Lookup(&other, r.ReversedAt); held {
			t.Fatalf("record %+v suppresses rule %q too", r, other.RuleID)
		}
	})
}

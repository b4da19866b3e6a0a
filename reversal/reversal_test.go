package reversal

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/wire"
)

// TestRecord: a gated record becomes an item, its reversal record keeps
// its key and names it, and the reversal is recognised when read back; a
// reviewer's release is no candidate.
func TestRecord(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	gated := kafka.Message{
		Partition: 2, Offset: 17, Time: at, Key: []byte("u-1"),
		Value: []byte(`{"action_id":"a1","rule_id":"r","action":"ban_account","target":{"type":"account","id":"u-1"},"occurred_at":"2026-05-01T11:59:00Z","model":{"name":"m","version":"v2"},"region":"eu"}`),
	}
	it, ok := itemOf(gated)
	if !ok || it.ActionID != "a1" || it.ModelVersion != "v2" || it.Region != "eu" || string(it.Key) != "u-1" || it.Offset != 17 {
		t.Fatalf("itemOf = %+v, %v", it, ok)
	}
	released := gated
	released.Headers = []kafka.Header{{Key: wire.HeaderDecision, Value: []byte("approved")}}
	if _, ok := itemOf(released); ok {
		t.Error("itemOf accepted a reviewer's release")
	}
	j := api.Reversal{ID: "j1", Incident: "rule:r@1", RequestedBy: "alice", ApprovedBy: "bob", Reason: "misfire"}
	m, err := message(it, j, "gated", at)
	if err != nil {
		t.Fatal(err)
	}
	var rec Record
	if err := json.Unmarshal(m.Value, &rec); err != nil {
		t.Fatal(err)
	}
	want := Record{
		Version: 1, ReversalID: "reversal:a1", ActionID: "a1", RuleID: "r", Action: "ban_account", Target: Target{Type: "account", ID: "u-1"},
		ModelVersion: "v2", Region: "eu", OccurredAt: at.Add(-time.Minute), Original: Origin{Topic: "gated", Partition: 2, Offset: 17},
		Incident: "rule:r@1", Job: "j1", RequestedBy: "alice", ApprovedBy: "bob", Reason: "misfire", ReversedAt: at,
	}
	if string(m.Key) != "u-1" || rec != want {
		t.Errorf("message = key %q %+v; want key u-1 %+v", m.Key, rec, want)
	}
	if id, ok := actionOf(m); !ok || id != "a1" {
		t.Errorf("actionOf = %q, %v; want a1", id, ok)
	}
	m.Headers = nil
	if id, ok := actionOf(m); !ok || id != "a1" {
		t.Errorf("actionOf without headers = %q, %v; want a1 from the value", id, ok)
	}
}

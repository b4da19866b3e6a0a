package gate_test

import (
	"slices"
	"testing"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/gate"
	"github.com/breakwater/breakwater/store"
)

func items(offsets ...int64) []gate.Item {
	its := make([]gate.Item, len(offsets))
	for i, o := range offsets {
		its[i] = gate.Item{Pos: gate.Position{Topic: "in", Partition: int(o / 1000), Offset: o % 1000}}
	}
	return its
}

func TestChunkAroundRecords(t *testing.T) {
	// Partition 0 offsets 1..9 with offsets 4..6 decided before; partition
	// 1 offsets 1..3 with nothing decided.
	its := items(1, 2, 3, 7, 8, 9, 1001, 1002, 1003)
	known := []store.Record{{Topic: "in", Partition: 0, First: 4, Last: 6}}
	pending := []int{0, 1, 2, 3, 4, 5, 6, 7, 8}
	var calls [][]int
	for len(pending) > 0 {
		chunk, rest := gate.Chunk(its, pending, known)
		if len(chunk) == 0 {
			t.Fatalf("no progress with %v pending", pending)
		}
		for _, i := range chunk {
			for _, j := range chunk {
				a, b := its[i].Pos, its[j].Pos
				if a.Partition == 0 && b.Partition == 0 && a.Offset < 4 && b.Offset > 6 {
					t.Errorf("chunk %v spans the record 4..6", chunk)
				}
			}
		}
		calls = append(calls, chunk)
		pending = rest
	}
	want := [][]int{{0, 1, 2, 6, 7, 8}, {3, 4, 5}}
	if !slices.EqualFunc(calls, want, slices.Equal) {
		t.Errorf("calls %v; want %v", calls, want)
	}
	if chunk, rest := gate.Chunk(its, []int{0, 3}, nil); !slices.Equal(chunk, []int{0, 3}) || rest != nil {
		t.Errorf("Chunk without records = %v, %v; want everything in one call", chunk, rest)
	}
}

func TestApplyRecords(t *testing.T) {
	its := items(1, 5, 9)
	for i := range its {
		its[i].Scopes = [3]breaker.Scope{breaker.Global, breaker.RuleScope("r")}
		its[i].NScopes = 2
	}
	recs := []store.Record{{Topic: "in", Partition: 0, First: 4, Last: 6, Holding: map[breaker.Scope]uint64{breaker.RuleScope("r"): 3}}}
	rest := gate.ApplyRecords(its, []int{0, 1, 2}, recs)
	if !slices.Equal(rest, []int{0, 2}) {
		t.Errorf("rest %v; want [0 2]", rest)
	}
	if it := its[1]; it.Decision != gate.Held || it.Scope != breaker.RuleScope("r") || it.Gen != 3 || it.Reason != gate.ReasonRedelivered {
		t.Errorf("redelivered item decided %+v; want held by rule:r at generation 3", it)
	}
}

func TestClassify(t *testing.T) {
	cfg := config.Default()
	g := gate.New(cfg)
	var it gate.Item
	g.Classify(&it, gate.Position{Topic: "in", Offset: 7}, []byte(`{"action_id":"a1","rule_id":"r","action":"ban_account","target":{"type":"account","id":"u"},"occurred_at":"2026-01-01T00:00:00Z"}`))
	if it.Bad != nil || it.NScopes != 2 || it.Scopes[1] != breaker.RuleScope("r") || it.Weight < 1 || it.Pos.Offset != 7 {
		t.Errorf("Classify(valid) = %+v", it)
	}
	g.Classify(&it, gate.Position{Topic: "in", Offset: 8}, []byte(`{"action_id":`))
	if it.Bad == nil || it.Decision != gate.DeadLetter || it.Reason == "" || it.NScopes != 0 {
		t.Errorf("Classify(truncated) = %+v; want a dead letter with a reason", it)
	}
}

func TestScopePolicy(t *testing.T) {
	cfg, err := config.Parse([]byte(`
breakers:
  defaults: {window: 1m, max_actions: 100}
  global: {window: 2m, max_actions: 5000}
  rules:
    spam:
      max_actions: 40
      actions:
        "ban|account": {max_actions: 7}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		scope breaker.Scope
		max   float64
	}{
		{breaker.Global, 5000},
		{breaker.RuleScope("spam"), 40},
		{breaker.ActionScope("spam", "ban|account"), 7},
		{breaker.ActionScope("spam", "warn"), 40}, // not configured: the rule's
		{breaker.RuleScope("brand-new"), 100},
	} {
		if got := gate.ScopePolicy(cfg, tt.scope).MaxActions; got != tt.max {
			t.Errorf("ScopePolicy(%s).MaxActions = %v; want %v", tt.scope, got, tt.max)
		}
	}
}

package store_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/store"
)

// TestReleaseOnBothStores runs a day of two rules, then a release that
// triples one rule, through the gate and both stores, which must agree on
// every scope of every batch. The new version's breaker holds it; the
// global breaker holds nothing new (if it trips, its held scopes are the
// version's alone), so the other rule and the old version stay gated.
func TestReleaseOnBothStores(t *testing.T) {
	ctx := ctxT(t)
	cfg, err := config.Parse([]byte(`
breakers:
  defaults: {window: 5m, max_actions: 100000, factor: 0, evidence: {bin: 5m, ratio: 2, threshold: 5, days: 1}}
  global: {window: 5m, max_actions: 0, factor: 0, evidence: {bin: 5m, ratio: 1.5, threshold: 5, days: 1}}
  new_rules: {max_actions: 0, learning: 24h}
`))
	if err != nil {
		t.Fatal(err)
	}
	e := newRedis(t, false)
	if _, err := e.st.Restore(ctx, nil); err != nil {
		t.Fatal(err)
	}
	mem := store.NewMemory(time.Now)
	g := decide.New(cfg)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var off int64
	var heldNew, heldOther int
	var globalHeld []breaker.Scope
	for step := range 12 * 28 {
		at := t0.Add(time.Duration(step) * 5 * time.Minute)
		release := step >= 12*26
		var its []decide.Item
		add := func(rule, version string, n int) {
			for k := range n {
				v := fmt.Sprintf(`{"action_id":"a%d","rule_id":%q,"action":"remove_pin","target":{"type":"pin","id":"p"},"occurred_at":%q,"model":{"version":%q}}`,
					off, rule, at.Add(time.Duration(k)*5*time.Minute/time.Duration(n)).Format(time.RFC3339Nano), version)
				var it decide.Item
				g.Classify(&it, decide.Position{Topic: "in", Offset: off}, []byte(v))
				its = append(its, it)
				off++
			}
		}
		if release {
			add("r", "new", 120)
		} else {
			add("r", "old", 40)
		}
		add("q", "old", 40)
		pending := make([]int, len(its))
		for i := range pending {
			pending[i] = i
		}
		b := g.Batch(its, pending, func(string, int) int64 { return off - int64(len(its)) - 1 })
		rr, rerr := e.st.Decide(ctx, b)
		mr, merr := mem.Decide(ctx, b)
		if rerr != nil || merr != nil {
			t.Fatalf("step %d: Decide: redis %v, memory %v", step, rerr, merr)
		}
		for j := range b.Scopes {
			if got, want := stableResult(rr.Scopes[j]), stableResult(mr.Scopes[j]); got != want {
				t.Fatalf("step %d, scope %s:\nredis  %s\nmemory %s", step, b.Scopes[j].Scope, got, want)
			}
			if s := rr.Scopes[j]; s.Scope == breaker.Global && s.Status.Holds() {
				globalHeld = s.Status.HeldScopes
			}
			if s := rr.Scopes[j]; !release && s.Status.Holds() {
				t.Fatalf("step %d: %s holds before the release (%s)", step, s.Scope, s.Status.Reason)
			}
		}
		decide.Apply(its, pending, rr)
		for _, it := range its {
			switch {
			case it.Decision != decide.Held:
			case it.Act.RuleID == "r" && it.Scope == breaker.ModelScope("r", "new"):
				heldNew++
			default:
				heldOther++
			}
		}
	}
	if heldNew == 0 || heldOther != 0 {
		t.Errorf("held %d actions of the new version by its breaker, %d others; want some, none", heldNew, heldOther)
	}
	if want := []breaker.Scope{breaker.ModelScope("r", "new")}; globalHeld != nil && !slices.Equal(globalHeld, want) {
		t.Errorf("global held %v; want nothing, or %v (nothing new)", globalHeld, want)
	}
}

package decide_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/store"
)

func items(offsets ...int64) []decide.Item {
	its := make([]decide.Item, len(offsets))
	for i, o := range offsets {
		its[i] = decide.Item{Pos: decide.Position{Topic: "in", Partition: int(o / 1000), Offset: o % 1000}}
	}
	return its
}

func TestChunkAroundRecords(t *testing.T) {
	// Partition 0 offsets 1..9 with offsets 4..6 decided before; partition
	// 1 offsets 1..3 with nothing decided.
	its := items(1, 2, 3, 7, 8, 9, 1001, 1002, 1003)
	known := []decide.Record{{Topic: "in", Partition: 0, First: 4, Last: 6}}
	pending := []int{0, 1, 2, 3, 4, 5, 6, 7, 8}
	var calls [][]int
	for len(pending) > 0 {
		chunk, rest := decide.Chunk(its, pending, known)
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
	if chunk, rest := decide.Chunk(its, []int{0, 3}, nil); !slices.Equal(chunk, []int{0, 3}) || rest != nil {
		t.Errorf("Chunk without records = %v, %v; want everything in one call", chunk, rest)
	}
}

func TestApplyRecords(t *testing.T) {
	its := items(1, 5, 9)
	for i := range its {
		its[i].Scopes = [decide.MaxScopes]breaker.Scope{breaker.Global, breaker.RuleScope("r")}
		its[i].NScopes = 2
	}
	recs := []decide.Record{{Topic: "in", Partition: 0, First: 4, Last: 6, Holding: map[breaker.Scope]uint64{breaker.RuleScope("r"): 3}}}
	rest := decide.ApplyRecords(its, []int{0, 1, 2}, recs)
	if !slices.Equal(rest, []int{0, 2}) {
		t.Errorf("rest %v; want [0 2]", rest)
	}
	if it := its[1]; it.Decision != decide.Held || it.Scope != breaker.RuleScope("r") || it.Gen != 3 || it.Reason != decide.ReasonRedelivered {
		t.Errorf("redelivered item decided %+v; want held by rule:r at generation 3", it)
	}
}

func TestClassify(t *testing.T) {
	cfg := config.Default()
	g := decide.New(cfg)
	var it decide.Item
	g.Classify(&it, decide.Position{Topic: "in", Offset: 7}, []byte(`{"action_id":"a1","rule_id":"r","action":"ban_account","target":{"type":"account","id":"u"},"occurred_at":"2026-01-01T00:00:00Z"}`))
	if it.Bad != nil || it.NScopes != 2 || it.Scopes[1] != breaker.RuleScope("r") || it.Weight < 1 || it.Pos.Offset != 7 {
		t.Errorf("Classify(valid) = %+v", it)
	}
	g.Classify(&it, decide.Position{Topic: "in", Offset: 8}, []byte(`{"action_id":`))
	if it.Bad == nil || it.Decision != decide.DeadLetter || it.Reason == "" || it.NScopes != 0 {
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
		if got := decide.ScopePolicy(cfg, tt.scope).MaxActions; got != tt.max {
			t.Errorf("ScopePolicy(%s).MaxActions = %v; want %v", tt.scope, got, tt.max)
		}
	}
}

// decider runs batches of actions through a gate and a Memory store, as
// the pipeline does.
type decider struct {
	t   *testing.T
	g   *decide.Gate
	st  *store.Memory
	off int64
}

func newDecider(t *testing.T, yaml string) *decider {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return &decider{t: t, g: decide.New(cfg), st: store.NewMemory(func() time.Time { return time.UnixMilli(1_000_000) })}
}

type act struct {
	rule string
	at   time.Time
	// version and region, when set, are the action's model.version and
	// region.
	version, region string
}

// decide decides one batch and returns its items and the store's answer.
func (d *decider) decide(acts []act) ([]decide.Item, decide.Result) {
	d.t.Helper()
	its := make([]decide.Item, len(acts))
	pending := make([]int, len(acts))
	for i, a := range acts {
		extra := ""
		if a.version != "" {
			extra += fmt.Sprintf(`,"model":{"version":%q}`, a.version)
		}
		if a.region != "" {
			extra += fmt.Sprintf(`,"region":%q`, a.region)
		}
		v := fmt.Sprintf(`{"action_id":"a%d","rule_id":%q,"action":"remove_pin","target":{"type":"pin","id":"p%d"},"occurred_at":%q%s}`,
			d.off, a.rule, d.off, a.at.Format(time.RFC3339Nano), extra)
		d.g.Classify(&its[i], decide.Position{Topic: "in", Offset: d.off}, []byte(v))
		if its[i].Bad != nil {
			d.t.Fatalf("Classify(%s) = %v", v, its[i].Bad)
		}
		pending[i] = i
		d.off++
	}
	b := d.g.Batch(its, pending, func(string, int) int64 { return d.off - int64(len(acts)) })
	r, err := d.st.Decide(context.Background(), b)
	if err != nil || len(r.Replayed) > 0 {
		d.t.Fatalf("Decide = %+v, %v", r, err)
	}
	decide.Apply(its, pending, r)
	return its, r
}

func status(r decide.Result, s breaker.Scope) breaker.Status {
	for _, x := range r.Scopes {
		if x.Scope == s {
			return x.Status
		}
	}
	return breaker.Initial()
}

// spread returns n actions of rule evenly over d from start.
func spread(rule string, n int, start time.Time, d time.Duration) []act {
	out := make([]act, n)
	for i := range out {
		out[i] = act{rule: rule, at: start.Add(d * time.Duration(i) / time.Duration(n))}
	}
	return out
}

func decisions(its []decide.Item) map[string]map[decide.Decision]int {
	m := map[string]map[decide.Decision]int{}
	for _, it := range its {
		if m[it.Act.RuleID] == nil {
			m[it.Act.RuleID] = map[decide.Decision]int{}
		}
		m[it.Act.RuleID][it.Decision]++
	}
	return m
}

// TestResidualCounting checks that global counts only what the rules'
// own breakers let through: one rule's contained incident does not trip it.
func TestResidualCounting(t *testing.T) {
	const cfg = `
breakers:
  defaults: {window: 1m, max_actions: 1000, factor: 0}
  new_rules: {max_actions: 0}
  global: {window: 1m, max_actions: 100, factor: 0}
  rules:
    loud: {max_actions: 50}
`
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	d := newDecider(t, cfg)
	its, r := d.decide(append(spread("loud", 80, t0, 10*time.Second), spread("quiet", 30, t0, 10*time.Second)...))
	got := decisions(its)
	if got["loud"][decide.Held] != 80 || got["quiet"][decide.Gated] != 30 {
		t.Errorf("decisions %v; want loud all held (its own breaker), quiet all gated", got)
	}
	if s := status(r, breaker.Global); s.State != breaker.Closed {
		t.Errorf("global %+v; want closed: it counts 30 that would reach enforcement, not 110", s)
	}
	// What the rule's breaker lets through still counts: 80 more of quiet
	// pass global's 100.
	its, r = d.decide(spread("quiet", 80, t0.Add(10*time.Second), 10*time.Second))
	if s := status(r, breaker.Global); s.State != breaker.Open {
		t.Errorf("global %+v after 110 quiet actions; want open", s)
	}
	if got := decisions(its); got["quiet"][decide.Held] != 80 {
		t.Errorf("decisions %v; want quiet all held by global", got)
	}
}

// TestTargetedHold checks that a tripped global holds the rule that drives
// it, not the others, when that rule explains the excess, and everything
// when every rule rises; and that a redelivery gets the first decisions.
func TestTargetedHold(t *testing.T) {
	const base = `
breakers:
  defaults: {window: 1m, max_actions: 100000, baseline: 30m, factor: 0}
  new_rules: {max_actions: 0}
  global: {window: 1m, max_actions: 0, baseline: 30m, factor: 3, min_actions: 10, hold: %s}
`
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	rules := []string{"a", "b", "c", "d"}
	// An hour of ten actions a minute per rule gives every scope a baseline.
	history := func(d *decider) {
		for m := range 60 {
			var acts []act
			for _, r := range rules {
				acts = append(acts, spread(r, 10, t0.Add(time.Duration(m)*time.Minute), time.Minute)...)
			}
			if _, r := d.decide(acts); status(r, breaker.Global).State != breaker.Closed {
				t.Fatalf("global tripped on normal traffic at minute %d", m)
			}
		}
	}
	at := t0.Add(time.Hour)
	for _, tt := range []struct {
		name, hold string
		spike      []string
		wantHeld   []breaker.Scope
		heldRules  []string
	}{
		{"one rule spikes", "contributors", []string{"b"}, []breaker.Scope{breaker.RuleScope("b")}, []string{"b"}},
		{"every rule rises", "contributors", rules, nil, rules},
		{"hold all", "all", []string{"b"}, nil, rules},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDecider(t, fmt.Sprintf(base, tt.hold))
			history(d)
			var acts []act
			for _, r := range rules {
				n := 10
				if slices.Contains(tt.spike, r) {
					n = 200
				}
				acts = append(acts, spread(r, n, at, time.Minute)...)
			}
			its, r := d.decide(acts)
			s := status(r, breaker.Global)
			if s.State != breaker.Open || !slices.Equal(s.HeldScopes, tt.wantHeld) {
				t.Fatalf("global %+v; want open holding %v", s, tt.wantHeld)
			}
			for _, it := range its {
				want := decide.Gated
				if slices.Contains(tt.heldRules, it.Act.RuleID) {
					want = decide.Held
				}
				if it.Decision != want || (want == decide.Held && it.Scope != breaker.Global) {
					t.Fatalf("action of rule %s decided %s by %s; want %s", it.Act.RuleID, it.Decision, it.Scope, want)
				}
			}
			// A redelivery of the batch gets the same decisions from the record.
			again := slices.Clone(its)
			pending := make([]int, len(again))
			for i := range again {
				again[i].Decision, again[i].Scope, again[i].Gen = "", "", 0
				pending[i] = i
			}
			b := d.g.Batch(again, pending, func(string, int) int64 { return -1 })
			res, err := d.st.Decide(context.Background(), b)
			if err != nil || len(res.Replayed) == 0 {
				t.Fatalf("redelivery: Decide = %+v, %v; want an answer from the record", res, err)
			}
			if rest := decide.ApplyRecords(again, pending, res.Replayed); len(rest) > 0 {
				t.Fatalf("redelivery left %d undecided", len(rest))
			}
			for i := range again {
				if again[i].Decision != its[i].Decision || again[i].Scope != its[i].Scope || again[i].Gen != its[i].Gen {
					t.Fatalf("redelivered %s decided %s by %s@%d; first %s by %s@%d", again[i].Act.RuleID,
						again[i].Decision, again[i].Scope, again[i].Gen, its[i].Decision, its[i].Scope, its[i].Gen)
				}
			}
		})
	}
}

// countsHeldConfig has a global limit of 100 (50 on probation) and a rule,
// loud, that trips on its own above 50.
const countsHeldConfig = `
breakers:
  defaults: {window: 1m, max_actions: 1000, factor: 0}
  new_rules: {max_actions: 0}
  global: {window: 1m, max_actions: 100, factor: 0, probation: 30m, probation_scale: 0.5}
  rules:
    loud: {max_actions: 50}
`

// resetGlobal resets the global breaker of d, configured by
// countsHeldConfig, as a person would.
func resetGlobal(t *testing.T, d *decider) {
	t.Helper()
	c, err := config.Parse([]byte(countsHeldConfig))
	if err != nil {
		t.Fatal(err)
	}
	p := decide.GlobalPolicy(c)
	if _, err := d.st.Update(context.Background(), breaker.Global, func(s breaker.Status, now time.Time) (breaker.Status, error) {
		return breaker.Reset(p, s, "op", "test", now), nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestProbationCountsHeld checks that a wider scope on probation, after a
// person reset it, counts the actions its narrower breakers hold too: a
// broad rise it tripped on is measured whole, not only what the rules that
// re-tripped on their own let through.
func TestProbationCountsHeld(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	d := newDecider(t, countsHeldConfig)
	if _, r := d.decide(append(spread("loud", 80, t0, 10*time.Second), spread("quiet", 30, t0, 10*time.Second)...)); status(r, breaker.Global).State != breaker.Closed {
		t.Fatalf("global %+v; want closed, counting 30", status(r, breaker.Global))
	}
	resetGlobal(t, d)
	// On probation global counts loud's held actions too: 30 + 20 + 10 > 50.
	its, r := d.decide(append(spread("loud", 20, t0.Add(10*time.Second), 10*time.Second), spread("quiet", 10, t0.Add(10*time.Second), 10*time.Second)...))
	if s := status(r, breaker.Global); s.State != breaker.Open {
		t.Fatalf("global %+v; want open: on probation it counts what loud holds", s)
	}
	if got := decisions(its); got["quiet"][decide.Held] != 10 || got["loud"][decide.Held] != 20 {
		t.Errorf("decisions %v; want everything held", got)
	}
}

// TestOpenCountsHeld checks that an open wider scope keeps counting the
// actions its narrower breakers hold: reset during a rise that the rules'
// own breakers now hold, it trips again on the first action after the
// reset instead of letting a window's worth through while its window
// refills.
func TestOpenCountsHeld(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	d := newDecider(t, countsHeldConfig)
	if _, r := d.decide(append(spread("a", 60, t0, 10*time.Second), spread("b", 60, t0, 10*time.Second)...)); status(r, breaker.Global).State != breaker.Open {
		t.Fatalf("global %+v; want open on 120 actions", status(r, breaker.Global))
	}
	// A minute later loud holds itself; global, open, counts its actions.
	if _, r := d.decide(spread("loud", 80, t0.Add(70*time.Second), 10*time.Second)); status(r, "rule:loud").State != breaker.Open {
		t.Fatalf("loud %+v; want open", status(r, "rule:loud"))
	}
	resetGlobal(t, d)
	// Global's window holds loud's 80: one more action is past 50.
	its, r := d.decide(spread("a", 1, t0.Add(85*time.Second), time.Second))
	if s := status(r, breaker.Global); s.State != breaker.Open {
		t.Fatalf("global %+v; want open again at once: its window counted what loud held while it was open", s)
	}
	if got := decisions(its); got["a"][decide.Held] != 1 {
		t.Errorf("decisions %v; want a's action held", got)
	}
}

// TestGlobalEvidenceContained checks that the global breaker's evidence,
// which counts every action, held ones included, does not trip it when a
// narrower breaker already holds the excess (what flows shows no rise),
// and does trip it when the same excess flows.
func TestGlobalEvidenceContained(t *testing.T) {
	const cfg = `
breakers:
  defaults: {window: 1m, max_actions: 100000, factor: 0}
  new_rules: {max_actions: 0}
  global: {window: 1m, max_actions: 100000, factor: 0}
  rules:
    a: {evidence: {off: true}}
`
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, held := range []bool{true, false} {
		d := newDecider(t, cfg)
		// A day and an hour of history: a and b act once a minute each,
		// decided five minutes at a time.
		at := t0
		for ; at.Before(t0.Add(25 * time.Hour)); at = at.Add(5 * time.Minute) {
			_, r := d.decide(append(spread("a", 5, at, 5*time.Minute), spread("b", 5, at, 5*time.Minute)...))
			if s := status(r, breaker.Global); s.State != breaker.Closed {
				t.Fatalf("global %+v at %v, on ordinary traffic; want closed", s, at)
			}
		}
		if held {
			if _, err := d.st.Update(context.Background(), breaker.RuleScope("a"), func(s breaker.Status, now time.Time) (breaker.Status, error) {
				return breaker.Override(s, breaker.ForcedOpen, "op", "test", time.Time{}, now)
			}); err != nil {
				t.Fatal(err)
			}
		}
		// a at 10x for half an hour: global's detector sees 55 actions a
		// bin against 10 expected.
		var tripped bool
		var last breaker.Status
		for end := at.Add(30 * time.Minute); at.Before(end); at = at.Add(time.Minute) {
			_, r := d.decide(append(spread("a", 10, at, time.Minute), spread("b", 1, at, time.Minute)...))
			last = status(r, breaker.Global)
			tripped = tripped || last.State == breaker.Open
		}
		switch {
		case held && tripped:
			t.Errorf("a held by its own breaker: global tripped (%+v); want it closed, the excess is contained", last)
		case !held && (!tripped || last.Reason != string(breaker.ReasonEvidence)):
			t.Errorf("a not held: global %+v; want an evidence trip", last)
		}
	}
}

// TestBatchPartitions builds batches of actions on many partitions of two
// topics, one after the other (the indexes Batch keeps are reused): each
// batch's ranges must be those of its own actions, one per partition, in
// the order of first appearance, with the committed offset asked for it.
func TestBatchPartitions(t *testing.T) {
	g := decide.New(config.Default())
	for round, spec := range []struct {
		topics []string
		parts  int
	}{{[]string{"in"}, 12}, {[]string{"in", "other"}, 40}, {[]string{"other"}, 3}, {[]string{"in"}, 300}} {
		var its []decide.Item
		for n := range 2000 {
			topic := spec.topics[n%len(spec.topics)]
			p := (n * 7) % spec.parts
			it := decide.Item{Pos: decide.Position{Topic: topic, Partition: p, Offset: int64(10*round + n)}}
			it.Scopes[0], it.Scopes[1], it.NScopes = breaker.Global, breaker.RuleScope("r"), 2
			it.Weight = 1
			its = append(its, it)
		}
		pending := make([]int, len(its))
		for i := range pending {
			pending[i] = i
		}
		b := g.Batch(its, pending, func(topic string, p int) int64 { return int64(len(topic)*1000 + p) })
		type key struct {
			topic string
			p     int
		}
		var want []decide.Range
		seen := map[key]int{}
		for _, it := range its {
			k := key{it.Pos.Topic, it.Pos.Partition}
			i, ok := seen[k]
			if !ok {
				i = len(want)
				seen[k] = i
				want = append(want, decide.Range{Topic: k.topic, Partition: k.p, First: it.Pos.Offset, Last: it.Pos.Offset, Committed: int64(len(k.topic)*1000 + k.p)})
			}
			want[i].First = min(want[i].First, it.Pos.Offset)
			want[i].Last = max(want[i].Last, it.Pos.Offset)
		}
		if !slices.Equal(b.Partitions, want) {
			t.Fatalf("round %d: %d ranges, want %d: %v", round, len(b.Partitions), len(want), b.Partitions)
		}
		if len(b.Scopes) != 2 {
			t.Fatalf("round %d: %d scopes, want 2", round, len(b.Scopes))
		}
	}
}

// referenceBatch is Gate.Batch as it was written first, with fresh maps
// for every batch: what Batch must still build.
func referenceBatch(g *decide.Gate, items []decide.Item, pending []int, committed func(string, int) int64) decide.Batch {
	var b decide.Batch
	type pkey struct {
		topic     string
		partition int
	}
	parts := map[pkey]int{}
	var levels [3][]decide.ScopeCounts
	scopeIdx := map[breaker.Scope]int{}
	type bkey struct {
		depth, scope int
		at           int64
		via          [decide.MaxVia]int32
	}
	bucketIdx := map[bkey]int{}
	var local [decide.MaxScopes]int
	for _, i := range pending {
		it := &items[i]
		pk := pkey{it.Pos.Topic, it.Pos.Partition}
		pi, ok := parts[pk]
		if !ok {
			pi = len(b.Partitions)
			parts[pk] = pi
			b.Partitions = append(b.Partitions, decide.Range{Topic: it.Pos.Topic, Partition: it.Pos.Partition,
				First: it.Pos.Offset, Last: it.Pos.Offset, Committed: committed(it.Pos.Topic, it.Pos.Partition)})
		}
		r := &b.Partitions[pi]
		r.First, r.Last = min(r.First, it.Pos.Offset), max(r.Last, it.Pos.Offset)
		at := it.Act.OccurredAt.UnixMilli()
		for d := it.NScopes - 1; d >= 0; d-- {
			lv := min(d, 2)
			s := it.Scopes[d]
			si, ok := scopeIdx[s]
			if !ok {
				si = len(levels[lv])
				scopeIdx[s] = si
				levels[lv] = append(levels[lv], decide.ScopeCounts{Scope: s, Policy: g.Policy(s, it)})
			}
			local[d] = si
			sc := &levels[lv][si]
			var via [decide.MaxVia]int32
			if d < 2 {
				for k := d + 1; k < it.NScopes; k++ {
					via[k-d-1] = int32(local[k] + 1)
				}
			}
			k := bkey{d, si, sc.Policy.Grid().Bucket(at), via}
			if bi, ok := bucketIdx[k]; ok {
				sc.Buckets[bi].Weight += it.Weight
				sc.Buckets[bi].Count++
				continue
			}
			bucketIdx[k] = len(sc.Buckets)
			sc.Buckets = append(sc.Buckets, decide.Bucket{At: k.at, Weight: it.Weight, Count: 1, Via: via})
		}
	}
	var off [3]int
	off[1] = len(levels[2])
	off[0] = off[1] + len(levels[1])
	for lv := 2; lv >= 0; lv-- {
		for _, sc := range levels[lv] {
			for bi := range sc.Buckets {
				for k, v := range sc.Buckets[bi].Via {
					if v > 0 {
						sc.Buckets[bi].Via[k] = v + int32(off[min(lv+1+k, 2)])
					}
				}
			}
			if sc.Scope == breaker.Global {
				b.Reference = len(b.Scopes) + 1
			}
			if dim, _ := sc.Scope.Segment(); dim == breaker.DimModel {
				if ri, ok := scopeIdx[breaker.RuleScope(sc.Scope.Rule())]; ok {
					sc.Seed = off[1] + ri + 1
				}
			}
			b.Scopes = append(b.Scopes, sc)
		}
	}
	return b
}

// TestBatchAsReference builds batches of random actions (several rules,
// action types, model versions and regions, at depths that vary from
// action to action, in event time with jitter, on many partitions) and
// compares each with referenceBatch, one batch after the other so that the
// indexes Batch keeps between calls are reused.
func TestBatchAsReference(t *testing.T) {
	g := decide.New(config.Default())
	rng := rand.New(rand.NewPCG(4, 2))
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for round := range 30 {
		n := 1 + rng.IntN(3000)
		its := make([]decide.Item, n)
		for i := range its {
			it := &its[i]
			rule := fmt.Sprintf("rule-%d", rng.IntN(1+round%12))
			it.Pos = decide.Position{Topic: []string{"in", "in", "in", "side"}[rng.IntN(4)], Partition: rng.IntN(1 + round*5), Offset: int64(i)}
			it.Act.RuleID, it.Act.Action = rule, []string{"remove_pin", "ban"}[rng.IntN(2)]
			it.Act.OccurredAt = start.Add(time.Duration(round)*time.Hour + time.Duration(i)*50*time.Millisecond + time.Duration(rng.IntN(20_000))*time.Millisecond)
			it.Weight = int64(1 + rng.IntN(3000))
			it.Scopes[0], it.Scopes[1], it.NScopes = breaker.Global, breaker.RuleScope(rule), 2
			if rng.IntN(3) == 0 {
				it.Scopes[it.NScopes] = breaker.ActionScope(rule, it.Act.Action)
				it.NScopes++
			}
			if rng.IntN(2) == 0 {
				it.Scopes[it.NScopes] = breaker.ModelScope(rule, fmt.Sprintf("v%d", rng.IntN(3)))
				it.NScopes++
			}
			if rng.IntN(2) == 0 {
				it.Scopes[it.NScopes] = breaker.SegmentScope(rule, breaker.DimRegion, []string{"eu", "us"}[rng.IntN(2)])
				it.NScopes++
			}
		}
		pending := make([]int, 0, n)
		for i := range its {
			if rng.IntN(10) > 0 {
				pending = append(pending, i)
			}
		}
		committed := func(topic string, p int) int64 { return int64(len(topic) + p) }
		got, want := g.Batch(its, pending, committed), referenceBatch(g, its, pending, committed)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d (%d actions): Batch differs from the reference:\n got %d scopes %+v\nwant %d scopes %+v", round, len(pending), len(got.Scopes), got.Partitions, len(want.Scopes), want.Partitions)
		}
	}
}

// TestClassifyScopes classifies actions of a configured rule (with and
// without thresholds for their action type) and of a rule missing from
// the configuration: each gets global, its rule, and its rule and action
// type only when that has thresholds of its own.
func TestClassifyScopes(t *testing.T) {
	cfg, err := config.Parse([]byte(`
breakers:
  defaults: {window: 1m, max_actions: 100}
  rules:
    spam:
      max_actions: 40
      actions:
        "ban|account": {max_actions: 7}
    "odd|rule%": {max_actions: 5}
`))
	if err != nil {
		t.Fatal(err)
	}
	g := decide.New(cfg)
	for _, tt := range []struct {
		rule, action string
		want         []breaker.Scope
	}{
		{"spam", "ban|account", []breaker.Scope{breaker.Global, breaker.RuleScope("spam"), breaker.ActionScope("spam", "ban|account")}},
		{"spam", "warn", []breaker.Scope{breaker.Global, breaker.RuleScope("spam")}},
		{"odd|rule%", "ban|account", []breaker.Scope{breaker.Global, breaker.RuleScope("odd|rule%")}},
		{"brand-new", "ban|account", []breaker.Scope{breaker.Global, breaker.RuleScope("brand-new")}},
	} {
		v := fmt.Sprintf(`{"action_id":"a1","rule_id":%q,"action":%q,"target":{"type":"account","id":"u1"},"occurred_at":"2026-12-01T00:00:00Z"}`, tt.rule, tt.action)
		var it decide.Item
		for range 2 { // the second time into an item that held an action
			g.Classify(&it, decide.Position{Topic: "in"}, []byte(v))
			if it.Bad != nil {
				t.Fatalf("Classify(%s) = %v", v, it.Bad)
			}
			if got := it.Scopes[:it.NScopes]; !slices.Equal(got, tt.want) {
				t.Errorf("%s %s: scopes %v, want %v", tt.rule, tt.action, got, tt.want)
			}
		}
	}
}

// TestClassifyRuleScopesConcurrently classifies actions of rules missing
// from the configuration on several goroutines at once (as the partition
// readers do), more distinct rules than the gate keeps scopes of: every
// action gets its rule's scope. Run with -race.
func TestClassifyRuleScopesConcurrently(t *testing.T) {
	g := decide.New(config.Default())
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for w := range 8 {
		wg.Go(func() {
			var it decide.Item
			for i := range 6000 {
				rule := fmt.Sprintf("r%d|%d", (i*7+w)%5000, w%2)
				v := fmt.Sprintf(`{"action_id":"a%d","rule_id":%q,"action":"remove_pin","target":{"type":"pin","id":"p1"},"occurred_at":"2026-12-01T00:00:00Z"}`, i, rule)
				g.Classify(&it, decide.Position{Topic: "in"}, []byte(v))
				if it.Bad != nil || it.Scopes[1] != breaker.RuleScope(rule) {
					errs <- fmt.Sprintf("rule %s: scope %s, bad %v", rule, it.Scopes[1], it.Bad)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

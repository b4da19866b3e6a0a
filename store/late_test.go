package store_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/store"
)

// TestLateBuckets sends batches of buckets out of event time order, some
// within the grace period and some beyond it, through both stores and
// compares the counts at the end of each batch with an exact count of
// every action kept in the test: an action counts at its own time when it
// lags the newest one seen by at most breaker.GraceSlots fine buckets, else
// at the newest one's.
func TestLateBuckets(t *testing.T) {
	ctx := context.Background()
	e := newRedis(t, true)
	mem := store.NewMemory(time.Now)
	rng := rand.New(rand.NewPCG(11, 12))
	type counted struct{ fine, coarse, w int64 }
	history := map[breaker.Scope][]counted{}
	tops := map[breaker.Scope]int64{}
	batches := 0
	check := func(sp spec, buckets []decide.Bucket) {
		t.Helper()
		// No trips: the counts reported are those at the last bucket.
		sp.policy.Disabled = true
		g := sp.policy.Grid()
		sc := decide.ScopeCounts{Scope: sp.scope, Policy: sp.policy, Buckets: buckets}
		var win, base int64
		for _, bk := range buckets {
			at := bk.At
			if top, ok := tops[sp.scope]; !ok || at > top {
				tops[sp.scope] = at
			}
			if at/g.Fine < tops[sp.scope]/g.Fine-breaker.GraceSlots {
				at = tops[sp.scope]
			}
			history[sp.scope] = append(history[sp.scope], counted{at / g.Fine, at / g.Coarse, bk.Weight})
			win, base = 0, 0
			for _, c := range history[sp.scope] {
				if c.fine > at/g.Fine-breaker.FineSlots && c.fine <= at/g.Fine {
					win += c.w
				}
				if c.coarse >= at/g.Coarse-breaker.CoarseSlots && c.coarse < at/g.Coarse {
					base += c.w
				}
			}
		}
		i := int64(batches)
		batches++
		b := decide.Batch{Partitions: []decide.Range{rangeOf("late", 0, i, i, i)}, Scopes: []decide.ScopeCounts{sc}}
		rr, err := e.st.Decide(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		mr, err := mem.Decide(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		exact := float64(win) / breaker.Milli
		exactBase := float64(base) * float64(g.Window) / float64(breaker.CoarseSlots*g.Coarse) / breaker.Milli
		for name, r := range map[string]decide.Result{"redis": rr, "memory": mr} {
			if c := r.Scopes[0].Counts; c.Window != exact || c.Baseline != exactBase {
				t.Fatalf("batch %d, %s %v: %s counts %+v; want window %v, baseline %v", i, sp.scope, buckets, name, c, exact, exactBase)
			}
		}
	}

	// A bucket within the grace period of the watermark when it is counted,
	// which the next bucket of the same batch pushes out of the ring; then a
	// bucket whose slot it shared.
	var ratio spec
	for _, sp := range diffSpecs {
		if sp.scope == breaker.RuleScope("ratio") {
			ratio = sp
		}
	}
	if ratio.policy.Grid().Fine != 50 {
		t.Fatalf("spec %s: fine buckets of %dms; the scenario needs 50ms", ratio.scope, ratio.policy.Grid().Fine)
	}
	check(ratio, []decide.Bucket{{At: evt0 + 40_000, Weight: 1000}})
	check(ratio, []decide.Bucket{{At: evt0 + 12_000, Weight: 2000}, {At: evt0 + 43_100, Weight: 500}})
	check(ratio, []decide.Bucket{{At: evt0 + 43_000, Weight: 300}})

	evt := evt0 + 50_000
	for range 3000 {
		sp := diffSpecs[rng.IntN(len(diffSpecs))]
		evt += rng.Int64N(300)
		if rng.IntN(20) == 0 {
			// A jump: what the scope saw last falls behind the grace period.
			evt += rng.Int64N(60_000)
		}
		var buckets []decide.Bucket
		for range 1 + rng.IntN(6) {
			var late int64
			switch k := rng.IntN(100); {
			case k < 70:
				late = rng.Int64N(150)
			case k < 90:
				late = rng.Int64N(2000)
			default:
				late = 15000 + rng.Int64N(45000)
			}
			buckets = append(buckets, decide.Bucket{At: evt - late, Weight: 1 + rng.Int64N(3000)})
		}
		check(sp, buckets)
	}
}

// TestCounts reads a scope's counts at its watermark from both stores and
// compares them with the counts the last decision reported.
func TestCounts(t *testing.T) {
	ctx := context.Background()
	e := newRedis(t, true)
	mem := store.NewMemory(time.Now)
	pol := breaker.Policy{Window: time.Second, Baseline: 30 * time.Second, Disabled: true}
	sc := breaker.RuleScope("counted")
	type counter interface {
		Counts(context.Context, breaker.Scope, breaker.Policy) (breaker.Counts, time.Time, bool, error)
	}
	stores := map[string]counter{"redis": e.st, "memory": mem}
	for name, st := range stores {
		if _, _, ok, err := st.Counts(ctx, sc, pol); ok || err != nil {
			t.Errorf("%s: Counts before any decision = ok %v, %v; want none", name, ok, err)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	evt := evt0
	for i := range 200 {
		evt += rng.Int64N(400)
		b := decide.Batch{
			Partitions: []decide.Range{rangeOf("counts", 0, int64(i), int64(i), int64(i))},
			Scopes:     []decide.ScopeCounts{{Scope: sc, Policy: pol, Buckets: []decide.Bucket{{At: evt, Weight: 1 + rng.Int64N(2000)}}}},
		}
		rr, err := e.st.Decide(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mem.Decide(ctx, b); err != nil {
			t.Fatal(err)
		}
		for name, st := range stores {
			c, at, ok, err := st.Counts(ctx, sc, pol)
			if err != nil || !ok || c != rr.Scopes[0].Counts || at.UnixMilli() != evt {
				t.Fatalf("batch %d: %s Counts = %+v at %v (ok %v, %v); want %+v at %d", i, name, c, at, ok, err, rr.Scopes[0].Counts, evt)
			}
		}
	}
}

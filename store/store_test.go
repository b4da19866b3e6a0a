package store_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// decider is what Redis and Memory have in common.
type decider interface {
	Decide(ctx context.Context, b decide.Batch) (decide.Result, error)
	Status(ctx context.Context, scope breaker.Scope) (breaker.Status, error)
	List(ctx context.Context) ([]store.ScopeStatus, error)
	Update(ctx context.Context, scope breaker.Scope, fn func(breaker.Status, time.Time) (breaker.Status, error)) (breaker.Transition, error)
}

var (
	_ decider = (*store.Redis)(nil)
	_ decider = (*store.Memory)(nil)
)

const prefix = "bw"

type redisEnv struct {
	srv *testbed.Redis
	rc  *redis.Client
	st  fresh
}

// fresh is the Redis store as the pipeline drives it on a topic whose
// outputs are empty: a partition whose records the store asks to rebuild
// gets none (nothing was written), complete from the offset asked.
type fresh struct{ *store.Redis }

func (f fresh) Decide(ctx context.Context, b decide.Batch) (decide.Result, error) {
	for {
		r, err := f.Redis.Decide(ctx, b)
		if err != nil || len(r.Rebuild) == 0 {
			return r, err
		}
		for _, p := range r.Rebuild {
			if err := f.Rebuild(ctx, p.Topic, p.Partition, p.First, nil); err != nil {
				return r, err
			}
		}
	}
}

// newRedis starts a redis-server and returns a store on it, restored
// (ready to decide) unless restore is false.
func newRedis(t testing.TB, restore bool) *redisEnv {
	t.Helper()
	srv := testbed.StartRedis(t)
	srv.WatchScripts(t)
	rc := srv.Client(t)
	st, err := store.NewRedis(rc, store.RedisOptions{Prefix: prefix, RecordTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if restore {
		if _, err := st.Restore(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	return &redisEnv{srv: srv, rc: rc, st: fresh{st}}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// stable prints the fields of a status that do not depend on wall time.
func stable(s breaker.Status) string {
	z := func(t time.Time) string {
		if t.IsZero() {
			return "0"
		}
		return "t"
	}
	return fmt.Sprintf("%s/%s g%d reason=%q actor=%q since=%s tripped=%s until=%s prob=%s held=%v onset=%d trip=%+v",
		s.State, s.Auto, s.Generation, s.Reason, s.Actor, z(s.Since), z(s.TrippedAt), z(s.Until), z(s.ProbationUntil), s.HeldScopes,
		s.Onset.UnixMilli(), s.Trip)
}

func stableResult(r decide.ScopeResult) string {
	return fmt.Sprintf("%s changed=%v %s counts=%+v", r.Scope, r.Changed, stable(r.Status), r.Counts)
}

func sortRecords(rs []decide.Record) []decide.Record {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b decide.Record) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.First, b.First))
	})
	return rs
}

func fmtRecords(rs []decide.Record) string {
	var b strings.Builder
	for _, r := range sortRecords(rs) {
		keys := slices.Sorted(maps.Keys(r.Holding))
		fmt.Fprintf(&b, "[%s/%d %d-%d", r.Topic, r.Partition, r.First, r.Last)
		for _, k := range keys {
			fmt.Fprintf(&b, " %s@%d", k, r.Holding[k])
			if only, ok := r.Only[k]; ok {
				fmt.Fprintf(&b, "%v", only)
			}
		}
		b.WriteString("]")
	}
	return b.String()
}

// --- differential test -------------------------------------------------

type spec struct {
	scope  breaker.Scope
	policy breaker.Policy
}

// diffSpecs are scopes with different policies. Their timings are either
// absent or 1ms, and batches are at least 2ms apart on the store's clock, so
// that every time-dependent decision comes out the same on both stores
// whatever the exact clock readings.
var diffSpecs = []spec{
	{breaker.Global, breaker.Policy{
		Window: 2 * time.Second, MaxActions: 40, Baseline: 20 * time.Second, Factor: 2, MinActions: 10,
		AutoCloseAfter: time.Millisecond, Probation: time.Millisecond, ProbationScale: 0.5,
		HoldContributors: true, ContributorFactor: 2.5,
		EvidenceBin: 50 * time.Millisecond, EvidenceSeason: 2400 * time.Millisecond, EvidenceRatio: 1.3,
		EvidenceThreshold: 4, EvidenceMinExpected: 0.5, EvidenceDays: 2,
	}},
	{breaker.RuleScope("spam"), breaker.Policy{
		Window: time.Second, MaxActions: 12.345,
		EvidenceBin: 20 * time.Millisecond, EvidenceSeason: 1200 * time.Millisecond, EvidenceRatio: 2,
		EvidenceThreshold: 2.5, EvidenceMinExpected: 0.1, EvidenceDays: 3,
	}},
	{breaker.ActionScope("spam", "ban"), breaker.Policy{Window: time.Second, Baseline: 5 * time.Second, Factor: 2, MinActions: 3}},
	{breaker.RuleScope("fraud"), breaker.Policy{
		Window: 200 * time.Millisecond, Baseline: time.Second, Factor: 1.5, MinActions: 2,
		MaxActions: 9, AutoCloseAfter: time.Millisecond, Probation: time.Hour, ProbationScale: 0.5,
	}},
	{breaker.ActionScope("fraud", "hold"), breaker.Policy{
		Window: 2 * time.Second, MaxActions: 10, AutoCloseAfter: time.Millisecond,
		Probation: time.Millisecond, ProbationScale: 0.3,
	}},
	{breaker.RuleScope("quiet"), breaker.Policy{Window: time.Second, MaxActions: 1, Factor: 1, Disabled: true}},
	{breaker.RuleScope("calm"), breaker.Policy{Window: time.Second, MaxActions: 400, Baseline: 10 * time.Second, Factor: 50, MinActions: 1}},
	{breaker.RuleScope("calm2"), breaker.Policy{Window: 2 * time.Second, MaxActions: 400, Baseline: 4 * time.Second, Factor: 50, MinActions: 1}},
	{breaker.RuleScope("calm3"), breaker.Policy{Window: 500 * time.Millisecond, MaxActions: 400}},
	{breaker.RuleScope("tiny"), breaker.Policy{
		Window: 7 * time.Millisecond, Baseline: 100 * time.Millisecond, Factor: 3, MinActions: 1,
		AutoCloseAfter: time.Millisecond, Probation: time.Millisecond, ProbationScale: 0.7,
	}},
	{breaker.RuleScope("ratio"), breaker.Policy{
		Window: time.Second, Baseline: 10 * time.Second, Factor: 1.1, MinActions: 0.5,
		AutoCloseAfter: time.Millisecond, ProbationScale: 2.5,
		EvidenceBin: 100 * time.Millisecond, EvidenceSeason: 24 * time.Second, EvidenceRatio: 1.5,
		EvidenceThreshold: 3, EvidenceMinExpected: 0.2, EvidenceDays: 1,
	}},
	{breaker.RuleScope("drift"), breaker.Policy{
		Window: time.Second, MaxActions: 1000, AutoCloseAfter: time.Hour, Probation: time.Millisecond, ProbationScale: 0.5,
		EvidenceBin: 30 * time.Millisecond, EvidenceSeason: 720 * time.Millisecond, EvidenceRatio: 1.8,
		EvidenceThreshold: 2, EvidenceMinExpected: 0.05, EvidenceDays: 4,
	}},
	{breaker.ActionScope("ratio", "warn"), breaker.Policy{
		Window: 1010 * time.Millisecond, Baseline: 3 * time.Second, Factor: 2.5,
		MinActions: 1.5, MaxActions: 7.5,
	}},
}

// segmentSpecs are segments of the rules of diffSpecs: model versions
// (on their rule's policy, seeded from it) and values of a dimension.
var segmentSpecs = []spec{
	{breaker.ModelScope("spam", "2025.04.1"), newOnly(diffSpecs[1].policy, 3*time.Second)},
	{breaker.ModelScope("fraud", "7"), newOnly(diffSpecs[3].policy, time.Hour)},
	{breaker.SegmentScope("ratio", breaker.DimRegion, "eu"), diffSpecs[10].policy},
	{breaker.OverflowScope("ratio", breaker.DimRegion), breaker.Policy{Window: time.Second, MaxActions: 6}},
	{breaker.SegmentScope("spam", breaker.DimTargetType, "a|b@c"), breaker.Policy{Window: 500 * time.Millisecond, MaxActions: 5, Baseline: 2 * time.Second, Factor: 2, MinActions: 1}},
}

// newVersionSpec is a model version of rule spam first seen at event time
// evt: every 15 seconds of event time a new one appears, that starts from
// the rule's counts and detector.
func newVersionSpec(evt int64) spec {
	return spec{breaker.ModelScope("spam", fmt.Sprintf("v%d", evt/15000)), newOnly(diffSpecs[1].policy, 5*time.Second)}
}

// newOnly is p for a model version: it trips only within learning of its
// first action, when it started from its rule.
func newOnly(p breaker.Policy, learning time.Duration) breaker.Policy {
	p.NewOnly, p.Learning, p.LearningMax = true, learning, 0
	return p
}

var weights = []int64{1000, 1000, 1000, 500, 1500, 250, 3000, 1, 999, 2000}

type gen struct {
	rng       *rand.Rand
	evt       int64 // event clock, ms
	next      map[int]int64
	committed map[int]int64
	history   []decide.Range
}

func newGen(seed uint64) *gen {
	return &gen{
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), evt: 1_741_944_000_000,
		next: map[int]int64{}, committed: map[int]int64{},
	}
}

func (g *gen) span(choices ...int64) int64 {
	return g.rng.Int64N(choices[g.rng.IntN(len(choices))] + 1)
}

// newRuleSpec is the scope of a rule first seen at event time evt: every
// 20 seconds of event time a new one appears, on a learning budget.
func newRuleSpec(evt int64) spec {
	return spec{breaker.RuleScope(fmt.Sprintf("new-%d", evt/20000)), breaker.Policy{
		Window: time.Second, MaxActions: 500, Learning: 8 * time.Second, LearningMax: 6,
		AutoCloseAfter: time.Millisecond, Probation: time.Millisecond, ProbationScale: 0.5,
	}}
}

// level orders scopes narrowest first: rule and action, rule, global.
func level(s breaker.Scope) int {
	switch {
	case s == breaker.Global:
		return 2
	case s == breaker.RuleScope(s.Rule()):
		return 1
	}
	return 0
}

// within reports whether narrow counts towards wide.
func within(narrow, wide breaker.Scope) bool {
	return level(narrow) < level(wide) && (wide == breaker.Global || narrow.Rule() == wide.Rule())
}

// batch returns a random batch: new offsets on one to three partitions (or,
// sometimes, a redelivery of earlier offsets, whole or in part), and counts
// for a random subset of scopes in buckets around the event clock, some of
// them late or very late, narrower scopes first; many buckets of wider
// scopes are counted via narrower ones of the batch.
func (g *gen) batch(specs []spec) decide.Batch {
	var b decide.Batch
	switch k := g.rng.IntN(100); {
	case k < 55:
		g.evt += g.rng.Int64N(100)
	case k < 85:
		g.evt += 100 + g.rng.Int64N(900)
	case k < 96:
		g.evt += 1000 + g.rng.Int64N(4000)
	default:
		g.evt += 5000 + g.rng.Int64N(35000)
	}
	if len(g.history) > 0 && g.rng.IntN(10) == 0 {
		// Redelivery of an earlier range, whole or shifted.
		old := g.history[len(g.history)-1-g.rng.IntN(min(len(g.history), 8))]
		r := old
		if g.rng.IntN(2) == 0 {
			r.First += g.rng.Int64N(r.Last - r.First + 1)
			r.Last += g.rng.Int64N(5)
		}
		r.Committed = g.committed[r.Partition]
		b.Partitions = append(b.Partitions, r)
	} else {
		parts := g.rng.Perm(3)[:1+g.rng.IntN(3)]
		for _, p := range parts {
			n := 1 + g.rng.Int64N(20)
			first := g.next[p]
			if c := g.rng.IntN(4); c == 0 && len(g.history) > 2 {
				// The consumer commits what earlier batches decided.
				g.committed[p] = max(g.committed[p], first-g.rng.Int64N(40))
			}
			r := decide.Range{Topic: "actions", Partition: p, First: first, Last: first + n - 1, Committed: g.committed[p]}
			if first == 0 {
				r.Committed = -1
			}
			g.next[p] = r.Last + 1
			g.history = append(g.history, r)
			b.Partitions = append(b.Partitions, r)
		}
	}
	var chosen []spec
	for _, i := range g.rng.Perm(len(specs))[:1+g.rng.IntN(len(specs))] {
		chosen = append(chosen, specs[i])
	}
	if g.rng.IntN(3) > 0 {
		chosen = append(chosen, newRuleSpec(g.evt))
	}
	if g.rng.IntN(2) > 0 {
		chosen = append(chosen, newVersionSpec(g.evt))
	}
	slices.SortStableFunc(chosen, func(a, b spec) int { return cmp.Compare(level(a.scope), level(b.scope)) })
	for _, sp := range chosen {
		if sp.scope == breaker.Global && g.rng.IntN(4) > 0 {
			b.Reference = len(b.Scopes) + 1
		}
		var narrower []int32
		for j, o := range b.Scopes {
			if within(o.Scope, sp.scope) {
				narrower = append(narrower, int32(j+1))
			}
		}
		sc := decide.ScopeCounts{Scope: sp.scope, Policy: sp.policy}
		grid := sp.policy.Grid()
		if sp.scope == breaker.Global && g.rng.IntN(2) == 0 {
			// As the gate builds it: what the rules counted, via them.
			for _, v := range narrower {
				if ns := b.Scopes[v-1]; level(ns.Scope) == 1 {
					for _, bk := range ns.Buckets {
						sc.Buckets = append(sc.Buckets, decide.Bucket{At: grid.Bucket(bk.At), Weight: bk.Weight, Count: bk.Count, Via: [decide.MaxVia]int32{v}})
					}
				}
			}
		}
		nb := g.rng.IntN(7) // sometimes none
		for range nb {
			var late int64
			switch k := g.rng.IntN(100); {
			case k < 70:
				late = g.span(0, 3, 50)
			case k < 90:
				late = g.span(2000)
			default:
				late = g.span(15000, 60000)
			}
			at := g.evt - late
			if g.rng.IntN(5) > 0 {
				at = grid.Bucket(at)
			}
			w := weights[g.rng.IntN(len(weights))] * (1 + g.rng.Int64N(4))
			bk := decide.Bucket{At: at, Weight: w, Count: 1 + g.rng.Int64N(4)}
			if len(narrower) > 0 && g.rng.IntN(4) > 0 {
				v := narrower[g.rng.IntN(len(narrower))]
				bk.Via[0] = v
				ns := b.Scopes[v-1].Scope
				// An action's narrower scopes of one rule (its action
				// type, segments) are side by side: a bucket counts
				// through some of them, and through its rule as well on
				// its way to global.
				var side []int32
				for _, o := range narrower {
					if o != v && level(b.Scopes[o-1].Scope) == 0 && b.Scopes[o-1].Scope.Rule() == ns.Rule() && g.rng.IntN(2) == 0 {
						side = append(side, o)
					}
				}
				if level(ns) == 0 && sp.scope == breaker.Global {
					for _, r := range narrower {
						if b.Scopes[r-1].Scope == breaker.RuleScope(ns.Rule()) {
							bk.Via[0], bk.Via[1] = r, v
							copy(bk.Via[2:], side)
						}
					}
				} else if level(ns) == 0 {
					copy(bk.Via[1:], side)
				}
			}
			sc.Buckets = append(sc.Buckets, bk)
		}
		b.Scopes = append(b.Scopes, sc)
	}
	// A model version starts from its rule, when the batch has the rule.
	for i, sc := range b.Scopes {
		if dim, _ := sc.Scope.Segment(); dim == breaker.DimModel {
			for j, o := range b.Scopes {
				if o.Scope == breaker.RuleScope(sc.Scope.Rule()) {
					b.Scopes[i].Seed = j + 1
				}
			}
		}
	}
	return b
}

// stepper runs decide.Step on states of its own, the way a store that
// only persists would: the function decide.lua mirrors, called directly.
type stepper map[breaker.Scope]*decide.State

func (s stepper) state(scope breaker.Scope) *decide.State {
	e := s[scope]
	if e == nil {
		e = &decide.State{Status: breaker.Initial()}
		s[scope] = e
	}
	return e
}

func (s stepper) decide(b decide.Batch, now time.Time) decide.Result {
	states := make([]*decide.State, len(b.Scopes))
	for i, sc := range b.Scopes {
		states[i] = s.state(sc.Scope)
	}
	return decide.Step(b, now, states)
}

func (s stepper) update(scope breaker.Scope, fn func(breaker.Status, time.Time) (breaker.Status, error), now time.Time) (breaker.Transition, error) {
	e := s.state(scope)
	from, _ := breaker.Expire(e.Status, now)
	to, err := fn(from, now)
	if err != nil {
		return breaker.Transition{}, err
	}
	e.Status = to
	return breaker.Transition{Scope: scope, From: from, To: to}, nil
}

// TestDifferentialRedisMemory runs the same random batches and operator
// changes through the Redis store (decide.lua), decide.Step called
// directly, and the Memory store, and compares everything that does not
// depend on the exact wall clock: this guards that the Lua script mirrors
// decide.Step.
func TestDifferentialRedisMemory(t *testing.T) {
	total := map[string]int{}
	for _, seed := range []uint64{1, 3, 5, 12} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			for k, v := range differential(t, seed, 700) {
				total[k] += v
			}
		})
	}
	// The random walks must have reached the interesting paths.
	for _, k := range []string{
		"replayed", "to open max_actions", "to open baseline_factor", "to probation auto close",
		"to closed probation ended", "trip in probation", "baseline ready", "auto change under forced_closed", "auto change under shadow",
		"override expired", "to open new_rule", "learning", "targeted hold", "not counted: narrower scope holds", "counted on probation: narrower scope holds",
		"to open evidence", "evidence ready", "evidence rising", "evidence capped while open", "evidence learned some slots", "evidence trip targeted",
		"evidence trip holds all", "evidence long gap", "evidence onset before the open bin", "evidence frozen slot", "evidence floored expectation",
		"to open evidence in probation", "evidence dispersion learned", "counts with evidence",
		"evidence restarted on release", "evidence kept on release", "evidence restarted on release: no rise since the trip",
		"evidence restarted on release: the rise ended",
		"evidence residual below", "evidence residual gates", "evidence residual kept over a held bin",
		"model version seeded from its rule", "model version dormant from the start", "model version dormant", "model version no longer new", "segment trips model", "segment trips region", "segment trips target.type",
	} {
		if total[k] == 0 {
			t.Errorf("no %q in the random walks; the test does not cover it", k)
		}
	}
}

func differential(t *testing.T, seed uint64, n int) map[string]int {
	ctx := ctxT(t)
	e := newRedis(t, false)
	if _, err := e.st.Decide(ctx, decide.Batch{}); !errors.Is(err, store.ErrStateLost) {
		t.Fatalf("Decide before Restore = %v; want ErrStateLost", err)
	}
	if _, err := e.st.Restore(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	mem := store.NewMemory(func() time.Time { return time.UnixMilli(clock.Load()) })
	step := stepper{}
	policy := map[breaker.Scope]breaker.Policy{}
	for _, sp := range diffSpecs {
		policy[sp.scope] = sp.policy
	}
	syncClock := func() time.Time {
		t.Helper()
		now, err := e.st.Now(ctx)
		if err != nil {
			t.Fatal(err)
		}
		clock.Store(now.UnixMilli())
		return now
	}

	g := newGen(seed)
	stats := map[string]int{}
	specs := append(slices.Clone(diffSpecs), segmentSpecs...)
	for _, sp := range segmentSpecs {
		policy[sp.scope] = sp.policy
	}
	lastAuto := map[breaker.Scope]breaker.State{}
	for i := range n {
		// Let the clocks move on by more than every 1ms timing.
		time.Sleep(2 * time.Millisecond)
		if i%13 == 6 {
			op, scope, auto := operatorChange(t, ctx, g.rng, e.st.Redis, mem, step, syncClock, policy)
			stats[op]++
			lastAuto[scope] = auto
			continue
		}
		b := g.batch(specs)
		firstSeen, wasNew := map[breaker.Scope]bool{}, map[breaker.Scope]bool{}
		for _, sc := range b.Scopes {
			if w := step.state(sc.Scope).Window; sc.Policy.NewOnly {
				firstSeen[sc.Scope] = w == nil || (!w.Dormant() && func() bool { _, born := w.Born(); return !born }())
				wasNew[sc.Scope] = w != nil && func() bool { _, born := w.Born(); return born }()
			}
		}
		before := syncClock()
		rr, rerr := e.st.Decide(ctx, b)
		after, _ := e.st.Now(ctx)
		mr, merr := mem.Decide(ctx, b)
		if rerr != nil || merr != nil {
			t.Fatalf("batch %d: Decide: redis %v, memory %v", i, rerr, merr)
		}
		if len(rr.Replayed) == 0 {
			cur := map[breaker.Scope]int64{}
			prior := map[breaker.Scope]decide.State{}
			for _, sc := range b.Scopes {
				st := step.state(sc.Scope)
				if ev := st.Evidence; ev != nil && ev.Seen {
					cur[sc.Scope] = ev.Cur
				}
				prior[sc.Scope] = *st
				if st.Evidence != nil {
					ev := *st.Evidence
					prior[sc.Scope] = decide.State{Status: st.Status, Evidence: &ev}
				}
			}
			sr := step.decide(b, time.UnixMilli(clock.Load()).UTC())
			for j := range b.Scopes {
				if got, want := stableResult(rr.Scopes[j]), stableResult(sr.Scopes[j]); got != want {
					t.Fatalf("batch %d, scope %s (buckets %v):\nredis %s\nStep  %s", i, b.Scopes[j].Scope, b.Scopes[j].Buckets, got, want)
				}
				evidenceStats(stats, b.Scopes[j], sr.Scopes[j], step[b.Scopes[j].Scope].Evidence, cur[b.Scopes[j].Scope])
				releaseStats(stats, b, j, sr, prior[b.Scopes[j].Scope])
				residualStats(stats, b, j, sr, prior[b.Scopes[j].Scope])
				if w := step[b.Scopes[j].Scope].Window; b.Scopes[j].Policy.NewOnly && w != nil {
					_, born := w.Born()
					switch {
					case firstSeen[b.Scopes[j].Scope] && born:
						stats["model version seeded from its rule"]++
					case firstSeen[b.Scopes[j].Scope] && w.Dormant():
						stats["model version dormant from the start"]++
					case w.Dormant() && wasNew[b.Scopes[j].Scope]:
						stats["model version no longer new"]++
					case w.Dormant() && len(b.Scopes[j].Buckets) > 0:
						stats["model version dormant"]++
					}
					if r := sr.Scopes[j]; w.Dormant() && r.Changed && r.Status.Auto == breaker.Open {
						t.Errorf("batch %d: dormant %s tripped (%s)", i, r.Scope, r.Status.Reason)
					}
				}
			}
		}
		if got, want := fmtRecords(rr.Replayed), fmtRecords(mr.Replayed); got != want || (len(rr.Replayed) == 0) != (len(mr.Replayed) == 0) {
			t.Fatalf("batch %d %+v: Replayed\nredis  %s\nmemory %s", i, b.Partitions, got, want)
		}
		if len(rr.Replayed) > 0 {
			stats["replayed"]++
			if rr.Scopes != nil || mr.Scopes != nil {
				t.Fatalf("batch %d: replay with scopes: redis %d, memory %d", i, len(rr.Scopes), len(mr.Scopes))
			}
			continue
		}
		if rr.Now.Before(before) || rr.Now.After(after) {
			t.Errorf("batch %d: Result.Now = %v; want between %v and %v", i, rr.Now, before, after)
		}
		if len(rr.Scopes) != len(b.Scopes) || len(mr.Scopes) != len(b.Scopes) {
			t.Fatalf("batch %d: %d scopes; redis returned %d, memory %d", i, len(b.Scopes), len(rr.Scopes), len(mr.Scopes))
		}
		for j := range b.Scopes {
			got, want := stableResult(rr.Scopes[j]), stableResult(mr.Scopes[j])
			if got != want {
				t.Fatalf("batch %d, scope %s (buckets %v):\nredis  %s\nmemory %s", i, b.Scopes[j].Scope, b.Scopes[j].Buckets, got, want)
			}
			if rr.Scopes[j].Scope != b.Scopes[j].Scope {
				t.Fatalf("batch %d: result %d is %s; want %s", i, j, rr.Scopes[j].Scope, b.Scopes[j].Scope)
			}
			if s := rr.Scopes[j].Status; s.Since.After(rr.Now) || s.TrippedAt.After(rr.Now) {
				t.Errorf("batch %d, %s: redis status %+v is after Now %v", i, rr.Scopes[j].Scope, s, rr.Now)
			}
			if r := rr.Scopes[j]; r.Changed && r.Status.Auto == breaker.Open {
				if dim, _ := r.Scope.Segment(); dim != "" {
					stats["segment trips "+dim]++
				}
			}
			if r := rr.Scopes[j]; r.Changed {
				if lastAuto[r.Scope] == breaker.Probation && r.Status.Auto == breaker.Open {
					stats["trip in probation"]++
					if r.Status.Reason == string(breaker.ReasonEvidence) {
						stats["to open evidence in probation"]++
					}
				}
				lastAuto[r.Scope] = r.Status.Auto
				stats["changed"]++
				stats["to "+string(r.Status.Auto)+" "+r.Status.Reason]++
				if r.Status.State != r.Status.Auto {
					stats["auto change under "+string(r.Status.State)]++
				}
			}
			if rr.Scopes[j].Counts.BaselineReady {
				stats["baseline ready"]++
			}
			if rr.Scopes[j].Counts.Learning {
				stats["learning"]++
			}
			if len(rr.Scopes[j].Status.HeldScopes) > 0 && rr.Scopes[j].Changed {
				stats["targeted hold"]++
			}
			for _, bk := range b.Scopes[j].Buckets {
				if !b.Counted(bk, rr) {
					if lastAuto[b.Scopes[j].Scope] == breaker.Probation {
						stats["counted on probation: narrower scope holds"]++
					} else {
						stats["not counted: narrower scope holds"]++
					}
				}
			}
		}
	}

	// The stores agree on every breaker in the end.
	rl, err := e.st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ml, _ := mem.List(ctx)
	fmtList := func(l []store.ScopeStatus) string {
		slices.SortFunc(l, func(a, b store.ScopeStatus) int { return cmp.Compare(a.Scope, b.Scope) })
		var s []string
		for _, x := range l {
			s = append(s, string(x.Scope)+" "+stable(x.Status))
		}
		return strings.Join(s, "\n")
	}
	syncClock()
	if got, want := fmtList(rl), fmtList(ml); got != want {
		t.Errorf("List:\nredis\n%s\nmemory\n%s", got, want)
	}
	// Both stores tell the same counts, the detector's included.
	for _, sp := range specs {
		rc, rat, rok, rerr := e.st.Counts(ctx, sp.scope, sp.policy)
		mc, mat, mok, merr := mem.Counts(ctx, sp.scope, sp.policy)
		if rerr != nil || merr != nil || rok != mok || !rat.Equal(mat) || rc != mc {
			t.Errorf("Counts(%s): redis %+v at %v (%v, %v); memory %+v at %v (%v, %v)", sp.scope, rc, rat, rok, rerr, mc, mat, mok, merr)
		}
		if sp.policy.EvidenceOn() && rc.EvidenceReady {
			stats["counts with evidence"]++
		}
	}
	t.Logf("seed %d: %v", seed, stats)
	return stats
}

// evidenceStats counts the detector's branches that a decided scope
// reached, from its result and its detector's state after the batch.
func evidenceStats(stats map[string]int, sc decide.ScopeCounts, r decide.ScopeResult, ev *breaker.Evidence, before int64) {
	p := sc.Policy
	if !p.EvidenceOn() || ev == nil {
		return
	}
	c := r.Counts
	if c.EvidenceReady {
		stats["evidence ready"]++
		if c.Expected == p.EvidenceMinExpected {
			stats["evidence floored expectation"]++
		}
	}
	if ev.S > 0 {
		stats["evidence rising"]++
	}
	if p.HoldContributors && ev.R < ev.S {
		stats["evidence residual below"]++
		if s, _, _, ready := ev.Check(p); ready && ev.Residual(p)+p.EvidenceThreshold/2 < s {
			stats["evidence residual gates"]++
		}
	}
	if ev.Disp > 1 && ev.DispN == int64(p.EvidenceDays)*p.BinsPerSlot() {
		stats["evidence dispersion learned"]++
	}
	if r.Status.Auto == breaker.Open && ev.S == p.EvidenceThreshold {
		stats["evidence capped while open"]++
	}
	learned, full := 0, 0
	for k := range ev.Learned {
		if ev.Learned[k] > 0 {
			learned++
		}
		if ev.Learned[k] == int64(p.EvidenceDays)*p.BinsPerSlot() {
			full++
		}
	}
	if learned > 0 && learned < breaker.SeasonSlots {
		stats["evidence learned some slots"]++
	}
	if full > 0 && r.Status.Auto != breaker.Open && ev.S >= p.EvidenceThreshold/2 {
		stats["evidence frozen slot"]++
	}
	for _, bk := range sc.Buckets {
		if before != 0 && bk.At/ev.Bin > before+1+p.MaxGapBins() {
			stats["evidence long gap"]++
		}
	}
	if r.Changed && r.Status.Auto == breaker.Open && r.Status.Reason == string(breaker.ReasonEvidence) {
		if r.Status.Onset.UnixMilli() < ev.Cur*ev.Bin {
			stats["evidence onset before the open bin"]++
		}
		if p.HoldContributors {
			for _, h := range r.Status.HeldScopes {
				if h != breaker.RuleScope(h.Rule()) {
					stats["evidence trip holds only a deeper scope"]++
				}
			}
			if len(r.Status.HeldScopes) > 0 {
				stats["evidence trip targeted"]++
			} else {
				stats["evidence trip holds all"]++
			}
		}
	}
}

// releaseStats counts the detector's release branches (breaker.Evidence.Add
// after the breaker was reset, closed automatically or its override ended)
// that scope j of batch b reached, from its state before the batch.
func releaseStats(stats map[string]int, b decide.Batch, j int, res decide.Result, prior decide.State) {
	sc := b.Scopes[j]
	p := sc.Policy
	ev := prior.Evidence
	if !p.EvidenceOn() || ev == nil || !ev.Held || ev.Bin != p.EvidenceBinMillis() {
		return
	}
	st, _ := breaker.Expire(prior.Status, res.Now)
	if st.Auto == breaker.Open || st.Holds() {
		return
	}
	for _, bk := range sc.Buckets {
		if !(breaker.CountsHeld(st) || b.Counted(bk, res) || p.HoldContributors) {
			continue
		}
		// The first action the detector counts releases it; against the
		// same step without a release (but its bins closed frozen).
		e, kept := *ev, *ev
		e.Add(p, bk.At, bk.Count, false)
		kept.Add(p, bk.At, bk.Count, true)
		switch {
		case e.S != kept.S && kept.S >= p.EvidenceThreshold-breaker.ReleaseMargin && kept.Since >= 0:
			stats["evidence restarted on release: the rise ended"]++
		case e.S != kept.S && kept.S >= p.EvidenceThreshold-breaker.ReleaseMargin:
			stats["evidence restarted on release: no rise since the trip"]++
		case e.S != kept.S:
			stats["evidence restarted on release"]++
		case e.S > 0:
			stats["evidence kept on release"]++
		}
		return
	}
}

// residualStats counts the residual evidence's branch that keeps R over a
// bin of which narrower breakers held some, when scope j of batch b closed
// such a bin with its first action.
func residualStats(stats map[string]int, b decide.Batch, j int, res decide.Result, prior decide.State) {
	sc := b.Scopes[j]
	p := sc.Policy
	ev := prior.Evidence
	if !p.EvidenceOn() || !p.HoldContributors || ev == nil || !ev.Seen || ev.Bin != p.EvidenceBinMillis() || len(sc.Buckets) == 0 {
		return
	}
	bk := sc.Buckets[0]
	if bk.At/ev.Bin != ev.Cur+1 || ev.XR >= ev.X || ev.R <= 0 || ev.R >= p.EvidenceThreshold || ev.Held {
		return
	}
	e := *ev
	e.Count(p, bk.At, bk.Count, 0, false)
	if e.R == ev.R {
		stats["evidence residual kept over a held bin"]++
	}
}

// operatorChange applies the same random operator change to both stores
// and compares the transitions.
func operatorChange(t *testing.T, ctx context.Context, rng *rand.Rand, r *store.Redis, m *store.Memory, step stepper,
	syncClock func() time.Time, policy map[breaker.Scope]breaker.Policy,
) (op string, scope breaker.Scope, auto breaker.State) {
	t.Helper()
	sp := diffSpecs[rng.IntN(len(diffSpecs))]
	manual := []breaker.State{breaker.ForcedOpen, breaker.ForcedClosed, breaker.Shadow}
	to := manual[rng.IntN(len(manual))]
	var expiry time.Duration
	switch rng.IntN(3) {
	case 0:
		expiry = time.Millisecond // expires before the next batch
	case 1:
		expiry = time.Hour
	}
	reset := rng.IntN(4) == 0
	op = "override " + string(to)
	if reset {
		op = "reset"
	}
	fn := func(s breaker.Status, now time.Time) (breaker.Status, error) {
		if reset {
			return breaker.Reset(policy[sp.scope], s, "op", "reset", now), nil
		}
		var until time.Time
		if expiry > 0 {
			until = now.Add(expiry)
		}
		return breaker.Override(s, to, "op", "test", until, now)
	}
	now := syncClock()
	rt, rerr := r.Update(ctx, sp.scope, fn)
	mt, merr := m.Update(ctx, sp.scope, fn)
	st, serr := step.update(sp.scope, fn, now)
	if rerr != nil || merr != nil || serr != nil {
		t.Fatalf("%s %s: Update: redis %v, memory %v, Step %v", op, sp.scope, rerr, merr, serr)
	}
	if got, want := stable(rt.From)+" -> "+stable(rt.To), stable(st.From)+" -> "+stable(st.To); got != want {
		t.Fatalf("%s %s:\nredis %s\nStep  %s", op, sp.scope, got, want)
	}
	if got, want := stable(rt.From)+" -> "+stable(rt.To), stable(mt.From)+" -> "+stable(mt.To); got != want || rt.Scope != mt.Scope {
		t.Fatalf("%s %s:\nredis  %s\nmemory %s", op, sp.scope, got, want)
	}
	if rt.From.Reason == "override expired" {
		op = "override expired"
	}
	return op, sp.scope, rt.To.Auto
}

// TestBoundaries decides batches at the exact edges of the thresholds, the
// window and the baseline period on both stores.
func TestBoundaries(t *testing.T) {
	T := evt0
	ready := spec{breaker.RuleScope("ready"), breaker.Policy{Window: time.Second, Baseline: 30 * time.Second, Factor: 1, MinActions: 1}}
	maxed := spec{breaker.RuleScope("max"), breaker.Policy{Window: time.Second, MaxActions: 12.345}}
	minimum := spec{breaker.RuleScope("min"), breaker.Policy{Window: time.Second, Baseline: 30 * time.Second, Factor: 2, MinActions: 2.5}}
	edge := spec{breaker.RuleScope("edge"), breaker.Policy{Window: time.Second, MaxActions: 2}}
	base := func(sp spec, milli int64) float64 {
		g := sp.policy.Grid()
		return float64(milli) * float64(g.Window) / float64(breaker.CoarseSlots*g.Coarse) / breaker.Milli
	}
	type want struct {
		state  breaker.State
		reason string
		counts breaker.Counts
	}
	type item struct {
		sp     spec
		at, wt int64
		want   want
	}
	closed := func(win, b float64, r bool) want {
		return want{breaker.Closed, "", breaker.Counts{Window: win, Baseline: b, BaselineReady: r}}
	}
	open := func(reason string, win, b float64, r bool) want {
		return want{breaker.Open, reason, breaker.Counts{Window: win, Baseline: b, BaselineReady: r}}
	}
	steps := [][]item{
		{
			{ready, T, 1000, closed(1, 0, false)},
			{maxed, T, 12345, closed(12.345, 0, false)},
			{minimum, T - 30_000, 1, closed(0.001, 0, false)},
			{edge, T, 2000, closed(2, 0, false)},
		},
		{
			// 29.95s of history: not ready.
			{ready, T + 29_950, 2000, closed(2, base(ready, 1000), false)},
			// A thousandth above max_actions.
			{maxed, T + 50, 1, open("max_actions", 12.346, base(maxed, 12345), false)},
			// A thousandth below min_actions.
			{minimum, T, 2499, closed(2.499, base(minimum, 1), true)},
			// Bucket T leaves the window 20 buckets later.
			{edge, T + 1000, 1000, closed(1, base(edge, 2000), false)},
		},
		{
			// Exactly 30s of history: ready.
			{ready, T + 30_000, 2000, open("baseline_factor", 4, base(ready, 3000), true)},
			{maxed, T + 100, 0, open("max_actions", 12.346, base(maxed, 12346), false)},
			// Exactly min_actions.
			{minimum, T, 1, open("baseline_factor", 2.5, base(minimum, 1), true)},
			// A late bucket counts in its own window, which still holds bucket T.
			{edge, T + 999, 1500, open("max_actions", 3.5, base(edge, 2000), false)},
		},
	}
	for name, d := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := ctxT(t)
			for i, step := range steps {
				b := decide.Batch{Partitions: []decide.Range{rangeOf("b", 0, int64(i), int64(i), -1)}}
				for _, it := range step {
					b.Scopes = append(b.Scopes, decide.ScopeCounts{
						Scope: it.sp.scope, Policy: it.sp.policy,
						Buckets: []decide.Bucket{{At: it.at, Weight: it.wt}},
					})
				}
				res, err := d.Decide(ctx, b)
				if err != nil || len(res.Scopes) != len(step) {
					t.Fatalf("step %d: Decide = %+v, %v", i, res, err)
				}
				for j, it := range step {
					r := res.Scopes[j]
					got := want{r.Status.State, r.Status.Reason, r.Counts}
					if got.state == breaker.Closed {
						got.reason = ""
					}
					if got != it.want {
						t.Errorf("step %d, %s: got %+v; want %+v", i, it.sp.scope, got, it.want)
					}
				}
			}
		})
	}
}

// --- redeliveries -------------------------------------------------------

// stores returns a fresh Redis store and a fresh Memory store.
func stores(t *testing.T) map[string]decider {
	e := newRedis(t, true)
	return map[string]decider{"redis": e.st, "memory": store.NewMemory(time.Now)}
}

var (
	tripPol = breaker.Policy{Window: time.Minute, MaxActions: 2}
	sc      = breaker.RuleScope("spam")
	evt0    = int64(1_741_944_000_000)
)

func rangeOf(topic string, p int, first, last, committed int64) decide.Range {
	return decide.Range{Topic: topic, Partition: p, First: first, Last: last, Committed: committed}
}

func counts(weight int64, at int64) []decide.ScopeCounts {
	return []decide.ScopeCounts{{Scope: sc, Policy: tripPol, Buckets: []decide.Bucket{{At: at, Weight: weight}}}}
}

// windowOf decides a zero-weight probe on fresh offsets and returns the
// window count of sc: what has been counted so far.
func windowOf(t *testing.T, ctx context.Context, d decider, p int, off int64) float64 {
	t.Helper()
	res, err := d.Decide(ctx, decide.Batch{Partitions: []decide.Range{rangeOf("probe", p, off, off, -1)}, Scopes: counts(0, evt0)})
	if err != nil || len(res.Replayed) > 0 || len(res.Scopes) != 1 {
		t.Fatalf("probe: %+v, %v", res, err)
	}
	return res.Scopes[0].Counts.Window
}

func TestRedelivery(t *testing.T) {
	for name, d := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := ctxT(t)
			first := decide.Batch{Partitions: []decide.Range{rangeOf("a", 0, 0, 9, -1), rangeOf("a", 1, 100, 104, -1)}, Scopes: counts(3000, evt0)}
			res, err := d.Decide(ctx, first)
			if err != nil || len(res.Replayed) != 0 || len(res.Scopes) != 1 {
				t.Fatalf("Decide = %+v, %v", res, err)
			}
			st := res.Scopes[0].Status
			if !res.Scopes[0].Changed || st.State != breaker.Open || st.Generation != 1 || res.Scopes[0].Counts.Window != 3 {
				t.Fatalf("first Decide = %s; want a trip", stableResult(res.Scopes[0]))
			}
			holding := map[breaker.Scope]uint64{sc: 1}

			// The same batch again: answered from the records, nothing counted.
			again, err := d.Decide(ctx, first)
			if err != nil {
				t.Fatal(err)
			}
			want := fmtRecords([]decide.Record{
				{Topic: "a", Partition: 0, First: 0, Last: 9, Holding: holding},
				{Topic: "a", Partition: 1, First: 100, Last: 104, Holding: holding},
			})
			if got := fmtRecords(again.Replayed); got != want || again.Scopes != nil {
				t.Fatalf("redelivered Decide = %s, %d scopes; want %s and none", got, len(again.Scopes), want)
			}
			if w := windowOf(t, ctx, d, 0, 0); w != 3 {
				t.Fatalf("window after a redelivery = %v; want 3 (counted once)", w)
			}
			for _, r := range again.Replayed {
				if !r.Covers("a", r.Partition, r.First) || !r.Covers("a", r.Partition, r.Last) || r.Covers("a", r.Partition, r.Last+1) ||
					r.Covers("b", r.Partition, r.First) {
					t.Errorf("Record %+v covers the wrong offsets", r)
				}
			}

			// A batch that partly overlaps: only the records it touches, nothing counted.
			part := decide.Batch{Partitions: []decide.Range{rangeOf("a", 0, 5, 14, -1), rangeOf("a", 2, 0, 3, -1)}, Scopes: counts(5000, evt0)}
			res, err = d.Decide(ctx, part)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fmtRecords(res.Replayed), fmtRecords([]decide.Record{{Topic: "a", Partition: 0, First: 0, Last: 9, Holding: holding}}); got != want {
				t.Fatalf("overlapping Decide replayed %s; want %s", got, want)
			}
			if w := windowOf(t, ctx, d, 0, 1); w != 3 {
				t.Fatalf("window after an overlapping batch = %v; want 3", w)
			}
			// The rest is decided in a new call, and then both are replayed.
			res, err = d.Decide(ctx, decide.Batch{Partitions: []decide.Range{rangeOf("a", 0, 10, 14, -1), rangeOf("a", 2, 0, 3, -1)}, Scopes: counts(1000, evt0)})
			if err != nil || len(res.Replayed) != 0 || res.Scopes[0].Counts.Window != 4 || res.Scopes[0].Changed {
				t.Fatalf("rest of the batch = %+v, %v; want counted, still open", res, err)
			}
			res, err = d.Decide(ctx, part)
			if err != nil || len(res.Replayed) != 3 {
				t.Fatalf("overlapping Decide again = %s, %v; want 3 records", fmtRecords(res.Replayed), err)
			}
			if w := windowOf(t, ctx, d, 0, 2); w != 4 {
				t.Fatalf("window = %v; want 4", w)
			}

			// Records of batches that end below the committed offset are dropped.
			res, err = d.Decide(ctx, decide.Batch{Partitions: []decide.Range{rangeOf("a", 0, 15, 19, 10)}, Scopes: counts(0, evt0)})
			if err != nil || len(res.Replayed) != 0 {
				t.Fatalf("Decide = %+v, %v", res, err)
			}
			res, err = d.Decide(ctx, decide.Batch{Partitions: []decide.Range{rangeOf("a", 0, 0, 14, 10)}, Scopes: counts(0, evt0)})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fmtRecords(res.Replayed), fmtRecords([]decide.Record{{Topic: "a", Partition: 0, First: 10, Last: 14, Holding: holding}}); got != want {
				t.Fatalf("after commit 10, replayed %s; want %s", got, want)
			}
			// A record that held nothing has an empty holding set.
			d.Update(ctx, sc, func(s breaker.Status, now time.Time) (breaker.Status, error) {
				return breaker.Reset(tripPol, s, "op", "fixed", now), nil
			})
			res, err = d.Decide(ctx, decide.Batch{Partitions: []decide.Range{rangeOf("c", 0, 0, 0, -1)}, Scopes: counts(0, evt0+10*60_000)})
			if err != nil || res.Scopes[0].Status.Holds() {
				t.Fatalf("Decide after reset = %+v, %v", res, err)
			}
			res, err = d.Decide(ctx, decide.Batch{Partitions: []decide.Range{rangeOf("c", 0, 0, 0, -1)}})
			if err != nil || len(res.Replayed) != 1 || res.Replayed[0].Holding == nil || len(res.Replayed[0].Holding) != 0 {
				t.Fatalf("replay of a batch that held nothing = %+v, %v", res, err)
			}
		})
	}
}

func TestRecordsPruned(t *testing.T) {
	ctx := ctxT(t)
	e := newRedis(t, true)
	key := "{" + prefix + "}:o:a:0"
	for i := range int64(10) {
		b := decide.Batch{Partitions: []decide.Range{rangeOf("a", 0, i*10, i*10+9, -1)}, Scopes: counts(100, evt0)}
		if _, err := e.st.Decide(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// Ten records and the floor.
	if n := e.rc.HLen(ctx, key).Val(); n != 11 {
		t.Fatalf("HLEN %s = %d; want 10 records and the floor", key, n)
	}
	// Commit up to offset 70: the records ending at 9..69 go.
	if _, err := e.st.Decide(ctx, decide.Batch{Partitions: []decide.Range{rangeOf("a", 0, 100, 109, 70)}}); err != nil {
		t.Fatal(err)
	}
	if n := e.rc.HLen(ctx, key).Val(); n != 5 {
		t.Fatalf("HLEN %s = %d after committing 70; want 4 records (70-79, 80-89, 90-99, 100-109) and the floor", key, n)
	}
	if f := e.rc.HGet(ctx, key, "floor").Val(); f != "70" {
		t.Fatalf("floor = %q after committing 70; want 70", f)
	}
	ttl := e.rc.PTTL(ctx, key).Val()
	if ttl <= 0 || ttl > time.Hour {
		t.Errorf("PTTL %s = %v; want at most RecordTTL", key, ttl)
	}
	// A pruned range comes back only if the committed offset moved back
	// (a stale commit, a rewound group): its records are rebuilt from the
	// outputs before anything is decided.
	pruned := decide.Batch{Partitions: []decide.Range{rangeOf("a", 0, 50, 59, 70)}, Scopes: counts(100, evt0)}
	res, err := e.st.Redis.Decide(ctx, pruned)
	if err != nil || len(res.Rebuild) != 1 || res.Rebuild[0].First != 50 || len(res.Scopes) != 0 {
		t.Fatalf("Decide of a pruned range = %+v, %v; want a rebuild of a/0 from 50", res, err)
	}
	rebuilt := decide.Record{Topic: "a", Partition: 0, First: 50, Last: 55, Holding: map[breaker.Scope]uint64{"rule:spam": 3}}
	if err := e.st.Rebuild(ctx, "a", 0, 50, []decide.Record{rebuilt}); err != nil {
		t.Fatal(err)
	}
	res, err = e.st.Redis.Decide(ctx, pruned)
	if want := fmtRecords([]decide.Record{rebuilt}); err != nil || fmtRecords(res.Replayed) != want {
		t.Fatalf("Decide of a rebuilt range = %+v, %v; want the rebuilt record %s", res, err, want)
	}
	// Offsets the outputs did not have are decided anew.
	res, err = e.st.Redis.Decide(ctx, decide.Batch{Partitions: []decide.Range{rangeOf("a", 0, 56, 59, 70)}, Scopes: counts(100, evt0)})
	if err != nil || len(res.Replayed) != 0 || len(res.Rebuild) != 0 || len(res.Scopes) != 1 {
		t.Fatalf("Decide of offsets not on the outputs = %+v, %v; want decided", res, err)
	}
}

// retryHook runs every script call twice, as go-redis does when a reply is
// lost and it retries: the second reply is what the caller sees.
type retryHook struct{ calls atomic.Int64 }

func (h *retryHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *retryHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *retryHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		name := cmd.Name()
		if name != "evalsha" && name != "eval" {
			return next(ctx, cmd)
		}
		h.calls.Add(1)
		if err := next(ctx, cmd); err != nil {
			return err
		}
		return next(ctx, cmd)
	}
}

func TestRetriedCallCountsOnce(t *testing.T) {
	ctx := ctxT(t)
	e := newRedis(t, true)
	rc := redis.NewClient(&redis.Options{Addr: e.srv.Addr()})
	t.Cleanup(func() { rc.Close() })
	hook := &retryHook{}
	rc.AddHook(hook)
	st, err := store.NewRedis(rc, store.RedisOptions{Prefix: prefix, RecordTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b := decide.Batch{Partitions: []decide.Range{rangeOf("a", 0, 0, 4, -1)}, Scopes: counts(3000, evt0)}
	res, err := fresh{st}.Decide(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if hook.calls.Load() == 0 {
		t.Fatal("the hook saw no script call")
	}
	// The caller sees the record of its own first execution.
	want := fmtRecords([]decide.Record{{Topic: "a", Partition: 0, First: 0, Last: 4, Holding: map[breaker.Scope]uint64{sc: 1}}})
	if got := fmtRecords(res.Replayed); got != want {
		t.Fatalf("retried Decide = %s; want %s", got, want)
	}
	if w := windowOf(t, ctx, e.st, 0, 0); w != 3 {
		t.Fatalf("window after a retried call = %v; want 3", w)
	}
	// Identical calls made by the caller itself.
	b2 := decide.Batch{Partitions: []decide.Range{rangeOf("a", 0, 5, 9, -1)}, Scopes: counts(1000, evt0)}
	r1, err1 := e.st.Decide(ctx, b2)
	r2, err2 := e.st.Decide(ctx, b2)
	if err1 != nil || err2 != nil || len(r1.Replayed) != 0 || len(r2.Replayed) != 1 {
		t.Fatalf("Decide twice = %+v, %v; %+v, %v", r1, err1, r2, err2)
	}
	if w := windowOf(t, ctx, e.st, 0, 1); w != 4 {
		t.Fatalf("window after a repeated call = %v; want 4", w)
	}
}

// --- state loss, restore, update ---------------------------------------

func TestStateLost(t *testing.T) {
	ctx := ctxT(t)
	e := newRedis(t, false)
	b := decide.Batch{Partitions: []decide.Range{rangeOf("a", 0, 0, 0, -1)}, Scopes: counts(3000, evt0)}
	if _, err := e.st.Decide(ctx, b); !errors.Is(err, store.ErrStateLost) {
		t.Fatalf("Decide on a new Redis = %v; want ErrStateLost", err)
	}
	if n := e.rc.DBSize(ctx).Val(); n != 0 {
		t.Fatalf("a refused Decide wrote %d keys", n)
	}
	if _, err := e.st.Restore(ctx, nil); err != nil {
		t.Fatal(err)
	}
	res, err := e.st.Decide(ctx, b)
	if err != nil || !res.Scopes[0].Status.Holds() {
		t.Fatalf("Decide after Restore = %+v, %v", res, err)
	}
	tripped := res.Scopes[0].Status

	if err := e.rc.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	b.Partitions[0] = rangeOf("a", 0, 1, 1, -1)
	if _, err := e.st.Decide(ctx, b); !errors.Is(err, store.ErrStateLost) {
		t.Fatalf("Decide after FLUSHALL = %v; want ErrStateLost", err)
	}
	if n, err := e.st.Restore(ctx, []store.ScopeStatus{{Scope: sc, Status: tripped}}); err != nil || n != 1 {
		t.Fatalf("Restore = %d, %v; want 1", n, err)
	}
	res, err = e.st.Decide(ctx, decide.Batch{Partitions: []decide.Range{rangeOf("a", 0, 2, 2, -1)}, Scopes: counts(0, evt0)})
	if err != nil || stable(res.Scopes[0].Status) != stable(tripped) || res.Scopes[0].Changed {
		t.Fatalf("Decide after restore = %+v, %v; want %s unchanged", res, err, stable(tripped))
	}

	// A restart of redis-server without persistence loses everything too.
	e.srv.Restart(t)
	if _, err := e.st.Decide(ctx, b); !errors.Is(err, store.ErrStateLost) {
		t.Fatalf("Decide after a restart = %v; want ErrStateLost", err)
	}
}

func sameStatus(a, b breaker.Status) bool {
	return a.State == b.State && a.Auto == b.Auto && a.Generation == b.Generation &&
		a.Since.Equal(b.Since) && a.TrippedAt.Equal(b.TrippedAt) && a.Reason == b.Reason &&
		a.Actor == b.Actor && a.Until.Equal(b.Until) && a.ProbationUntil.Equal(b.ProbationUntil)
}

func TestRestore(t *testing.T) {
	ctx := ctxT(t)
	e := newRedis(t, true)
	a, b := breaker.RuleScope("a"), breaker.ActionScope("a", "ban")
	force := func(s breaker.Status, now time.Time) (breaker.Status, error) {
		return breaker.Override(s, breaker.ForcedOpen, "op", "r", time.Time{}, now)
	}
	for range 3 {
		if _, err := e.st.Update(ctx, a, force); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	old := breaker.Status{State: breaker.Closed, Auto: breaker.Closed, Generation: 2, Since: now}
	newer := breaker.Status{
		State: breaker.ForcedClosed, Auto: breaker.Open, Generation: 4, Since: now.Add(-time.Minute),
		TrippedAt: now.Add(-time.Hour), Reason: "known false positive", Actor: "erin", Until: now.Add(24 * time.Hour),
	}
	in := []store.ScopeStatus{{Scope: a, Status: old}, {Scope: b, Status: newer}}
	n, err := e.st.Restore(ctx, in)
	if err != nil || n != 1 {
		t.Fatalf("Restore = %d, %v; want 1 (only the newer generation)", n, err)
	}
	if got, _ := e.st.Status(ctx, a); got.Generation != 3 || got.State != breaker.ForcedOpen {
		t.Errorf("Status(a) = %s; want the newer forced_open g3 kept", stable(got))
	}
	if got, _ := e.st.Status(ctx, b); !sameStatus(got, newer) {
		t.Errorf("Status(b) = %+v; want %+v", got, newer)
	}
	if e.rc.Exists(ctx, "{"+prefix+"}:epoch").Val() != 1 {
		t.Errorf("Restore did not mark the store ready")
	}
	// Idempotent.
	if n, err := e.st.Restore(ctx, in); err != nil || n != 0 {
		t.Errorf("Restore again = %d, %v; want 0", n, err)
	}
	// A newer generation replaces.
	newest := newer
	newest.Generation = 9
	newest.State = breaker.Open
	newest.Until = time.Time{}
	if n, err := e.st.Restore(ctx, []store.ScopeStatus{{Scope: b, Status: newest}}); err != nil || n != 1 {
		t.Errorf("Restore newer = %d, %v; want 1", n, err)
	}
	if got, _ := e.st.Status(ctx, b); !sameStatus(got, newest) {
		t.Errorf("Status(b) = %+v; want %+v", got, newest)
	}
	l, err := e.st.List(ctx)
	if err != nil || len(l) != 2 {
		t.Errorf("List = %+v, %v; want a and b", l, err)
	}
	// Decisions go on from the restored status.
	res, err := e.st.Decide(ctx, decide.Batch{
		Partitions: []decide.Range{rangeOf("a", 0, 0, 0, -1)},
		Scopes:     []decide.ScopeCounts{{Scope: b, Policy: tripPol, Buckets: []decide.Bucket{{At: evt0, Weight: 1000}}}},
	})
	if err != nil || res.Scopes[0].Status.Generation != 9 || !res.Scopes[0].Status.Holds() {
		t.Errorf("Decide after restore = %+v, %v", res, err)
	}
}

func TestUpdate(t *testing.T) {
	for name, d := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := ctxT(t)
			s := breaker.RuleScope("u")
			tr, err := d.Update(ctx, s, func(st breaker.Status, now time.Time) (breaker.Status, error) {
				return breaker.Override(st, breaker.ForcedOpen, "op", "kill", now.Add(300*time.Millisecond), now)
			})
			if err != nil || tr.Scope != s || tr.From.Generation != 0 || tr.To.State != breaker.ForcedOpen || tr.To.Generation != 1 {
				t.Fatalf("Update = %+v, %v", tr, err)
			}
			if got, _ := d.Status(ctx, s); got.State != breaker.ForcedOpen || got.Actor != "op" || got.Generation != 1 {
				t.Errorf("Status = %s; want forced_open g1", stable(got))
			}
			// A rejected change leaves the breaker alone.
			_, err = d.Update(ctx, s, func(st breaker.Status, now time.Time) (breaker.Status, error) {
				return breaker.Override(st, breaker.Open, "op", "x", time.Time{}, now)
			})
			if !errors.Is(err, breaker.ErrInvalidState) {
				t.Errorf("Update to open = %v; want ErrInvalidState", err)
			}
			if got, _ := d.Status(ctx, s); got.Generation != 1 {
				t.Errorf("Status after a rejected change = %s", stable(got))
			}
			// The override expires.
			time.Sleep(350 * time.Millisecond)
			if got, _ := d.Status(ctx, s); got.State != breaker.Closed || got.Generation != 2 || got.Reason != "override expired" {
				t.Errorf("Status after expiry = %s; want closed g2 override expired", stable(got))
			}
			tr, err = d.Update(ctx, s, func(st breaker.Status, now time.Time) (breaker.Status, error) {
				return breaker.Override(st, breaker.Shadow, "op", "trial", time.Time{}, now)
			})
			if err != nil || tr.From.Generation != 2 || tr.From.State != breaker.Closed || tr.To.Generation != 3 {
				t.Errorf("Update after expiry = %+v, %v; want from the expired status", tr, err)
			}
		})
	}
}

// TestUpdateAfterStateLoss: an operator change made while Redis has lost its
// state (before any replica restored it) must not be silently undone by the
// restore that follows. Update either refuses with ErrStateLost, or its
// change survives the restore.
func TestUpdateAfterStateLoss(t *testing.T) {
	ctx := ctxT(t)
	e := newRedis(t, true)
	s := breaker.RuleScope("kill")
	// The durable record knows the breaker at generation 5.
	durable := []store.ScopeStatus{{Scope: s, Status: breaker.Status{
		State: breaker.Closed, Auto: breaker.Closed, Generation: 5,
		Since: time.Now().UTC().Truncate(time.Millisecond), Reason: "probation ended",
	}}}
	if _, err := e.st.Restore(ctx, durable); err != nil {
		t.Fatal(err)
	}
	if err := e.rc.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	tr, err := e.st.Update(ctx, s, func(st breaker.Status, now time.Time) (breaker.Status, error) {
		return breaker.Override(st, breaker.ForcedOpen, "op", "kill switch", time.Time{}, now)
	})
	if errors.Is(err, store.ErrStateLost) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	// The next batch finds the store lost and restores from the durable record.
	if _, err := e.st.Decide(ctx, decide.Batch{}); !errors.Is(err, store.ErrStateLost) {
		t.Fatalf("Decide = %v; want ErrStateLost", err)
	}
	if _, err := e.st.Restore(ctx, durable); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.st.Status(ctx, s); got.State != breaker.ForcedOpen {
		t.Errorf("Update on a lost store accepted forced_open as generation %d, then Restore replaced it with %s: "+
			"the kill switch is gone; Update must return ErrStateLost until the store is restored", tr.To.Generation, stable(got))
	}
}

func TestConcurrentUpdates(t *testing.T) {
	for name, d := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := ctxT(t)
			s := breaker.RuleScope("contended")
			manual := []breaker.State{breaker.ForcedOpen, breaker.ForcedClosed, breaker.Shadow}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var gens []uint64
			start := make(chan struct{})
			for i := range 8 {
				wg.Go(func() {
					<-start
					tr, err := d.Update(ctx, s, func(st breaker.Status, now time.Time) (breaker.Status, error) {
						return breaker.Override(st, manual[i%3], fmt.Sprint("op", i), "r", time.Time{}, now)
					})
					if err != nil {
						t.Errorf("Update %d: %v", i, err)
						return
					}
					if tr.To.Generation != tr.From.Generation+1 {
						t.Errorf("Update %d: generation %d -> %d", i, tr.From.Generation, tr.To.Generation)
					}
					mu.Lock()
					gens = append(gens, tr.To.Generation)
					mu.Unlock()
				})
			}
			close(start)
			wg.Wait()
			slices.Sort(gens)
			if !slices.Equal(gens, []uint64{1, 2, 3, 4, 5, 6, 7, 8}) {
				t.Errorf("generations written = %v; want 1..8 once each", gens)
			}
			if got, err := d.Status(ctx, s); err != nil || got.Generation != 8 {
				t.Errorf("Status = %s, %v; want generation 8", stable(got), err)
			}
		})
	}
}

func TestNewRedisOptions(t *testing.T) {
	for _, o := range []store.RedisOptions{
		{Prefix: "", RecordTTL: time.Hour},
		{Prefix: "a{b}", RecordTTL: time.Hour},
		{Prefix: "a b", RecordTTL: time.Hour},
		{Prefix: "bw", RecordTTL: time.Second},
	} {
		if _, err := store.NewRedis(nil, o); err == nil {
			t.Errorf("NewRedis(%+v) = nil error", o)
		}
	}
}

// --- bounded memory -----------------------------------------------------

func TestBoundedMemory(t *testing.T) {
	ctx := ctxT(t)
	e := newRedis(t, true)
	rnd := rand.New(rand.NewPCG(7, 8))
	var specs []spec
	for i := range 50 {
		p := breaker.Policy{
			Window: time.Duration(1+i%5) * time.Second, Baseline: time.Duration(10+i%3*10) * time.Second,
			MaxActions: 50, Factor: 3, MinActions: 5,
		}
		specs = append(specs, spec{breaker.ActionScope(fmt.Sprint("r", i/5), fmt.Sprint("a", i%5)), p})
	}
	evt := evt0
	next, prevFirst := map[int]int64{}, map[int]int64{}
	maxRecords := int64(0)
	maxCoarseRing := int64(0)
	for _, sp := range specs {
		maxCoarseRing = max(maxCoarseRing, sp.policy.Grid().CoarseRing())
	}
	for range 200 {
		evt += 500 + rnd.Int64N(5000) // 200 batches span about 10 minutes of event time
		var b decide.Batch
		for p := range 4 {
			n := 1 + rnd.Int64N(50)
			// Everything before the previous batch is committed.
			b.Partitions = append(b.Partitions, rangeOf("in", p, next[p], next[p]+n-1, prevFirst[p]))
			prevFirst[p] = next[p]
			next[p] += n
		}
		for _, k := range rnd.Perm(len(specs))[:10+rnd.IntN(40)] {
			s := decide.ScopeCounts{Scope: specs[k].scope, Policy: specs[k].policy}
			for range 1 + rnd.IntN(8) {
				s.Buckets = append(s.Buckets, decide.Bucket{At: specs[k].policy.Grid().Bucket(evt - rnd.Int64N(90_000)), Weight: 1000})
			}
			b.Scopes = append(b.Scopes, s)
		}
		if _, err := e.st.Decide(ctx, b); err != nil {
			t.Fatal(err)
		}
		for p := range 4 {
			maxRecords = max(maxRecords, e.rc.HLen(ctx, fmt.Sprintf("{%s}:o:in:%d", prefix, p)).Val())
		}
	}
	if maxRecords--; maxRecords > 2 { // the floor is a field too
		t.Errorf("up to %d records per partition; want at most 2 with commits one batch behind", maxRecords)
	}
	rings := 0
	iter := e.rc.Scan(ctx, 0, "{"+prefix+"}:*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		switch {
		case strings.HasPrefix(k, "{"+prefix+"}:r:"):
			rings++
			n := e.rc.HLen(ctx, k).Val()
			// The slots, first and top.
			if most := breaker.FineRing + maxCoarseRing + 2; n > most {
				t.Errorf("HLEN %s = %d; want at most %d", k, n, most)
			}
			if ttl := e.rc.PTTL(ctx, k).Val(); ttl <= 0 {
				t.Errorf("ring %s has no expiry (PTTL %v)", k, ttl)
			}
		case strings.HasPrefix(k, "{"+prefix+"}:o:"):
			if ttl := e.rc.PTTL(ctx, k).Val(); ttl <= 0 || ttl > time.Hour {
				t.Errorf("records %s: PTTL %v; want at most RecordTTL", k, ttl)
			}
		case strings.HasPrefix(k, "{"+prefix+"}:s:"), k == "{"+prefix+"}:scopes", k == "{"+prefix+"}:epoch":
		default:
			t.Errorf("unexpected key %q", k)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if rings != len(specs) {
		t.Errorf("%d ring keys; want %d", rings, len(specs))
	}
}

// --- benchmark ----------------------------------------------------------

// BenchmarkDecideRedis decides batches of 500 actions over 11 scopes (the
// global total, 5 rules and one action type each) on a real redis-server.
func BenchmarkDecideRedis(b *testing.B) {
	ctx := context.Background()
	e := newRedis(b, true)
	rnd := rand.New(rand.NewPCG(9, 10))
	const actions = 500
	pol := breaker.Policy{Window: time.Minute, Baseline: time.Hour, MaxActions: 1e9, Factor: 100, MinActions: 1e6}
	grid := pol.Grid()
	scopes := []breaker.Scope{breaker.Global}
	for r := range 5 {
		scopes = append(scopes, breaker.RuleScope(fmt.Sprint("rule", r)), breaker.ActionScope(fmt.Sprint("rule", r), "ban"))
	}
	evt := evt0
	var off int64
	batch := func() decide.Batch {
		idx := map[breaker.Scope]int{}
		type key struct {
			s  int
			at int64
		}
		bidx := map[key]int{}
		b := decide.Batch{Partitions: []decide.Range{rangeOf("in", 0, off, off+actions-1, off)}}
		off += actions
		for range actions {
			evt += rnd.Int64N(100)
			r := rnd.IntN(5)
			for _, s := range []breaker.Scope{scopes[0], scopes[1+2*r], scopes[2+2*r]} {
				si, ok := idx[s]
				if !ok {
					si = len(b.Scopes)
					idx[s] = si
					b.Scopes = append(b.Scopes, decide.ScopeCounts{Scope: s, Policy: pol})
				}
				k := key{si, grid.Bucket(evt)}
				if bi, ok := bidx[k]; ok {
					b.Scopes[si].Buckets[bi].Weight += 1000
					b.Scopes[si].Buckets[bi].Count++
					continue
				}
				bidx[k] = len(b.Scopes[si].Buckets)
				b.Scopes[si].Buckets = append(b.Scopes[si].Buckets, decide.Bucket{At: k.at, Weight: 1000, Count: 1})
			}
		}
		return b
	}
	// Prebuild batches so that the loop measures the store.
	batches := make([]decide.Batch, 64)
	for i := range batches {
		batches[i] = batch()
	}
	if len(batches[0].Scopes) != 11 {
		b.Fatalf("%d scopes; want 11", len(batches[0].Scopes))
	}
	// Later rounds over the batches move on in event time.
	span := grid.Bucket(evt-evt0) + grid.Fine
	i := 0
	for b.Loop() {
		bt := batches[i%len(batches)]
		// Fresh offsets for every call, or it would be a redelivery.
		bt.Partitions = []decide.Range{rangeOf("in", 0, int64(i)*actions, int64(i+1)*actions-1, int64(i)*actions)}
		if shift := int64(i/len(batches)) * span; shift > 0 {
			bt.Scopes = slices.Clone(bt.Scopes)
			for k := range bt.Scopes {
				bs := slices.Clone(bt.Scopes[k].Buckets)
				for j := range bs {
					bs[j].At += shift
				}
				bt.Scopes[k].Buckets = bs
			}
		}
		res, err := e.st.Decide(ctx, bt)
		if err != nil || len(res.Scopes) != 11 {
			b.Fatalf("Decide = %d scopes, %v", len(res.Scopes), err)
		}
		i++
	}
	b.ReportMetric(float64(actions)*float64(b.N)/b.Elapsed().Seconds(), "actions/s")
}

// TestLostRecordsAskForRebuild: after Redis lost its data and the states
// are restored, a redelivered batch is not decided afresh: the store asks
// for the partition's records to be rebuilt from the outputs, then answers
// from them.
func TestLostRecordsAskForRebuild(t *testing.T) {
	ctx := ctxT(t)
	e := newRedis(t, true)
	b := decide.Batch{Partitions: []decide.Range{rangeOf("a", 0, 0, 9, -1)}, Scopes: counts(100, evt0)}
	if _, err := e.st.Decide(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := e.rc.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Redis.Decide(ctx, b); !errors.Is(err, store.ErrStateLost) {
		t.Fatalf("Decide after a wipe: %v; want ErrStateLost", err)
	}
	if _, err := e.st.Restore(ctx, nil); err != nil {
		t.Fatal(err)
	}
	res, err := e.st.Redis.Decide(ctx, b)
	if err != nil || len(res.Rebuild) != 1 || res.Rebuild[0].Partition != 0 || res.Rebuild[0].First != 0 || len(res.Scopes) != 0 {
		t.Fatalf("Decide of a redelivery after the restore = %+v, %v; want a rebuild of a/0 from 0", res, err)
	}
	if n := e.rc.Exists(ctx, "{"+prefix+"}:r:"+string(sc)).Val(); n != 0 {
		t.Fatalf("the batch was counted before the rebuild")
	}
	first := decide.Record{Topic: "a", Partition: 0, First: 0, Last: 9, Holding: map[breaker.Scope]uint64{}}
	if err := e.st.Rebuild(ctx, "a", 0, 0, []decide.Record{first}); err != nil {
		t.Fatal(err)
	}
	res, err = e.st.Redis.Decide(ctx, b)
	if want := fmtRecords([]decide.Record{first}); err != nil || fmtRecords(res.Replayed) != want {
		t.Fatalf("Decide after the rebuild = %+v, %v; want %s", res, err, want)
	}
	// A rebuilt record that starts where a kept one starts replaces it
	// only if it reaches further.
	longer := decide.Record{Topic: "a", Partition: 0, First: 0, Last: 19, Holding: map[breaker.Scope]uint64{}}
	shorter := decide.Record{Topic: "a", Partition: 0, First: 0, Last: 4, Holding: map[breaker.Scope]uint64{}}
	for _, r := range []decide.Record{longer, shorter} {
		if err := e.st.Rebuild(ctx, "a", 0, 0, []decide.Record{r}); err != nil {
			t.Fatal(err)
		}
	}
	res, err = e.st.Redis.Decide(ctx, decide.Batch{Partitions: []decide.Range{rangeOf("a", 0, 15, 19, -1)}, Scopes: counts(100, evt0)})
	if want := fmtRecords([]decide.Record{longer}); err != nil || fmtRecords(res.Replayed) != want {
		t.Fatalf("Decide of offsets 15-19 after two rebuilds = %+v, %v; want %s", res, err, want)
	}
}

package e2e

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/traffic"
	"github.com/breakwater/breakwater/wire"
)

// TestTwoReplicasShareCounts runs two daemons in one consumer group over
// four input partitions with one Redis. One rule's limit is set so that
// neither replica's partitions alone ever reach it over the whole test, but
// both together do: the breaker can only trip on the shared count.
func TestTwoReplicasShareCounts(t *testing.T) { twoReplicasShareCounts(t, newBed(t, 4)) }

// twoReplicasShareCounts runs the test of TestTwoReplicasShareCounts on b,
// which has four input partitions.
func twoReplicasShareCounts(t *testing.T, b *bed) {
	const (
		parts  = 4
		total  = 3000
		phase1 = total * 3 / 4
	)
	hot := traffic.RuleID(2)
	if b.parts != parts {
		t.Fatalf("the bed has %d partitions; want %d", b.parts, parts)
	}

	// Five rules over two minutes of event time, all inside one 10m window;
	// rule-02 takes six tenths of the actions.
	g := traffic.New(5, 1000, 0, 6, 11)
	evs := g.Events(epoch, 2*time.Minute, total)
	acts := decodeAll(t, evs)
	probe := b.config(t, settings{window: "10m", maxActions: 1e6})
	var hotAll, hotPhase1 int64
	hotPart := make([]int64, parts)  // whole test
	hotPart2 := make([]int64, parts) // phase 2 only
	for i, a := range acts {
		if a.RuleID != hot {
			continue
		}
		w := weightOf(probe, a)
		p := testbed.KeyPartition(evs[i].Key, parts)
		hotAll += w
		hotPart[p] += w
		if i < phase1 {
			hotPhase1 += w
		} else {
			hotPart2[p] += w
		}
	}
	// Any two partitions may end up on one replica. The limit lies above
	// phase 1, and below phase 1 plus half of what any pair of partitions
	// adds in phase 2, so that each replica's last batch sees it passed.
	minPair2 := int64(1 << 62)
	maxPair := int64(0)
	for i := range parts {
		for j := i + 1; j < parts; j++ {
			minPair2 = min(minPair2, hotPart2[i]+hotPart2[j])
			maxPair = max(maxPair, hotPart[i]+hotPart[j])
		}
	}
	limit := float64(hotPhase1+minPair2/2) / 1000
	if float64(maxPair)/1000 >= limit || float64(hotPhase1)/1000 >= limit {
		t.Fatalf("fixture: limit %.1f, %s weighs %.1f in phase 1, at most %.1f on two partitions", limit, hot, float64(hotPhase1)/1000, float64(maxPair)/1000)
	}
	t.Logf("fixture: %s weighs %.1f in all (%.1f in phase 1); limit %.1f; two partitions carry at most %.1f (%.0f%% of the limit)",
		hot, float64(hotAll)/1000, float64(hotPhase1)/1000, limit, float64(maxPair)/1000, 100*float64(maxPair)/1000/limit)

	s := settings{window: "10m", maxActions: 1e6, rules: map[string]float64{hot: limit}, batchSize: 100}
	cfg := b.config(t, s)
	ra := startReplica(t, "a", cfg)
	rb := startReplica(t, "b", cfg)
	alive := replicasAlive(ra, rb)
	assign := b.groupAssignment(t, 2, 60*time.Second, alive)
	t.Logf("assignment %v", assign)

	recs := eventRecords(evs)
	written := b.k.Produce(t, testTopics.Input, recs[:phase1]...)
	b.waitCommitted(t, 60*time.Second, alive)
	if st := b.status(t, breaker.RuleScope(hot)); st.State != breaker.Closed {
		t.Fatalf("after phase 1 (%.1f of %.1f) %s is %s", float64(hotPhase1)/1000, limit, hot, st.State)
	}
	for _, r := range []*replica{ra, rb} {
		if _, actions, _, _ := r.report(); actions[decide.Held] != 0 {
			t.Fatalf("replica %s held %d actions in phase 1", r.name, actions[decide.Held])
		}
	}
	written = append(written, b.k.Produce(t, testTopics.Input, recs[phase1:]...)...)
	b.waitCommitted(t, 60*time.Second, alive)

	if again, _ := b.describeGroup(t); !maps.EqualFunc(again, assign, slices.Equal) {
		t.Errorf("the assignment changed during the test: %v, then %v", assign, again)
	}
	in := newInput(t, written)
	o := b.readOutputs(t, in)
	dups := checkExactlyOne(t, in, o)
	t.Logf("distinct inputs per topic %v; duplicates per topic %v", o.decided, dups)
	for topic, n := range dups {
		if n != 0 {
			t.Errorf("%d duplicates on %s without any crash", n, topic)
		}
	}

	// The breaker tripped on the shared count.
	scope := breaker.RuleScope(hot)
	st := b.status(t, scope)
	if st.State != breaker.Open || st.Reason != string(breaker.ReasonMaxActions) {
		t.Errorf("%s after phase 2: %+v, want open for max_actions", scope, st)
	}
	if e, ok := b.stateLog(t)[scope]; !ok || e.To.State != breaker.Open || e.Counts.Window <= limit || e.Counts.Window > float64(hotAll)/1000 {
		t.Errorf("state topic entry of %s: %+v (present %v); want open with a window count in (%.1f, %.1f]", scope, e, ok, limit, float64(hotAll)/1000)
	}

	// Neither replica alone carried enough to trip.
	owner := map[int32]string{}
	for m, ps := range assign {
		for _, p := range ps {
			owner[p] = m
		}
	}
	perMember := map[string]float64{}
	for i, a := range in.actions {
		if a.RuleID == hot {
			perMember[owner[in.recs[i].Partition]] += float64(weightOf(cfg, a)) / 1000
		}
	}
	for m, w := range perMember {
		if w >= limit {
			t.Errorf("member %s alone carried %.1f of %s, not under the limit %.1f", m, w, hot, limit)
		}
	}
	t.Logf("%s weight per member %v (limit %.1f)", hot, perMember, limit)

	// Both replicas hold the rule's actions after the trip.
	for _, r := range []*replica{ra, rb} {
		batches, actions, perRule, trans := r.report()
		t.Logf("replica %s: %d batches, %v, %s: %d, transitions %d", r.name, batches, actions, hot, perRule[hot], len(trans))
		if actions[decide.Held] == 0 {
			t.Errorf("replica %s held nothing", r.name)
		}
	}
	heldBy := map[string]int{}
	for _, r := range o.recs {
		if r.topic != testTopics.Held {
			continue
		}
		if a := in.actions[r.in]; a.RuleID != hot {
			t.Errorf("held an action of %s: %s", a.RuleID, describe(in, r.in))
		}
		src, _ := header(r.rec, wire.HeaderSource)
		f := strings.Split(src, "/")
		p, err := strconv.Atoi(f[len(f)-1-1])
		if err != nil {
			t.Fatalf("bad %s header %q", wire.HeaderSource, src)
		}
		heldBy[owner[int32(p)]]++
	}
	if len(heldBy) != 2 {
		t.Errorf("held records come from the partitions of %d members: %v", len(heldBy), heldBy)
	}

	// The counts in Redis are exact: every decodable action once, whichever
	// replica counted it; global counts only what its rule's breaker did
	// not hold (what would reach enforcement).
	held := map[int]bool{}
	for _, r := range o.recs {
		if r.topic == testTopics.Held {
			held[r.in] = true
		}
	}
	want := map[breaker.Scope]int64{}
	for i, a := range in.actions {
		w := weightOf(cfg, a)
		if !held[i] {
			want[breaker.Global] += w
		}
		want[breaker.RuleScope(a.RuleID)] += w
	}
	for _, sc := range slices.Sorted(maps.Keys(want)) {
		fine, coarse := b.ringSum(t, sc)
		if fine != want[sc] || coarse != want[sc] {
			t.Errorf("%s: rings hold %d (fine) and %d (coarse) milli-actions, produced %d", sc, fine, coarse, want[sc])
		}
	}
	var rules []string
	for sc, w := range want {
		rules = append(rules, fmt.Sprintf("%s=%.1f", sc, float64(w)/1000))
	}
	slices.Sort(rules)
	t.Logf("Redis counts match the produced weights: %s", strings.Join(rules, " "))
}

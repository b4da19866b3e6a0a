package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/traffic"
	"github.com/breakwater/breakwater/wire"
)

// spikeTraffic is the traffic of TestEndToEnd and TestCrashRestart: 20,000
// actions of ten rules spread evenly over 20 minutes of event time, 1,000
// a minute, of which rule-02 takes ten times its share from minute 10 on.
// A normal rule acts about 100 times a minute, weighing about 180; the
// spiking rule about 525 times, weighing about 950.
const (
	spikeActions  = 20000
	spikeRules    = 10
	spikeSpan     = 20 * time.Minute
	spikeAfter    = 10 * time.Minute
	spikeFactor   = 10
	spikeSeed     = 7
	spikeLimit    = 400 // breakers.defaults.max_actions, per 1m window
	spikeMalforms = 50
)

var spikeRule = traffic.RuleID(2)

var spikeSettings = settings{window: "1m", maxActions: spikeLimit}

// spikeInput generates the spike traffic, checks that its trip points are
// what the tests assume, and mixes in malformed values.
func spikeInput(t *testing.T, b *bed) (recs []testbed.Record, sim simulation) {
	t.Helper()
	cfg := b.config(t, spikeSettings)
	g := traffic.New(spikeRules, 1000, spikeAfter, spikeFactor, spikeSeed)
	if got := traffic.RuleID(g.IncidentRule); got != spikeRule {
		t.Fatalf("the generator spikes %s, the test expects %s", got, spikeRule)
	}
	evs := g.Events(epoch, spikeSpan, spikeActions)
	sim = simulate(cfg, decodeAll(t, evs))
	// The fixture must leave room for what batching and the consumer's
	// interleaving of partitions do to the counts (they can only lower
	// them): normal rules stay well under the limit, the spiking rule
	// passes it by far, after the incident began.
	for r := range spikeRules {
		id := traffic.RuleID(r)
		if id == spikeRule {
			continue
		}
		if w := sim.maxWindow[id]; w > 0.8*spikeLimit {
			t.Fatalf("fixture: normal rule %s reaches %.1f in a window, too close to the limit %d", id, w, spikeLimit)
		}
	}
	at, ok := sim.tripAt[spikeRule]
	if !ok || at.Before(epoch.Add(spikeAfter)) || sim.maxWindow[spikeRule] < 2*spikeLimit {
		t.Fatalf("fixture: %s trips at %v (ok %v), max window %.1f; want a trip after %v, max >= %d",
			spikeRule, at, ok, sim.maxWindow[spikeRule], epoch.Add(spikeAfter), 2*spikeLimit)
	}
	t.Logf("fixture: %s passes %d at event time +%v; largest normal window %.1f",
		spikeRule, spikeLimit, at.Sub(epoch), maxNormal(sim))

	bad := malformed(spikeMalforms)
	every := len(evs) / len(bad)
	for i, e := range eventRecords(evs) {
		recs = append(recs, e)
		if i%every == every/2 && len(bad) > 0 {
			recs = append(recs, bad[0])
			bad = bad[1:]
		}
	}
	return recs, sim
}

func maxNormal(sim simulation) float64 {
	m := 0.0
	for id, w := range sim.maxWindow {
		if id != spikeRule {
			m = max(m, w)
		}
	}
	return m
}

// checkSpike checks the decisions of the spike traffic: the spiking rule
// tripped part-way and, per input partition, holds everything after its
// first held action; every other rule is gated.
func checkSpike(t *testing.T, in *input, o *outputs, sim simulation) (gated, held int) {
	return checkSpikeSkew(t, in, o, sim, 0)
}

// checkSpikeSkew is checkSpike for a consumer that read its partitions up
// to skew apart in event time, as when it catches up on a backlog. A trip
// is decided in event time: only once the partitions behind have reached
// the moment the count passed the limit; the partitions ahead forward the
// rule's actions until then, up to skew later in event time. And once it
// tripped, the actions of the partitions behind are held, even those
// from before the incident: held for review, not lost.
func checkSpikeSkew(t *testing.T, in *input, o *outputs, sim simulation, skew time.Duration) (gated, held int) {
	t.Helper()
	perPart := map[int32][]int{}
	for i, r := range in.recs {
		if in.bad[i] {
			continue
		}
		if in.actions[i].RuleID != spikeRule {
			if topic, _ := o.topicOf(i); topic != testTopics.Gated && topic != "" {
				t.Errorf("normal rule action %s went to %s", describe(in, i), topic)
			}
			continue
		}
		perPart[r.Partition] = append(perPart[r.Partition], i)
	}
	var firstHeld, lastGated time.Time
	for p, idx := range perPart {
		slices.SortFunc(idx, func(a, b int) int { return int(in.recs[a].Offset - in.recs[b].Offset) })
		holding := false
		for _, i := range idx {
			topic, _ := o.topicOf(i)
			switch {
			case topic == testTopics.Held:
				if !holding && (firstHeld.IsZero() || in.actions[i].OccurredAt.Before(firstHeld)) {
					firstHeld = in.actions[i].OccurredAt
				}
				holding = true
				held++
			case topic == testTopics.Gated && holding:
				t.Errorf("input partition %d: %s gated after an earlier action of the rule was held", p, describe(in, i))
			case topic == testTopics.Gated:
				gated++
				if in.actions[i].OccurredAt.After(lastGated) {
					lastGated = in.actions[i].OccurredAt
				}
			}
		}
		if !holding {
			t.Errorf("input partition %d: no action of %s held", p, spikeRule)
		}
	}
	if held == 0 || gated == 0 {
		t.Fatalf("%s: %d gated, %d held; want it to trip part-way", spikeRule, gated, held)
	}
	// A batch is decided as a whole: the batch that trips holds all of
	// its actions of the rule, a few seconds of event time before the
	// count passed the limit too. Nothing a minute before the incident.
	if incident := epoch.Add(spikeAfter); skew == 0 && firstHeld.Before(incident.Add(-time.Minute)) {
		t.Errorf("%s: first held action at event time +%v, long before the incident began at +%v", spikeRule, firstHeld.Sub(epoch), spikeAfter)
	}
	// Batching and partitions consumed a little apart can delay the trip,
	// never by minutes.
	if trip := sim.tripAt[spikeRule]; lastGated.After(trip.Add(2*time.Minute + skew)) {
		t.Errorf("%s: gated until event time +%v, the count passed the limit at +%v", spikeRule, lastGated.Sub(epoch), trip.Sub(epoch))
	}
	t.Logf("%s: %d gated (last at +%v), %d held (first at +%v); counts passed the limit at +%v",
		spikeRule, gated, lastGated.Sub(epoch), held, firstHeld.Sub(epoch), sim.tripAt[spikeRule].Sub(epoch))

	// The held records name the incident.
	incidents := map[string]int{}
	for _, r := range o.recs {
		if r.topic != testTopics.Held {
			continue
		}
		inc, _ := header(r.rec, wire.HeaderIncident)
		scope, _ := header(r.rec, wire.HeaderScope)
		state, _ := header(r.rec, wire.HeaderState)
		if !strings.HasPrefix(inc, string(breaker.RuleScope(spikeRule))+"@") || scope != string(breaker.RuleScope(spikeRule)) || state != string(breaker.Open) {
			t.Errorf("held %s: incident %q, scope %q, state %q", describe(in, r.in), inc, scope, state)
		}
		incidents[inc]++
	}
	if len(incidents) != 1 {
		t.Errorf("held records name %d incidents %v, want one", len(incidents), incidents)
	}
	return gated, held
}

// checkSpikeState checks that only the spiking rule's breaker is open, in
// Redis and in the state topic.
func checkSpikeState(t *testing.T, b *bed) breaker.Status {
	t.Helper()
	scope := breaker.RuleScope(spikeRule)
	open := b.notClosed(t)
	st, ok := open[scope]
	if len(open) != 1 || !ok || st.State != breaker.Open || st.Reason != string(breaker.ReasonMaxActions) {
		t.Errorf("breakers not closed in Redis: %+v; want only %s open for max_actions", open, scope)
	}
	log := b.stateLog(t)
	e, ok := log[scope]
	if !ok || e.To.State != breaker.Open || e.To.Generation != st.Generation || e.Counts.Window <= spikeLimit {
		t.Errorf("state topic entry of %s: %+v (present %v); want open at generation %d with a window count over %d", scope, e, ok, st.Generation, spikeLimit)
	}
	if len(log) != 1 {
		t.Errorf("state topic has %d scopes, want only %s: %v", len(log), scope, sortedScopes(log))
	}
	return st
}

func sortedScopes[V any](m map[breaker.Scope]V) []string {
	var out []string
	for s := range m {
		out = append(out, string(s))
	}
	slices.Sort(out)
	return out
}

func TestEndToEnd(t *testing.T) { endToEnd(t, newBed(t, 6)) }

// endToEnd runs the spike traffic through one replica on b and checks
// every output.
func endToEnd(t *testing.T, b *bed) {
	recs, sim := spikeInput(t, b)
	rep := startReplica(t, "solo", b.config(t, spikeSettings))
	alive := replicasAlive(rep)

	start := time.Now()
	written := b.producePaced(t, recs, 250, 500, alive)
	b.waitCommitted(t, 60*time.Second, alive)
	t.Logf("%d records consumed in %v", len(written), time.Since(start))

	in := newInput(t, written)
	o := b.readOutputs(t, in)
	dups := checkExactlyOne(t, in, o)
	t.Logf("distinct inputs per topic %v; duplicates per topic %v", o.decided, dups)
	for topic, n := range dups {
		if n != 0 {
			t.Errorf("%d duplicates on %s without any crash or rebalance", n, topic)
		}
	}
	if n := checkMalformed(t, in, o); n != spikeMalforms {
		t.Errorf("%d malformed inputs on the dead-letter topic, want %d", n, spikeMalforms)
	}
	checkKeyOrder(t, in, o)
	gated, held := checkSpike(t, in, o, sim)
	st := checkSpikeState(t, b)
	if inc := breaker.Incident(breaker.RuleScope(spikeRule), st.Generation); !hasIncident(o, inc) {
		t.Errorf("no held record carries %s: %s", wire.HeaderIncident, inc)
	}

	if err := rep.stop(); err != nil {
		t.Fatal(err)
	}
	batches, actions, perRule, trans := rep.report()
	t.Logf("OnBatch: %d batches, %v", batches, actions)
	want := map[decide.Decision]int{
		decide.Gated:      spikeActions - held,
		decide.Held:       held,
		decide.DeadLetter: spikeMalforms,
	}
	if fmt.Sprint(actions) != fmt.Sprint(want) {
		t.Errorf("OnBatch counted %v, want %v", actions, want)
	}
	if perRule[spikeRule] != gated+held {
		t.Errorf("OnBatch counted %d actions of %s, the input has %d", perRule[spikeRule], spikeRule, gated+held)
	}
	if len(trans) != 1 || trans[0].Scope != breaker.RuleScope(spikeRule) || trans[0].To.State != breaker.Open {
		t.Errorf("OnBatch transitions %+v, want one: %s opening", trans, spikeRule)
	}
}

func hasIncident(o *outputs, inc string) bool {
	for _, r := range o.recs {
		if v, _ := header(r.rec, wire.HeaderIncident); v == inc {
			return true
		}
	}
	return false
}

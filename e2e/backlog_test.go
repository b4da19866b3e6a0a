package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/breakwater/breakwater/traffic"
)

// TestBacklogCatchUp is TestEndToEnd with the whole spike already waiting
// in the input of six partitions when the daemon starts, as after an
// outage or a deployment. The consumer merges the partitions it owns by
// event time, so the backlog is decided as if it had been read in order:
// the breaker trips in the batch that takes the count past the limit, and
// no action of the rule from after that batch reaches gated, on any
// partition.
func TestBacklogCatchUp(t *testing.T) {
	b := newBed(t, 6)
	recs, sim := spikeInput(t, b)
	written := b.k.Produce(t, testTopics.Input, recs...)
	s := spikeSettings
	s.batchSize = 500
	rep := startReplica(t, "solo", b.config(t, s))
	b.waitCommitted(t, 60*time.Second, replicasAlive(rep))

	in := newInput(t, written)
	o := b.readOutputs(t, in)
	dups := checkExactlyOne(t, in, o)
	t.Logf("distinct inputs per topic %v; duplicates per topic %v", o.decided, dups)
	checkKeyOrder(t, in, o)
	checkSpike(t, in, o, sim)
	checkSpikeState(t, b)

	// The batch that passes the limit holds all of its actions of the
	// rule, and the batches before it end before the crossing in event
	// time; a batch spans at most this much event time.
	batch := time.Duration(s.batchSize) * spikeSpan / spikeActions
	if n, last := gatedAfter(in, o, sim.tripAt[spikeRule].Add(batch)); n > 0 {
		t.Errorf("%s: %d actions gated more than a batch (%v) after the count passed the limit at +%v, the last at +%v",
			spikeRule, n, batch, sim.tripAt[spikeRule].Sub(epoch), last.Sub(epoch))
	}
	n, _ := gatedAfter(in, o, sim.tripAt[spikeRule])
	t.Logf("%s: %d actions gated after the count passed the limit at +%v", spikeRule, n, sim.tripAt[spikeRule].Sub(epoch))
}

// gatedAfter counts the spiking rule's actions gated with an event time
// after at, and returns the latest.
func gatedAfter(in *input, o *outputs, at time.Time) (n int, last time.Time) {
	for i := range in.recs {
		if in.bad[i] || in.actions[i].RuleID != spikeRule || !in.actions[i].OccurredAt.After(at) {
			continue
		}
		if topic, _ := o.topicOf(i); topic == testTopics.Gated {
			n++
			if in.actions[i].OccurredAt.After(last) {
				last = in.actions[i].OccurredAt
			}
		}
	}
	return n, last
}

// The backlog of TestBacklogIncident: 200,000 actions of ten rules over 100
// minutes of event time on twelve partitions, rule-02 acting ten times its
// share from the middle on.
const (
	scaleActions  = 200_000
	scaleParts    = 12
	scaleSpan     = 100 * time.Minute
	scaleIncident = 50 * time.Minute
	scaleLimit    = 800 // per 1m window; a normal rule weighs about 360
	scaleBatch    = 2000
)

// containBound is how long after the crossing, in event time, several
// replicas may still gate the incident's actions: one window (the
// breakers' 1m), since no replica decides more than a window ahead of the
// others' frontier, which each publishes from a keep-alive of its own and,
// while it joins or rejoins the group, as the earliest possible one.
const containBound = time.Minute

// TestBacklogIncident consumes a backlog with an incident in the middle,
// by one replica and by three sharing the partitions, and counts the
// incident's actions that reached gated with an event time after the
// moment the count passed the limit. One replica decides the whole backlog
// in event-time order: none. Three replicas each decide their share in
// order and wait for each other's frontiers: the incident's gated actions
// end within one window (containBound) after the crossing.
func TestBacklogIncident(t *testing.T) {
	if testing.Short() {
		t.Skip("a 200,000-action backlog")
	}
	for _, replicas := range []int{1, 3} {
		t.Run(fmt.Sprintf("replicas=%d", replicas), func(t *testing.T) {
			b := newBed(t, scaleParts)
			s := settings{window: "1m", maxActions: scaleLimit, batchSize: scaleBatch}
			cfg := b.config(t, s)
			g := traffic.New(spikeRules, scaleActions/int(scaleSpan/time.Second), scaleIncident, spikeFactor, spikeSeed)
			evs := g.Events(epoch, scaleSpan, scaleActions)
			sim := simulate(cfg, decodeAll(t, evs))
			crossing, ok := sim.tripAt[spikeRule]
			if !ok || crossing.Before(epoch.Add(scaleIncident)) || len(sim.tripAt) != 1 {
				t.Fatalf("fixture: trips %v; want only %s, after +%v", sim.tripAt, spikeRule, scaleIncident)
			}
			written := b.k.Produce(t, testTopics.Input, eventRecords(evs)...)
			var reps []*replica
			for i := range replicas {
				reps = append(reps, startReplica(t, fmt.Sprintf("r%d", i), cfg))
			}
			start := time.Now()
			b.waitCommitted(t, 5*time.Minute, replicasAlive(reps...))
			elapsed := time.Since(start)

			in := newInput(t, written)
			o := b.readOutputs(t, in)
			checkExactlyOne(t, in, o)
			n, last := gatedAfter(in, o, crossing)
			var late time.Duration
			if n > 0 {
				late = last.Sub(crossing)
			}
			t.Logf("%d replicas, %d actions on %d partitions in %v: the count of %s passed %d at +%v; %d of its actions gated after that, the last %v after",
				replicas, scaleActions, scaleParts, elapsed.Round(time.Millisecond), spikeRule, scaleLimit, crossing.Sub(epoch), n, late)
			switch {
			case replicas == 1 && n > 0:
				t.Errorf("one replica gated %d actions of %s after the crossing, the last %v after; want none", n, spikeRule, late)
			case late > containBound:
				t.Errorf("%d replicas gated actions of %s until %v after the crossing; want none later than %v", replicas, spikeRule, late, containBound)
			}
		})
	}
}

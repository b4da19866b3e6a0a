package e2e

import (
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
)

// TestBacklogCatchUp is TestEndToEnd with the whole spike already waiting
// in the input of six partitions when the daemon starts, as after an
// outage or a deployment. The consumer reads the partitions minutes apart
// in event time (one partition's backlog fills the reader's queue). The
// rings keep a grace period of thirty windows, so the actions of the
// partitions behind still count in the windows they belong to: the
// breaker trips on the same counts as in order, once the partitions behind
// reach the moment the count passed the limit, and holds every later
// action of the rule on every partition.
func TestBacklogCatchUp(t *testing.T) {
	b := newBed(t, 6)
	recs, sim := spikeInput(t, b)
	written := b.k.Produce(t, testTopics.Input, recs...)
	rep := startReplica(t, "solo", b.config(t, spikeSettings))
	b.waitCommitted(t, 60*time.Second, replicasAlive(rep))

	in := newInput(t, written)
	o := b.readOutputs(t, in)
	dups := checkExactlyOne(t, in, o)
	t.Logf("distinct inputs per topic %v; duplicates per topic %v", o.decided, dups)
	// The grace period of the 1m window.
	checkSpikeSkew(t, in, o, sim, breaker.GraceSlots*time.Minute/breaker.FineSlots)
	checkSpikeState(t, b)
}

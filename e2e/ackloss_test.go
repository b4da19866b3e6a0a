package e2e

import (
	"testing"
	"time"

	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/traffic"
	"github.com/breakwater/breakwater/wire"
)

// TestLostProduceAnswer loses the broker's answers to produce requests to
// gated after the broker wrote their records (the connection closes
// instead of answering), so the writer cannot know whether they were
// written and writes them again. Every copy beyond the first must say
// that it may be one (breakwater-reason: redelivered), nothing is lost or
// on two topics, and the order per key holds.
func TestLostProduceAnswer(t *testing.T) {
	loss := testbed.NewAckLoss(testTopics.Gated)
	b := newBed(t, 3, withKafka("", testbed.LoseAcks(loss)))
	cfg := b.config(t, settings{window: "1m", maxActions: 100000})
	rep := startReplica(t, "solo", cfg)
	g := traffic.New(10, 1000, -1, 1, 3)
	evs := g.Events(epoch, 3*time.Minute, 6000)
	var written []testbed.Record
	// The first two produce requests to gated of the first 2,000 actions
	// lose their answers, then the first of each next 2,000.
	for i, chunk := range [][]traffic.Event{evs[:2000], evs[2000:4000], evs[4000:]} {
		loss.Drop([]int{2, 1, 1}[i])
		written = append(written, b.k.Produce(t, testTopics.Input, eventRecords(chunk)...)...)
		b.waitCommitted(t, 90*time.Second, replicasAlive(rep))
	}
	if loss.Dropped() == 0 {
		t.Fatal("no produce answer was lost: the test proves nothing")
	}
	in := newInput(t, written)
	o := b.readOutputs(t, in)
	dups := checkExactlyOne(t, in, o)
	checkKeyOrder(t, in, o)
	unmarked := map[int]int{} // input -> gated copies without redelivered
	for _, r := range o.recs {
		if r.topic != testTopics.Gated {
			continue
		}
		if reason, _ := header(r.rec, wire.HeaderReason); reason != decide.ReasonRedelivered {
			unmarked[r.in]++
		}
	}
	bad := 0
	for i, n := range unmarked {
		if n > 1 {
			if bad++; bad <= 10 {
				t.Errorf("input p%d@%d is on gated %d times without %s: %s", in.recs[i].Partition, in.recs[i].Offset, n, decide.ReasonRedelivered, describe(in, i))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d inputs have unmarked copies on gated", bad)
	}
	if dups[testTopics.Gated] == 0 {
		t.Errorf("%d answers lost and no copy on gated: the writes were not retried?", loss.Dropped())
	}
	t.Logf("%d produce answers lost; copies beyond the first per topic %v; inputs with unmarked copies: %d", loss.Dropped(), dups, bad)
}

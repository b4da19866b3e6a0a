package e2e

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/traffic"
	"github.com/breakwater/breakwater/wire"
)

// TestFirstDecisionsSurviveRedisWipe loses the group's commits (the broker
// acknowledges them and keeps nothing, as when a commit is lost in a
// rebalance), so every batch is written and none committed, and the
// replica drops its records as if committed; then Redis loses its data
// and the replica restarts. Everything is redelivered to a store that has
// no records left and whose spiking breaker is restored open from the
// state topic. The actions gated before the trip must stay gated,
// answered from the output topics: none on both gated and held.
func TestFirstDecisionsSurviveRedisWipe(t *testing.T) {
	b := newBed(t, 3)
	cfg := b.config(t, spikeSettings)
	scope := breaker.RuleScope(spikeRule)
	var drop atomic.Bool
	drop.Store(true)
	cl := b.k.Cluster()
	cl.ControlKey(kmsg.OffsetCommit.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		cl.KeepControl()
		if !drop.Load() {
			return nil, nil, false
		}
		req := kr.(*kmsg.OffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	recs, _ := spikeInput(t, b)
	first := startReplica(t, "first", cfg)
	written := b.k.Produce(t, testTopics.Input, recs...)
	in := newInput(t, written)
	outputs := func() int64 {
		return sum(b.k.EndOffsets(t, testTopics.Gated)) + sum(b.k.EndOffsets(t, testTopics.Held)) + sum(b.k.EndOffsets(t, testTopics.DeadLetter))
	}
	waitFor(t, 90*time.Second, func() string { return fmt.Sprintf("%d outputs for %d inputs", outputs(), len(written)) },
		replicasAlive(first), func() bool { return outputs() >= int64(len(written)) })
	if st := b.status(t, scope); st.State != breaker.Open {
		t.Fatalf("%s: %+v; want open", scope, st)
	}
	before := b.readOutputs(t, in)
	gatedSpike := 0
	for _, r := range before.recs {
		if r.topic == testTopics.Gated && in.actions[r.in].RuleID == spikeRule {
			gatedSpike++
		}
	}
	if gatedSpike == 0 {
		t.Fatalf("no action of %s was gated before the trip: the test would prove nothing", spikeRule)
	}
	if c := sum(b.k.CommittedOffsets(t, groupID, testTopics.Input)); c > 0 {
		t.Fatalf("committed offsets sum to %d; the broker was to keep no commit", c)
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("first run: %d inputs written (%d of %s gated before the trip), nothing committed; Redis restarts empty",
		len(written), gatedSpike, spikeRule)

	b.r.Restart(t)
	drop.Store(false)
	second := startReplica(t, "second", cfg)
	b.waitCommitted(t, 90*time.Second, replicasAlive(second))
	if !strings.Contains(second.logs.String(), "rebuilt the decisions of uncommitted input from the output topics") {
		t.Errorf("the second replica did not rebuild its records from the outputs")
	}
	o := b.readOutputs(t, in)
	dups := checkExactlyOne(t, in, o)
	// Every copy beyond the first was answered from a first decision.
	seen := map[string]bool{}
	fresh := 0
	for _, r := range o.recs {
		src, _ := header(r.rec, wire.HeaderSource)
		if !seen[src] {
			seen[src] = true
			continue
		}
		if why, _ := header(r.rec, wire.HeaderReason); why != decide.ReasonRedelivered && r.topic != testTopics.DeadLetter {
			fresh++
		}
	}
	if fresh > 0 {
		t.Errorf("%d redelivered actions were decided afresh instead of answered from their first decision", fresh)
	}
	t.Logf("second run: duplicates per topic %v, all answered from the first decisions", dups)
}

// TestWriteRetryWritesOnlyWhatFailed refuses the writes to one gated
// partition for longer than kafka-go retries them, so that the pipeline
// retries the batch's write itself: the records that reached the other
// partitions must not be written again (a copy that does not say it is
// one), and the refused ones must arrive in order per key.
func TestWriteRetryWritesOnlyWhatFailed(t *testing.T) {
	b := newBed(t, 3)
	cfg := b.config(t, settings{window: "1m", maxActions: 100000})
	var refusing atomic.Int64 // unix nanos until which gated/1 refuses; 0 before the first write
	var refused atomic.Int64
	cl := b.k.Cluster()
	cl.ControlKey(kmsg.Produce.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		cl.KeepControl()
		req := kr.(*kmsg.ProduceRequest)
		if len(req.Topics) != 1 || req.Topics[0].Topic != testTopics.Gated || len(req.Topics[0].Partitions) != 1 ||
			req.Topics[0].Partitions[0].Partition != 1 {
			return nil, nil, false
		}
		refusing.CompareAndSwap(0, time.Now().Add(4*time.Second).UnixNano())
		if time.Now().UnixNano() > refusing.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		st := kmsg.NewProduceResponseTopic()
		st.Topic = testTopics.Gated
		sp := kmsg.NewProduceResponseTopicPartition()
		sp.Partition = 1
		sp.ErrorCode = kerr.NotEnoughReplicas.Code
		st.Partitions = append(st.Partitions, sp)
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
	rep := startReplica(t, "solo", cfg)
	g := traffic.New(10, 1000, -1, 1, 3)
	written := b.k.Produce(t, testTopics.Input, eventRecords(g.Events(epoch, 2*time.Minute, 3000))...)
	b.waitCommitted(t, 90*time.Second, replicasAlive(rep))
	if !strings.Contains(rep.logs.String(), `"op":"write"`) {
		t.Fatalf("the pipeline never retried a write (%d produce requests refused): the test proves nothing", refused.Load())
	}
	in := newInput(t, written)
	o := b.readOutputs(t, in)
	dups := checkExactlyOne(t, in, o)
	if dups[testTopics.Gated] > 0 {
		t.Errorf("%d records were written to gated twice after a write to one partition failed", dups[testTopics.Gated])
	}
	checkKeyOrder(t, in, o)
	t.Logf("%d produce requests to gated/1 refused; copies per topic %v", refused.Load(), dups)
}

// TestFailedCommitsLoseNothing refuses every commit for a while: the
// pipeline goes on, the commits after the refusal cover the offsets of the
// refused ones, nothing is lost, and every copy of an action (a group
// rejoin redelivers) is its first decision.
func TestFailedCommitsLoseNothing(t *testing.T) {
	b := newBed(t, 3)
	cfg := b.config(t, settings{window: "1m", maxActions: 100000})
	var refuse atomic.Bool
	refuse.Store(true)
	var refused atomic.Int64
	cl := b.k.Cluster()
	cl.ControlKey(kmsg.OffsetCommit.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		cl.KeepControl()
		if !refuse.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		req := kr.(*kmsg.OffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.RequestTimedOut.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	rep := startReplica(t, "solo", cfg)
	alive := replicasAlive(rep)
	evs := traffic.New(10, 1000, -1, 1, 4).Events(epoch, 2*time.Minute, 3000)
	written := b.k.Produce(t, testTopics.Input, eventRecords(evs[:1500])...)
	outputs := func() int64 {
		return sum(b.k.EndOffsets(t, testTopics.Gated)) + sum(b.k.EndOffsets(t, testTopics.Held)) + sum(b.k.EndOffsets(t, testTopics.DeadLetter))
	}
	waitFor(t, 60*time.Second, func() string { return fmt.Sprintf("%d outputs, %d commits refused", outputs(), refused.Load()) },
		alive, func() bool { return outputs() >= int64(len(written)) && refused.Load() > 0 })
	refuse.Store(false)
	written = append(written, b.k.Produce(t, testTopics.Input, eventRecords(evs[1500:])...)...)
	b.waitCommitted(t, 90*time.Second, alive)
	in := newInput(t, written)
	o := b.readOutputs(t, in)
	dups := checkExactlyOne(t, in, o)
	seen := map[string]bool{}
	for _, r := range o.recs {
		src, _ := header(r.rec, wire.HeaderSource)
		if seen[src] {
			if why, _ := header(r.rec, wire.HeaderReason); why != decide.ReasonRedelivered {
				t.Errorf("a copy of %s on %s was decided afresh", src, r.topic)
			}
		}
		seen[src] = true
	}
	t.Logf("%d commit requests refused; copies per topic %v", refused.Load(), dups)
}

// TestCommitMovedBackKeepsFirstDecisions moves the group's committed
// offsets back to the start after everything was decided, written and
// committed (what a stale commit after a rebalance, or an operator's
// rewind, does), with Redis intact: the records below the commits are gone,
// and the spiking rule's breaker is open. Every redelivered action must
// keep its first decision, read back from the outputs: none on both gated
// and held.
func TestCommitMovedBackKeepsFirstDecisions(t *testing.T) {
	b := newBed(t, 3)
	cfg := b.config(t, spikeSettings)
	recs, _ := spikeInput(t, b)
	first := startReplica(t, "first", cfg)
	written := b.k.Produce(t, testTopics.Input, recs...)
	b.waitCommitted(t, 90*time.Second, replicasAlive(first))
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	if st := b.status(t, breaker.RuleScope(spikeRule)); st.State != breaker.Open {
		t.Fatalf("%s: %+v; want open", spikeRule, st)
	}
	b.resetGroup(t, 0)
	second := startReplica(t, "second", cfg)
	b.waitCommitted(t, 90*time.Second, replicasAlive(second))
	if !strings.Contains(second.logs.String(), "rebuilt the decisions of uncommitted input from the output topics") {
		t.Errorf("the second replica did not rebuild its records from the outputs")
	}
	in := newInput(t, written)
	o := b.readOutputs(t, in)
	dups := checkExactlyOne(t, in, o)
	seen := map[string]bool{}
	fresh := 0
	for _, r := range o.recs {
		src, _ := header(r.rec, wire.HeaderSource)
		if seen[src] && r.topic != testTopics.DeadLetter {
			if why, _ := header(r.rec, wire.HeaderReason); why != decide.ReasonRedelivered {
				fresh++
			}
		}
		seen[src] = true
	}
	if fresh > 0 {
		t.Errorf("%d redelivered actions were decided afresh", fresh)
	}
	t.Logf("copies per topic after the rewind %v, all answered from first decisions", dups)
}

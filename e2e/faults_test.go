// Faults that once lost decisions or looped, kept as regression tests:
//
//   - TestGroupRewound: after the consumer group is rewound, a batch whose
//     offsets surround a decision record kept in Redis was answered REPLAY
//     forever; the pipeline now decides such a batch in calls that each
//     lie on one side of every known record.
//   - TestTripSurvivesStateTopicOutage: a trip decided in Redis whose write
//     to the state topic did not complete before the daemon stopped was
//     never written there, since its redelivery is answered from the
//     records; the pipeline now records the current status of every scope
//     a redelivered record holds on, so a Redis restart keeps it open.

package e2e

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/traffic"
)

// TestGroupRewound rewinds the consumer group to offset 0, as an operator
// reprocessing the input would, after more input arrived: the daemon must
// catch up again, answering the offsets it decided before from its records.
func TestGroupRewound(t *testing.T) {
	b := newBed(t, 1)
	cfg := b.config(t, settings{window: "1m", maxActions: 1e6})
	recs := eventRecords(traffic.New(10, 1000, -1, 1, 9).Events(epoch, 5*time.Minute, 400))
	first := startReplica(t, "first", cfg)
	for _, chunk := range [][2]int{{0, 150}, {150, 300}} { // two batches, two records
		b.k.Produce(t, testTopics.Input, recs[chunk[0]:chunk[1]]...)
		b.waitCommitted(t, 30*time.Second, replicasAlive(first))
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	b.resetGroup(t, 0)
	b.k.Produce(t, testTopics.Input, recs[300:]...)

	second := startReplica(t, "second", cfg)
	deadline := time.Now().Add(15 * time.Second)
	for b.committedSum(t) != int64(len(recs)) {
		if time.Now().After(deadline) {
			calls := b.decideCalls(t)
			time.Sleep(time.Second)
			rate := b.decideCalls(t) - calls
			t.Errorf("after the rewind the daemon committed %v of %d records in 15s; it calls the decide script %d times a second",
				b.k.CommittedOffsets(t, groupID, testTopics.Input), len(recs), rate)
			// Stop it without waiting for its drain timeout: with Redis
			// gone the stuck batch fails and shutdown proceeds.
			second.cancel()
			b.r.Kill(t)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// resetGroup commits offset to every input partition for the (empty) group.
func (b *bed) resetGroup(t *testing.T, offset int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(testTopics.Input)
	mreq.Topics = append(mreq.Topics, mt)
	mresp, err := mreq.RequestWith(ctx, b.admin)
	if err != nil || len(mresp.Topics) != 1 {
		t.Fatalf("metadata of %s: %v", testTopics.Input, err)
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = groupID
	req.Generation = -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = testTopics.Input
	rt.TopicID = mresp.Topics[0].TopicID
	for _, p := range mresp.Topics[0].Partitions {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition = p.Partition
		rp.Offset = offset
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, b.admin)
	if err != nil {
		t.Fatalf("reset group %s: %v", groupID, err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				t.Fatalf("reset group %s partition %d: %v", groupID, rp.Partition, err)
			}
		}
	}
}

// decideCalls returns how many scripts Redis has run.
func (b *bed) decideCalls(t *testing.T) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := b.r.Client(t).Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatalf("redis INFO: %v", err)
	}
	var n int64
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok || (name != "cmdstat_evalsha" && name != "cmdstat_eval") {
			continue
		}
		c, _, _ := strings.Cut(rest, ",")
		v, _ := strconv.ParseInt(c, 10, 64)
		n += v
	}
	return n
}

// TestTripSurvivesStateTopicOutage trips a breaker while the state topic
// refuses writes, restarts the daemon (a deployment) once the topic is back,
// then loses Redis: the trip must have reached the state topic, so that the
// breaker is still open, under the same incident, after Redis comes back.
func TestTripSurvivesStateTopicOutage(t *testing.T) {
	b := newBed(t, 2)
	cfg := b.config(t, spikeSettings)
	scope := breaker.RuleScope(spikeRule)
	var refuse atomic.Bool
	refuse.Store(true)
	cl := b.k.Cluster()
	cl.ControlKey(kmsg.Produce.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		cl.KeepControl()
		req := kr.(*kmsg.ProduceRequest)
		if !refuse.Load() || len(req.Topics) != 1 || req.Topics[0].Topic != testTopics.State {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	// rule-02 acts ten times its share from the start and trips at once.
	g := traffic.New(10, 1000, 0, 10, 5)
	first := startReplica(t, "first", cfg)
	written := b.k.Produce(t, testTopics.Input, eventRecords(g.Events(epoch, 2*time.Minute, 2000))...)
	waitFor(t, 30*time.Second, func() string { return "the trip's state topic write to fail" }, replicasAlive(first),
		func() bool { return strings.Contains(first.logs.String(), `"op":"state"`) })
	tripped := b.status(t, scope)
	if tripped.State != breaker.Open {
		t.Fatalf("%s in Redis: %+v, want open", scope, tripped)
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	refuse.Store(false)

	second := startReplica(t, "second", cfg)
	b.waitCommitted(t, 30*time.Second, replicasAlive(second))
	if e, ok := b.stateLog(t)[scope]; !ok || e.To.State != breaker.Open || e.To.Generation != tripped.Generation {
		t.Errorf("the state topic has no open entry of %s (present %v, %s at generation %d); Redis has it open at generation %d",
			scope, ok, e.To.State, e.To.Generation, tripped.Generation)
	}

	// Redis loses everything. The rule is back to its normal rate, which
	// would never trip it, but its breaker was opened and only a human
	// closes it: every one of its actions must still be held.
	b.r.Kill(t)
	b.r.Restart(t)
	phase2 := len(written)
	more := traffic.New(10, 1000, -1, 1, 6).Events(epoch.Add(2*time.Minute), 2*time.Minute, 2000)
	written = append(written, b.k.Produce(t, testTopics.Input, eventRecords(more)...)...)
	b.waitCommitted(t, 60*time.Second, replicasAlive(second))
	after := b.status(t, scope)
	if after.State != breaker.Open || !after.TrippedAt.Equal(tripped.TrippedAt) {
		t.Errorf("%s after the Redis restart: %s (tripped at %v); want open since the trip at %v",
			scope, after.State, after.TrippedAt, tripped.TrippedAt)
	}
	in := newInput(t, written)
	o := b.readOutputs(t, in)
	gated, total := 0, 0
	for i, a := range in.actions {
		if a.RuleID != spikeRule || i < phase2 {
			continue
		}
		total++
		if topic, _ := o.topicOf(i); topic == testTopics.Gated {
			gated++
		}
	}
	if gated > 0 {
		t.Errorf("%d of %d actions of the tripped %s were gated after Redis lost its data", gated, total, spikeRule)
	}
	t.Logf("after the Redis restart: %d of %d actions of %s gated; breaker %s", gated, total, spikeRule, after.State)
}

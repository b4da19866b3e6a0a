package consumer

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/breakwater/breakwater/internal/produce"
	"github.com/breakwater/breakwater/internal/testbed"
)

// TestProducerOneRequestPerPartition writes runs with the producer to a
// three-partition topic of a broker that counts produce requests per
// partition: each run must go in exactly one request per partition it
// touches, so that a partition's records of a run fail or succeed together
// and a retry cannot put a record after a later one of its key. Every
// record must land on the partition kafka-go's Hash balancer picks, in
// order.
func TestProducerOneRequestPerPartition(t *testing.T) {
	k := testbed.StartKafka(t)
	k.CreateTopic(t, "runs", 3)
	var mu sync.Mutex
	produces := map[int32]int{}
	c := k.Cluster()
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		for _, rt := range kr.(*kmsg.ProduceRequest).Topics {
			for _, rp := range rt.Partitions {
				produces[rp.Partition]++
			}
		}
		return nil, nil, false
	})
	counted := func() map[int32]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(produces)
	}
	tr := &kafka.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	w := newProducer(&kafka.Client{Addr: kafka.TCP(k.Addrs()...), Transport: tr, Timeout: 10 * time.Second}, kafka.RequireAll)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msgs := testbed.UnevenRecords("runs", 8000, 7)
	runs := 0
	for run := range w.Runs(ctx, msgs, 2000, maxRunBytes) {
		runs++
		want := map[int32]int{}
		size := map[int32]int64{}
		for i := range run {
			want[testbed.KeyPartition(run[i].Key, 3)]++
			size[testbed.KeyPartition(run[i].Key, 3)] += produce.RecordSize(&run[i])
		}
		for part, n := range size {
			if n >= maxRunBytes && want[part] > 1 {
				t.Fatalf("run %d: partition %d holds %d records of %d bytes, past the bound %d", runs, part, want[part], n, maxRunBytes)
			}
		}
		before := counted()
		if err := w.Write(ctx, run); err != nil {
			t.Fatal(err)
		}
		after := counted()
		for part := range want {
			if n := after[part] - before[part]; n != 1 {
				t.Fatalf("run %d of %d records: %d produce requests to partition %d, want 1", runs, len(run), n, part)
			}
		}
	}
	if runs < 2 {
		t.Fatalf("%d runs: the records never reached a bound", runs)
	}
	got := k.ReadAll(t, "runs", 30*time.Second)
	if len(got) != len(msgs) {
		t.Fatalf("%d records on the topic, want %d", len(got), len(msgs))
	}
	next := map[int32]int{} // per partition, the index in msgs of its next record
	for _, r := range got {
		i := next[r.Partition]
		for i < len(msgs) && testbed.KeyPartition(msgs[i].Key, 3) != r.Partition {
			i++
		}
		if i == len(msgs) || !bytes.Equal(msgs[i].Value, r.Value) || string(r.Headers[1].Value) != "rule:spam-links" {
			t.Fatalf("partition %d: offset %d is not the next record the balancer puts there", r.Partition, r.Offset)
		}
		next[r.Partition] = i + 1
	}
}

// TestProducerFailsOnlyTheRefusedPartition refuses every produce request to
// one partition: the write must fail exactly that partition's records
// (kafka.WriteErrors, the others nil) and the others must be on the topic
// once; once the refusal ends, writing only the failed records puts
// every record on the topic once, in order per key.
func TestProducerFailsOnlyTheRefusedPartition(t *testing.T) {
	k := testbed.StartKafka(t)
	k.CreateTopic(t, "runs", 3)
	var refuse atomic.Bool
	refuse.Store(true)
	c := k.Cluster()
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.ProduceRequest)
		if !refuse.Load() || len(req.Topics) != 1 || len(req.Topics[0].Partitions) != 1 || req.Topics[0].Partitions[0].Partition != 1 {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		st := kmsg.NewProduceResponseTopic()
		st.Topic = req.Topics[0].Topic
		sp := kmsg.NewProduceResponseTopicPartition()
		sp.Partition = 1
		sp.ErrorCode = kerr.NotEnoughReplicas.Code
		st.Partitions = append(st.Partitions, sp)
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
	tr := &kafka.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	w := newProducer(&kafka.Client{Addr: kafka.TCP(k.Addrs()...), Transport: tr, Timeout: 10 * time.Second}, kafka.RequireAll)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msgs := testbed.UnevenRecords("runs", 600, 3)
	err := w.Write(ctx, msgs)
	var we kafka.WriteErrors
	if !errors.As(err, &we) || len(we) != len(msgs) {
		t.Fatalf("write with partition 1 refused: %v, want kafka.WriteErrors of %d", err, len(msgs))
	}
	var failed []kafka.Message
	for i := range msgs {
		onRefused := testbed.KeyPartition(msgs[i].Key, 3) == 1
		if onRefused != (we[i] != nil) {
			t.Fatalf("record %d (partition %d): error %v", i, testbed.KeyPartition(msgs[i].Key, 3), we[i])
		}
		if we[i] != nil {
			if !errors.Is(we[i], kafka.NotEnoughReplicas) {
				t.Fatalf("record %d: %v, want the broker's NotEnoughReplicas", i, we[i])
			}
			failed = append(failed, msgs[i])
		}
	}
	if len(failed) == 0 || len(failed) == len(msgs) {
		t.Fatalf("%d of %d records on the refused partition: the test proves nothing", len(failed), len(msgs))
	}
	if n := len(k.ReadAll(t, "runs", 30*time.Second)); n != len(msgs)-len(failed) {
		t.Fatalf("%d records on the topic after the partial failure, want %d", n, len(msgs)-len(failed))
	}
	refuse.Store(false)
	if err := w.Write(ctx, failed); err != nil {
		t.Fatal(err)
	}
	got := k.ReadAll(t, "runs", 30*time.Second)
	if len(got) != len(msgs) {
		t.Fatalf("%d records on the topic, want %d", len(got), len(msgs))
	}
	lastOf := map[string]int{} // per key, the index in msgs of its last record read
	for _, r := range got {
		i := slices.IndexFunc(msgs, func(m kafka.Message) bool { return bytes.Equal(m.Value, r.Value) })
		if i < 0 {
			t.Fatalf("partition %d offset %d: a record never written", r.Partition, r.Offset)
		}
		if last, ok := lastOf[string(r.Key)]; ok && last >= i {
			t.Fatalf("key %s: record %d after record %d", r.Key, i, last)
		}
		lastOf[string(r.Key)] = i
	}
}

// TestProducerRunsBoundEachPartition cuts a write of records spread over
// twelve partitions, more than the bound of a request in all but far
// under it per partition: it is one run (one request per partition, sent
// at once), where a bound on the total would make it several written one
// after the other. The same records to a topic of one partition are cut
// into runs of which none passes the bound, in order and all of them; and
// without keys (any partition may get them), into runs under the bound in
// all.
func TestProducerRunsBoundEachPartition(t *testing.T) {
	k := testbed.StartKafka(t)
	k.CreateTopic(t, "runs", 12)
	k.CreateTopic(t, "one", 1)
	tr := &kafka.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	w := newProducer(&kafka.Client{Addr: kafka.TCP(k.Addrs()...), Transport: tr, Timeout: 10 * time.Second}, kafka.RequireAll)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msgs := testbed.UnevenRecords("runs", 4000, 11)
	var total int64
	for i := range msgs {
		total += produce.RecordSize(&msgs[i])
	}
	if total < 2*maxRunBytes {
		t.Fatalf("the records hold %d bytes in all, want at least twice the bound %d", total, maxRunBytes)
	}
	var runs [][]kafka.Message
	for run := range w.Runs(ctx, msgs, len(msgs), maxRunBytes) {
		runs = append(runs, run)
	}
	if len(runs) != 1 || len(runs[0]) != len(msgs) {
		t.Fatalf("Runs over 12 partitions = %d runs; want 1 of all %d records", len(runs), len(msgs))
	}
	one := slices.Clone(msgs)
	for i := range one {
		one[i].Topic = "one"
	}
	n, got := 0, 0
	for run := range w.Runs(ctx, one, len(one), maxRunBytes) {
		n++
		var size int64
		for i := range run {
			if &run[i] != &one[got+i] {
				t.Fatalf("run %d does not go on from record %d", n, got)
			}
			size += produce.RecordSize(&run[i])
		}
		if size >= maxRunBytes {
			t.Fatalf("run %d of one partition holds %d bytes, want under %d", n, size, maxRunBytes)
		}
		got += len(run)
	}
	if got != len(one) || int64(n) < total/maxRunBytes {
		t.Fatalf("Runs over 1 partition = %d runs of %d records; want at least %d of all %d", n, got, total/maxRunBytes, len(one))
	}

	// Without keys the records may go to any partition: a run holds no
	// more than the bound in all.
	unkeyed := slices.Clone(msgs)
	for i := range unkeyed {
		unkeyed[i].Key = nil
	}
	n, got = 0, 0
	for run := range w.Runs(ctx, unkeyed, len(unkeyed), maxRunBytes) {
		n++
		var size int64
		for i := range run {
			size += produce.RecordSize(&run[i])
		}
		if size >= maxRunBytes && len(run) > 1 {
			t.Fatalf("run %d of records without keys holds %d bytes, want under %d", n, size, maxRunBytes)
		}
		got += len(run)
	}
	if got != len(unkeyed) || n < 2 {
		t.Fatalf("Runs of records without keys = %d runs of %d records; want at least 2 of all %d", n, got, len(unkeyed))
	}
}

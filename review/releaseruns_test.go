package review

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/breakwater/breakwater/internal/produce"
	"github.com/breakwater/breakwater/internal/testbed"
)

// TestReleaseRunsOneRequestPerPartition releases one batch of approved
// actions whose records pass kafka-go's bound of one produce request
// (1 MiB) on one partition, and refuses the first produce request to
// gated. The release must stop there: no later request, so that no action
// after the refused ones reaches gated before them. The next step writes
// the batch in runs, each in exactly one produce request, and gated holds
// every action once, in held order (per key, too).
func TestReleaseRunsOneRequestPerPartition(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const total = 360
	pad := bytes.Repeat([]byte("p"), 8<<10) // 360 records of 8 KiB: about 3 MiB
	var recs []testbed.Record
	for i := range total {
		r := heldMsg(fmt.Sprintf("act-%04d", i), fmt.Sprintf("u-%d", i%7), "rule:a@1")
		r.Headers = append(r.Headers, testbed.Header{Key: "x-pad", Value: pad})
		recs = append(recs, r)
	}
	b := newReleaseBed(t, 1, recs...)
	if _, err := b.x.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if o, err := b.x.DecideIncident(ctx, Decision{Incident: "rule:a@1", To: Approved, Reviewer: "alice"}); err != nil || o.Changed != total {
		t.Fatalf("DecideIncident = %+v, %v", o, err)
	}

	var mu sync.Mutex
	var requests []int // records per produce request to gated, in order
	refuse := true
	cl := b.k.Cluster()
	cl.ControlKey(kmsg.Produce.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		cl.KeepControl()
		req := kr.(*kmsg.ProduceRequest)
		if len(req.Topics) != 1 || req.Topics[0].Topic != tGated {
			return nil, nil, false
		}
		n := 0
		for _, p := range req.Topics[0].Partitions {
			n += batchRecords(p.Records)
		}
		mu.Lock()
		defer mu.Unlock()
		requests = append(requests, n)
		if !refuse {
			return nil, nil, false
		}
		refuse = false
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		st := kmsg.NewProduceResponseTopic()
		st.Topic = tGated
		for _, rp := range req.Topics[0].Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = kerr.NotEnoughReplicas.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
	taken := func() []int {
		mu.Lock()
		defer mu.Unlock()
		out := requests
		requests = nil
		return out
	}

	r := b.releaser(t, total)
	if n, err := r.Step(ctx); err == nil || n != 0 {
		t.Fatalf("Step with the first produce request refused = %d, %v; want an error", n, err)
	}
	// Give a request the Writer might still send after the refusal the
	// time to arrive.
	time.Sleep(500 * time.Millisecond)
	if got := taken(); len(got) != 1 {
		t.Fatalf("produce requests to gated of the refused release: %v; want the refused one alone", got)
	}
	if n, err := r.Step(ctx); err != nil || n != total {
		t.Fatalf("second Step = %d, %v; want %d released", n, err, total)
	}
	got := taken()

	gated := b.k.ReadAll(t, tGated, 30*time.Second)
	if len(gated) != total {
		t.Fatalf("%d records on gated, want %d", len(gated), total)
	}
	msgs := make([]kafka.Message, len(gated))
	for i, g := range gated {
		if want := fmt.Sprintf("act-%04d", i); header(g, "breakwater-action-id") != want {
			t.Fatalf("gated offset %d holds %s; want %s (held order)", g.Offset, header(g, "breakwater-action-id"), want)
		}
		m := kafka.Message{Key: g.Key, Value: g.Value}
		for _, h := range g.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
		}
		msgs[i] = m
	}
	var runs []int
	for run := range produce.Runs(msgs, r.w.BatchSize, r.w.BatchBytes) {
		runs = append(runs, len(run))
	}
	if len(runs) < 2 {
		t.Fatalf("the batch is %d run: it never passed the bound, so the test shows nothing", len(runs))
	}
	if fmt.Sprint(got) != fmt.Sprint(runs) {
		t.Fatalf("records per produce request of the release: %v; want one request per run %v", got, runs)
	}
	t.Logf("the refused release sent 1 request; the release after it %d requests of %v records", len(got), got)
}

// batchRecords is the number of records in a produce request's record
// batches.
func batchRecords(raw []byte) int {
	n := 0
	for len(raw) >= 61 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw); err != nil {
			return n
		}
		n += int(b.NumRecords)
		raw = raw[12+int(b.Length):]
	}
	return n
}

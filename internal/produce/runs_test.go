package produce

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/breakwater/breakwater/internal/testbed"
)

// TestRunsBounds checks that the runs are the records in order, each
// within the count and (as RecordSize counts it) the byte bound.
func TestRunsBounds(t *testing.T) {
	for _, tc := range []struct {
		n, maxCount int
		maxBytes    int64
	}{
		{0, 10, 1000}, {1, 1, 10}, {5, 100, 1 << 20}, {2000, 2000, 1 << 20}, {2000, 300, 1 << 20},
		{2000, 2000, 64 << 10}, {700, 7, 5000}, {50, 0, 1},
	} {
		msgs := testbed.UnevenRecords("runs", tc.n, uint64(tc.n))
		var got []kafka.Message
		runs := 0
		for run := range Runs(msgs, tc.maxCount, tc.maxBytes) {
			runs++
			if len(run) == 0 {
				t.Fatalf("%+v: an empty run", tc)
			}
			if len(run) > max(tc.maxCount, 1) {
				t.Errorf("%+v: a run of %d records", tc, len(run))
			}
			var bytes int64
			for i := range run {
				bytes += RecordSize(&run[i])
			}
			if len(run) > 1 && bytes >= tc.maxBytes {
				t.Errorf("%+v: a run of %d bytes", tc, bytes)
			}
			got = append(got, run...)
		}
		if len(got) != len(msgs) {
			t.Fatalf("%+v: %d records in the runs, want %d", tc, len(got), len(msgs))
		}
		for i := range got {
			if &got[i].Value[0] != &msgs[i].Value[0] {
				t.Fatalf("%+v: record %d out of order", tc, i)
			}
		}
		if tc.n > 0 && tc.maxCount == tc.n && tc.maxBytes == 1<<20 && runs != 1 && tc.n < 1000 {
			t.Errorf("%+v: %d runs of a batch that fits in one", tc, runs)
		}
	}
}

// TestRunsOneRequestPerPartition writes runs with kafka-go's Writer to
// a one-partition topic of a broker that counts produce requests: each run
// must go in exactly one request, so that a run fails or succeeds as a
// whole and a retry cannot put a record after a later one of its key. The
// same records in one call take several requests (else the test would show
// nothing).
func TestRunsOneRequestPerPartition(t *testing.T) {
	k := testbed.StartKafka(t)
	k.CreateTopic(t, "runs", 1)
	var produces atomic.Int64
	c := k.Cluster()
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		produces.Add(1)
		return nil, nil, false
	})
	tr := &kafka.Transport{}
	w := &kafka.Writer{
		Addr:         kafka.TCP(k.Addrs()...),
		Transport:    tr,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    500,
		BatchBytes:   64 << 10,
		BatchTimeout: 50 * time.Microsecond,
		MaxAttempts:  1,
	}
	t.Cleanup(func() {
		_ = w.Close()
		tr.CloseIdleConnections()
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msgs := testbed.UnevenRecords("runs", 2000, 7)
	for i := range msgs {
		msgs[i].Topic = ""
	}
	w.Topic = "runs"
	// The first write creates the connection and learns the metadata.
	if err := w.WriteMessages(ctx, msgs[:1]...); err != nil {
		t.Fatal(err)
	}
	runs := 0
	for run := range Runs(msgs, w.BatchSize, w.BatchBytes) {
		runs++
		before := produces.Load()
		if err := w.WriteMessages(ctx, run...); err != nil {
			t.Fatal(err)
		}
		if n := produces.Load() - before; n != 1 {
			t.Fatalf("run %d of %d records went in %d produce requests", runs, len(run), n)
		}
	}
	if runs < 2 {
		t.Fatalf("%d runs: the records never reached a bound", runs)
	}
	before := produces.Load()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	if n := produces.Load() - before; n < 2 {
		t.Fatalf("all %d records in one call went in %d produce request: the bounds were never reached, so the runs prove nothing", len(msgs), n)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

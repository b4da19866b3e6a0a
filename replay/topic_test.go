package replay_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/breakwater/breakwater/event"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/replay"
	"github.com/breakwater/breakwater/traffic"
)

// TestTopic reads a topic of three partitions without a consumer group:
// every record once, in timestamp order, and only those of a time range
// when asked.
func TestTopic(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka-protocol broker")
	}
	k := testbed.StartKafka(t)
	k.CreateTopic(t, "actions", 3)
	sim := traffic.NewSimulation(traffic.Scenario{Start: epoch, Duration: 10 * time.Minute, Rules: 4, Rate: 5, Seed: 2})
	var recs []testbed.Record
	for l, ok := sim.Next(nil); ok; l, ok = sim.Next(nil) {
		recs = append(recs, testbed.Record{Partition: testbed.AnyPartition, Key: bytes.Clone(sim.Key()), Value: l, Timestamp: sim.At()})
	}
	k.Produce(t, "actions", recs...)

	read := func(opts replay.TopicOptions) []event.Action {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		opts.Kafka, opts.Topic = kafkaconn.Plain(k.Addrs()...), "actions"
		src, err := replay.OpenTopic(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		var out []event.Action
		last := map[int]int64{}
		for {
			v, pos, err := src.Next()
			if errors.Is(err, io.EOF) {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			if o, ok := last[pos.Partition]; ok && pos.Offset != o+1 {
				t.Fatalf("partition %d: offset %d after %d", pos.Partition, pos.Offset, o)
			}
			last[pos.Partition] = pos.Offset
			a, err := event.Decode(v)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, a)
		}
	}
	all := read(replay.TopicOptions{StartOffset: -2})
	if len(all) != len(recs) {
		t.Fatalf("read %d records; want %d", len(all), len(recs))
	}
	for i := 1; i < len(all); i++ {
		if all[i].OccurredAt.Before(all[i-1].OccurredAt) {
			t.Fatalf("record %d at %s comes after %s: not in timestamp order", i, all[i].OccurredAt, all[i-1].OccurredAt)
		}
	}
	from, to := epoch.Add(4*time.Minute), epoch.Add(6*time.Minute)
	part := read(replay.TopicOptions{StartTime: from, EndTime: to})
	want := 0
	for _, a := range all {
		if !a.OccurredAt.Before(from) && !a.OccurredAt.After(to) {
			want++
		}
	}
	if len(part) != want || want == 0 {
		t.Errorf("time range: read %d records; want %d", len(part), want)
	}
}

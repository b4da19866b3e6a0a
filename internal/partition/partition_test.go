package partition_test

import (
	"github.com/breakwater/breakwater/internal/kafkaconn"

	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/breakwater/breakwater/internal/partition"
	"github.com/breakwater/breakwater/internal/testbed"
)

func TestRead(t *testing.T) {
	k := testbed.StartKafka(t)
	k.CreateTopic(t, "log", 2)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var recs []testbed.Record
	for i := range 1000 {
		r := testbed.Record{Partition: 1, Key: []byte("k"), Value: []byte(strconv.Itoa(i)), Timestamp: t0.Add(time.Duration(i) * time.Second)}
		if i == 500 {
			r.Value = nil // a tombstone is read too
		}
		recs = append(recs, r)
	}
	k.Produce(t, "log", recs...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dead := "127.0.0.1:" + strconv.Itoa(testbed.FreePort(t))
	brokers := kafkaconn.Plain(append([]string{dead}, k.Addrs()...)...)

	parts, err := partition.List(ctx, brokers, "log")
	if err != nil || len(parts) != 2 {
		t.Fatalf("List = %v, %v; want 2 partitions", parts, err)
	}
	if last, err := partition.Last(ctx, brokers, "log", 1); err != nil || last != 1000 {
		t.Fatalf("Last = %d, %v; want 1000", last, err)
	}
	if at, err := partition.At(ctx, brokers, "log", 1, t0.Add(250*time.Second)); err != nil || at != 250 {
		t.Fatalf("At(+250s) = %d, %v; want 250", at, err)
	}

	read := func(from, end int64, stopAt int64) (offsets []int64, err error) {
		next := from
		err = partition.Read(ctx, brokers, "log", 1, from, end, func(msgs []kafka.Message, start, nxt int64) error {
			if start != next || nxt <= start {
				return fmt.Errorf("batch [%d, %d) after %d", start, nxt, next)
			}
			next = nxt
			for _, m := range msgs {
				offsets = append(offsets, m.Offset)
				if want := strconv.FormatInt(m.Offset, 10); m.Offset != 500 && string(m.Value) != want {
					return fmt.Errorf("offset %d holds %q", m.Offset, m.Value)
				}
				if m.Offset == stopAt {
					return partition.ErrStop
				}
			}
			return nil
		})
		return offsets, err
	}
	check := func(name string, got []int64, err error, first, n int64) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if int64(len(got)) != n || (n > 0 && (got[0] != first || got[n-1] != first+n-1)) {
			t.Fatalf("%s: read %d offsets from %v; want %d from %d", name, len(got), got[:min(len(got), 3)], n, first)
		}
	}
	got, err := read(0, partition.End, -1)
	check("all", got, err, 0, 1000)
	got, err = read(100, 300, -1)
	check("100 to 300", got, err, 100, 200)
	got, err = read(990, 5000, -1)
	check("past the end", got, err, 990, 10)
	got, err = read(0, partition.End, 41)
	check("stopped at 41", got, err, 0, 42)
	got, err = read(1000, partition.End, -1)
	check("at the end", got, err, 0, 0)
	if err := partition.Read(ctx, kafkaconn.Plain(dead), "log", 1, 0, partition.End, nil); err == nil {
		t.Errorf("Read with no broker answering = nil error")
	}
}

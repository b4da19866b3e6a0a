package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/wire"
)

func out(source, decision, incident, scope string) kafka.Message {
	h := []kafka.Header{{Key: "trace", Value: []byte("x")}}
	for _, kv := range [][2]string{
		{wire.HeaderSource, source}, {wire.HeaderDecision, decision},
		{wire.HeaderIncident, incident}, {wire.HeaderScope, scope},
	} {
		if kv[1] != "" {
			h = append(h, kafka.Header{Key: kv[0], Value: []byte(kv[1])})
		}
	}
	return kafka.Message{Headers: h}
}

func TestDecisionOf(t *testing.T) {
	rg := decide.Range{Topic: "in", Partition: 2, First: 100}
	tests := []struct {
		name string
		m    kafka.Message
		off  int64
		want map[breaker.Scope]uint64
		ok   bool
	}{
		{"gated", out("in/2/150", "gated", "", "rule:a"), 150, map[breaker.Scope]uint64{}, true},
		{"held by a trip", out("in/2/100", "held", "rule:a|action:ban@7", "rule:a|action:ban"), 100, map[breaker.Scope]uint64{"rule:a|action:ban": 7}, true},
		{"held by the outage policy", out("in/2/101", "held", "", "rule:b"), 101, map[breaker.Scope]uint64{"rule:b": 0}, true},
		{"below the range", out("in/2/99", "gated", "", "rule:a"), 0, nil, false},
		{"another partition", out("in/3/150", "gated", "", "rule:a"), 0, nil, false},
		{"another topic", out("held/2/150", "approved", "rule:a@1", "rule:a"), 0, nil, false},
		{"no source", out("", "gated", "", "rule:a"), 0, nil, false},
		{"bad source", out("in/2/x", "gated", "", "rule:a"), 0, nil, false},
		{"unknown decision", out("in/2/150", "approved", "", "rule:a"), 0, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			off, h, ok := decisionOf(&tc.m, rg)
			if off != tc.off || ok != tc.ok || fmt.Sprint(h) != fmt.Sprint(tc.want) {
				t.Errorf("decisionOf = %d, %v, %v; want %d, %v, %v", off, h, ok, tc.off, tc.want, tc.ok)
			}
		})
	}
}

func TestRecordsOf(t *testing.T) {
	rg := decide.Range{Topic: "in", Partition: 1, First: 10}
	a1 := map[breaker.Scope]uint64{"rule:a": 1}
	found := map[int64]map[breaker.Scope]uint64{
		10: {}, 11: {}, 12: a1, 13: {"rule:a": 1}, 15: a1, 16: {"rule:a": 2}, 17: {},
	}
	got := fmt.Sprint(recordsOf(rg, found))
	want := fmt.Sprint([]decide.Record{
		{Topic: "in", Partition: 1, First: 10, Last: 11, Holding: map[breaker.Scope]uint64{}},
		{Topic: "in", Partition: 1, First: 12, Last: 13, Holding: a1},
		{Topic: "in", Partition: 1, First: 15, Last: 15, Holding: a1},
		{Topic: "in", Partition: 1, First: 16, Last: 16, Holding: map[breaker.Scope]uint64{"rule:a": 2}},
		{Topic: "in", Partition: 1, First: 17, Last: 17, Holding: map[breaker.Scope]uint64{}},
	})
	if got != want {
		t.Errorf("recordsOf = %s; want %s (a gap at 14 splits a run)", got, want)
	}
}

// rebuildStore records the Rebuild calls; with failSecond, the second
// call fails, once.
type rebuildStore struct {
	Decider
	mu         sync.Mutex
	n          int
	failSecond bool
	calls      []string
}

func (s *rebuildStore) Rebuild(_ context.Context, topic string, partition int, floor int64, recs []decide.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n++; s.failSecond && s.n == 2 {
		return errors.New("store down")
	}
	s.calls = append(s.calls, fmt.Sprintf("%s/%d from %d: %v", topic, partition, floor, recs))
	return nil
}

// TestRebuildReadsEachOutputOnceForAllPartitions rebuilds the decisions
// of three input partitions from output topics of five partitions in all:
// each range gets exactly the decisions of its partition at or after its
// first offset; the broker sees no more offset look-ups than for one
// range (each output partition is read once, not once per range); and a
// retry after the store failed on the second range writes only the ranges
// not written yet.
func TestRebuildReadsEachOutputOnceForAllPartitions(t *testing.T) {
	k := testbed.StartKafka(t)
	k.CreateTopic(t, "gated", 3)
	k.CreateTopic(t, "held", 2)
	var mu sync.Mutex
	lookups := 0
	k.Cluster().ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		k.Cluster().KeepControl()
		mu.Lock()
		lookups++
		mu.Unlock()
		return nil, nil, false
	})
	counted := func() int {
		mu.Lock()
		defer mu.Unlock()
		return lookups
	}
	rec := func(part int32, src, decision, incident string) testbed.Record {
		hs := []testbed.Header{{Key: wire.HeaderDecision, Value: []byte(decision)}, {Key: wire.HeaderSource, Value: []byte(src)}}
		if incident != "" {
			hs = append(hs, testbed.Header{Key: wire.HeaderIncident, Value: []byte(incident)})
		}
		return testbed.Record{Partition: part, Key: []byte(src), Value: []byte("v"), Headers: hs}
	}
	k.Produce(t, "gated",
		rec(0, "in/0/4", "gated", ""), rec(0, "in/0/5", "gated", ""), rec(1, "in/1/0", "gated", ""),
		rec(2, "in/0/6", "gated", ""), rec(2, "other/0/9", "gated", ""), rec(1, "in/2/99", "gated", ""))
	k.Produce(t, "held", rec(0, "in/1/1", "held", "rule:a@3"), rec(1, "in/0/7", "held", "rule:b@1"))

	cfg := config.Default()
	cfg.Kafka.Topics.Gated, cfg.Kafka.Topics.Held = "gated", "held"
	st := &rebuildStore{}
	p := &Pipeline{cfg: cfg, log: zap.NewNop(), opts: Options{Kafka: kafkaconn.Plain(k.Addrs()...), Store: st}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	since := map[int]time.Time{0: time.Now().Add(-time.Minute), 1: time.Now().Add(-time.Minute), 2: time.Now().Add(-time.Minute)}

	// One range alone, as a baseline of the look-ups.
	one := []decide.Range{{Topic: "in", Partition: 2, First: 100}}
	if err := p.rebuild(ctx, one, since, make([]bool, 1)); err != nil {
		t.Fatal(err)
	}
	perRead := counted()
	if perRead == 0 {
		t.Fatal("the broker saw no offset look-up: it does not count them")
	}
	st.calls, st.n, st.failSecond = nil, 0, true

	rgs := []decide.Range{{Topic: "in", Partition: 0, First: 5}, {Topic: "in", Partition: 1, First: 0}, {Topic: "in", Partition: 2, First: 100}}
	done := make([]bool, len(rgs))
	before := counted()
	err := p.rebuild(ctx, rgs, since, done)
	if err == nil || !done[0] || done[1] || done[2] {
		t.Fatalf("rebuild with the store failing on the second range = %v, done %v; want an error and the first done", err, done)
	}
	if got := counted() - before; got != perRead {
		t.Fatalf("rebuild of 3 ranges made %d offset look-ups; one range makes %d", got, perRead)
	}
	if err := p.rebuild(ctx, rgs, since, done); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("in/0 from 5: %v", []decide.Record{
			{Topic: "in", Partition: 0, First: 5, Last: 6, Holding: map[breaker.Scope]uint64{}},
			{Topic: "in", Partition: 0, First: 7, Last: 7, Holding: map[breaker.Scope]uint64{"rule:b": 1}},
		}),
		fmt.Sprintf("in/1 from 0: %v", []decide.Record{
			{Topic: "in", Partition: 1, First: 0, Last: 0, Holding: map[breaker.Scope]uint64{}},
			{Topic: "in", Partition: 1, First: 1, Last: 1, Holding: map[breaker.Scope]uint64{"rule:a": 3}},
		}),
		fmt.Sprintf("in/2 from 100: %v", []decide.Record(nil)),
	}
	if !slices.Equal(st.calls, want) {
		t.Fatalf("store rebuilds =\n%s\nwant\n%s", strings.Join(st.calls, "\n"), strings.Join(want, "\n"))
	}
}

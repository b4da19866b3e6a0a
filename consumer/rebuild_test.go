package consumer

import (
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
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

package statelog_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/statelog"
	"github.com/breakwater/breakwater/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newLog(t *testing.T, k *testbed.Kafka, topic string) *statelog.Log {
	l := statelog.New(kafkaconn.Plain(k.Addrs()...), topic, 10*time.Second)
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

var t0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

// status returns a status of generation g with every field set.
func status(g uint64) breaker.Status {
	st := []breaker.State{breaker.Open, breaker.Probation, breaker.ForcedOpen, breaker.Closed, breaker.Shadow, breaker.ForcedClosed}[g%6]
	s := breaker.Status{
		State: st, Auto: breaker.Open, Generation: g, Since: t0.Add(time.Duration(g) * time.Second),
		TrippedAt: t0, Reason: fmt.Sprint("reason ", g), Actor: "op", ProbationUntil: t0.Add(time.Hour),
	}
	if st.Manual() {
		s.Until = t0.Add(2 * time.Hour)
	}
	return s
}

func transition(scope breaker.Scope, g uint64) breaker.Transition {
	from := status(g - 1)
	if g == 1 {
		from = breaker.Initial()
	}
	return breaker.Transition{Scope: scope, From: from, To: status(g), Counts: breaker.Counts{Window: 12.5, Baseline: 1.25, BaselineReady: true}}
}

func sameStatus(a, b breaker.Status) bool {
	return a.State == b.State && a.Auto == b.Auto && a.Generation == b.Generation &&
		a.Since.Equal(b.Since) && a.TrippedAt.Equal(b.TrippedAt) && a.Reason == b.Reason &&
		a.Actor == b.Actor && a.Until.Equal(b.Until) && a.ProbationUntil.Equal(b.ProbationUntil)
}

// checkLoad loads the topic and compares it with want.
func checkLoad(t *testing.T, l *statelog.Log, want map[breaker.Scope]breaker.Status) {
	t.Helper()
	got, err := l.Load(ctxT(t))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	slices.SortFunc(got, func(a, b store.ScopeStatus) int { return cmp.Compare(a.Scope, b.Scope) })
	if len(got) != len(want) {
		t.Errorf("Load returned %d scopes; want %d: %+v", len(got), len(want), got)
	}
	for _, s := range got {
		w, ok := want[s.Scope]
		if !ok {
			t.Errorf("Load returned unexpected scope %s", s.Scope)
			continue
		}
		if !sameStatus(s.Status, w) {
			t.Errorf("Load: %s = %+v; want %+v", s.Scope, s.Status, w)
		}
	}
}

func TestRecordLoad(t *testing.T) {
	k := testbed.StartKafka(t)
	k.CreateCompactedTopic(t, "states", 1)
	l := newLog(t, k, "states")
	ctx := ctxT(t)
	a, b, c := breaker.Global, breaker.RuleScope("spam"), breaker.ActionScope("spam", "ban_account")
	if err := l.Record(ctx, t0, nil); err != nil {
		t.Fatalf("Record(nil) = %v", err)
	}
	for g := uint64(1); g <= 3; g++ {
		ts := []breaker.Transition{transition(a, g), transition(b, g)}
		if g <= 2 {
			ts = append(ts, transition(c, g))
		}
		if err := l.Record(ctx, t0.Add(time.Duration(g)*time.Minute), ts); err != nil {
			t.Fatalf("Record gen %d: %v", g, err)
		}
	}
	// A transition recorded late with an older generation does not win.
	if err := l.Record(ctx, t0, []breaker.Transition{transition(a, 2)}); err != nil {
		t.Fatal(err)
	}
	want := map[breaker.Scope]breaker.Status{a: status(3), b: status(3), c: status(2)}
	checkLoad(t, l, want)

	// The records are keyed by scope and carry the whole transition.
	recs := k.ReadAll(t, "states", 10*time.Second)
	if len(recs) != 9 {
		t.Fatalf("%d records on the topic; want 9", len(recs))
	}
	for _, r := range recs {
		var e statelog.Entry
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatalf("record %s: %v", r.Value, err)
		}
		if string(r.Key) != string(e.Scope) || e.At.IsZero() || e.To.Generation == 0 || e.Counts.Window != 12.5 {
			t.Errorf("record key %q = %+v", r.Key, e)
		}
	}
	// A new Log (another replica) loads the same.
	checkLoad(t, newLog(t, k, "states"), want)
}

func TestLoadEmpty(t *testing.T) {
	k := testbed.StartKafka(t)
	k.CreateCompactedTopic(t, "states", 3)
	l := newLog(t, k, "states")
	got, err := l.Load(ctxT(t))
	if err != nil || len(got) != 0 {
		t.Fatalf("Load of an empty topic = %+v, %v; want nothing", got, err)
	}
}

func TestLoadMissingTopic(t *testing.T) {
	k := testbed.StartKafka(t)
	l := newLog(t, k, "no-such-topic")
	if got, err := l.Load(ctxT(t)); err == nil {
		t.Fatalf("Load of a missing topic = %+v, nil; want an error, not an empty state", got)
	}
}

func TestSeveralPartitions(t *testing.T) {
	k := testbed.StartKafka(t)
	k.CreateCompactedTopic(t, "states", 4)
	l := newLog(t, k, "states")
	ctx := ctxT(t)
	want := map[breaker.Scope]breaker.Status{}
	var scopes []breaker.Scope
	for i := range 24 {
		scopes = append(scopes, breaker.ActionScope(fmt.Sprint("rule", i/3), fmt.Sprint("action", i%3)))
	}
	for g := uint64(1); g <= 4; g++ {
		var ts []breaker.Transition
		for i, s := range scopes {
			if uint64(i%4)+1 >= g {
				ts = append(ts, transition(s, g))
				want[s] = status(g)
			}
		}
		if err := l.Record(ctx, t0, ts); err != nil {
			t.Fatal(err)
		}
	}
	used := 0
	for _, end := range k.EndOffsets(t, "states") {
		if end > 0 {
			used++
		}
	}
	if used < 2 {
		t.Fatalf("records on %d partitions; want several", used)
	}
	checkLoad(t, l, want)
}

// TestLoadAfterCompaction loads a topic whose older records were compacted
// away, so that offsets have gaps and the first offset is not 0.
func TestLoadAfterCompaction(t *testing.T) {
	k := testbed.StartKafka(t)
	k.CreateTopicWithConfigs(t, "states", 2, map[string]string{
		"cleanup.policy": "compact", "segment.bytes": "1", "delete.retention.ms": "0", "min.cleanable.dirty.ratio": "0",
	})
	l := newLog(t, k, "states")
	ctx := ctxT(t)
	scopes := []breaker.Scope{breaker.Global, breaker.RuleScope("a"), breaker.RuleScope("b"), breaker.RuleScope("c")}
	want := map[breaker.Scope]breaker.Status{}
	for g := uint64(1); g <= 6; g++ {
		for i, s := range scopes {
			if g > uint64(3+i) {
				continue
			}
			if err := l.Record(ctx, t0, []breaker.Transition{transition(s, g)}); err != nil {
				t.Fatal(err)
			}
			want[s] = status(g)
		}
	}
	before := len(k.ReadAll(t, "states", 10*time.Second))
	k.Compact(t)
	after := len(k.ReadAll(t, "states", 10*time.Second))
	if after >= before {
		t.Fatalf("compaction kept %d of %d records; want older generations gone", after, before)
	}
	t.Logf("compaction kept %d of %d records", after, before)
	checkLoad(t, l, want)
}

// TestLoadFirstBrokerDown loads through the second bootstrap broker when
// the first does not answer.
func TestLoadFirstBrokerDown(t *testing.T) {
	k := testbed.StartKafka(t)
	k.CreateCompactedTopic(t, "states", 2)
	l := newLog(t, k, "states")
	ctx := ctxT(t)
	if err := l.Record(ctx, t0, []breaker.Transition{transition(breaker.Global, 4)}); err != nil {
		t.Fatal(err)
	}
	dead := "127.0.0.1:" + strconv.Itoa(testbed.FreePort(t))
	l2 := statelog.New(kafkaconn.Plain(append([]string{dead}, k.Addrs()...)...), "states", 10*time.Second)
	t.Cleanup(func() { _ = l2.Close() })
	checkLoad(t, l2, map[breaker.Scope]breaker.Status{breaker.Global: status(4)})
	l3 := statelog.New(kafkaconn.Plain(dead), "states", 10*time.Second)
	t.Cleanup(func() { _ = l3.Close() })
	if _, err := l3.Load(ctx); err == nil || !strings.Contains(err.Error(), dead) {
		t.Errorf("Load with no broker answering = %v; want an error naming %s", err, dead)
	}
}

package history_test

import (
	"context"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/history"
	"github.com/breakwater/breakwater/internal/testbed"
)

// TestRing checks the ring on a real redis-server: samples come back oldest
// first, a slot written twice (a second replica) holds one sample, a lap
// later the oldest slots are overwritten so a scope never holds more than
// Slots samples, and what is older than since is left out.
func TestRing(t *testing.T) {
	rc := testbed.StartRedis(t).Client(t)
	const slots = 8
	step := 10 * time.Second
	r, err := history.New(history.Options{Redis: rc, Prefix: "bw-hist", Step: step, Slots: slots})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, b := breaker.Scope("rule:a"), breaker.Scope("rule:b")
	t0 := time.Now().UTC().Truncate(step).Add(-3 * slots * step)
	for i := range 3 * slots {
		at := t0.Add(time.Duration(i) * step).Add(time.Second)
		if err := r.Write(ctx, map[breaker.Scope]history.Sample{
			a: {At: at, Window: float64(i), Baseline: 1, BaselineReady: true, State: breaker.Closed, HeldTotal: int64(i)},
			b: {At: at, Window: float64(10 * i), State: breaker.Open},
		}); err != nil {
			t.Fatal(err)
		}
		// A second replica writes the same slot a moment later.
		if err := r.Write(ctx, map[breaker.Scope]history.Sample{a: {At: at.Add(time.Second), Window: float64(i), State: breaker.Closed, HeldTotal: int64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.Read(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got[a]) != slots || len(got[b]) != slots {
		t.Fatalf("Read = %d samples of %s and %d of %s; want %d each (one lap)", len(got[a]), a, len(got[b]), b, slots)
	}
	for i, s := range got[a] {
		want := float64(2*slots + i)
		if s.Window != want || (i > 0 && !s.At.After(got[a][i-1].At)) {
			t.Errorf("sample %d of %s = %+v; want window %v, oldest first", i, a, s, want)
		}
	}
	if s := got[b][slots-1]; s.State != breaker.Open || s.Window != float64(10*(3*slots-1)) {
		t.Errorf("newest sample of %s = %+v; want open with window %d", b, s, 10*(3*slots-1))
	}
	since := t0.Add(time.Duration(3*slots-3) * step)
	got, err = r.ReadScopes(ctx, []breaker.Scope{a}, since)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got[a] {
		if s.At.Before(since.Add(-step)) {
			t.Errorf("ReadScopes since %s returned %+v", since, s)
		}
	}
	if len(got[a]) < 3 || len(got[a]) > 4 {
		t.Errorf("ReadScopes since %s = %d samples; want the last 3 or 4", since, len(got[a]))
	}
}

// TestOptions checks that bad options are refused with the field's name.
func TestOptions(t *testing.T) {
	for _, o := range []history.Options{
		{Prefix: "p", Step: time.Second, Slots: 2},
		{Redis: nil, Prefix: "", Step: time.Second, Slots: 2},
	} {
		if _, err := history.New(o); err == nil {
			t.Errorf("New(%+v) = nil error; want one", o)
		}
	}
}

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

// TestPeakRing checks a coarse ring: the samples written to one slot, in
// any order and by two replicas, merge into the highest window count and
// evidence and the newest of the rest; a later lap replaces the slot.
func TestPeakRing(t *testing.T) {
	rc := testbed.StartRedis(t).Client(t)
	step := time.Minute
	r, err := history.New(history.Options{Redis: rc, Prefix: "bw-hist", Step: step, Slots: 4, Name: "hist1m", Peak: true})
	if err != nil {
		t.Fatal(err)
	}
	fine, err := history.New(history.Options{Redis: rc, Prefix: "bw-hist", Step: 10 * time.Second, Slots: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := breaker.Scope("rule:a")
	t0 := time.Now().UTC().Truncate(step).Add(-2 * step)
	// Six samples of one minute, written out of order; the peak is the
	// third, the newest the sixth.
	windows := []float64{10, 40, 900, 30, 20, 15}
	evidence := []float64{1, 2, 3, 11.5, 4, 0.5}
	for _, i := range []int{5, 0, 2, 1, 4, 3} {
		s := history.Sample{At: t0.Add(time.Duration(i) * 10 * time.Second), Window: windows[i], Baseline: float64(i), State: breaker.Closed,
			HeldTotal: int64(100 * i), Expected: float64(i) + 0.5, Evidence: evidence[i]}
		if i == 5 {
			s.State = breaker.Open
		}
		for _, ring := range []*history.Ring{r, fine} {
			if err := ring.Write(ctx, map[breaker.Scope]history.Sample{a: s}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := r.Read(ctx, t0.Add(-step))
	if err != nil {
		t.Fatal(err)
	}
	want := history.Sample{At: t0.Add(50 * time.Second), Window: 900, Baseline: 5, State: breaker.Open, HeldTotal: 500, Expected: 5.5, Evidence: 11.5}
	if len(got[a]) != 1 || got[a][0] != want {
		t.Fatalf("the coarse ring holds %+v; want one merged sample %+v", got[a], want)
	}
	// The fine ring keeps the last written sample of each of its slots.
	fg, err := fine.Read(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(fg[a]); n != 3 {
		t.Errorf("the fine ring holds %d samples; want 3 (a lap)", n)
	}
	// A lap later the slot is replaced, not merged.
	later := history.Sample{At: t0.Add(4 * step), Window: 1, State: breaker.Closed}
	if err := r.Write(ctx, map[breaker.Scope]history.Sample{a: later}); err != nil {
		t.Fatal(err)
	}
	got, err = r.Read(ctx, t0.Add(-step))
	if err != nil {
		t.Fatal(err)
	}
	if len(got[a]) != 1 || got[a][0].Window != 1 || !got[a][0].At.Equal(later.At) {
		t.Errorf("a lap later the coarse ring holds %+v; want only %+v", got[a], later)
	}
}

// TestTiers checks that a read takes the finest ring reaching back far
// enough, and that rings out of order are refused.
func TestTiers(t *testing.T) {
	rc := testbed.StartRedis(t).Client(t)
	fine, err := history.New(history.Options{Redis: rc, Prefix: "bw-tiers", Step: 10 * time.Second, Slots: 6})
	if err != nil {
		t.Fatal(err)
	}
	coarse, err := history.New(history.Options{Redis: rc, Prefix: "bw-tiers", Step: time.Minute, Slots: 60, Name: "hist1m", Peak: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := history.NewTiers(coarse, fine); err == nil {
		t.Error("NewTiers(coarse, fine) = nil error; want the order refused")
	}
	tiers, err := history.NewTiers(fine, coarse)
	if err != nil {
		t.Fatal(err)
	}
	if tiers.Step() != 10*time.Second || tiers.Span() != time.Hour {
		t.Errorf("tiers step %s span %s; want 10s and 1h", tiers.Step(), tiers.Span())
	}
	// "The last minute", asked a moment after since was taken, stays on
	// the fine ring.
	since := time.Now().Add(-time.Minute)
	time.Sleep(20 * time.Millisecond)
	if got := tiers.StepSince(since); got != 10*time.Second {
		t.Errorf("StepSince(the fine ring's span, a moment ago) = %s; want 10s", got)
	}
	ctx := context.Background()
	a := breaker.Scope("rule:a")
	now := time.Now().UTC()
	for i := range 12 { // two minutes at 10 s
		at := now.Add(-time.Duration(11-i) * 10 * time.Second)
		if err := tiers.Write(ctx, map[breaker.Scope]history.Sample{a: {At: at, Window: float64(i), State: breaker.Closed}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		back time.Duration
		step time.Duration
		min  int
		max  int
	}{{30 * time.Second, 10 * time.Second, 3, 5}, {50 * time.Second, 10 * time.Second, 5, 6}, {90 * time.Second, time.Minute, 2, 3}, {30 * time.Minute, time.Minute, 2, 3}} {
		since := time.Now().Add(-c.back)
		if got := tiers.StepSince(since); got != c.step {
			t.Errorf("StepSince(-%s) = %s; want %s", c.back, got, c.step)
		}
		got, err := tiers.ReadScopes(ctx, []breaker.Scope{a}, since)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(got[a]); n < c.min || n > c.max {
			t.Errorf("a read of the last %s has %d samples; want %d to %d", c.back, n, c.min, c.max)
		}
		if c.step == time.Minute && got[a][len(got[a])-1].Window != 11 {
			t.Errorf("the coarse ring's newest sample is %+v; want the peak 11", got[a][len(got[a])-1])
		}
	}
}

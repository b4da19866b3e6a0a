package breaker

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestGrid(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want Grid
	}{
		{"1m window, 1h baseline", Policy{Window: time.Minute, Baseline: time.Hour}, Grid{Fine: 3000, Coarse: 120000, Window: 60000}},
		{"1s window, 30s baseline", Policy{Window: time.Second, Baseline: 30 * time.Second}, Grid{Fine: 50, Coarse: 1000, Window: 1000}},
		{"1h window, 7d baseline", Policy{Window: time.Hour, Baseline: 7 * 24 * time.Hour}, Grid{Fine: 180000, Coarse: 20160000, Window: 3600000}},
		{"odd window rounds fine down", Policy{Window: 1010 * time.Millisecond, Baseline: 10 * time.Second}, Grid{Fine: 50, Coarse: 300, Window: 1000}},
		{"999ms window", Policy{Window: 999 * time.Millisecond, Baseline: time.Minute}, Grid{Fine: 49, Coarse: 49 * 40, Window: 980}},
		{"7ms window has 1ms buckets", Policy{Window: 7 * time.Millisecond, Baseline: 100 * time.Millisecond}, Grid{Fine: 1, Coarse: 3, Window: 20}},
		{"zero window", Policy{}, Grid{Fine: 1, Coarse: 1, Window: 20}},
		{"baseline shorter than 30 fine buckets", Policy{Window: time.Minute, Baseline: time.Minute}, Grid{Fine: 3000, Coarse: 3000, Window: 60000}},
		{"no baseline", Policy{Window: 10 * time.Second}, Grid{Fine: 500, Coarse: 500, Window: 10000}},
		{"sub-millisecond window", Policy{Window: 900 * time.Microsecond, Baseline: time.Second}, Grid{Fine: 1, Coarse: 33, Window: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Grid(); got != tt.want {
				t.Errorf("Policy{Window: %s, Baseline: %s}.Grid() = %+v; want %+v", tt.p.Window, tt.p.Baseline, got, tt.want)
			}
		})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		p := Policy{Window: time.Duration(rng.Int64N(int64(48 * time.Hour))), Baseline: time.Duration(rng.Int64N(int64(90 * 24 * time.Hour)))}
		g := p.Grid()
		if g.Fine < 1 || g.Coarse < g.Fine || g.Coarse%g.Fine != 0 || g.Window != FineSlots*g.Fine {
			t.Fatalf("Policy{Window: %s, Baseline: %s}.Grid() = %+v: want Fine >= 1, Coarse a multiple of Fine, Window = 20 Fine",
				p.Window, p.Baseline, g)
		}
		if w := p.Window.Milliseconds(); w >= FineSlots && (g.Window > w || g.Window <= w-FineSlots) {
			t.Fatalf("Policy{Window: %s}.Grid().Window = %d; want within 20ms below the window", p.Window, g.Window)
		}
		if b := p.Baseline.Milliseconds(); b >= CoarseSlots*g.Fine && CoarseSlots*g.Coarse > b {
			t.Fatalf("Policy{Window: %s, Baseline: %s}.Grid() = %+v: baseline period %d longer than the baseline", p.Window, p.Baseline, g, CoarseSlots*g.Coarse)
		}
	}
}

func TestGridBucket(t *testing.T) {
	g := Grid{Fine: 50, Coarse: 1000, Window: 1000}
	for _, tt := range []struct{ at, want int64 }{
		{0, 0},
		{1, 0},
		{49, 0},
		{50, 50},
		{99, 50},
		{-1, -50},
		{-50, -50},
		{-51, -100},
		{1741944413589, 1741944413550},
	} {
		if got := g.Bucket(tt.at); got != tt.want {
			t.Errorf("Bucket(%d) = %d; want %d", tt.at, got, tt.want)
		}
	}
}

// base1s is the baseline per window of grid1s for a sum of milli in the
// baseline period, computed as the stores do.
func base1s(milli int64) float64 { return countsOf(grid1s, 0, milli, false).Baseline }

// grid1s has 50ms fine buckets, 1s coarse buckets and a 30s baseline.
var grid1s = Policy{Window: time.Second, Baseline: 30 * time.Second}.Grid()

func checkCounts(t *testing.T, w *Window, at int64, win, base float64, ready bool) {
	t.Helper()
	got := w.Counts(at)
	want := Counts{Window: win, Baseline: base, BaselineReady: ready}
	if got != want {
		t.Errorf("Counts(%d) = %+v; want %+v", at, got, want)
	}
}

func TestWindowCounts(t *testing.T) {
	w := NewWindow(grid1s)
	checkCounts(t, w, 0, 0, 0, false)
	w.Add(0, 1000)
	w.Add(10, 500)
	w.Add(999, 250)
	checkCounts(t, w, 999, 1.75, 0, false)
	// Events after at are not in its window.
	checkCounts(t, w, 30, 1.5, 0, false)
	// The window is the 20 fine buckets ending with at's bucket.
	checkCounts(t, w, 1000, 0.25, base1s(1750), false)
	checkCounts(t, w, 1049, 0.25, base1s(1750), false)
	checkCounts(t, w, 1999, 0, base1s(1750), false)
	checkCounts(t, w, 2000, 0, base1s(1750), false)
	// Weights are exact in thousandths.
	w2 := NewWindow(grid1s)
	for i := range 1000 {
		w2.Add(int64(i%50), 1)
	}
	checkCounts(t, w2, 49, 1, 0, false)
}

func TestWindowBaseline(t *testing.T) {
	w := NewWindow(grid1s)
	// One action per second for 40 seconds.
	for s := range int64(40) {
		w.Add(s*1000, 1000)
		ready := s >= 30
		// The baseline is the 30 whole coarse buckets before at's, per window of 1s.
		base := base1s(min(s, 30) * 1000)
		checkCounts(t, w, s*1000, 1, base, ready)
	}
	// Silence: the baseline drains as its buckets leave the period.
	checkCounts(t, w, 55_000, 0, base1s(15000), true)
	checkCounts(t, w, 70_000, 0, 0, true)
}

func TestWindowBaselineReady(t *testing.T) {
	w := NewWindow(grid1s)
	w.Add(5000, 1000)
	checkCounts(t, w, 34_999, 0, base1s(1000), false)
	checkCounts(t, w, 35_000, 0, base1s(1000), true)
	// An earlier event moves the start of the history back.
	w.Add(4000, 1000)
	checkCounts(t, w, 34_000, 0, base1s(2000), true)
}

func TestWindowWrapAround(t *testing.T) {
	w := NewWindow(grid1s)
	w.Add(0, 1000)   // fine slot 0, coarse slot 0
	w.Add(500, 2000) // fine slot 10
	checkCounts(t, w, 999, 3, 0, false)
	w.Add(1000, 4000)
	checkCounts(t, w, 1000, 6, base1s(3000), false)
	// The 2000 leave the window at 1500.
	w.Add(1500, 8000)
	checkCounts(t, w, 1500, 12, base1s(3000), false)
	// Many windows later everything reused.
	for i := range int64(FineSlots) {
		w.Add(100_000+i*50, 1000)
	}
	checkCounts(t, w, 100_000+19*50, 20, 0, true)
	checkCounts(t, w, 100_000+39*50, 0, base1s(20000), true)
	// Coarse bucket 0 leaves the baseline period at 31.
	w2 := NewWindow(grid1s)
	w2.Add(0, 1000)
	w2.Add(31_000, 1000)
	checkCounts(t, w2, 31_000, 1, 0, true)
}

func TestWindowLateEvents(t *testing.T) {
	w := NewWindow(grid1s)
	w.Add(2000, 1000) // fine bucket 40: its window is buckets 21..40
	// A late event within the grace period counts at its own time.
	if at := w.Add(1500, 1000); at != 1500 {
		t.Errorf("Add(1500) counted at %d; want 1500", at)
	}
	checkCounts(t, w, 2000, 2, base1s(1000), false)
	w.Add(1000, 5000) // bucket 20: before the window of 2000, in that of 1000
	checkCounts(t, w, 2000, 2, base1s(6000), false)
	checkCounts(t, w, 1000, 5, 0, false)
	// An event later than the grace period counts at the watermark.
	w3 := NewWindow(grid1s)
	w3.Add(40_000, 1000) // fine bucket 800
	if at := w3.Add(9_000, 3000); at != 40_000 {
		t.Errorf("Add(9000) after 40000 counted at %d; want 40000 (the watermark)", at)
	}
	checkCounts(t, w3, 40_000, 4, 0, true)
	// Exactly the grace period late (bucket 600) still counts at its own time.
	if at := w3.Add(30_000, 2000); at != 30_000 {
		t.Errorf("Add(30000) after 40000 counted at %d; want 30000", at)
	}
	checkCounts(t, w3, 30_000, 2, 0, false)
	checkCounts(t, w3, 40_000, 4, base1s(2000), true)
}

// TestWindowBacklog consumes two partitions whose event times are apart,
// alternately, as a consumer catching up on a backlog does: within the
// grace period, the window that ends at the lagging partition's action
// holds the actions of both partitions in it, as many as in event time
// order; beyond it, the lagging actions count at the watermark.
func TestWindowBacklog(t *testing.T) {
	for _, lag := range []int64{5_000, 600_000} {
		w := NewWindow(grid1s)
		for i := range int64(10_000) {
			at := 1_000_000 + i*10 // one action per 10ms in each partition
			w.Add(at, Milli)
			counted := w.Add(at-lag, Milli)
			if i < 200+lag/10 {
				continue
			}
			// 100 actions per second per partition, 2 partitions; the newest
			// bucket of the window is partly filled.
			if c := w.Counts(counted).Window; c < 192 || c > 200 {
				t.Fatalf("lag %dms, after %d actions per partition: window count %v; want 192..200 (both partitions)", lag, i+1, c)
			}
		}
	}
}

func TestWindowNegativeTimes(t *testing.T) {
	w := NewWindow(grid1s)
	w.Add(-1, 1000)     // fine bucket -1, coarse -1
	w.Add(-1000, 500)   // fine bucket -20, coarse -1
	w.Add(-1001, 2000)  // fine bucket -21, coarse -2
	w.Add(-40_000, 250) // beyond the grace period: at -1
	checkCounts(t, w, -1, 1.75, base1s(2000), true)
	checkCounts(t, w, 0, 1.25, base1s(3750), true)
	checkCounts(t, w, 949, 1.25, base1s(3750), true)
	checkCounts(t, w, 950, 0, base1s(3750), true)
	w2 := NewWindow(grid1s)
	w2.Add(-30_001, 1000)
	checkCounts(t, w2, -1, 0, base1s(1000), true)
	checkCounts(t, w2, -1002, 0, base1s(1000), false)
}

// TestWindowInOrder compares the ring with an exact count of every event for
// events in time order (with ties and gaps), where the ring loses nothing
// that a count at the newest event needs.
func TestWindowInOrder(t *testing.T) {
	grids := []Grid{
		grid1s,
		Policy{Window: 7 * time.Millisecond, Baseline: 100 * time.Millisecond}.Grid(),
		Policy{Window: time.Minute, Baseline: time.Hour}.Grid(),
		Policy{Window: time.Second}.Grid(),
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, g := range grids {
		type ev struct{ at, w int64 }
		var evs []ev
		w := NewWindow(g)
		at := rng.Int64N(1e12) - 5e11
		var first int64
		for i := range 5000 {
			switch rng.IntN(10) {
			case 0:
				at += rng.Int64N(40 * g.Coarse)
			case 1, 2:
				at += rng.Int64N(3 * g.Window)
			case 3, 4, 5:
				at += rng.Int64N(g.Fine + 1)
			}
			wt := 1 + rng.Int64N(3000)
			if i == 0 {
				first = at
			}
			w.Add(at, wt)
			evs = append(evs, ev{at, wt})
			cur, curC := floorDiv(at, g.Fine), floorDiv(at, g.Coarse)
			// Events before the baseline period can never count again.
			for len(evs) > 0 && floorDiv(evs[0].at, g.Coarse) < curC-CoarseSlots {
				evs = evs[1:]
			}
			var win, base int64
			for _, e := range evs {
				if i := floorDiv(e.at, g.Fine); i > cur-FineSlots && i <= cur {
					win += e.w
				}
				if i := floorDiv(e.at, g.Coarse); i >= curC-CoarseSlots && i < curC {
					base += e.w
				}
			}
			want := countsOf(g, win, base, at-first >= CoarseSlots*g.Coarse)
			if got := w.Counts(at); got != want {
				t.Fatalf("grid %+v: Counts(%d) (event %d) = %+v; want %+v", g, at, i, got, want)
			}
		}
	}
}

// TestWindowCountsScan: Counts, which reads each bucket of the window and
// the baseline from its own slot, sums what a scan of the whole rings for
// the buckets in range sums, over random adds (late, early, far ahead,
// negative times) on several grids.
func TestWindowCountsScan(t *testing.T) {
	scan := func(w *Window, atMillis int64) (win, base int64) {
		cur := floorDiv(atMillis, w.grid.Fine)
		for _, s := range w.fine {
			if s.count != 0 && s.idx > cur-FineSlots && s.idx <= cur {
				win += s.count
			}
		}
		curC := floorDiv(atMillis, w.grid.Coarse)
		for _, s := range w.coarse {
			if s.count != 0 && s.idx >= curC-CoarseSlots && s.idx < curC {
				base += s.count
			}
		}
		return win, base
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, g := range []Grid{
		{Fine: 1, Coarse: 1, Window: FineSlots},
		{Fine: 30_000, Coarse: 120_000, Window: FineSlots * 30_000},
		{Fine: 15_000, Coarse: 15_000 * 48, Window: FineSlots * 15_000},
		{Fine: 1000, Coarse: 1000 * 700, Window: FineSlots * 1000},
	} {
		w := NewWindow(g)
		at := int64(-5) * g.Coarse
		for i := range 20_000 {
			switch r := rng.IntN(100); {
			case r < 70:
				at += rng.Int64N(2 * g.Fine)
			case r < 80:
				at -= rng.Int64N(40 * g.Fine)
			case r < 82:
				at += rng.Int64N(3 * int64(len(w.coarse)) * g.Coarse)
			}
			w.Add(at, 1+rng.Int64N(3000))
			q := at + rng.Int64N(60*g.Fine) - 30*g.Fine
			win, base := scan(w, q)
			want := countsOf(g, win, base, w.seen && q-w.first >= CoarseSlots*g.Coarse)
			if got := w.Counts(q); got != want {
				t.Fatalf("grid %+v, add %d: Counts(%d) = %+v; a scan of the rings gives %+v", g, i, q, got, want)
			}
		}
	}
}

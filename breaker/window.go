package breaker

// The counts of a scope live in two rings of buckets in event time: fine
// buckets for the sliding window and coarse ones for the trailing baseline.
// Rings bound the memory of a scope whatever the volume. The Redis store
// mirrors this arithmetic in Lua; both are tested against each other.
const (
	// FineSlots is how many fine buckets make up one window.
	FineSlots = 20
	// CoarseSlots is how many coarse buckets make up one baseline period.
	CoarseSlots = 30
)

// Milli is the fixed-point unit of weights: counts are kept as integers in
// thousandths of an action, so that every store adds them up exactly alike.
const Milli = 1000

// Grid is the bucket layout of a policy, in milliseconds of event time. A
// coarse bucket is a whole number of fine buckets.
type Grid struct {
	// Fine is the width of a window bucket.
	Fine int64
	// Coarse is the width of a baseline bucket.
	Coarse int64
	// Window is the width of the whole window, FineSlots fine buckets.
	Window int64
}

// Grid returns the bucket layout of p.
func (p Policy) Grid() Grid {
	f := max(p.Window.Milliseconds()/FineSlots, 1)
	per := max(p.Baseline.Milliseconds()/(CoarseSlots*f), 1)
	return Grid{Fine: f, Coarse: per * f, Window: FineSlots * f}
}

// Bucket returns the start, in milliseconds, of the fine bucket holding at.
func (g Grid) Bucket(atMillis int64) int64 { return floorDiv(atMillis, g.Fine) * g.Fine }

type slot struct {
	idx   int64
	count int64
}

// Window is the ring of counts of one scope.
type Window struct {
	grid   Grid
	fine   [FineSlots]slot
	coarse [CoarseSlots + 1]slot
	first  int64
	seen   bool
}

// NewWindow returns an empty ring for grid g.
func NewWindow(g Grid) *Window { return &Window{grid: g} }

// Add counts weight (in Milli units) at event time atMillis. Counts older
// than the rings hold are dropped: they can no longer change a decision.
func (w *Window) Add(atMillis, weight int64) {
	if !w.seen || atMillis < w.first {
		w.first, w.seen = atMillis, true
	}
	addSlot(w.fine[:], floorDiv(atMillis, w.grid.Fine), weight)
	addSlot(w.coarse[:], floorDiv(atMillis, w.grid.Coarse), weight)
}

func addSlot(ring []slot, idx, weight int64) {
	s := &ring[floorMod(idx, int64(len(ring)))]
	switch {
	case s.idx == idx && s.count != 0:
		s.count += weight
	case s.count == 0 || s.idx < idx:
		*s = slot{idx: idx, count: weight}
	}
}

// Counts returns the window count and baseline at event time atMillis.
func (w *Window) Counts(atMillis int64) Counts {
	cur := floorDiv(atMillis, w.grid.Fine)
	var win int64
	for _, s := range w.fine {
		if s.count != 0 && s.idx > cur-FineSlots && s.idx <= cur {
			win += s.count
		}
	}
	curC := floorDiv(atMillis, w.grid.Coarse)
	var base int64
	for _, s := range w.coarse {
		if s.count != 0 && s.idx >= curC-CoarseSlots && s.idx < curC {
			base += s.count
		}
	}
	return countsOf(w.grid, win, base, w.seen && atMillis-w.first >= CoarseSlots*w.grid.Coarse)
}

// countsOf turns integer ring sums into Counts; the Lua script performs the
// same floating point operations in the same order.
func countsOf(g Grid, win, base int64, ready bool) Counts {
	return Counts{
		Window:        float64(win) / Milli,
		Baseline:      float64(base) * float64(g.Window) / float64(CoarseSlots*g.Coarse) / Milli,
		BaselineReady: ready,
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

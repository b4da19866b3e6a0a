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
	// GraceSlots is how many fine buckets (thirty windows) an action may lag
	// behind the latest one seen and still count at its own event time.
	// Input partitions move through event time at different speeds, most
	// of all while a backlog is consumed; the rings keep the grace period
	// so that a lagging partition's actions meet the others' in the
	// windows they belong to.
	GraceSlots = 600
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

// FineRing is the number of fine slots a scope keeps: the window and the
// grace period.
const FineRing = FineSlots + GraceSlots

// CoarseRing returns the number of coarse slots a scope keeps: the baseline
// period, the current bucket, and the grace period.
func (g Grid) CoarseRing() int64 {
	per := g.Coarse / g.Fine
	return CoarseSlots + 1 + (GraceSlots+per-1)/per + 1
}

// Grid returns the bucket layout of p.
func (p Policy) Grid() Grid {
	f := max(p.Window.Milliseconds()/FineSlots, 1)
	per := max(p.Baseline.Milliseconds()/(CoarseSlots*f), 1)
	return Grid{Fine: f, Coarse: per * f, Window: FineSlots * f}
}

// FineIndex returns the index of the fine bucket holding atMillis.
func (g Grid) FineIndex(atMillis int64) int64 { return floorDiv(atMillis, g.Fine) }

// CoarseIndex returns the index of the coarse bucket holding atMillis.
func (g Grid) CoarseIndex(atMillis int64) int64 { return floorDiv(atMillis, g.Coarse) }

// Bucket returns the start, in milliseconds, of the fine bucket holding at.
func (g Grid) Bucket(atMillis int64) int64 { return floorDiv(atMillis, g.Fine) * g.Fine }

type slot struct {
	idx   int64
	count int64
}

// Window is the ring of counts of one scope.
//
// An action counts at its own event time when it lags the latest event
// time seen (the watermark) by at most the grace period, and each count
// is taken over the window that ends at its action's bucket: actions that
// arrive out of order across partitions are counted where they belong.
// An action later than the grace period counts at the watermark, as if it
// had just happened: it is never dropped, and a far-behind partition can
// only make a breaker trip early, never miss a trip.
type Window struct {
	grid   Grid
	fine   [FineRing]slot
	coarse []slot
	first  int64
	top    int64
	seen   bool
	// born is when the scope was seeded from another's counts (Seed), in
	// event time: its own first action; 0 if it never was, Dormant for a
	// scope that counts nothing (Policy.NewOnly, no longer new).
	born int64
}

// NewWindow returns an empty ring for grid g.
func NewWindow(g Grid) *Window { return &Window{grid: g, coarse: make([]slot, g.CoarseRing())} }

// Add counts weight (in Milli units) at event time atMillis and returns
// the time it was counted at: atMillis, or the watermark if atMillis lags
// it by more than the grace period.
func (w *Window) Add(atMillis, weight int64) int64 {
	if !w.seen {
		w.first, w.top, w.seen = atMillis, atMillis, true
	}
	w.first, w.top = min(w.first, atMillis), max(w.top, atMillis)
	at := atMillis
	if floorDiv(at, w.grid.Fine) < floorDiv(w.top, w.grid.Fine)-GraceSlots {
		at = w.top
	}
	addSlot(w.fine[:], floorDiv(at, w.grid.Fine), weight)
	addSlot(w.coarse, floorDiv(at, w.grid.Coarse), weight)
	return at
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

// Counts returns the window count and baseline at event time atMillis: the
// window of FineSlots buckets that ends with atMillis's bucket, and the
// CoarseSlots whole coarse buckets before atMillis's.
func (w *Window) Counts(atMillis int64) Counts {
	// A bucket of index i can only be in the slot i mod the ring's length,
	// and the rings are longer than the ranges summed, so each bucket of a
	// range is read from its own slot instead of scanning the whole ring
	// (620 fine slots): the same sum.
	cur := floorDiv(atMillis, w.grid.Fine)
	var win int64
	for i := cur - FineSlots + 1; i <= cur; i++ {
		if s := &w.fine[floorMod(i, FineRing)]; s.count != 0 && s.idx == i {
			win += s.count
		}
	}
	curC := floorDiv(atMillis, w.grid.Coarse)
	n := int64(len(w.coarse))
	var base int64
	for i := curC - CoarseSlots; i < curC; i++ {
		if s := &w.coarse[floorMod(i, n)]; s.count != 0 && s.idx == i {
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

// First returns the earliest event time counted, in milliseconds, and
// whether anything was counted.
func (w *Window) First() (int64, bool) { return w.first, w.seen }

// Top returns the watermark, the latest event time counted, in
// milliseconds, and whether anything was counted.
func (w *Window) Top() (int64, bool) { return w.top, w.seen }

// Grid returns the bucket layout of the ring.
func (w *Window) Grid() Grid { return w.grid }

// Seed returns a copy of w that shares nothing with it, for a scope that
// starts from w's counts with its own first action at bornMillis.
func (w *Window) Seed(bornMillis int64) *Window {
	c := *w
	c.coarse = append([]slot(nil), w.coarse...)
	c.born = bornMillis
	return &c
}

// Born returns when the window was seeded (Seed), and false if it was not
// (or it is Dormant).
func (w *Window) Born() (int64, bool) { return w.born, w.born > 0 }

// Dormant is the born of a window that counts nothing: a model version
// that is not new on its rule.
const Dormant = -1

// NewDormant returns an empty ring for grid g that counts nothing.
func NewDormant(g Grid) *Window {
	w := NewWindow(g)
	w.born = Dormant
	return w
}

// Dormant reports whether the window counts nothing (NewDormant).
func (w *Window) Dormant() bool { return w.born == Dormant }

package replay

import "time"

// Slot is one time slot of a scope's series.
type Slot struct {
	// Actions and Held count the scope's actions decided in the slot.
	Actions int64
	Held    int64
	// Window is the highest weighted window count seen in the slot, and
	// Baseline the last baseline (per window) seen.
	Window        float64
	Baseline      float64
	BaselineReady bool
	// Expected is the evidence detector's expected number of actions per
	// bin and Evidence its highest S in the slot (0 where it did not judge
	// the scope; the admin API's chart fills them from the history).
	Expected, Evidence float64
	// Samples counts the batches that reported the scope's counts.
	Samples int
}

// chart keeps every scope's series on one time axis of a fixed number of
// slots; when event time runs past the last slot, every slot doubles in
// width and neighbours merge, so memory stays flat.
type chart struct {
	slots  int
	origin time.Time
	width  time.Duration
	last   int
	series []*[]Slot
}

func newChart(slots int) *chart { return &chart{slots: slots, width: time.Second, last: -1} }

// slot returns the index of the slot holding at, and false for the zero
// time.
func (c *chart) slot(at time.Time) (int, bool) {
	if at.IsZero() {
		return 0, false
	}
	if c.origin.IsZero() {
		c.origin = at.Truncate(c.width)
	}
	d := at.Sub(c.origin)
	if d < 0 {
		d = 0
	}
	i := int(d / c.width)
	for i >= c.slots {
		c.widen()
		i = int(d / c.width)
	}
	c.last = max(c.last, i)
	return i, true
}

// widths are the slot widths, each a whole multiple of the one before,
// so that widening merges whole slots; past the last it doubles.
var widths = []time.Duration{
	time.Second, 2 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute,
	10 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// widen moves to the next slot width, merging the slots it covers.
func (c *chart) widen() {
	next := 2 * c.width
	for _, w := range widths {
		if w > c.width {
			next = w
			break
		}
	}
	k := int(next / c.width)
	for _, sp := range c.series {
		s := *sp
		for j := range (c.slots + k - 1) / k {
			var m Slot
			for _, x := range s[j*k : min((j+1)*k, c.slots)] {
				m.Actions += x.Actions
				m.Held += x.Held
				m.Window = max(m.Window, x.Window)
				m.Samples += x.Samples
				if x.Samples > 0 {
					m.Baseline, m.BaselineReady = x.Baseline, x.BaselineReady
				}
			}
			s[j] = m
		}
		clear(s[(c.slots+k-1)/k:])
	}
	c.width = next
	c.last /= k
}

// trim returns the used part of a series.
func (c *chart) trim(s []Slot) []Slot { return s[:c.last+1] }

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

func (c *chart) widen() {
	for _, sp := range c.series {
		s := *sp
		for j := range c.slots / 2 {
			a, b := s[2*j], s[2*j+1]
			m := Slot{Actions: a.Actions + b.Actions, Held: a.Held + b.Held, Window: max(a.Window, b.Window), Samples: a.Samples + b.Samples}
			m.Baseline, m.BaselineReady = a.Baseline, a.BaselineReady
			if b.Samples > 0 {
				m.Baseline, m.BaselineReady = b.Baseline, b.BaselineReady
			}
			s[j] = m
		}
		clear(s[c.slots/2:])
	}
	c.width *= 2
	c.last /= 2
}

// trim returns the used part of a series.
func (c *chart) trim(s []Slot) []Slot { return s[:c.last+1] }

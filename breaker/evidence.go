package breaker

import (
	"math"
	"time"
)

// The evidence detector of a scope: a one-sided Poisson CUSUM of the
// scope's number of actions per bin (not their weights: the Poisson model
// counts actions) against a seasonal expectation, learned
// online per hour of the day (UTC event time).
//
// When a bin closes with observed count x against expected mu,
//
//	S = max(0, S + x ln(r) - (r-1) mu)
//
// where r is EvidenceRatio, the rise the detector is tuned to. S is the log
// likelihood ratio of "the scope acts r times its expectation since the
// onset" against "it acts as expected": it grows by about mu (r ln r - r +
// 1) per bin while the scope runs at r times its expectation and falls
// while it runs at its expectation. The breaker trips when S reaches
// EvidenceThreshold (h). Within the open bin the detector also checks
// S + x ln(r) - (r-1) mu f, with f the elapsed fraction of the bin (up to
// the end of the latest action's fine bucket), so a strong rise trips
// before its bin closes.
//
// The expectation of a bin is the running mean of the counts of the bins of
// the same hour of the day (a mean over the first EvidenceDays days of
// bins, then an exponentially weighted one with that memory), floored at
// EvidenceMinExpected. An hour of the day needs one full day of bins before
// the detector judges it, so a scope with no history is never tripped by
// it. Learning stops while the breaker holds or is open and while S is at
// least h/2 (alarmed), so that an incident never becomes the new normal.
// While the breaker is open S is capped at h: a person who resets it while
// the rise goes on sees it trip again at once; when S has fallen more than
// ReleaseMargin below h by then, or the bins since it opened ran below the
// rate at which evidence grows (the rise ended), it starts again from 0.
//
// A scope that counts what its narrower scopes hold (global) also keeps R,
// the residual evidence of what they did not hold; see Residual.
//
// The Redis store mirrors this arithmetic in Lua, operation by operation;
// the differential test compares the two.
//
// The season is a day by default (EvidenceSeason), and "hour of the day"
// above means one of its SeasonSlots slots.
const SeasonSlots = 24

// EvidenceOn reports whether p runs the evidence detector.
func (p Policy) EvidenceOn() bool {
	return p.EvidenceThreshold > 0 && p.EvidenceRatio > 1 && p.EvidenceBin > 0 && p.EvidenceDays > 0
}

// EvidenceBinMillis returns the bin width of p in milliseconds.
func (p Policy) EvidenceBinMillis() int64 { return max(p.EvidenceBin.Milliseconds(), 1) }

// SeasonMillis returns the length of p's season in milliseconds: a day
// unless EvidenceSeason says otherwise.
func (p Policy) SeasonMillis() int64 {
	if p.EvidenceSeason <= 0 {
		return 24 * time.Hour.Milliseconds()
	}
	return max(p.EvidenceSeason.Milliseconds(), SeasonSlots)
}

// SlotMillis returns the width of one seasonal slot of p (an hour of a day).
func (p Policy) SlotMillis() int64 { return p.SeasonMillis() / SeasonSlots }

// BinsPerSlot returns how many bins of p make one seasonal slot: the bins
// an hour of the day learns per day.
func (p Policy) BinsPerSlot() int64 { return max(p.SlotMillis()/p.EvidenceBinMillis(), 1) }

// MaxGapBins is the most empty bins the detector closes one by one when a
// scope's next action comes after a pause: one season (a day). After a
// longer pause S starts again from 0 and the pause is not learned.
func (p Policy) MaxGapBins() int64 { return max(p.SeasonMillis()/p.EvidenceBinMillis(), 1) }

// slotOf returns the seasonal slot of p's bin idx.
func (p Policy) slotOf(idx int64) int {
	season := p.SlotMillis() * SeasonSlots
	return int(floorMod(idx*p.EvidenceBinMillis(), season) / p.SlotMillis())
}

// Evidence is the detector state of one scope. Its size does not depend on
// the volume: the open bin, S and the onset, and the seasonal slots.
type Evidence struct {
	// Bin is the bin width in milliseconds the state was built for.
	Bin int64
	// Season is the season in milliseconds the state was built for.
	Season int64
	// Cur is the index of the open bin (event time / Bin), valid when Seen.
	Cur int64
	// Seen is true once anything was counted.
	Seen bool
	// Top is the latest event time counted, in Unix milliseconds.
	Top int64
	// X is the number of actions counted in the open bin.
	X int64
	// S is the evidence after the last closed bin.
	S float64
	// Onset is when S last left 0, in Unix milliseconds of event time (the
	// start of that bin); 0 while S is 0.
	Onset int64
	// Expected is the learned count per bin of each hour of the day.
	Expected [SeasonSlots]float64
	// Learned is how many bins each hour of the day has learned from,
	// capped at EvidenceDays days of bins.
	Learned [SeasonSlots]int64
	// Disp is the learned dispersion (see dispersion), DispN how many bins
	// it learned from, capped like Learned.
	Disp  float64
	DispN int64
	// Held is true when the last action was counted while the breaker was
	// open or held (frozen).
	Held bool
	// Since is the evidence of the bins closed since the breaker was last
	// frozen (opened), neither capped nor floored: below 0 when they ran
	// under the rate at which evidence grows (the rise did not go on).
	Since float64
	// OX and OM are the actions and the expected counts of the bins closed
	// since the breaker was last frozen, and End the evidence that the rise
	// ended: a lower CUSUM of those bins, "back to the expectation" against
	// "still at the rise measured while frozen" (OX / OM, at least the
	// detector's ratio), from the bin the rise last held on. See
	// ReleaseMargin.
	OX, OM, End float64
	// R is the residual evidence: S counting only the actions that no
	// narrower breaker held (they reached enforcement, or the scope's own
	// breaker held them), against the same expectation, except that it
	// does not fall over a bin of which narrower breakers held some; XR
	// is their number in the open bin. R equals S for a scope that counts
	// nothing its narrower scopes hold. See Residual.
	R  float64
	XR int64
}

// ReleaseMargin is how far below h, in the detector's log-likelihood
// units, S may have fallen while the breaker was open for the rise to count
// as still going on when the breaker is released (reset by a person, closed
// automatically, or an override ends). S capped at h falls below it by the
// evidence that the scope is back to its expectation since the last bin
// that kept it at h: a margin of 2 is odds of e^2 (7.4) to 1 that the rise
// ended. Within the margin, and when the bins closed since the breaker
// opened ran at or above the rate at which evidence grows (Since >= 0), S
// is kept and a rise that goes on trips the breaker again at once;
// otherwise S (and R) start again from 0, so that another trip needs fresh
// evidence instead of the noise of the next minutes. Since decides for a
// quiet scope, whose S falls too slowly to leave the margin within an
// hour, when the trip was a fluke. When the rise was real and ended while
// the breaker was open, S (tuned to a rise of r) falls just as slowly, and
// Since is dominated by the rise's own bins: End, the same test against
// the rise actually measured while open (a 2.5x rise's end shows six
// times faster than against 1.5x), restarts S when it reaches the margin
// too. The noise of a quiet scope's rise that goes on sometimes passes for
// its end (a few more of its actions forwarded before it trips again).
const ReleaseMargin = 2.0

// NewEvidence returns the empty detector state for p.
func NewEvidence(p Policy) *Evidence {
	return &Evidence{Bin: p.EvidenceBinMillis(), Season: p.SlotMillis() * SeasonSlots}
}

// expected returns the expected count of bin idx under p and whether the
// hour of the day has learned enough (a day of bins) to judge it.
//
// The expectation follows the daily cycle between the hours: it is
// interpolated linearly between the means of the two hours whose middles
// surround the bin's middle (the bin's own hour alone while the other has
// not learned enough).
func (e *Evidence) expected(p Policy, idx int64) (float64, bool) {
	k := p.slotOf(idx)
	need := p.BinsPerSlot()
	if e.Learned[k] < need {
		return 0, false
	}
	slot, bin := p.SlotMillis(), e.Bin
	// the bin's middle, relative to the middle of the season's first hour
	pos := floorMod(idx*bin+bin/2, slot*SeasonSlots) - slot/2
	k0 := floorDiv(pos, slot)
	w := float64(pos-k0*slot) / float64(slot)
	a, b := int(floorMod(k0, SeasonSlots)), int(floorMod(k0+1, SeasonSlots))
	mu := e.Expected[k]
	if e.Learned[a] >= need && e.Learned[b] >= need {
		mu = float64(e.Expected[a]*(1-w)) + float64(e.Expected[b]*w)
	}
	return max(mu, p.EvidenceMinExpected), true
}

// dispersion returns phi, the learned variance over mean of the bins'
// counts against their expectation, at least 1: real traffic varies more
// than a Poisson process (its rate itself wanders from minute to minute),
// and the expectation has its own error. The evidence is divided by phi
// (a quasi-Poisson CUSUM), so a busy scope's ordinary wander is not taken
// for a rise.
func (e *Evidence) dispersion() float64 { return max(e.Disp, 1) }

// close ends the open bin: updates S against the bin's expectation and,
// unless frozen (the breaker is open or holds) or alarmed, learns its count.
func (e *Evidence) close(p Policy, frozen bool) {
	x := float64(e.X)
	prev := e.S
	mu, ok := e.expected(p, e.Cur)
	if ok {
		s := e.S + (float64(x*math.Log(p.EvidenceRatio))-float64((p.EvidenceRatio-1)*mu))/e.dispersion()
		rs := e.R + (float64(float64(e.XR)*math.Log(p.EvidenceRatio))-float64((p.EvidenceRatio-1)*mu))/e.dispersion()
		if e.XR < e.X {
			// Narrower breakers held some of the bin: what still flows
			// does not take back the evidence gathered before.
			rs = max(rs, e.R)
		}
		if frozen {
			e.Since += s - e.S
			e.OX += x
			e.OM += mu
			// The rise measured while frozen, never below the ratio the
			// detector is tuned to.
			rho := max(e.OX/e.OM, p.EvidenceRatio)
			e.End = max(e.End+(float64((rho-1)*mu)-float64(x*math.Log(rho)))/e.dispersion(), 0)
			s = min(s, p.EvidenceThreshold)
			rs = min(rs, p.EvidenceThreshold)
		}
		if !(s > 0) {
			s = 0
		}
		if !(rs > 0) {
			rs = 0
		}
		e.S, e.R = s, rs
	}
	switch {
	case e.S == 0:
		e.Onset = 0
	case prev == 0:
		e.Onset = e.Cur * e.Bin
	}
	if !frozen && !(prev >= p.EvidenceThreshold/2) {
		k := p.slotOf(e.Cur)
		limit := int64(p.EvidenceDays) * p.BinsPerSlot()
		// The dispersion learns against the expectation the bin was
		// judged on, or before that against its hour's mean so far.
		if !ok && e.Learned[k] > 0 {
			mu = e.Expected[k]
		}
		if mu >= 1 {
			d := x - mu
			e.DispN = min(e.DispN+1, limit)
			e.Disp += (float64(d*d)/mu - e.Disp) / float64(e.DispN)
		}
		e.Learned[k] = min(e.Learned[k]+1, limit)
		e.Expected[k] += (x - e.Expected[k]) / float64(e.Learned[k])
	}
	e.X, e.XR = 0, 0
}

// Add counts n actions at event time atMillis that reach enforcement (or
// that the scope's own breaker holds): Count with every action residual.
func (e *Evidence) Add(p Policy, atMillis, n int64, frozen bool) { e.Count(p, atMillis, n, n, frozen) }

// Count counts n actions at event time atMillis, of which residual were
// not held by a narrower breaker, after closing
// the bins before atMillis's; an action earlier than the open bin counts
// in the open bin. frozen says the breaker is open or holds: S is capped at
// the threshold and nothing is learned. The bins closed here are frozen
// too when the last action was counted frozen (their counts were).
//
// The first action counted not frozen after frozen ones is the breaker's
// release: unless S is within ReleaseMargin of h and Since is not below
// 0, it starts again from 0.
func (e *Evidence) Count(p Policy, atMillis, n, residual int64, frozen bool) {
	b := floorDiv(atMillis, e.Bin)
	if !e.Seen {
		e.Cur, e.Top, e.Seen = b, atMillis, true
	}
	e.Top = max(e.Top, atMillis)
	if b > e.Cur {
		e.close(p, frozen || e.Held)
		gap := b - e.Cur - 1
		if gap > p.MaxGapBins() {
			e.S, e.R, e.Onset = 0, 0, 0
		} else {
			for range gap {
				e.Cur++
				e.close(p, frozen || e.Held)
			}
		}
		e.Cur = b
	}
	if e.Held && !frozen && (e.S < p.EvidenceThreshold-ReleaseMargin || e.Since < 0 || e.End >= ReleaseMargin) {
		e.S, e.R, e.Onset = 0, 0, 0
	}
	if frozen && !e.Held {
		e.Since, e.OX, e.OM, e.End = 0, 0, 0, 0
	}
	e.Held = frozen
	e.X += n
	e.XR += residual
}

// Check returns the detector's figures within the open bin, at the latest
// event time counted: the evidence S + x ln(r) - (r-1) mu f (f the
// elapsed fraction of the bin), the open bin's expected and observed
// counts, and whether the bin's hour of the day has learned enough to
// judge it.
func (e *Evidence) Check(p Policy) (s, expected, observed float64, ready bool) {
	x := float64(e.X)
	mu, ok := e.expected(p, e.Cur)
	if !ok {
		return e.S, 0, x, false
	}
	// The latest action's fine bucket (see Grid) counts as elapsed: its
	// actions may lie anywhere in it.
	f := float64(min(max(e.Top-e.Cur*e.Bin+p.Grid().Fine, 0), e.Bin)) / float64(e.Bin)
	s = max(e.S+(float64(x*math.Log(p.EvidenceRatio))-float64((p.EvidenceRatio-1)*mu*f))/e.dispersion(), 0)
	return s, mu, x, true
}

// Residual returns the residual evidence within the open bin, as Check
// does for S: R + (xr ln(r) - (r-1) mu f) / phi, at least 0 (0 while the
// bin's hour of the day cannot be judged).
func (e *Evidence) Residual(p Policy) float64 {
	mu, ok := e.expected(p, e.Cur)
	if !ok {
		return 0
	}
	f := float64(min(max(e.Top-e.Cur*e.Bin+p.Grid().Fine, 0), e.Bin)) / float64(e.Bin)
	return max(e.R+(float64(float64(e.XR)*math.Log(p.EvidenceRatio))-float64((p.EvidenceRatio-1)*mu*f))/e.dispersion(), 0)
}

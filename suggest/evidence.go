package suggest

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/breakwater/breakwater/breaker"
)

// Setting the evidence detector from a false-alarm target.
//
// The observation pass gives, per scope, its number of actions in every
// evidence bin of the history (the detector counts actions, not weights),
// summed by hour of the day: the mean count per bin of each hour (mu_k) and
// how much the rate wanders beyond Poisson arrivals (c2, the squared
// coefficient of variation of a bin's rate, so that a bin's count has
// variance mu + c2 mu^2). From these the suggestion simulates the scope's
// traffic for many weeks (each bin's rate mu_k times a gamma variate of
// mean 1 and variance c2, arrivals a Poisson process at that rate) and runs
// the detector itself (breaker's evidence state, learning its expectation
// and dispersion from cold as it does live, checked after every action)
// over it, collecting the highest evidence S of every excursion above 0. A
// threshold h trips as often as excursions reach it: the suggestion takes
// the least h whose rate is within the scope's share of the target. A
// CUSUM's excursion maxima have an exponential tail, so a rate far below
// one per simulated span is read off a straight line fitted to the
// logarithm of the tail's counts.

// evidenceStats accumulates one scope's number of actions per evidence
// bin, by hour of the day (seasonal slot).
type evidenceStats struct {
	policy breaker.Policy
	bin    int64 // ms
	cur    int64 // the open bin's index
	seen   bool
	x      float64 // the open bin's actions
	n      [breaker.SeasonSlots]float64
	sum    [breaker.SeasonSlots]float64
	sumSq  [breaker.SeasonSlots]float64
}

func newEvidenceStats(p breaker.Policy) *evidenceStats {
	return &evidenceStats{policy: p, bin: p.EvidenceBinMillis()}
}

// add counts n actions at atMillis.
func (e *evidenceStats) add(atMillis, n int64) {
	b := floorDiv(atMillis, e.bin)
	if !e.seen {
		e.cur, e.seen = b, true
	}
	e.closeTo(b)
	e.x += float64(n)
}

// closeTo closes the bins before bin b (the empty ones too).
func (e *evidenceStats) closeTo(b int64) {
	if !e.seen || b <= e.cur {
		return
	}
	for ; e.cur < b; e.cur++ {
		k := e.slot(e.cur)
		e.n[k]++
		e.sum[k] += e.x
		e.sumSq[k] += e.x * e.x
		e.x = 0
	}
}

func (e *evidenceStats) slot(idx int64) int { return slotOf(e.policy, idx) }

// slotOf returns the hour of the day (seasonal slot) of p's bin idx.
func slotOf(p breaker.Policy, idx int64) int {
	slot := p.SlotMillis()
	return int(floorMod(idx*p.EvidenceBinMillis(), slot*breaker.SeasonSlots) / slot)
}

// model returns the mean count per bin of each hour of the day (the mean
// of all hours where an hour has no history) and c2, the wander of the
// rate beyond Poisson arrivals (the variance of a bin's count about its
// hour's mean is mu + c2 mu^2, pooled over the hours), and false if
// nothing was counted.
func (e *evidenceStats) model() (mu [breaker.SeasonSlots]float64, c2 float64, ok bool) {
	var n, sum, excess, muSq float64
	for k := range mu {
		n += e.n[k]
		sum += e.sum[k]
	}
	if n == 0 || sum <= 0 {
		return mu, 0, false
	}
	for k := range mu {
		if e.n[k] == 0 {
			mu[k] = sum / n
			continue
		}
		mu[k] = e.sum[k] / e.n[k]
		if e.n[k] > 1 {
			v := (e.sumSq[k] - e.n[k]*mu[k]*mu[k]) / (e.n[k] - 1)
			excess += (v - mu[k]) * e.n[k]
			muSq += mu[k] * mu[k] * e.n[k]
		}
	}
	if muSq > 0 {
		c2 = min(max(excess/muSq, 0), 4)
	}
	return mu, c2, true
}

// Calibration is what the suggestion found for one scope's detector.
type Calibration struct {
	// Threshold is the suggested h.
	Threshold float64
	// TripsPerWeek is the rate of false trips expected at Threshold on
	// traffic like the history's, and Budget the scope's share of the
	// target.
	TripsPerWeek, Budget float64
	// PerHour is the scope's mean number of actions an hour in the
	// history, and Wander the squared coefficient of variation of its rate
	// from bin to bin beyond Poisson arrivals.
	PerHour, Wander float64
	// Delay2x is the median time the detector takes to trip on a rise to
	// twice PerHour (0 if it did not within MaxDelay).
	Delay2x time.Duration
}

// Simulation lengths of a calibration.
const (
	// calibrationRuns of calibrationWeeks each, each from a cold start.
	calibrationRuns  = 13
	calibrationWeeks = 2
	// delayRuns is how many rises the delay is the median of, and
	// MaxDelay the longest a rise is followed.
	delayRuns = 201
	// MaxDelay is the longest a simulated 2x rise is followed.
	MaxDelay = 48 * time.Hour
	// maxThreshold bounds the suggested h.
	maxThreshold = 200
)

// calibrate finds the evidence threshold of p at which the scope trips at
// most budget times a week on traffic like the history's (mu, c2), and
// the delay it gives a 2x rise; false when the simulated traffic never
// builds evidence enough to tell (a scope with almost no actions).
func calibrate(scope breaker.Scope, p breaker.Policy, mu [breaker.SeasonSlots]float64, c2, budget float64) (Calibration, bool) {
	rng := rand.New(rand.NewPCG(seedOf(scope), 0x9e3779b97f4a7c15))
	binsPerWeek := int64(7*24*time.Hour/time.Millisecond) / p.EvidenceBinMillis()
	q := p
	q.EvidenceThreshold = math.Inf(1) // never alarmed: learn every bin
	var maxima []float64
	var weeks float64
	for range calibrationRuns {
		ev := breaker.NewEvidence(q)
		top := 0.0
		for b := range binsPerWeek * calibrationWeeks {
			feedBin(rng, ev, q, b, mu[slotOf(q, b)], c2, false, func(s float64) { top = max(top, s) })
			// An excursion ends when a bin closes with S at 0.
			if ev.S == 0 && top > 0 && b > 0 {
				maxima = append(maxima, top)
				top = 0
			}
		}
		if top > 0 {
			maxima = append(maxima, top)
		}
		// The first day judges nothing (no history of its hours yet).
		weeks += calibrationWeeks - 1.0/7
	}
	c := Calibration{Budget: budget, Wander: c2}
	for _, m := range mu {
		c.PerHour += m
	}
	c.PerHour *= float64(time.Hour.Milliseconds()) / float64(p.EvidenceBinMillis()) / float64(len(mu))
	var ok bool
	c.Threshold, c.TripsPerWeek, ok = tailThreshold(maxima, weeks, budget)
	if !ok {
		return c, false
	}
	c.Delay2x = delay(rng, p, c.Threshold, c.PerHour*float64(p.EvidenceBinMillis())/float64(time.Hour.Milliseconds()), c2)
	return c, true
}

// tailThreshold returns the least h, in steps of 0.5, at which the excursion
// maxima of weeks of traffic trip at most budget times a week, and that
// rate; false when too few excursions reach far enough to tell.
func tailThreshold(maxima []float64, weeks, budget float64) (float64, float64, bool) {
	slices.Sort(maxima)
	// above(h) counts the maxima of at least h.
	above := func(h float64) float64 {
		i, _ := slices.BinarySearch(maxima, h)
		return float64(len(maxima) - i)
	}
	// The tail: from where 1,000 excursions (or a tenth of them) reach h
	// to where 10 do, a straight line in log counts.
	var xs, ys []float64
	for h := 0.5; h <= maxThreshold; h += 0.5 {
		n := above(h)
		if n < 10 {
			break
		}
		if n <= max(1000, float64(len(maxima))/10) {
			xs, ys = append(xs, h), append(ys, math.Log(n))
		}
	}
	if len(xs) < 3 {
		return 0, 0, false
	}
	a, b := fit(xs, ys)
	if !(b < 0) {
		return 0, 0, false
	}
	rate := func(h float64) float64 {
		if n := above(h); n >= 10 {
			return n / weeks
		}
		return math.Exp(a+b*h) / weeks
	}
	for h := 0.5; h < maxThreshold; h += 0.5 {
		if r := rate(h); r <= budget {
			return h, r, true
		}
	}
	return maxThreshold, rate(maxThreshold), true
}

// fit returns the least-squares line y = a + b x.
func fit(xs, ys []float64) (a, b float64) {
	var sx, sy, sxx, sxy float64
	n := float64(len(xs))
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	b = (n*sxy - sx*sy) / (n*sxx - sx*sx)
	return (sy - b*sx) / n, b
}

// delay returns the median time the detector with threshold h takes to
// trip on a scope acting twice its expectation mu per bin (the expectation
// and the dispersion learned exactly); 0 when most rises are not caught
// within MaxDelay.
func delay(rng *rand.Rand, p breaker.Policy, h, mu, c2 float64) time.Duration {
	if !(mu > 0) {
		return 0
	}
	q := p
	q.EvidenceThreshold = h
	bin := p.EvidenceBinMillis()
	maxBins := MaxDelay.Milliseconds() / bin
	limit := int64(q.EvidenceDays) * q.BinsPerSlot()
	out := make([]time.Duration, 0, delayRuns)
	for range delayRuns {
		ev := breaker.NewEvidence(q)
		for k := range ev.Expected {
			ev.Expected[k], ev.Learned[k] = mu, limit
		}
		if mu >= 1 {
			ev.Disp, ev.DispN = 1+c2*mu, limit
		}
		got := MaxDelay + 1
		for b := int64(0); b < maxBins && got > MaxDelay; b++ {
			feedBin(rng, ev, q, b, 2*mu, c2, false, func(s float64) {
				if s >= h && got > MaxDelay {
					got = time.Duration(ev.Top+1) * time.Millisecond
				}
			})
		}
		out = append(out, got)
	}
	slices.Sort(out)
	if d := out[len(out)/2]; d <= MaxDelay {
		return d
	}
	return 0
}

// feedBin feeds the detector bin b of a scope acting mu per bin, as it
// arrives: the bin's rate is mu times a gamma variate of mean 1 and
// variance c2, its actions the arrivals of a Poisson process at that rate,
// each added and checked as a batch of its own (check gets the evidence
// within the open bin, when its hour of the day can be judged). A bin
// without actions is added as nothing at its start, so that the one before
// closes.
func feedBin(rng *rand.Rand, ev *breaker.Evidence, p breaker.Policy, b int64, mu, c2 float64, frozen bool, check func(s float64)) {
	bin := p.EvidenceBinMillis()
	lambda := mu
	if c2 > 0 && mu > 0 {
		lambda = mu * gamma(rng, 1/c2) * c2
	}
	at := 0.0
	added := false
	for lambda > 0 {
		at += rng.ExpFloat64() / lambda
		if at >= 1 {
			break
		}
		ev.Add(p, b*bin+int64(at*float64(bin)), 1, frozen)
		added = true
		if s, _, _, ready := ev.Check(p); ready {
			check(s)
		}
	}
	if !added {
		ev.Add(p, b*bin, 0, frozen)
	}
}

// gamma draws a gamma variate of shape k and scale 1 (Marsaglia and Tsang).
func gamma(rng *rand.Rand, k float64) float64 {
	if k < 1 {
		return gamma(rng, k+1) * math.Pow(rng.Float64(), 1/k)
	}
	d := k - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

func seedOf(s breaker.Scope) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

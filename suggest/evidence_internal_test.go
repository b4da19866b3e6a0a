package suggest

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
)

var evidencePolicy = breaker.Policy{
	Window: time.Minute, EvidenceBin: 5 * time.Minute, EvidenceRatio: 1.5, EvidenceThreshold: 10,
	EvidenceMinExpected: 0.5, EvidenceDays: 7,
}

// flat returns the same mean count per bin for every hour of the day.
func flat(mu float64) (out [breaker.SeasonSlots]float64) {
	for k := range out {
		out[k] = mu
	}
	return out
}

// trips runs the detector with threshold h over weeks of traffic drawn
// like the calibration's (a fresh stream), a trip followed by an hour
// open and a reset, and returns the trips a week after the first day.
func trips(p breaker.Policy, h float64, mu [breaker.SeasonSlots]float64, c2 float64, weeks int, seed uint64) float64 {
	rng := rand.New(rand.NewPCG(seed, 11))
	p.EvidenceThreshold = h
	ev := breaker.NewEvidence(p)
	bin := p.EvidenceBinMillis()
	n, openUntil := 0, int64(-1)
	for b := range int64(weeks) * 7 * 24 * time.Hour.Milliseconds() / bin {
		open := b*bin < openUntil
		feedBin(rng, ev, p, b, mu[slotOf(p, b)], c2, open, func(s float64) {
			if ev.Top >= openUntil && s >= h {
				n++
				openUntil = ev.Top + time.Hour.Milliseconds()
			}
		})
	}
	return float64(n) / (float64(weeks) - 1.0/7)
}

// TestCalibrate checks the threshold against the detector run on fresh
// traffic: at the suggested h it trips about as often as the budget allows
// (a budget large enough to count), lower more often, on Poisson traffic
// and on traffic whose rate wanders; a smaller budget needs a higher h; and
// a busier scope catches a 2x rise sooner.
func TestCalibrate(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates weeks of traffic")
	}
	mu := flat(4) // 48 an hour
	var poisson Calibration
	for _, c2 := range []float64{0, 0.3} {
		c, ok := calibrate("rule:r", evidencePolicy, mu, c2, 3)
		if !ok || c.Threshold <= 0 {
			t.Fatalf("calibrate(wander %g) = %+v, %v; want a threshold", c2, c, ok)
		}
		got := trips(evidencePolicy, c.Threshold, mu, c2, 30, 1)
		lower := trips(evidencePolicy, c.Threshold-2, mu, c2, 30, 1)
		if got > 3*1.5 || got < 3*0.3 || lower <= got {
			t.Errorf("wander %g, h %g: %.2f trips a week on fresh traffic (h-2: %.2f); want about the budget of 3, fewer than at h-2", c2, c.Threshold, got, lower)
		}
		if math.Abs(c.PerHour-48) > 0.01 || c.Wander != c2 || c.Budget != 3 {
			t.Errorf("calibration %+v; want 48 an hour, wander %g, budget 3", c, c2)
		}
		t.Logf("48/h, wander %g, budget 3/week: h %g, %.2f trips/week on fresh traffic, %.2f at h-2", c2, c.Threshold, got, lower)
		if c2 == 0 {
			poisson = c
		}
	}
	small, _ := calibrate("rule:r", evidencePolicy, mu, 0, 0.03)
	if small.Threshold <= poisson.Threshold {
		t.Errorf("h %g at budget 3, %g at budget 0.03: want higher", poisson.Threshold, small.Threshold)
	}
	busy, _ := calibrate("rule:r", evidencePolicy, flat(40), 0, 0.03)
	if small.Delay2x <= 0 || busy.Delay2x <= 0 || busy.Delay2x >= small.Delay2x {
		t.Errorf("2x rise caught after %s at 48/h and %s at 480/h; want both, the busier sooner", small.Delay2x, busy.Delay2x)
	}
	t.Logf("budget 0.03/week: 48/h h %g, 2x after %s; 480/h h %g, 2x after %s", small.Threshold, small.Delay2x, busy.Threshold, busy.Delay2x)
}

// TestEvidenceStats checks the history's model: the mean per bin of each
// hour of the day, empty bins included, and the wander of the rate.
func TestEvidenceStats(t *testing.T) {
	bin := evidencePolicy.EvidenceBinMillis()
	for _, want := range []float64{0, 0.2} {
		e := newEvidenceStats(evidencePolicy)
		rng := rand.New(rand.NewPCG(3, 4))
		// Two weeks: 6 actions per bin from 00:00 to 12:00, none after.
		for b := range int64(14 * 288) {
			if b%288 >= 144 {
				continue
			}
			lambda := 6.0
			if want > 0 {
				lambda *= gamma(rng, 1/want) * want
			}
			for at := rng.ExpFloat64() / lambda; at < 1; at += rng.ExpFloat64() / lambda {
				e.add(b*bin+int64(at*float64(bin)), 1)
			}
		}
		e.closeTo(14 * 288)
		mu, c2, ok := e.model()
		if !ok || math.Abs(mu[3]-6) > 0.5 || mu[20] != 0 || math.Abs(c2-want) > 0.06 {
			t.Errorf("model = %v, %g, %v; want 6 per bin before noon, 0 after, wander %g", mu, c2, ok, want)
		}
	}
}

// TestTailThreshold checks the choice of h on known excursion maxima: an
// exponential tail read off beyond what was simulated, and too few
// excursions to tell.
func TestTailThreshold(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	maxima := make([]float64, 100000)
	for i := range maxima {
		maxima[i] = rng.ExpFloat64() // P(max >= h) = exp(-h)
	}
	// 100,000 excursions in 10 weeks; a budget of 0.001 a week wants
	// 100000 exp(-h) = 0.01, h = ln(1e7) = 16.1: beyond the sample.
	h, rate, ok := tailThreshold(maxima, 10, 0.001)
	if !ok || h < 15.5 || h > 17 || rate > 0.001 {
		t.Errorf("tailThreshold = %g, %g, %v; want about 16.1", h, rate, ok)
	}
	if _, _, ok := tailThreshold([]float64{1, 2}, 10, 0.001); ok {
		t.Error("tailThreshold of two excursions: want no answer")
	}
}

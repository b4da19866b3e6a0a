package suggest

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
)

// upcrossings simulates weeks of arrivals at lambda actions per window
// (each bin of a window's length at lambda times a gamma variate of mean 1
// and variance c2), each weighing heavy with probability pHeavy and 1
// otherwise, and counts how often the sliding window's weighted count
// passes from below level to level or more, per week.
func upcrossings(rng *rand.Rand, lambda, c2, pHeavy, heavy, level float64, weeks int) float64 {
	type arrival struct{ at, w float64 }
	var q []arrival
	var sum float64
	n := 0
	windows := weeks * 7 * 24 * 60
	for b := range windows {
		rate := lambda
		if c2 > 0 {
			rate = lambda * gamma(rng, 1/c2) * c2
		}
		at := float64(b)
		for rate > 0 {
			at += rng.ExpFloat64() / rate
			if at >= float64(b+1) {
				break
			}
			for len(q) > 0 && q[0].at <= at-1 {
				sum -= q[0].w
				q = q[1:]
			}
			w := 1.0
			if rng.Float64() < pHeavy {
				w = heavy
			}
			if sum < level && sum+w >= level {
				n++
			}
			sum += w
			q = append(q, arrival{at, w})
		}
	}
	return float64(n) / float64(weeks)
}

func flatModel(lambda, c2, pHeavy, heavy float64) windowModel {
	m := windowModel{window: float64(time.Minute.Milliseconds()), unit: breaker.Milli, c2: c2,
		steps: []int64{1, int64(heavy)}, probs: []float64{1 - pHeavy, pHeavy}}
	for k := range m.lambda {
		m.lambda[k] = lambda
	}
	return m
}

// The model's rate of passing a level is the simulated one, for Poisson
// arrivals and (erring on the side of fewer trips) for a wandering rate,
// from the bulk of the count to its tail: what the suggested levels rest
// on.
func TestWindowModelMatchesSimulation(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		lambda, c2 float64
		levels     []float64
	}{
		{lambda: 3, c2: 0, levels: []float64{8, 15, 25}},
		{lambda: 40, c2: 0, levels: []float64{70, 90, 110}},
		{lambda: 40, c2: 0.04, levels: []float64{80, 100, 120}},
	} {
		m := flatModel(tc.lambda, tc.c2, 0.05, 10)
		rates := m.tripsPerWeek(200)
		for _, l := range tc.levels {
			want := rates[int(l)]
			got := upcrossings(rng, tc.lambda, tc.c2, 0.05, 10, l, 8)
			// Enough events for the comparison to mean something.
			if want*8 < 40 {
				t.Fatalf("lambda %g level %g: %g a week predicted, too few to compare", tc.lambda, l, want)
			}
			// Poisson arrivals: within a quarter either way. A wandering
			// rate: the three-point integration of the wander overstates
			// the far tail (the sliding window also straddles two draws
			// of the rate), never understates it by more than a quarter.
			lo := 0.75
			if tc.c2 > 0 {
				lo = 0.5
			}
			if r := got / want; r < lo || r > 1.33 {
				t.Errorf("lambda %g c2 %g level %g: simulated %.1f a week, the model says %.1f", tc.lambda, tc.c2, l, got, want)
			}
		}
	}
}

// The level is the least one within the budget above every level that
// trips more often, so a busy scope (whose count never goes near 0, so
// is seldom passed from below at low levels) gets a level above its bulk;
// the probation scale keeps a re-trip on probation under one in ten.
func TestWindowLevel(t *testing.T) {
	for _, lambda := range []float64{0.5, 5, 90, 2000} {
		m := flatModel(lambda, 0.01, 0.05, 10)
		lv, ok := m.level(0.025, 0.5, 30*time.Minute)
		if !ok {
			t.Fatalf("lambda %g: no level", lambda)
		}
		l := int(lv.Level)
		top := l * 3
		rates := m.tripsPerWeek(top)
		if lv.TripsPerWeek > 0.025 || math.Abs(rates[l]-lv.TripsPerWeek) > 1e-12 {
			t.Errorf("lambda %g: level %g trips %g a week (%g), want at most 0.025", lambda, lv.Level, lv.TripsPerWeek, rates[l])
		}
		if rates[l-1] <= 0.025 && l > 1 {
			// Some level above l-1 must trip too often, or l-1 was the answer.
			worse := false
			for i := l - 1; i <= top && !worse; i++ {
				worse = rates[i] > 0.025
			}
			if !worse {
				t.Errorf("lambda %g: level %d would do", lambda, l-1)
			}
		}
		for i := l; i <= top; i++ {
			if rates[i] > 0.025 {
				t.Errorf("lambda %g: level %d above the suggested %d trips %g a week", lambda, i, l, rates[i])
				break
			}
		}
		mean := lambda * (0.95 + 0.05*10)
		if lv.Level <= mean {
			t.Errorf("lambda %g: level %g not above the mean count %g", lambda, lv.Level, mean)
		}
		if lv.ProbationScale < 0.5 || lv.ProbationScale > 1 {
			t.Errorf("lambda %g: probation scale %g", lambda, lv.ProbationScale)
		}
		if lv.ProbationScale < 1 {
			busiest := m.tripsPerWeek(l)
			li := max(int(math.Ceil(float64(l)*lv.ProbationScale)), 1)
			if p := busiest[li] / (7 * 24) * 0.5; p > 0.1 {
				t.Errorf("lambda %g: a re-trip on probation at scale %g in %g", lambda, lv.ProbationScale, p)
			}
		}
	}
}

// The wander is measured at the window's own scale: windows of actions
// whose rate varies by a gamma of variance c2 give back about c2, and
// Poisson arrivals about 0; the weights are those of single actions.
func TestWindowStatsWander(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c2 := range []float64{0, 0.04} {
		w := newWindowStats(breaker.Policy{Window: time.Minute})
		minute := time.Minute.Milliseconds()
		const lambda = 30.0
		for b := range int64(2 * 24 * 60) {
			rate := lambda
			if c2 > 0 {
				rate = lambda * gamma(rng, 1/c2) * c2
			}
			at := 0.0
			for {
				at += rng.ExpFloat64() / rate
				if at >= 1 {
					break
				}
				weight := int64(breaker.Milli)
				if rng.Float64() < 0.05 {
					weight = 10 * breaker.Milli
				}
				w.add(b*minute+int64(at*float64(minute)), 1, weight)
			}
		}
		m, ok := w.model(0, 2*24*60*minute)
		if !ok {
			t.Fatal("no model")
		}
		if math.Abs(m.c2-c2) > 0.015 {
			t.Errorf("c2 %g: measured %g", c2, m.c2)
		}
		for k, l := range m.lambda {
			if math.Abs(l-lambda) > 0.1*lambda {
				t.Errorf("c2 %g: hour %d: %g actions a window, want about %g", c2, k, l, lambda)
			}
		}
		if m.unit != breaker.Milli || len(m.steps) != 2 {
			t.Fatalf("weights: unit %d, steps %v", m.unit, m.steps)
		}
		for j, s := range m.steps {
			want := 0.95
			if s == 10 {
				want = 0.05
			}
			if math.Abs(m.probs[j]-want) > 0.01 {
				t.Errorf("weight %d: frequency %g, want about %g", s, m.probs[j], want)
			}
		}
	}
}

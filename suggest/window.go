package suggest

import (
	"math"
	"time"

	"github.com/breakwater/breakwater/breaker"
)

// Setting the window conditions from a false-alarm target.
//
// The highest window count of two days times a headroom says little about
// how often normal traffic passes it: a rule's weighted count is a sum of
// a few heavy actions (a ban weighs ten) and its tail is that of their
// number, which two days show only up to the peak. The observation pass
// gives, per scope, its actions per hour of the day and the weights they
// carry. In the hour of the day k the window holds a compound Poisson
// count: N ~ Poisson(lambda_k) actions (lambda_k the hour's actions per
// window, its rate wandering by the scope's c2 as in the evidence model),
// each weighing w with the observed frequency p(w). A level L is passed
// from below when an action of weight w arrives with the count in
// [L - w, L): at a rate of lambda_k / window x sum_w p(w) P(L - w <= W < L)
// per unit of time. Summed over the hours of a week, that is how often
// the window conditions could trip at L on traffic like the history's; the
// suggestion takes the least L within the scope's share of the target as
// the least count either window condition trips on (max_actions at least,
// min_actions exactly), and a probation scale at which a breaker reset
// after a false trip is unlikely to trip again on probation.

// windowStats accumulates one scope's actions by hour of the day, the
// weights they carry, and the actions of its successive windows (end to
// end) by hour of the day, for the wander of its rate at the window's own
// scale.
type windowStats struct {
	policy  breaker.Policy
	actions [24]float64
	weights map[int64]float64 // weight in breaker.Milli units -> single actions
	total   float64           // the weight of every action
	// The windows end to end: the open one's index and actions, and the
	// closed ones' number, sum and sum of squares by hour of the day.
	cur           int64
	seen          bool
	x             float64
	n, sum, sumSq [24]float64
}

func newWindowStats(p breaker.Policy) *windowStats {
	return &windowStats{policy: p, weights: map[int64]float64{}}
}

// closeTo closes the windows end to end before window i (the empty ones
// too).
func (w *windowStats) closeTo(i int64) {
	if !w.seen || i <= w.cur {
		return
	}
	win := w.policy.Window.Milliseconds()
	for ; w.cur < i; w.cur++ {
		k := int(floorMod(w.cur*win, 24*time.Hour.Milliseconds()) / time.Hour.Milliseconds())
		w.n[k]++
		w.sum[k] += w.x
		w.sumSq[k] += w.x * w.x
		w.x = 0
	}
}

// wander returns c2, the squared coefficient of variation of the rate
// from window to window beyond Poisson arrivals (a window's count has
// variance mu + c2 mu^2 about its hour's mean mu), pooled over the hours.
func (w *windowStats) wander() float64 {
	var excess, muSq float64
	for k := range w.n {
		if w.n[k] < 2 {
			continue
		}
		mu := w.sum[k] / w.n[k]
		v := (w.sumSq[k] - w.n[k]*mu*mu) / (w.n[k] - 1)
		excess += (v - mu) * w.n[k]
		muSq += mu * mu * w.n[k]
	}
	if muSq <= 0 {
		return 0
	}
	return min(max(excess/muSq, 0), 4)
}

// add counts a fine bucket of count actions of summed weight weight at
// atMillis.
func (w *windowStats) add(atMillis, count, weight int64) {
	if count <= 0 || weight <= 0 {
		return
	}
	i := floorDiv(atMillis, w.policy.Window.Milliseconds())
	if !w.seen {
		w.cur, w.seen = i, true
	}
	w.closeTo(i)
	w.x += float64(count)
	h := int(floorMod(atMillis, 24*time.Hour.Milliseconds()) / time.Hour.Milliseconds())
	w.actions[h] += float64(count)
	w.total += float64(weight)
	if count == 1 {
		// The weights of single actions: a bucket of several tells only
		// their sum.
		w.weights[weight]++
	}
}

// hoursOf returns how many milliseconds of each hour of the day lie in
// [from, to).
func hoursOf(from, to int64) (out [24]float64) {
	const hour = int64(time.Hour / time.Millisecond)
	for t := from; t < to; {
		next := min((floorDiv(t, hour)+1)*hour, to)
		out[int(floorMod(t, 24*hour)/hour)] += float64(next - t)
		t = next
	}
	return out
}

// windowModel is the compound Poisson model of one scope's window count.
type windowModel struct {
	window float64     // the window, ms
	lambda [24]float64 // actions per window by hour of the day
	unit   int64       // the lattice of the weights, Milli units
	steps  []int64     // the weights, in units
	probs  []float64   // their frequencies
	c2     float64     // the rate's wander beyond Poisson
}

// model returns the scope's window model over the history [from, to),
// false when it saw no actions.
func (w *windowStats) model(from, to int64) (windowModel, bool) {
	w.closeTo(floorDiv(to, w.policy.Window.Milliseconds()))
	span := hoursOf(from, to)
	m := windowModel{window: float64(w.policy.Window.Milliseconds()), c2: w.wander()}
	var total float64
	for k := range m.lambda {
		if span[k] > 0 {
			m.lambda[k] = w.actions[k] / span[k] * m.window
		}
		total += w.actions[k]
	}
	if total <= 0 || m.window <= 0 || w.total <= 0 {
		return m, false
	}
	weights := w.weights
	if len(weights) == 0 {
		// Never one action alone in a fine bucket: every action at the
		// mean weight.
		weights = map[int64]float64{max(int64(math.Round(w.total/total)), 1): 1}
	}
	var singles float64
	for wt, n := range weights {
		m.unit = gcd(m.unit, wt)
		singles += n
	}
	for wt, n := range weights {
		m.steps = append(m.steps, wt/m.unit)
		m.probs = append(m.probs, n/singles)
	}
	return m, true
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// The wander of the rate is integrated with three points of a normal law
// (Gauss-Hermite): the hour's rate times 1 and 1 +- sqrt(3 c2), weighing
// 2/3 and 1/6 each.
var wanderPoints = [3]struct{ z, weight float64 }{{0, 2.0 / 3}, {-math.Sqrt(3), 1.0 / 6}, {math.Sqrt(3), 1.0 / 6}}

// tripsPerWeek returns, for every level l (in units) up to top, how many
// times a week the window count passes from below l to l or more.
func (m windowModel) tripsPerWeek(top int) []float64 {
	out := make([]float64, top+1)
	week := float64(7 * 24 * time.Hour.Milliseconds())
	for k := range m.lambda {
		for _, wp := range wanderPoints {
			lambda := m.lambda[k] * (1 + wp.z*math.Sqrt(m.c2))
			if !(lambda > 0) {
				continue
			}
			pmf := m.pmf(lambda, top)
			cdf := make([]float64, top+2) // cdf[i] = P(W < i)
			for i := 0; i <= top; i++ {
				cdf[i+1] = cdf[i] + pmf[i]
			}
			// Arrivals per ms in this hour, times its share of a week.
			scale := lambda / m.window * week / 24 * wp.weight
			for l := 1; l <= top; l++ {
				var p float64
				for j, s := range m.steps {
					lo := max(l-int(s), 0)
					p += m.probs[j] * (cdf[l] - cdf[lo])
				}
				out[l] += scale * p
			}
		}
	}
	return out
}

// pmf returns P(W = i) for i up to top, W compound Poisson with lambda
// actions of the model's weights: Panjer's recursion, or a normal law of
// the same mean and variance when lambda is too large for it.
func (m windowModel) pmf(lambda float64, top int) []float64 {
	out := make([]float64, top+1)
	if lambda <= 500 {
		out[0] = math.Exp(-lambda)
		for i := 1; i <= top; i++ {
			var s float64
			for j, st := range m.steps {
				if int(st) <= i {
					s += float64(st) * m.probs[j] * out[i-int(st)]
				}
			}
			out[i] = lambda / float64(i) * s
		}
		return out
	}
	var mean, sq float64
	for j, st := range m.steps {
		mean += float64(st) * m.probs[j]
		sq += float64(st*st) * m.probs[j]
	}
	mu, sd := lambda*mean, math.Sqrt(lambda*sq)
	for i := range out {
		z := (float64(i) - mu) / sd
		out[i] = math.Exp(-z*z/2) / (sd * math.Sqrt(2*math.Pi))
	}
	return out
}

// WindowLevel is what the suggestion found for one scope's window
// conditions.
type WindowLevel struct {
	// Level is the least weighted window count the window conditions
	// trip on, and TripsPerWeek how often normal traffic like the
	// history's reaches it; Budget is the scope's share of the target.
	Level, TripsPerWeek, Budget float64
	// ProbationScale is the least scale (in steps of 0.05, not below the
	// configured one) at which a breaker reset after a false trip trips
	// again within its probation at most once in ten.
	ProbationScale float64
}

// level finds the least level at which m's window count trips at most
// budget times a week, and the probation scale that keeps a re-trip on
// probation (of length probation, at the busiest hour) under one in ten.
func (m windowModel) level(budget, scale float64, probation time.Duration) (WindowLevel, bool) {
	var mean, sq, peak float64
	for j, st := range m.steps {
		mean += float64(st) * m.probs[j]
		sq += float64(st*st) * m.probs[j]
	}
	for _, l := range m.lambda {
		peak = max(peak, l)
	}
	peak *= 1 + math.Sqrt(3*m.c2)
	// Far beyond the busiest hour's count: 12 standard deviations and 40
	// of the heaviest actions.
	var heaviest int64
	for _, st := range m.steps {
		heaviest = max(heaviest, st)
	}
	top := int(math.Ceil(peak*mean+12*math.Sqrt(peak*sq))) + 40*int(heaviest)
	if top > 200_000 {
		return WindowLevel{}, false
	}
	rates := m.tripsPerWeek(top)
	out := WindowLevel{Budget: budget}
	// The least level above every one that trips too often: a level
	// the count normally stays above is seldom passed from below, yet
	// trips all the time.
	l := top
	for ; l >= 1 && rates[l] <= budget; l-- {
	}
	l++
	if l > top {
		return WindowLevel{}, false
	}
	out.Level = float64(int64(l)*m.unit) / breaker.Milli
	out.TripsPerWeek = rates[l]
	// On probation, at the busiest hour of the day: every hour as busy.
	busiest := m
	for k := range busiest.lambda {
		busiest.lambda[k] = peak / (1 + math.Sqrt(3*m.c2))
	}
	perHour := busiest.tripsPerWeek(l)
	ps := max(scale, 0.05)
	for ; ps < 1; ps += 0.05 {
		li := max(int(math.Ceil(float64(l)*ps)), 1)
		if perHour[li]/(7*24)*probation.Hours() <= 0.1 {
			break
		}
	}
	out.ProbationScale = math.Min(math.Round(ps*100)/100, 1)
	return out, true
}

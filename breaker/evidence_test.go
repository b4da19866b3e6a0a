package breaker_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
)

// evidencePolicy is the detector with the configuration's defaults, on a
// 1-minute window (3-second fine buckets).
var evidencePolicy = breaker.Policy{
	Window: time.Minute, EvidenceBin: 5 * time.Minute, EvidenceRatio: 1.5, EvidenceThreshold: 12,
	EvidenceMinExpected: 0.5, EvidenceDays: 7,
}

func poisson(r *rand.Rand, mu float64) int64 {
	if mu > 50 {
		return max(int64(math.Round(r.NormFloat64()*math.Sqrt(mu)+mu)), 0)
	}
	l, k, p := math.Exp(-mu), int64(0), 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// run feeds a rule of perHour actions an hour with a daily cycle (0.5x to
// 1.5x) to the detector for days, in 3-second buckets; from rise on its
// rate is factor times that. A trip is followed by an hour open (frozen)
// and a reset. It returns the trips and the delay of the first trip after
// rise (-1 if none).
func run(p breaker.Policy, perHour float64, days int, rise time.Duration, factor float64, seed uint64) (trips int, delay time.Duration) {
	r := rand.New(rand.NewPCG(seed, 7))
	ev := breaker.NewEvidence(p)
	const step = int64(3000)
	delay = -1
	openUntil := int64(-1)
	for t := int64(0); t < int64(days)*86_400_000; t += step {
		hour := float64(t%86_400_000) / 3_600_000
		mu := perHour * (1 + 0.5*math.Sin(2*math.Pi*hour/24)) * float64(step) / 3_600_000
		if rise > 0 && t >= rise.Milliseconds() {
			mu *= factor
		}
		n := poisson(r, mu)
		if n == 0 {
			continue
		}
		open := t < openUntil
		ev.Add(p, t, n, open)
		s, _, _, ready := ev.Check(p)
		if open || !ready || s < p.EvidenceThreshold {
			continue
		}
		trips++
		openUntil = t + time.Hour.Milliseconds()
		if rise > 0 && t >= rise.Milliseconds() && delay < 0 {
			delay = time.Duration(t-rise.Milliseconds()) * time.Millisecond
		}
	}
	return trips, delay
}

// TestEvidenceNoHistory: a scope with no history is never judged by the
// detector, whatever it does, until an hour of the day has a day of
// history.
func TestEvidenceNoHistory(t *testing.T) {
	p := evidencePolicy
	ev := breaker.NewEvidence(p)
	for m := int64(0); m < 23*60; m++ {
		ev.Add(p, m*60_000, 1000, false)
		if s, _, _, ready := ev.Check(p); ready || s != 0 {
			t.Fatalf("Check after %d minutes of history = %v, ready %v; want 0, not ready", m, s, ready)
		}
	}
}

// TestEvidenceDetectsRises: on the defaults, a 2x rise on the fourth day
// is caught, faster for busier rules, and a 1.1x one (within the model's
// error) is not within two hours.
func TestEvidenceDetectsRises(t *testing.T) {
	rise := 3*24*time.Hour + 10*time.Hour
	tests := []struct {
		perHour, factor float64
		within          time.Duration // 0: must not trip within 2h
	}{
		{100, 2, time.Hour},
		{400, 2, 10 * time.Minute},
		{4000, 2, 2 * time.Minute},
		{100_000 * 60, 2, time.Minute},
		{400, 1.1, 0},
	}
	for _, tt := range tests {
		for seed := range uint64(3) {
			_, d := run(evidencePolicy, tt.perHour, 4, rise, tt.factor, seed)
			switch {
			case tt.within == 0 && d >= 0 && d < 2*time.Hour:
				t.Errorf("%v/h x%v seed %d: tripped after %v; want no trip", tt.perHour, tt.factor, seed, d)
			case tt.within > 0 && (d < 0 || d > tt.within):
				t.Errorf("%v/h x%v seed %d: detected after %v; want within %v", tt.perHour, tt.factor, seed, d, tt.within)
			}
		}
	}
}

// TestEvidenceFalseTrips: ten days of ordinary traffic (Poisson around a
// daily cycle) trip the defaults rarely: at most 2 in 200 rule-days, at
// 20 to 4,000 actions an hour.
func TestEvidenceFalseTrips(t *testing.T) {
	total := 0
	for _, perHour := range []float64{20, 100, 400, 4000} {
		for seed := range uint64(5) {
			n, _ := run(evidencePolicy, perHour, 10, 0, 1, 1000+seed)
			total += n
		}
	}
	if total > 2 {
		t.Errorf("%d false trips in 200 rule-days; want at most 2", total)
	}
}

// TestEvidenceStep walks the detector by hand: learning, the first bin
// above expectation (S and the onset), a gap of empty bins, freezing while
// open, the cap at h, and a gap longer than a day.
func TestEvidenceStep(t *testing.T) {
	p := breaker.Policy{
		Window: 400 * time.Millisecond, EvidenceBin: time.Minute, EvidenceRatio: 2, EvidenceThreshold: 5,
		EvidenceMinExpected: 1, EvidenceDays: 2,
	}
	const minute = int64(60_000)
	ev := breaker.NewEvidence(p)
	// A day of 4 actions a minute: every hour learns 60 bins of 4.
	for m := range int64(24 * 60) {
		ev.Add(p, m*minute, 4, false)
	}
	ev.Add(p, 24*60*minute, 4, false) // closes the last bin of day 1
	// Within the open bin, 20ms (a fine bucket) of it count as elapsed.
	if s, exp, obs, ready := ev.Check(p); !ready || exp != 4 || obs != 4 || s != 4*math.Log(2)-4*(20.0/60000) {
		t.Fatalf("Check after a day = S %v, expected %v, observed %v, ready %v; want %v, 4, 4, true", s, exp, obs, ready, 4*math.Log(2)-4*(20.0/60000))
	}
	// 10 in the next minute: S = 10 ln 2 - 1*4 = 2.93 when it closes, and
	// the onset is that bin's start.
	ev.Add(p, 24*60*minute+minute, 10, false)
	ev.Add(p, 24*60*minute+2*minute, 0, false)
	want := 10*math.Log(2) - 4
	if math.Abs(ev.S-want) > 1e-12 || ev.Onset != 24*60*minute+minute {
		t.Errorf("after 10 against 4: S %v, onset %v; want %v, %v", ev.S, ev.Onset, want, 24*60*minute+minute)
	}
	// Hour 0 learned both bins of day 2: its mean rose above 4.
	if ev.Learned[0] != 62 || ev.Expected[0] == 4 {
		t.Errorf("hour 0 learned %d bins, expected %v; want 62 and a higher mean than 4", ev.Learned[0], ev.Expected[0])
	}
	// Open (frozen): 40 in a bin would make S > h; it is capped at h and
	// nothing is learned.
	before := ev.Expected[0]
	ev.Add(p, 24*60*minute+2*minute, 40, true)
	ev.Add(p, 24*60*minute+3*minute, 0, true)
	if ev.S != p.EvidenceThreshold || ev.Expected[0] != before {
		t.Errorf("open: S %v, expected %v; want S capped at %v, expectation %v unchanged", ev.S, ev.Expected[0], p.EvidenceThreshold, before)
	}
	// The empty bins close one by one: S falls by at least 4 each, to 0,
	// and the onset is cleared.
	ev.Add(p, 24*60*minute+6*minute, 4, false)
	if ev.S != 0 || ev.Onset != 0 {
		t.Errorf("S %v, onset %v after the rise ended; want 0, 0", ev.S, ev.Onset)
	}
	// Three days of silence: the open bin closes, the empty ones are not
	// closed one by one nor learned.
	sum := func() (n int64) {
		for _, l := range ev.Learned {
			n += l
		}
		return n
	}
	learned := sum()
	ev.Add(p, 24*60*minute+6*minute+3*24*60*minute, 4, false)
	if got := sum(); got != learned+1 {
		t.Errorf("after a pause of three days %d bins learned; want %d (the open bin alone)", got, learned+1)
	}
}

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
	at := tripTimes(p, perHour, days, rise, 0, factor, seed)
	delay = -1
	for _, t := range at {
		if rise > 0 && t >= rise {
			delay = t - rise
			break
		}
	}
	return len(at), delay
}

// tripTimes is run's traffic with the rise ending at end (0: never): it
// returns when each trip happened, from the start.
func tripTimes(p breaker.Policy, perHour float64, days int, rise, end time.Duration, factor float64, seed uint64) []time.Duration {
	r := rand.New(rand.NewPCG(seed, 7))
	ev := breaker.NewEvidence(p)
	const step = int64(3000)
	var out []time.Duration
	openUntil := int64(-1)
	for t := int64(0); t < int64(days)*86_400_000; t += step {
		hour := float64(t%86_400_000) / 3_600_000
		mu := perHour * (1 + 0.5*math.Sin(2*math.Pi*hour/24)) * float64(step) / 3_600_000
		if rise > 0 && t >= rise.Milliseconds() && (end == 0 || t < end.Milliseconds()) {
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
		out = append(out, time.Duration(t)*time.Millisecond)
		openUntil = t + time.Hour.Milliseconds()
	}
	return out
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

// TestEvidenceRelease walks the release by hand: a breaker released while
// S is within breaker.ReleaseMargin of h keeps S (a rise that goes on trips
// it again at once); released further below, S starts again from 0.
func TestEvidenceRelease(t *testing.T) {
	p := breaker.Policy{
		Window: 400 * time.Millisecond, EvidenceBin: time.Minute, EvidenceRatio: 2, EvidenceThreshold: 5,
		EvidenceMinExpected: 1, EvidenceDays: 2,
	}
	const minute = int64(60_000)
	// open: a bin of `open` against 4 caps S at h
	dayOpen := func(open int64) *breaker.Evidence {
		ev := breaker.NewEvidence(p)
		for m := range int64(24*60 + 1) {
			ev.Add(p, m*minute, 4, false)
		}
		ev.Add(p, 24*60*minute+minute, open, true)
		ev.Add(p, 24*60*minute+2*minute, 4, true)
		if ev.S != p.EvidenceThreshold || !ev.Held {
			t.Fatalf("open after %d against 4: S %v, held %v; want %v, true", open, ev.S, ev.Held, p.EvidenceThreshold)
		}
		return ev
	}
	// A rise of about 3x (13 against 4: 13 ln 2 - 4 = 5.01).
	day := func() *breaker.Evidence { return dayOpen(13) }
	// One bin at the expectation while open: S falls by 4 - 4 ln 2 =
	// 1.23, within the margin; against the rise measured while open (17
	// against 8, 2.125x) the bin is evidence 4 x 1.125 - 4 ln 2.125 = 1.49
	// that it ended, within the margin too: the release keeps S, and the
	// bin counted while open closes frozen (not learned).
	ev := day()
	learned := ev.Learned[0]
	ev.Add(p, 24*60*minute+3*minute, 4, false)
	if want := p.EvidenceThreshold - (4 - 4*math.Log(2)); math.Abs(ev.S-want) > 1e-12 || ev.Held || ev.Onset == 0 || ev.Learned[0] != learned {
		t.Errorf("released 1.23 below h: S %v, held %v, onset %v, learned %d; want S %v kept, not held, the onset kept, %d learned", ev.S, ev.Held, ev.Onset, ev.Learned[0], want, learned)
	}
	// After a 10x rise (40 against 4), the same bin at the expectation is
	// evidence 4 x 4.5 - 4 ln 5.5 = 11.2 that the rise (44 against 8,
	// 5.5x) ended: S starts again from 0 although it is within the margin.
	ev = dayOpen(40)
	ev.Add(p, 24*60*minute+3*minute, 4, false)
	if ev.S != 0 || ev.Onset != 0 || ev.Held {
		t.Errorf("released after a 10x rise ended: S %v, onset %v, held %v; want 0, 0, false", ev.S, ev.Onset, ev.Held)
	}
	// While the 10x rise goes on (40 more while open), S is kept.
	ev = dayOpen(40)
	ev.Add(p, 24*60*minute+2*minute+30_000, 36, true)
	ev.Add(p, 24*60*minute+3*minute, 40, false)
	if ev.S != p.EvidenceThreshold || ev.End != 0 || ev.Onset == 0 {
		t.Errorf("released while a 10x rise goes on: S %v, end %v, onset %v; want S kept at %v, end 0", ev.S, ev.End, ev.Onset, p.EvidenceThreshold)
	}
	// Two bins at the expectation: 2.45 below h, beyond the margin: S
	// starts again from 0, and so does the onset.
	ev = day()
	ev.Add(p, 24*60*minute+3*minute, 4, true)
	ev.Add(p, 24*60*minute+4*minute, 4, false)
	if ev.S != 0 || ev.Onset != 0 || ev.Held {
		t.Errorf("released 2.45 below h: S %v, onset %v, held %v; want 0, 0, false", ev.S, ev.Onset, ev.Held)
	}
	// Not released while frozen: S stays where the bins left it.
	ev = day()
	ev.Add(p, 24*60*minute+3*minute, 4, true)
	ev.Add(p, 24*60*minute+4*minute, 4, true)
	if want := p.EvidenceThreshold - 2*(4-4*math.Log(2)); math.Abs(ev.S-want) > 1e-9 {
		t.Errorf("still open 2.45 below h: S %v; want %v", ev.S, want)
	}
}

// TestEvidenceReleaseSince: released within the margin of h, S is kept
// only when the bins closed since the breaker opened ran above the rate at
// which evidence grows (Since >= 0).
func TestEvidenceReleaseSince(t *testing.T) {
	p := breaker.Policy{
		Window: 400 * time.Millisecond, EvidenceBin: time.Minute, EvidenceRatio: 2, EvidenceThreshold: 5,
		EvidenceMinExpected: 1, EvidenceDays: 2,
	}
	const minute = int64(60_000)
	for _, tt := range []struct {
		open  int64   // actions in the bin counted while open
		since float64 // its evidence: open ln 2 - 4
		kept  bool
	}{
		{5, 5*math.Log(2) - 4, false},
		{6, 6*math.Log(2) - 4, true},
	} {
		ev := breaker.NewEvidence(p)
		for m := range int64(24*60 + 1) {
			ev.Add(p, m*minute, 4, false)
		}
		// 12 against 4: S = 12 ln 2 - 4 = 4.32, below h
		ev.Add(p, 24*60*minute+minute, 12, false)
		// open (the bin of 12 closes frozen: Since counts from here)
		ev.Add(p, 24*60*minute+2*minute, tt.open, true)
		ev.Add(p, 24*60*minute+3*minute, 4, false)
		s := 12*math.Log(2) - 4 + tt.since
		if s < p.EvidenceThreshold-breaker.ReleaseMargin {
			t.Fatalf("S %v is beyond the margin; the case does not test Since", s)
		}
		if math.Abs(ev.Since-tt.since) > 1e-12 {
			t.Errorf("open %d: Since %v; want %v", tt.open, ev.Since, tt.since)
		}
		switch {
		case tt.kept && math.Abs(ev.S-s) > 1e-12:
			t.Errorf("open %d, Since %v: S %v after the release; want %v kept", tt.open, tt.since, ev.S, s)
		case !tt.kept && ev.S != 0:
			t.Errorf("open %d, Since %v: S %v after the release; want 0", tt.open, tt.since, ev.S)
		}
	}
}

// TestEvidenceReleaseAfterRise: a person resets every trip an hour after
// it. While a 2x rise goes on, the breaker trips again within minutes of
// each reset: the release does not throw away the evidence of a rise that
// goes on.
func TestEvidenceReleaseAfterRise(t *testing.T) {
	rise := 3*24*time.Hour + 10*time.Hour
	end := rise + 4*time.Hour
	retrips, late := 0, 0
	for _, perHour := range []float64{40, 100, 400} {
		for seed := range uint64(10) {
			at := tripTimes(evidencePolicy, perHour, 4, rise, end, 2, 100+seed)
			for i, tr := range at {
				if i > 0 && tr > rise && tr < end {
					// the breaker was reset at at[i-1] + 1h
					retrips++
					if tr-(at[i-1]+time.Hour) > 5*time.Minute {
						late++
					}
				}
			}
		}
	}
	if retrips < 60 {
		t.Fatalf("%d trips after a reset during the rise in 30 runs; want at least 60 (the rise goes on)", retrips)
	}
	if late > retrips/10 {
		t.Errorf("%d of %d trips after a reset during the rise came later than 5m after it; want at most a tenth", late, retrips)
	}
}

package appeals

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	good := []struct {
		in   string
		want Record
	}{
		{`{"action_id":"act-1","outcome":"overturned","decided_at":"2026-05-01T12:00:00Z"}`, Record{"act-1", Overturned, at}},
		{`{"decided_at":"2026-05-01T14:00:00+02:00","outcome":"upheld","action_id":"a","reviewer":"x","n":[1]}`, Record{"a", Upheld, at}},
		{" {\"action_id\":\"" + strings.Repeat("x", 128) + "\",\"outcome\":\"upheld\",\"decided_at\":\"2026-05-01T12:00:00Z\"}\n", Record{strings.Repeat("x", 128), Upheld, at}},
	}
	for _, tt := range good {
		got, err := Parse([]byte(tt.in))
		if err != nil || got != tt.want {
			t.Errorf("Parse(%s) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	bad := map[string]string{
		"empty":           ``,
		"not json":        `overturned act-1`,
		"array":           `[{"action_id":"a","outcome":"upheld","decided_at":"2026-05-01T12:00:00Z"}]`,
		"null":            `null`,
		"no id":           `{"outcome":"upheld","decided_at":"2026-05-01T12:00:00Z"}`,
		"empty id":        `{"action_id":"","outcome":"upheld","decided_at":"2026-05-01T12:00:00Z"}`,
		"long id":         `{"action_id":"` + strings.Repeat("x", 129) + `","outcome":"upheld","decided_at":"2026-05-01T12:00:00Z"}`,
		"numeric id":      `{"action_id":17,"outcome":"upheld","decided_at":"2026-05-01T12:00:00Z"}`,
		"unknown outcome": `{"action_id":"a","outcome":"reinstated","decided_at":"2026-05-01T12:00:00Z"}`,
		"upper outcome":   `{"action_id":"a","outcome":"UPHELD","decided_at":"2026-05-01T12:00:00Z"}`,
		"no outcome":      `{"action_id":"a","decided_at":"2026-05-01T12:00:00Z"}`,
		"bad time":        `{"action_id":"a","outcome":"upheld","decided_at":"yesterday"}`,
		"no time":         `{"action_id":"a","outcome":"upheld"}`,
		"trailing":        `{"action_id":"a","outcome":"upheld","decided_at":"2026-05-01T12:00:00Z"} {}`,
		"twice":           `{"action_id":"a","outcome":"upheld","outcome":"overturned","decided_at":"2026-05-01T12:00:00Z"}`,
		"not utf-8":       "{\"action_id\":\"a\xff\",\"outcome\":\"upheld\",\"decided_at\":\"2026-05-01T12:00:00Z\"}",
		"too large":       `{"action_id":"a","outcome":"upheld","decided_at":"2026-05-01T12:00:00Z","pad":"` + strings.Repeat("x", MaxRecordBytes) + `"}`,
		"truncated":       `{"action_id":"a","outcome":"upheld","decided_at":"2026-05-01T12:0`,
	}
	for name, in := range bad {
		if r, err := Parse([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse(%.80q) = %+v, %v; want ErrMalformed", name, in, r, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"action_id":"act-1","outcome":"overturned","decided_at":"2026-05-01T12:00:00Z"}`))
	f.Add([]byte(`{"action_id":"a","outcome":"upheld","decided_at":"2026-05-01T14:00:00+02:00","x":{"y":[1,2]}}`))
	f.Add([]byte(`{"action_id":"a","outcome":"upheld","outcome":"upheld"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) = %v; want an error wrapping ErrMalformed", b, err)
			}
			return
		}
		if r.ActionID == "" || len(r.ActionID) > MaxActionID || (r.Outcome != Overturned && r.Outcome != Upheld) {
			t.Fatalf("Parse(%q) = %+v: an invalid record passed", b, r)
		}
		// What Breakwater would write of it reads back the same.
		back, err := Parse(r.Encode())
		if err != nil || back.ActionID != r.ActionID || back.Outcome != r.Outcome || !back.DecidedAt.Equal(r.DecidedAt) {
			t.Fatalf("Parse(Encode(%+v)) = %+v, %v", r, back, err)
		}
	})
}

// binomialTail is I_x(a, b) for integer a, b: P(at least a successes in
// a+b-1 trials of probability x).
func binomialTail(a, b int, x float64) float64 {
	n := a + b - 1
	sum := 0.0
	for j := a; j <= n; j++ {
		lc, _ := math.Lgamma(float64(n + 1))
		l1, _ := math.Lgamma(float64(j + 1))
		l2, _ := math.Lgamma(float64(n - j + 1))
		sum += math.Exp(lc - l1 - l2 + float64(j)*math.Log(x) + float64(n-j)*math.Log1p(-x))
	}
	return sum
}

func TestProbBelow(t *testing.T) {
	for _, tt := range []struct{ up, over int }{{0, 0}, {1, 0}, {0, 1}, {19, 1}, {8, 12}, {30, 20}, {95, 5}, {40, 60}, {300, 700}} {
		for _, x := range []float64{0.05, 0.4, 0.8, 0.95} {
			got := ProbBelow(x, float64(tt.up), float64(tt.over))
			want := binomialTail(tt.up+1, tt.over+1, x)
			if math.Abs(got-want) > 1e-9 {
				t.Errorf("ProbBelow(%g, %d, %d) = %.12f; want %.12f", x, tt.up, tt.over, got, want)
			}
		}
	}
}

func TestJudge(t *testing.T) {
	p := DefaultPolicy()
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	w := func(up, over int) []Sample {
		var s []Sample
		for i := range up + over {
			s = append(s, Sample{At: at.Add(time.Duration(i) * time.Minute), Overturned: i >= up})
		}
		return s
	}
	tests := []struct {
		name     string
		samples  []Sample
		trip     bool
		onsetMin int
	}{
		{"too few, all overturned", w(0, 19), false, 0},
		{"20, all overturned", w(0, 20), true, 0},
		{"normal 95%", w(47, 3), false, 0},
		{"80% exactly", w(40, 10), false, 0},
		{"half overturned after 30", w(30, 20), true, 30},
		{"floor barely: 36 of 50 upheld", w(36, 14), false, 0},
	}
	for _, tt := range tests {
		v := Judge(p, Key{Rule: "r"}, tt.samples)
		if v.Trip != tt.trip {
			t.Errorf("%s: Judge(%d of %d overturned) = %+v; want trip %v", tt.name, v.Overturned, v.Outcomes, v, tt.trip)
		}
		if tt.trip && !v.Onset.Equal(at.Add(time.Duration(tt.onsetMin)*time.Minute)) {
			t.Errorf("%s: onset %v; want %v", tt.name, v.Onset, at.Add(time.Duration(tt.onsetMin)*time.Minute))
		}
	}
}

// stream feeds a tracker a rule forwarding one action a minute, each
// appealed with probability appeal and decided delay later, wrong (and
// then overturned) with probability 1-precision(t), and returns the time
// (minutes from the start) of the first verdict that trips, or -1.
func stream(seed uint64, minutes int, precision func(minute int) float64) int {
	rng := rand.New(rand.NewPCG(seed, 7))
	tr := NewTracker(DefaultPolicy(), 100000)
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	type due struct {
		at  int
		rec Record
	}
	var queue []due
	for m := range minutes {
		id := "a" + time.Duration(m).String()
		tr.Forwarded(id, Join{Rule: "r", Model: "v1", At: start.Add(time.Duration(m) * time.Minute)})
		if rng.Float64() < 0.5 {
			out := Upheld
			if rng.Float64() >= precision(m) {
				out = Overturned
			}
			queue = append(queue, due{m + 60, Record{ActionID: id, Outcome: out}})
		}
		for len(queue) > 0 && queue[0].at <= m {
			_, vs, err := tr.Record(queue[0].rec, func(string) time.Time { return time.Time{} })
			if err != nil {
				panic(err)
			}
			queue = queue[1:]
			for _, v := range vs {
				if v.Trip {
					return m
				}
			}
		}
	}
	return -1
}

func TestRisingOverturnRateTrips(t *testing.T) {
	// 95% precise for 600 minutes, then 40%: the appeals of the new
	// actions come in an hour later, half of them appealed.
	for seed := range uint64(50) {
		got := stream(seed, 1200, func(m int) float64 {
			if m < 600 {
				return 0.95
			}
			return 0.4
		})
		// Expected point: after the fall's first outcomes arrive (660)
		// and before 40 of them have (about 80 actions later).
		if got < 660 || got > 760 {
			t.Errorf("seed %d: tripped at minute %d; want between 660 and 760", seed, got)
		}
	}
}

func TestNormalRateDoesNotTrip(t *testing.T) {
	// 95% precise (the floor is 0.8) for a week of an action a minute,
	// half of them appealed (5,000 outcomes): no trip in 40 weeks. A rule
	// at 90% trips about once in ten such weeks (docs/appeals.md).
	for seed := range uint64(40) {
		for _, prec := range []float64{0.95} {
			if got := stream(seed, 7*24*60, func(int) float64 { return prec }); got >= 0 {
				t.Errorf("seed %d, precision %g: tripped at minute %d; want no trip", seed, prec, got)
			}
		}
	}
}

func TestTrackerJoin(t *testing.T) {
	tr := NewTracker(DefaultPolicy(), 3)
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	none := func(string) time.Time { return time.Time{} }
	for i, id := range []string{"a", "b", "c", "d"} {
		tr.Forwarded(id, Join{Rule: "r", At: at.Add(time.Duration(i) * time.Minute)})
	}
	if _, _, err := tr.Record(Record{ActionID: "a", Outcome: Upheld}, none); !errors.Is(err, ErrUnknown) {
		t.Errorf("Record(a, fell out of the join of 3) = %v; want ErrUnknown", err)
	}
	if _, _, err := tr.Record(Record{ActionID: "zz", Outcome: Upheld}, none); !errors.Is(err, ErrUnknown) {
		t.Errorf("Record(never forwarded) = %v; want ErrUnknown", err)
	}
	j, vs, err := tr.Record(Record{ActionID: "b", Outcome: Overturned}, none)
	if err != nil || j.Rule != "r" || len(vs) != 1 || vs[0].Outcomes != 1 || vs[0].Overturned != 1 {
		t.Errorf("Record(b) = %+v, %+v, %v", j, vs, err)
	}
	if _, _, err := tr.Record(Record{ActionID: "b", Outcome: Upheld}, none); !errors.Is(err, ErrDuplicate) {
		t.Errorf("Record(b again) = %v; want ErrDuplicate", err)
	}
	// Outcomes of actions at or before the rule's last trip do not count.
	_, vs, err = tr.Record(Record{ActionID: "c", Outcome: Overturned}, func(string) time.Time { return at.Add(2 * time.Minute) })
	if err != nil || vs[0].Outcomes != 0 {
		t.Errorf("Record(c, since its action) = %+v, %v; want no outcome judged", vs, err)
	}
}

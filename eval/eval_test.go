package eval_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/eval"
	"github.com/breakwater/breakwater/replay"
	"github.com/breakwater/breakwater/traffic"
)

// TestRun runs a small suite over two seeds: a spike of the busiest rule
// (rank 0) is held within its window with nothing leaked after, a release
// is judged per rule with the rules its ranks name, normal days barely
// trip, and the table shows each class with its goals.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("replays two days of traffic per run")
	}
	at := 34 * time.Hour
	scenarios := []eval.Scenario{
		{Name: "spike", Ranked: true, PerRule: true, Incidents: []traffic.Incident{{Kind: traffic.Spike, Rule: 0, At: at, For: time.Hour, Factor: 20}}, Detect: time.Minute, DetectGoal: eval.SpikeWindow},
		{
			Name: "release", Ranked: true, PerRule: true, ByVolume: true,
			Incidents: []traffic.Incident{{Kind: traffic.Release, Rules: []int{1, 8}, At: at, For: 2 * time.Hour, Factor: 2, Version: "2025.06.0"}},
		},
		{Name: "normal", Legitimate: true},
	}
	size := eval.Size{Name: "tiny", Rate: 0.5}
	opts := eval.Options{Config: config.Default(), Seeds: []int64{5, 6}, Sizes: []eval.Size{size}, Rules: 10, Days: 2, NormalDays: 1, Parallel: 2}
	results, err := eval.Run(context.Background(), opts, scenarios)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 6 {
		t.Fatalf("%d results; want 3 scenarios x 2 seeds", len(results))
	}
	for i, r := range results {
		if want := scenarios[i/2].Name; r.Scenario.Name != want || r.Seed != opts.Seeds[i%2] || r.Size != size {
			t.Errorf("result %d is %s, seed %d; want %s, seed %d", i, r.Scenario.Name, r.Seed, want, opts.Seeds[i%2])
		}
		if r.Days != 2 {
			t.Errorf("%s seed %d: %g days replayed; want 2", r.Scenario.Name, r.Seed, r.Days)
		}
	}
	for _, r := range results[:2] {
		l := r.Labels
		if len(r.Units) != 1 || l.GatedAfter != 0 {
			t.Fatalf("spike seed %d: units %+v, %d gated after", r.Seed, r.Units, l.GatedAfter)
		}
		if d, ok := r.Units[0].Delay(); !ok || d > time.Minute || r.Units[0].Scope == "" {
			t.Errorf("spike seed %d: %+v; want held within a minute", r.Seed, r.Units[0])
		}
		// Rank 0 is the busiest rule of the seed's traffic.
		busiest := traffic.RuleID(traffic.BySize(traffic.Scenario{Start: time.Now(), Duration: time.Hour, Rules: 10, Rate: 0.5, Skew: 1, Seed: r.Seed})[0])
		if r.Units[0].Name != busiest {
			t.Errorf("spike seed %d is of %s; want %s, the busiest", r.Seed, r.Units[0].Name, busiest)
		}
	}
	for _, r := range results[2:4] {
		if len(r.Units) != 2 {
			t.Fatalf("release seed %d: units %+v; want one per rule", r.Seed, r.Units)
		}
		var n int64
		for _, u := range r.Units {
			n += u.Actions
			// A 2x rise over two hours of a rule of this size: about four
			// hours of its normal volume, all of the new version.
			if !(u.PerHour > 0) || float64(u.Actions) < 2*u.PerHour || float64(u.Actions) > 8*u.PerHour {
				t.Errorf("release seed %d: rule %s of %.0f/h has %d incident actions in 2h at 2x", r.Seed, u.Name, u.PerHour, u.Actions)
			}
			want := eval.RiseSlow
			if u.PerHour >= eval.BusyRule {
				want = eval.RiseFast
			}
			if u.Target != want {
				t.Errorf("release seed %d: rule %s of %.0f/h has target %s; want %s", r.Seed, u.Name, u.PerHour, u.Target, want)
			}
		}
		if n != r.Labels.IncidentActions {
			t.Errorf("release seed %d: units count %d actions, the labels %d", r.Seed, n, r.Labels.IncidentActions)
		}
	}
	for _, r := range results[4:] {
		if r.Trips > 2 || len(r.Labels.Incidents) != 0 || len(r.Units) != 0 {
			t.Errorf("normal days seed %d: %d trips, %d incidents, %d units; want at most 2 and none", r.Seed, r.Trips, len(r.Labels.Incidents), len(r.Units))
		}
	}
	var out bytes.Buffer
	if err := eval.Print(&out, results); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scenario", "spike", "release", "normal", "tiny", "Goals:", eval.SpikeWindow.String()} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}

// TestGoals judges made-up runs: a goal judged in every run is missed when
// one run misses it, the leak share by the median, false trips pooled over
// the runs, and a unit never detected is never met.
func TestGoals(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	sc := eval.Scenario{
		Name: "rise", PerRule: true, ByVolume: true,
		Incidents: []traffic.Incident{{Kind: traffic.Spike, Rules: []int{0, 1}, For: 4 * time.Hour, Factor: 2}},
	}
	unit := func(perHour float64, after time.Duration) eval.Unit {
		u := eval.Unit{Name: "r", PerHour: perHour, Start: at, Target: eval.RiseSlow}
		if perHour >= eval.BusyRule {
			u.Target = eval.RiseFast
		}
		if after >= 0 {
			u.Detected = at.Add(after)
		}
		return u
	}
	run := func(seed int64, leaked, actions int64, trips int, units ...eval.Unit) eval.Result {
		return eval.Result{
			Scenario: sc, Size: eval.Size{Name: "s", Rate: 1}, Seed: seed, Units: units, Days: 4,
			Labels: replay.LabelSummary{IncidentActions: actions, GatedBefore: leaked}, Outside: make([]eval.Trip, trips),
		}
	}
	// misfire makes r a run of an incident only appeals reveal, with
	// trips overturn_rate trips, 40 gated after detection and a
	// collateral of 0.6x.
	misfire := func(r eval.Result, trips int) eval.Result {
		r.Scenario = eval.Scenario{Name: "misfire", AppealsOnly: true, Detect: eval.AppealsDetect, DetectGoal: eval.AppealsOnly,
			Incidents: []traffic.Incident{{Kind: traffic.Misfire, For: 12 * time.Hour, Factor: 0.6}}}
		for i := range r.Units {
			r.Units[i].Target = eval.AppealsDetect
		}
		r.OverturnTrips = trips
		r.Labels.GatedAfter, r.Labels.CollateralRatio = 40, 0.6
		return r
	}
	goals := func(ms []eval.Miss) map[eval.Goal]bool {
		out := map[eval.Goal]bool{}
		for _, m := range ms {
			out[m.Goal] = true
		}
		return out
	}
	tests := []struct {
		name string
		runs []eval.Result
		miss []eval.Goal
	}{
		{"all met", []eval.Result{
			run(1, 5, 100, 1, unit(200, 20*time.Minute), unit(50, 80*time.Minute)),
			run(2, 9, 100, 0, unit(200, 29*time.Minute), unit(50, 89*time.Minute)),
			run(3, 50, 100, 2, unit(200, 10*time.Minute), unit(50, 10*time.Minute)),
		}, nil},
		{"a busy rule late in one run", []eval.Result{
			run(1, 5, 100, 0, unit(200, 31*time.Minute), unit(50, 80*time.Minute)),
			run(2, 5, 100, 0, unit(200, 10*time.Minute), unit(50, 10*time.Minute)),
		}, []eval.Goal{eval.Rise2x}},
		{"a quiet rule never held", []eval.Result{
			run(1, 5, 100, 0, unit(200, 10*time.Minute), unit(50, -1)),
		}, []eval.Goal{eval.Rise2x}},
		{"median leak over 10%", []eval.Result{
			run(1, 11, 100, 0, unit(200, 10*time.Minute)),
			run(2, 12, 100, 0, unit(200, 10*time.Minute)),
			run(3, 0, 100, 0, unit(200, 10*time.Minute)),
		}, []eval.Goal{eval.LeakShare}},
		{"false trips pooled over 1 per two days", []eval.Result{
			run(1, 0, 100, 0, unit(200, time.Minute)),
			run(2, 0, 100, 5, unit(200, time.Minute)),
		}, []eval.Goal{eval.FalseTrips}},
		{"appeals only: held, but not by overturn_rate", []eval.Result{
			misfire(run(1, 60, 100, 0, unit(200, 3*time.Hour)), 1),
			misfire(run(2, 60, 100, 0, unit(200, 3*time.Hour)), 0),
		}, []eval.Goal{eval.AppealsOnly}},
		{"appeals only: tripped late", []eval.Result{
			misfire(run(1, 60, 100, 0, unit(200, 9*time.Hour)), 1),
		}, []eval.Goal{eval.AppealsOnly}},
		{"appeals only: leaks and collateral not judged", []eval.Result{
			misfire(run(1, 60, 100, 0, unit(200, 3*time.Hour)), 2),
			misfire(run(2, 70, 100, 0, unit(200, 4*time.Hour)), 1),
		}, nil},
	}
	for _, tt := range tests {
		cls := eval.Classes(tt.runs)
		if len(cls) != 1 {
			t.Fatalf("%s: %d classes; want 1", tt.name, len(cls))
		}
		got := goals(cls[0].Misses())
		for _, g := range tt.miss {
			if !got[g] {
				t.Errorf("%s: Misses() = %v; want %q among them", tt.name, cls[0].Misses(), g)
			}
		}
		if len(got) != len(tt.miss) {
			t.Errorf("%s: Misses() = %v; want only %v", tt.name, cls[0].Misses(), tt.miss)
		}
		var out bytes.Buffer
		if err := eval.Print(&out, tt.runs); err != nil {
			t.Fatal(err)
		}
		verdict := "MISSED"
		if len(tt.miss) == 0 {
			verdict = "met"
		}
		if !strings.Contains(out.String(), verdict) {
			t.Errorf("%s: table lacks %q:\n%s", tt.name, verdict, out.String())
		}
	}
	if got := eval.Duration(time.Duration(1<<63 - 1)); got != "never" {
		t.Errorf("Duration(max) = %q; want never", got)
	}
	for d, want := range map[time.Duration]string{8500 * time.Millisecond: "8.5s", 61 * time.Second: "1m01s", 185 * time.Minute: "3h05m"} {
		if got := eval.Duration(d); got != want {
			t.Errorf("Duration(%v) = %q; want %q", d, got, want)
		}
	}
}

// TestSuite checks the suite has the classes the goals speak of, each
// with a goal to be judged against.
func TestSuite(t *testing.T) {
	kinds := map[traffic.IncidentKind]int{}
	var untuned, legit, region, rise, perRule bool
	for _, sc := range eval.Suite(20) {
		for _, in := range sc.Incidents {
			kinds[in.Kind]++
			region = region || in.Region != ""
			rise = rise || in.Rise > 0
			for _, r := range append([]int{in.Rule}, in.Rules...) {
				if r < 0 || r >= 20 {
					t.Errorf("%s: rule %d of 20", sc.Name, r)
				}
			}
		}
		untuned = untuned || sc.Untuned
		legit = legit || sc.Legitimate
		perRule = perRule || sc.PerRule
		if !sc.Legitimate && kinds[traffic.Malformed] == 0 && sc.Detect == 0 && !sc.ByVolume {
			t.Errorf("%s: no detection target", sc.Name)
		}
	}
	if kinds[traffic.Spike] < 6 || kinds[traffic.Broad] != 2 || kinds[traffic.Ramp] != 1 || kinds[traffic.NewRule] != 2 ||
		kinds[traffic.Malformed] != 1 || kinds[traffic.Release] != 1 || kinds[traffic.Misfire] != 1 || !untuned || !legit || !region || !rise || !perRule {
		t.Errorf("suite kinds %v, untuned %v, legitimate %v, region %v, rise %v, per rule %v", kinds, untuned, legit, region, rise, perRule)
	}
}

// TestNewRuleBudget checks the promise of docs/breakers.md: under the built-in
// defaults and config/example.yaml, a new rule banning 600 accounts an hour
// is held within ten minutes, and one banning a few times an hour is not.
func TestNewRuleBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("replays a day and a half of traffic")
	}
	example, err := config.Load("../config/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	at := 30 * time.Hour
	for _, tc := range []struct {
		name string
		cfg  config.Config
	}{{"built-in defaults", config.Default()}, {"config/example.yaml", example}} {
		for _, rate := range []float64{600, 4} {
			sc := eval.Scenario{Name: fmt.Sprintf("%s, %g bans an hour", tc.name, rate), Untuned: true, Incidents: []traffic.Incident{
				{Kind: traffic.NewRule, At: at, For: 6 * time.Hour, Rate: rate, Action: "ban_account"},
			}}
			res, err := eval.Run(context.Background(), eval.Options{
				Config: tc.cfg, Seeds: []int64{11}, Sizes: []eval.Size{{Name: "s", Rate: 2}}, Rules: 5, Days: 2, NormalDays: 1, BatchSize: 20,
			}, []eval.Scenario{sc})
			if err != nil {
				t.Fatal(err)
			}
			l := res[0].Labels
			if len(l.Incidents) != 1 || l.Incidents[0].Actions < int64(rate*3) {
				t.Fatalf("%s: %+v; want the new rule's actions labelled", sc.Name, l)
			}
			in := l.Incidents[0]
			switch rate {
			case 600:
				if in.Detected.IsZero() || in.Detected.Sub(in.First) > 10*time.Minute || in.GatedAfter != 0 || in.Scope != "rule:rule-new" {
					t.Errorf("%s: %+v; want held by its own breaker within ten minutes", sc.Name, in)
				}
			default:
				if in.Held != 0 {
					t.Errorf("%s: %d of %d held; want none", sc.Name, in.Held, in.Actions)
				}
			}
		}
	}
}

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
	"github.com/breakwater/breakwater/traffic"
)

// TestRun runs a small suite: a spike is held within its window with
// nothing leaked after, a new rule is held under the built-in defaults,
// normal days barely trip, and the table shows each scenario.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("replays two days of traffic per scenario")
	}
	day2 := 24*time.Hour + 10*time.Hour
	scenarios := []eval.Scenario{
		{Name: "spike", Incidents: []traffic.Incident{{Kind: traffic.Spike, Rule: 1, At: day2, For: time.Hour, Factor: 20}}, Detect: time.Minute},
		{Name: "new rule", Incidents: []traffic.Incident{{Kind: traffic.NewRule, At: day2, For: time.Hour, Rate: 600, Action: "ban_account"}}, Untuned: true, Detect: 10 * time.Minute},
		{Name: "normal", Legitimate: true},
	}
	opts := eval.Options{Config: config.Default(), Seed: 5, Rules: 6, Rate: 3, Days: 2, NormalDays: 1, BatchSize: 50, Parallel: 2}
	results, tuned, err := eval.Run(context.Background(), opts, scenarios)
	if err != nil {
		t.Fatal(err)
	}
	if len(tuned.Breakers.Rules) != 6 {
		t.Errorf("suggested %d rules; want the 6 of the traffic", len(tuned.Breakers.Rules))
	}
	spike, newRule, normal := results[0].Labels, results[1].Labels, results[2]
	if len(spike.Incidents) != 1 || spike.GatedAfter != 0 || spike.Incidents[0].Detected.Sub(spike.Incidents[0].First) > time.Minute {
		t.Errorf("spike %+v; want held within a minute, nothing gated after", spike)
	}
	if len(newRule.Incidents) != 1 || newRule.Incidents[0].Detected.IsZero() || newRule.Incidents[0].Scope != "rule:rule-new" || newRule.GatedAfter != 0 ||
		newRule.Incidents[0].Detected.Sub(newRule.Incidents[0].First) > 10*time.Minute {
		t.Errorf("new rule under the defaults %+v; want held by its own breaker within ten minutes", newRule)
	}
	if normal.Trips > eval.MaxNormalTrips || len(normal.Labels.Incidents) != 0 {
		t.Errorf("normal days: %d trips, %d incidents; want at most %d and none", normal.Trips, len(normal.Labels.Incidents), eval.MaxNormalTrips)
	}
	var out bytes.Buffer
	if err := eval.Print(&out, opts, results); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scenario", "spike", "new rule", "normal", "rule:rule-new"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}

// TestSuite checks the suite has the scenarios the goals speak of.
func TestSuite(t *testing.T) {
	kinds := map[traffic.IncidentKind]int{}
	untuned, legit := false, false
	for _, sc := range eval.Suite() {
		for _, in := range sc.Incidents {
			kinds[in.Kind]++
		}
		untuned = untuned || sc.Untuned
		legit = legit || sc.Legitimate
	}
	if kinds[traffic.Spike] < 4 || kinds[traffic.Broad] != 1 || kinds[traffic.Ramp] != 1 || kinds[traffic.NewRule] != 2 || kinds[traffic.Malformed] != 1 || !untuned || !legit {
		t.Errorf("suite kinds %v, untuned %v, legitimate %v", kinds, untuned, legit)
	}
}

// TestNewRuleBudget checks the promise of the README: under the built-in
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
			res, _, err := eval.Run(context.Background(), eval.Options{Config: tc.cfg, Seed: 11, Rules: 5, Rate: 2, Days: 2, NormalDays: 1, BatchSize: 20}, []eval.Scenario{sc})
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

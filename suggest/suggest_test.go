package suggest_test

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/replay"
	"github.com/breakwater/breakwater/suggest"
	"github.com/breakwater/breakwater/traffic"
)

var day1 = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

func lines(t testing.TB, sc traffic.Scenario) []byte {
	t.Helper()
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	sim := traffic.NewSimulation(sc)
	var buf bytes.Buffer
	for l, ok := sim.Next(nil); ok; l, ok = sim.Next(l[:0]) {
		buf.Write(l)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

func run(t testing.TB, opts replay.Options, data []byte) replay.Summary {
	t.Helper()
	src, err := replay.NewLines(bytes.NewReader(data), "test")
	if err != nil {
		t.Fatal(err)
	}
	r, err := replay.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Run(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSuggestedConfig suggests thresholds from one normal day, then checks
// them on another: a normal day with other noise holds nothing, and a day
// on which one rule spikes trips that rule.
func TestSuggestedConfig(t *testing.T) {
	// Tight defaults: on normal traffic they trip, which is what a
	// suggestion is for.
	cfg, err := config.Parse([]byte(`
breakers:
  defaults: {window: 1m, max_actions: 100, baseline: 1h, factor: 1.5, min_actions: 20}
  global: {window: 1m, max_actions: 500, baseline: 1h, factor: 1.3, min_actions: 100}
`))
	if err != nil {
		t.Fatal(err)
	}
	normal := traffic.Scenario{Start: day1, Duration: 24 * time.Hour, Rules: 12, Rate: 6, Diurnal: 0.6, Noise: 0.15, Seed: 1}
	recorded := lines(t, normal)
	if s := run(t, replay.Options{Config: cfg}, recorded); s.Held == 0 {
		t.Fatal("the tight configuration held nothing on normal traffic; the test needs it to")
	}

	obs, err := suggest.NewObserver(suggest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, replay.Options{Config: suggest.Observing(cfg), OnCounts: obs.Observe}, recorded)
	sgs := obs.Suggestions()
	if len(sgs) != 13 || sgs[0].Scope != breaker.Global {
		t.Fatalf("%d suggestions, first %v; want global and 12 rules", len(sgs), sgs[0].Scope)
	}
	for _, s := range sgs {
		if s.MaxActions < s.Peak*1.5 || s.MaxActions > s.Peak*1.5*1.1+20 {
			t.Errorf("%s: max_actions %g for a peak of %g; want 1.5 times, rounded up", s.Scope, s.MaxActions, s.Peak)
		}
		if ps := max(s.ProbationScale, s.Current.ProbationScale); s.MaxActions*ps < s.Peak*1.1 {
			t.Errorf("%s: max_actions %g x probation scale %g is below the peak %g", s.Scope, s.MaxActions, ps, s.Peak)
		}
		if s.Factor != 0 && s.Factor < s.PeakRatio*1.5 {
			t.Errorf("%s: factor %g for a peak ratio of %g; want at least 1.5 times", s.Scope, s.Factor, s.PeakRatio)
		}
	}
	next, err := suggest.Apply(cfg, sgs)
	if err != nil {
		t.Fatal(err)
	}
	var yaml bytes.Buffer
	if err := suggest.WriteYAML(&yaml, sgs, suggest.Options{NewRules: cfg.Breakers.NewRules}); err != nil {
		t.Fatal(err)
	}
	// The snippet, merged into the configuration, gives the same thresholds.
	merged, err := config.Parse([]byte(strings.Replace(yaml.String(), "  defaults:\n", "  defaults:\n    window: 1m\n    baseline: 1h\n    factor: 1.5\n    min_actions: 20\n", 1)))
	if err != nil {
		t.Fatalf("the snippet does not load: %v\n%s", err, yaml.String())
	}
	if merged.Breakers.Defaults.MaxActions != next.Breakers.Defaults.MaxActions || next.Breakers.Defaults.MaxActions != suggest.Defaults(sgs) {
		t.Errorf("defaults.max_actions: snippet %g, applied %g; want %g", merged.Breakers.Defaults.MaxActions, next.Breakers.Defaults.MaxActions, suggest.Defaults(sgs))
	}
	// New rules get no more room than the quietest rule seen, nor than
	// the configured budget.
	quietest := math.Inf(1)
	for _, s := range sgs[1:] {
		quietest = math.Min(quietest, s.MaxActions)
	}
	if nr := next.Breakers.NewRules; merged.Breakers.NewRules != nr || nr.MaxActions != math.Min(quietest, cfg.Breakers.NewRules.MaxActions) || nr.Learning != cfg.Breakers.NewRules.Learning {
		t.Errorf("new_rules: snippet %+v, applied %+v; want max_actions %g (configured %+v)", merged.Breakers.NewRules, nr, math.Min(quietest, cfg.Breakers.NewRules.MaxActions), cfg.Breakers.NewRules)
	}
	for _, s := range sgs[1:] {
		if got, want := merged.RuleThresholds(s.Scope.Rule()), next.RuleThresholds(s.Scope.Rule()); got.MaxActions != want.MaxActions || got.Factor != want.Factor || got.ProbationScale != want.ProbationScale {
			t.Errorf("%s: snippet gives %+v; want %+v", s.Scope, got, want)
		}
	}

	other := normal
	other.Seed, other.Start = 2, day1.Add(24*time.Hour)
	if s := run(t, replay.Options{Config: next}, lines(t, other)); s.Held != 0 || len(s.Tripped()) != 0 {
		t.Errorf("suggested config on another normal day: %d held, tripped %v; want nothing", s.Held, s.Tripped())
	}

	spiky := other
	spiky.Incidents = []traffic.Incident{
		{Kind: traffic.Spike, Rule: 4, At: 14 * time.Hour, For: 30 * time.Minute, Factor: 8},
		{Kind: traffic.NewRule, At: 18 * time.Hour, For: 30 * time.Minute, Factor: 4},
	}
	s := run(t, replay.Options{Config: next}, lines(t, spiky))
	tripped := s.Tripped()
	if len(tripped) == 0 || tripped[0].Scope != breaker.RuleScope(traffic.RuleID(4)) {
		t.Fatalf("suggested config on a spike of rule 4: tripped %v; want rule:%s", tripped, traffic.RuleID(4))
	}
	if at := tripped[0].Trips[0].At; at.Before(spiky.Start.Add(14*time.Hour)) || at.After(spiky.Start.Add(14*time.Hour+5*time.Minute)) {
		t.Errorf("tripped at %s; want within 5 minutes of the spike at 14:00", at)
	}
	var newRule bool
	for _, sc := range tripped {
		if sc.Scope == breaker.RuleScope(traffic.NewRuleID) {
			newRule = true
			if at := sc.Trips[0].At; at.Before(spiky.Start.Add(18*time.Hour)) || at.After(spiky.Start.Add(18*time.Hour+5*time.Minute)) {
				t.Errorf("the new rule tripped at %s; want within 5 minutes of its start at 18:00", at)
			}
		}
	}
	if !newRule {
		t.Errorf("the new rule did not trip under the suggested defaults (max_actions %g)", next.Breakers.Defaults.MaxActions)
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []suggest.Options{{Headroom: 0.5}, {Quantile: 1.5}, {Floor: -1}, {MinFactor: 0.5}} {
		if _, err := suggest.NewObserver(o); err == nil {
			t.Errorf("NewObserver(%+v) accepted invalid options", o)
		}
	}
}

// TestQuantile checks that a quantile below 1 ignores a short burst.
func TestQuantile(t *testing.T) {
	p := breaker.Policy{Window: time.Minute, MinActions: 10}
	peak, _ := suggest.NewObserver(suggest.Options{})
	q, _ := suggest.NewObserver(suggest.Options{Quantile: 0.99})
	for i := range 1000 {
		v := 100.0
		if i == 500 {
			v = 5000
		}
		for _, o := range []*suggest.Observer{peak, q} {
			o.Observe("rule:a", p, int64(i), breaker.Counts{Window: v})
		}
	}
	if got := peak.Suggestions()[0].Peak; got != 5000 {
		t.Errorf("peak = %g; want 5000", got)
	}
	if got := q.Suggestions()[0].Peak; got < 98 || got > 104 {
		t.Errorf("p99 = %g; want about 100", got)
	}
}

// TestSuggestsBanBreakers checks the breakers suggested per rule for the
// irreversible action types: every rule seen gets one for its bans, on the
// longer window, which the YAML snippet reproduces; another normal day
// trips none of them, and a rule that slowly starts banning more is held
// by its ban breaker first.
func TestSuggestsBanBreakers(t *testing.T) {
	cfg := config.Default()
	normal := traffic.Scenario{Start: day1, Duration: 24 * time.Hour, Rules: 8, Rate: 6, Diurnal: 0.5, Noise: 0.1, Seed: 3}
	recorded := lines(t, normal)
	passes := 0
	sgs, err := suggest.Observe(cfg, suggest.Options{}, func(c config.Config, o *suggest.Observer) error {
		passes++
		run(t, replay.Options{Config: c, OnCounts: o.Observe, OnBucket: o.Bucket}, recorded)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if passes != 2 {
		t.Errorf("%d observation passes; want 2 (rules, then their ban breakers)", passes)
	}
	bans := map[string]suggest.Suggestion{}
	for _, s := range sgs {
		if s.Scope.Action() == "ban_account" {
			bans[s.Scope.Rule()] = s
		}
	}
	if len(bans) != 8 {
		t.Fatalf("ban breakers suggested for %d rules; want the 8 of the traffic", len(bans))
	}
	for rule, s := range bans {
		if s.Window != suggest.DefaultActionWindow || s.MinActions < s.Peak || s.MaxActions < s.Peak*1.5 {
			t.Errorf("%s: %+v; want a %v window, min_actions at the peak and max_actions 1.5 times it", rule, s, suggest.DefaultActionWindow)
		}
	}
	next, err := suggest.Apply(cfg, sgs)
	if err != nil {
		t.Fatal(err)
	}
	var yaml bytes.Buffer
	if err := suggest.WriteYAML(&yaml, sgs, suggest.Options{NewRules: cfg.Breakers.NewRules}); err != nil {
		t.Fatal(err)
	}
	merged, err := config.Parse(yaml.Bytes())
	if err != nil {
		t.Fatalf("the snippet does not load: %v\n%s", err, yaml.String())
	}
	for rule := range bans {
		got, ok1 := merged.ActionThresholds(rule, "ban_account")
		want, ok2 := next.ActionThresholds(rule, "ban_account")
		if !ok1 || !ok2 || got != want {
			t.Errorf("%s bans: snippet gives %+v (%v); applied %+v (%v)", rule, got, ok1, want, ok2)
		}
	}

	other := normal
	other.Seed, other.Start = 4, day1.Add(24*time.Hour)
	if s := run(t, replay.Options{Config: next}, lines(t, other)); len(s.Tripped()) != 0 {
		t.Errorf("suggested config on another normal day: tripped %v; want nothing", s.Tripped())
	}
	ramp := other
	ramp.Incidents = []traffic.Incident{{Kind: traffic.Ramp, Rule: 2, At: 9 * time.Hour, For: 3 * time.Hour, Factor: math.Pow(1.6, 3), Exponential: true, Action: "ban_account"}}
	s := run(t, replay.Options{Config: next}, lines(t, ramp))
	tripped := s.Tripped()
	want := breaker.ActionScope(traffic.RuleID(2), "ban_account")
	if len(tripped) == 0 || tripped[0].Scope != want {
		t.Fatalf("a ramp of rule 2's bans tripped %v; want %s first", tripped, want)
	}
	for _, sc := range tripped {
		if sc.Scope == want {
			t.Logf("%s tripped %v after the ramp began", want, sc.Trips[0].At.Sub(ramp.Start.Add(9*time.Hour)))
		}
	}
}

// TestSuggestsEvidence sets the evidence detectors from two normal days
// for a target of one false trip a week: every scope observed gets a
// threshold within its share, the snippet and Apply carry it, a busier rule
// catches a 2x rise sooner, four normal days of other noise trip the
// detectors at most once, and a negative target leaves them as configured.
func TestSuggestsEvidence(t *testing.T) {
	if testing.Short() {
		t.Skip("replays four days of traffic")
	}
	cfg := config.Default()
	normal := traffic.Scenario{Start: day1, Duration: 48 * time.Hour, Rules: 8, Rate: 1, Diurnal: 0.5, Noise: 0.1, Skew: 1, Seed: 21}
	recorded := lines(t, normal)
	observe := func(o suggest.Options) []suggest.Suggestion {
		sgs, err := suggest.Observe(cfg, o, func(c config.Config, obs *suggest.Observer) error {
			run(t, replay.Options{Config: c, OnCounts: obs.Observe, OnBucket: obs.Bucket}, recorded)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return sgs
	}
	sgs := observe(suggest.Options{})
	n := 0
	for _, s := range sgs {
		if s.Evidence != nil {
			n++
		}
	}
	perHour := map[string]*suggest.Calibration{}
	for _, s := range sgs {
		e := s.Evidence
		if e == nil {
			t.Errorf("%s: no evidence threshold", s.Scope)
			continue
		}
		if e.Threshold <= 0 || e.TripsPerWeek > e.Budget || math.Abs(e.Budget-1/float64(n)) > 1e-9 || !(e.PerHour > 0) || e.Wander < 0 {
			t.Errorf("%s: %+v; want a threshold within a budget of 1/%d a week", s.Scope, *e, n)
		}
		if s.Scope.Action() == "" && s.Scope != breaker.Global {
			perHour[s.Scope.Rule()] = e
		}
	}
	busy, quiet := perHour[traffic.RuleID(0)], perHour[traffic.RuleID(7)]
	if busy == nil || quiet == nil || busy.PerHour < 4*quiet.PerHour || busy.Delay2x <= 0 || quiet.Delay2x > 0 && busy.Delay2x >= quiet.Delay2x {
		t.Fatalf("busiest rule %+v, quietest %+v; want the busier's 2x rise caught sooner", busy, quiet)
	}
	next, err := suggest.Apply(cfg, sgs)
	if err != nil {
		t.Fatal(err)
	}
	var yaml bytes.Buffer
	if err := suggest.WriteYAML(&yaml, sgs, suggest.Options{}); err != nil {
		t.Fatal(err)
	}
	snippet, err := config.Parse(yaml.Bytes())
	if err != nil {
		t.Fatalf("the snippet is not a configuration: %v\n%s", err, yaml.String())
	}
	for _, s := range sgs {
		if s.Scope == breaker.Global {
			if h := s.Evidence.Threshold; next.Breakers.Global.Evidence.Threshold != h || snippet.Breakers.Global.Evidence.Threshold != h {
				t.Errorf("global: applied h %g, snippet %g; want %g", next.Breakers.Global.Evidence.Threshold, snippet.Breakers.Global.Evidence.Threshold, h)
			}
			continue
		}
		got, inSnippet := next.Breakers.Rules[s.Scope.Rule()].Evidence, snippet.Breakers.Rules[s.Scope.Rule()].Evidence
		if a := s.Scope.Action(); a != "" {
			got, inSnippet = next.Breakers.Rules[s.Scope.Rule()].Actions[a].Evidence, snippet.Breakers.Rules[s.Scope.Rule()].Actions[a].Evidence
		}
		if got.Threshold != s.Evidence.Threshold || inSnippet.Threshold != s.Evidence.Threshold {
			t.Errorf("%s: applied h %g, snippet %g; want %g", s.Scope, got.Threshold, inSnippet.Threshold, s.Evidence.Threshold)
		}
	}
	if !strings.Contains(yaml.String(), "a rise to 2x of its") {
		t.Errorf("the snippet does not say what a 2x rise takes to catch:\n%s", yaml.String())
	}
	// Four normal days of other noise, replayed from the start with the
	// suggestion: the detectors trip at most once.
	later := normal
	later.Seed, later.Duration = 22, 96*time.Hour
	sum := run(t, replay.Options{Config: next, AssumeResetAfter: time.Hour}, lines(t, later))
	trips := 0
	for _, s := range sum.Scopes {
		for _, tr := range s.Trips {
			if tr.Reason == string(breaker.ReasonEvidence) {
				trips++
				t.Logf("%s tripped on evidence at %s", s.Scope, tr.At)
			}
		}
	}
	if trips > 1 {
		t.Errorf("%d evidence trips in four normal days; want at most one at a target of one a week", trips)
	}
	for _, s := range observe(suggest.Options{FalseTripsPerWeek: -1}) {
		if s.Evidence != nil {
			t.Errorf("%s: evidence %+v with a negative target; want the configured threshold", s.Scope, *s.Evidence)
		}
	}
}

package decide_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/decide"
)

// TestClassifySegments checks the scopes of an action with segments: its
// model version's and each configured dimension's, and that past
// max_values a value counts in the overflow segment until a tracked one
// has been idle long enough to give up its place.
func TestClassifySegments(t *testing.T) {
	cfg, err := config.Parse([]byte(`
breakers:
  segments: {dimensions: [region], max_values: 2, idle: 1h}
  rules:
    spam:
      max_actions: 40
      segments: [target.type]
      actions:
        ban_account: {max_actions: 7}
`))
	if err != nil {
		t.Fatal(err)
	}
	g := decide.New(cfg)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	classify := func(rule, action, region, version string, at time.Time) []breaker.Scope {
		t.Helper()
		var it decide.Item
		v := fmt.Sprintf(`{"action_id":"a","rule_id":%q,"action":%q,"target":{"type":"account","id":"u"},"occurred_at":%q,"region":%q,"model":{"version":%q}}`,
			rule, action, at.Format(time.RFC3339), region, version)
		g.Classify(&it, decide.Position{}, []byte(v))
		if it.Bad != nil {
			t.Fatalf("Classify(%s) = %v", v, it.Bad)
		}
		return it.Scopes[:it.NScopes]
	}
	got := classify("spam", "ban_account", "eu", "7", t0)
	want := []breaker.Scope{breaker.Global, breaker.RuleScope("spam"), breaker.ActionScope("spam", "ban_account"),
		breaker.ModelScope("spam", "7"), breaker.SegmentScope("spam", "region", "eu"), breaker.SegmentScope("spam", "target.type", "account")}
	if !slices.Equal(got, want) {
		t.Errorf("scopes %q; want %q", got, want)
	}
	// A rule with no entry has the global dimensions only; no region, no
	// version: no segment.
	if got := classify("other", "warn", "", "", t0); !slices.Equal(got, []breaker.Scope{breaker.Global, breaker.RuleScope("other")}) {
		t.Errorf("scopes without values %q", got)
	}
	region := func(at time.Time, r string) breaker.Scope { return classify("other", "warn", r, "", at)[2] }
	if s := region(t0, "us"); s != breaker.SegmentScope("other", "region", "us") {
		t.Errorf("first region %q", s)
	}
	if s := region(t0.Add(time.Minute), "eu"); s != breaker.SegmentScope("other", "region", "eu") {
		t.Errorf("second region %q", s)
	}
	// Two tracked, none idle: a third overflows, and so does a fourth.
	for _, r := range []string{"br", "in"} {
		if s := region(t0.Add(30*time.Minute), r); s != breaker.OverflowScope("other", "region") {
			t.Errorf("region %s past the bound: %q; want the overflow segment", r, s)
		}
	}
	// us is seen again: eu is now the one unseen the longest; once it has
	// been idle over an hour, br takes its place.
	region(t0.Add(50*time.Minute), "us")
	if s := region(t0.Add(60*time.Minute), "br"); s != breaker.OverflowScope("other", "region") {
		t.Errorf("br with eu idle for exactly an hour: %q; want the overflow segment", s)
	}
	if s := region(t0.Add(62*time.Minute), "br"); s != breaker.SegmentScope("other", "region", "br") {
		t.Errorf("br after eu went idle: %q", s)
	}
	if s := region(t0.Add(62*time.Minute), "eu"); s != breaker.OverflowScope("other", "region") {
		t.Errorf("eu after it gave up its place: %q; want the overflow segment", s)
	}
	if s := region(t0.Add(62*time.Minute), "us"); s != breaker.SegmentScope("other", "region", "us") {
		t.Errorf("us still tracked: %q", s)
	}
	// Model versions are bounded the same way.
	for i := range 3 {
		s := classify("m", "warn", "", fmt.Sprint("v", i), t0)[2]
		want := breaker.ModelScope("m", fmt.Sprint("v", i))
		if i == 2 {
			want = breaker.OverflowScope("m", breaker.DimModel)
		}
		if s != want {
			t.Errorf("version %d: %q; want %q", i, s, want)
		}
	}
}

// TestModelVersionRelease checks that a release that raises a rule trips
// the new version's breaker, judged against what the rule did before, and
// holds only that version's actions; and that the version present when
// counting began is its rule's to guard.
func TestModelVersionRelease(t *testing.T) {
	d := newDecider(t, `
breakers:
  defaults: {window: 1m, max_actions: 100, factor: 0, evidence: {off: true}}
  global: {window: 1m, max_actions: 0, factor: 0, disabled: true, evidence: {off: true}}
  new_rules: {max_actions: 0, learning: 1h}
`)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	with := func(acts []act, version string) []act {
		for i := range acts {
			acts[i].version = version
		}
		return acts
	}
	// Two hours of the old version at 60 a minute, and of another rule.
	for m := range 120 {
		at := t0.Add(time.Duration(m) * time.Minute)
		its, r := d.decide(append(with(spread("r", 60, at, time.Minute), "old"), with(spread("q", 30, at, time.Minute), "old")...))
		for _, it := range its {
			if it.Decision != decide.Gated {
				t.Fatalf("minute %d: %s held by %s (%+v)", m, it.Act.RuleID, it.Scope, status(r, it.Scope))
			}
		}
	}
	// The release: rule r's actions come from the new version, at 150 a
	// minute; the old version's last few still arrive.
	var held, heldOld, heldQ int
	for m := 120; m < 130; m++ {
		at := t0.Add(time.Duration(m) * time.Minute)
		acts := append(with(spread("r", 150, at, time.Minute), "new"), with(spread("r", 5, at, time.Minute), "old")...)
		its, r := d.decide(append(acts, with(spread("q", 30, at, time.Minute), "old")...))
		if s := status(r, breaker.RuleScope("r")); s.Auto != breaker.Closed {
			t.Fatalf("minute %d: the rule tripped (%s); want only the new version's breaker", m, s.Reason)
		}
		for _, it := range its {
			switch {
			case it.Decision != decide.Held:
			case it.Act.RuleID == "q":
				heldQ++
			case it.Act.ModelVersion == "old":
				heldOld++
			default:
				held++
				if it.Scope != breaker.ModelScope("r", "new") {
					t.Fatalf("held by %s; want %s", it.Scope, breaker.ModelScope("r", "new"))
				}
			}
		}
	}
	if held == 0 || heldOld != 0 || heldQ != 0 {
		t.Errorf("held %d of the new version, %d of the old, %d of another rule; want some, none, none", held, heldOld, heldQ)
	}

	// Rule q's version was there from the start: a spike of q trips the
	// rule, not the version's breaker.
	_, r := d.decide(with(spread("q", 300, t0.Add(131*time.Minute), time.Minute), "old"))
	if s := status(r, breaker.RuleScope("q")); s.Auto != breaker.Open {
		t.Errorf("rule q after its spike: %s; want open", s.Auto)
	}
	if s := status(r, breaker.ModelScope("q", "old")); s.Auto != breaker.Closed {
		t.Errorf("q's established version: %s (%s); want closed", s.Auto, s.Reason)
	}
}

// TestRegionSegment checks that a segment breaker holds only its segment.
func TestRegionSegment(t *testing.T) {
	d := newDecider(t, `
breakers:
  defaults: {window: 1m, max_actions: 400, baseline: 30m, factor: 3, min_actions: 20, evidence: {off: true}}
  global: {window: 1m, max_actions: 0, factor: 0, disabled: true, evidence: {off: true}}
  new_rules: {max_actions: 0}
  segments: {dimensions: [region]}
`)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	regions := []string{"us", "eu", "br", "in"}
	batch := func(at time.Time, euFactor int) []act {
		var acts []act
		for _, rg := range regions {
			n := 15
			if rg == "eu" {
				n *= euFactor
			}
			for _, a := range spread("r", n, at, time.Minute) {
				a.region = rg
				acts = append(acts, a)
			}
		}
		return acts
	}
	for m := range 60 {
		d.decide(batch(t0.Add(time.Duration(m)*time.Minute), 1))
	}
	var heldEU, heldOther int
	for m := 60; m < 70; m++ {
		its, r := d.decide(batch(t0.Add(time.Duration(m)*time.Minute), 6))
		if s := status(r, breaker.RuleScope("r")); s.Auto != breaker.Closed {
			t.Fatalf("minute %d: the rule tripped (%s); want only eu", m, s.Reason)
		}
		for _, it := range its {
			if it.Decision == decide.Held {
				if it.Act.Region == "eu" && it.Scope == breaker.SegmentScope("r", "region", "eu") {
					heldEU++
				} else {
					heldOther++
				}
			}
		}
	}
	if heldEU == 0 || heldOther != 0 {
		t.Errorf("held %d of eu by its segment, %d others; want some, none", heldEU, heldOther)
	}
}

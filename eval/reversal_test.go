package eval

import (
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/event"
)

// TestForwardLogReversal: the reversal of a trip counts the actions of the
// tripped scope from its onset to the trip, as package reversal finds
// them: a model version's trip only that version's, a rule's all of the
// rule's, each action once across trips.
func TestForwardLogReversal(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f := newForwardLog(t0)
	add := func(rule, version string, at time.Duration, incident bool) {
		it := decide.Item{Act: event.Action{RuleID: rule, Action: "ban_account", ModelVersion: version, OccurredAt: t0.Add(at)}}
		f.add(&it, incident)
	}
	for i := range 10 {
		add("r", "v2", time.Duration(i)*time.Minute, true)  // the release: 10 incident actions
		add("r", "v1", time.Duration(i)*time.Minute, false) // the old version: 10 ordinary
		add("s", "v2", time.Duration(i)*time.Minute, false) // another rule with the same version
	}
	add("r", "v2", -time.Minute, true) // before the log's start: not kept
	version := Trip{Scope: string(breaker.ModelScope("r", "v2")), Onset: t0.Add(2 * time.Minute), At: t0.Add(9 * time.Minute)}
	rule := Trip{Scope: string(breaker.RuleScope("r")), Onset: t0, At: t0.Add(9 * time.Minute)}
	cases := []struct {
		name  string
		trips []Trip
		want  Reversal
	}{
		{"the version from its onset", []Trip{version}, Reversal{Incident: 8}},
		{"the rule", []Trip{rule}, Reversal{Incident: 10, Ordinary: 10}},
		{"both, each action once", []Trip{version, rule}, Reversal{Incident: 10, Ordinary: 10}},
		{"no onset", []Trip{{Scope: version.Scope, At: version.At}}, Reversal{}},
		{"global", []Trip{{Scope: string(breaker.Global), Onset: t0, At: t0.Add(time.Minute)}}, Reversal{Incident: 2, Ordinary: 4}},
	}
	for _, c := range cases {
		if got := f.reversal(c.trips); got != c.want {
			t.Errorf("%s: reversal = %+v; want %+v", c.name, got, c.want)
		}
	}
}

package traffic

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/event"
)

func TestParseIncident(t *testing.T) {
	tests := []struct {
		in      string
		want    Incident
		wantErr string
	}{
		{in: "spike", want: incidentDefaults[Spike]},
		{in: "spike:rule=3,at=2h,for=30m,factor=12", want: Incident{Kind: Spike, Rule: 3, At: 2 * time.Hour, For: 30 * time.Minute, Factor: 12}},
		{in: "malformed:factor=0.5", want: Incident{Kind: Malformed, At: time.Hour, For: 10 * time.Minute, Factor: 0.5}},
		{in: "flood", wantErr: `unknown kind "flood"`},
		{in: "spike:rule", wantErr: `"rule" is not key=value`},
		{in: "spike:rule=-1", wantErr: "rule: must be between"},
		{in: "ramp:for=0s", wantErr: "for: must be positive"},
		{in: "broad:factor=NaN", wantErr: "factor: must be above 0"},
		{in: "malformed:factor=2", wantErr: "at most 1"},
		{in: "spike:colour=red", wantErr: "unknown key"},
		{in: "spike:at=soon", wantErr: "at: time: invalid duration"},
		{in: "new_rule:rate=600,action=ban_account,for=4h", want: Incident{Kind: NewRule, At: time.Hour, For: 4 * time.Hour, Factor: 4, Rate: 600, Action: "ban_account"}},
		{in: "ramp:curve=exp,factor=10", want: Incident{Kind: Ramp, Rule: 1, At: time.Hour, For: 2 * time.Hour, Factor: 10, Exponential: true}},
		{in: "ramp:curve=wavy", wantErr: "curve: must be linear or exp"},
		{in: "new_rule:rate=0", wantErr: "rate: must be above 0"},
		{in: "spike:action=ban account", wantErr: "action: must be a non-empty action type"},
	}
	for _, tt := range tests {
		got, err := ParseIncident(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseIncident(%q) error = %v; want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseIncident(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if back, err := ParseIncident(got.String()); err != nil || back != got {
			t.Errorf("ParseIncident(%q.String()) = %+v, %v; want %+v", tt.in, back, err, got)
		}
	}
}

func FuzzParseIncident(f *testing.F) {
	for _, s := range []string{"spike", "spike:rule=3,at=2h,for=30m,factor=12", "malformed:factor=0.1", "ramp:", "broad:at=-1s", "new_rule:factor=1e400",
		"new_rule:rate=600,action=ban_account", "ramp:curve=exp,action=warn"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in, err := ParseIncident(s)
		if err != nil {
			return
		}
		if in.For <= 0 || in.At < 0 || !(in.Factor > 0) {
			t.Fatalf("ParseIncident(%q) = %+v: accepted an invalid incident", s, in)
		}
		if back, err := ParseIncident(in.String()); err != nil || back != in {
			t.Fatalf("round trip of %+v = %+v, %v", in, back, err)
		}
	})
}

func lines(sc Scenario) [][]byte {
	sim := NewSimulation(sc)
	var out [][]byte
	for l, ok := sim.Next(nil); ok; l, ok = sim.Next(nil) {
		out = append(out, l)
	}
	return out
}

func TestSimulation(t *testing.T) {
	start := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	sc := Scenario{
		Start: start, Duration: 30 * time.Minute, Rules: 10, Rate: 20, Diurnal: 0.5, Noise: 0.1, Seed: 5,
		Incidents: []Incident{
			{Kind: Spike, Rule: 4, At: 10 * time.Minute, For: 5 * time.Minute, Factor: 10},
			{Kind: NewRule, At: 20 * time.Minute, For: 5 * time.Minute, Factor: 2},
			{Kind: Malformed, At: 25 * time.Minute, For: time.Minute, Factor: 0.3},
		},
	}
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	a, b := lines(sc), lines(sc)
	if len(a) != len(b) {
		t.Fatalf("same seed: %d and %d lines", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("same seed: line %d differs", i+1)
		}
	}
	sc2 := sc
	sc2.Seed = 6
	if c := lines(sc2); len(c) == len(a) && bytes.Equal(c[0], a[0]) {
		t.Error("another seed gave the same traffic")
	}
	// Rates: 20/s on average over the night hours (the daily low), the
	// spike rule far above its normal share during its incident.
	perRule := map[string][2]int{}
	var last time.Time
	bad := 0
	for i, l := range a {
		act, err := event.Decode(l)
		if err != nil {
			bad++
			continue
		}
		if act.OccurredAt.Before(last) {
			t.Fatalf("line %d goes back in time: %s after %s", i+1, act.OccurredAt, last)
		}
		last = act.OccurredAt
		el := act.OccurredAt.Sub(start)
		c := perRule[act.RuleID]
		if el >= 10*time.Minute && el < 15*time.Minute {
			c[1]++
		} else if el < 10*time.Minute && el >= 5*time.Minute {
			c[0]++
		}
		perRule[act.RuleID] = c
	}
	if got := perRule[RuleID(4)]; got[1] < 6*got[0] {
		t.Errorf("spike rule: %d actions in the 5 minutes before, %d during; want about 10 times more", got[0], got[1])
	}
	if got := perRule[NewRuleID]; got[0] != 0 || got[1] != 0 {
		t.Errorf("new rule acted before its incident: %v", got)
	}
	if _, ok := perRule[NewRuleID]; !ok {
		t.Error("the new rule never acted")
	}
	if bad == 0 {
		t.Error("no malformed line in the malformed incident")
	}
	perSec := float64(len(a)-bad) / sc.Duration.Seconds()
	if perSec < 5 || perSec > 30 {
		t.Errorf("%.1f actions per second; want about 20 scaled by the night low", perSec)
	}
}

// TestLabels checks the labels of a simulation: the new rule's actions are
// all the incident's, with the incident's action type; a spike's share is
// what it adds; the rest is ordinary, and labels change no byte.
func TestLabels(t *testing.T) {
	sc := Scenario{
		Start: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), Duration: 3 * time.Hour, Rules: 5, Rate: 20, Seed: 3,
		Incidents: []Incident{
			{Kind: Spike, Rule: 2, At: time.Hour, For: time.Hour, Factor: 4},
			{Kind: NewRule, At: 90 * time.Minute, For: 30 * time.Minute, Rate: 3600, Action: "ban_account"},
		},
	}
	sim := NewSimulation(sc)
	var line []byte
	counts := map[string][2]int{} // rule -> [ordinary, incident] during the spike
	newRule := 0
	for {
		var ok bool
		line, ok = sim.Next(line[:0])
		if !ok {
			break
		}
		var a event.Action
		if err := event.DecodeInto(&a, line); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		l := sim.Label()
		if a.ActionID != sim.ActionID() {
			t.Fatalf("ActionID() = %q; the line has %q", sim.ActionID(), a.ActionID)
		}
		switch {
		case a.RuleID == NewRuleID:
			newRule++
			if l.Incident != 2 || a.Action != "ban_account" {
				t.Fatalf("new rule's action %s labelled %+v; want incident 2, a ban", a.Action, l)
			}
		case l.Incident != 0 && (l.Incident != 1 || a.RuleID != RuleID(2)):
			t.Fatalf("%s of %s labelled %+v", a.ActionID, a.RuleID, l)
		}
		el := a.OccurredAt.Sub(sc.Start)
		if el >= time.Hour && el < 2*time.Hour {
			c := counts[a.RuleID]
			if l.Incident == 1 {
				c[1]++
			} else {
				c[0]++
			}
			counts[a.RuleID] = c
		}
	}
	if newRule < 1500 || newRule > 2100 {
		t.Errorf("%d new-rule actions in 30 minutes at 3600 an hour; want about 1800", newRule)
	}
	c := counts[RuleID(2)]
	if share := float64(c[1]) / float64(c[0]+c[1]); share < 0.7 || share > 0.8 {
		t.Errorf("the spike's share of rule-02's actions is %.2f (%v); want about 3/4", share, c)
	}
	// The same scenario without labels would give the same bytes: labels
	// come from their own random stream (the replay goldens pin this too).
}

func TestScenarioValidate(t *testing.T) {
	err := Scenario{Rules: 0, Rate: -1, Diurnal: 2, Noise: -1, Incidents: []Incident{{Kind: Spike, Rule: 5}}}.Validate()
	for _, want := range []string{"duration:", "rules:", "rate:", "diurnal:", "noise:", "incidents[0]:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; want a message naming %q", err, want)
		}
	}
}

func TestLive(t *testing.T) {
	start := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	sc := Scenario{Start: start, Duration: time.Minute, Rules: 3, Rate: 50, Seed: 8}
	want := lines(sc)
	l := NewLive(sc)
	var got []Event
	for now := start; !now.After(start.Add(2 * time.Minute)); now = now.Add(250 * time.Millisecond) {
		evs := l.Until(now)
		for _, e := range evs {
			a, err := event.Decode(e.Value)
			if err != nil {
				t.Fatal(err)
			}
			if a.OccurredAt.After(now) {
				t.Fatalf("event at %s returned at %s", a.OccurredAt, now)
			}
			if !bytes.Equal(e.Key, []byte(a.TargetID)) {
				t.Fatalf("key %q; want the target id %q", e.Key, a.TargetID)
			}
		}
		got = append(got, evs...)
	}
	if len(got) != len(want) {
		t.Fatalf("Live played %d events; the simulation has %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].Value, want[i]) {
			t.Fatalf("event %d differs from the simulation", i)
		}
	}
}

package traffic

import (
	"bytes"
	"reflect"
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
		{in: "spike:rules=3+5+17,factor=2.5,for=8h", want: Incident{Kind: Spike, Rule: 2, Rules: []int{3, 5, 17}, At: time.Hour, For: 8 * time.Hour, Factor: 2.5}},
		{in: "broad:factor=1.8,rise=6h,for=9h", want: Incident{Kind: Broad, At: time.Hour, For: 9 * time.Hour, Factor: 1.8, Rise: 6 * time.Hour}},
		{in: "spike:rule=0,factor=6,region=eu", want: Incident{Kind: Spike, At: time.Hour, For: 30 * time.Minute, Factor: 6, Region: "eu"}},
		{in: "release:rules=1+4,version=2025.06.0-rc1", want: Incident{Kind: Release, Rule: 1, Rules: []int{1, 4}, At: time.Hour, For: time.Hour, Factor: 2, Version: "2025.06.0-rc1"}},
		{in: "release:version=", wantErr: "version: must be a non-empty model version"},
		{in: "spike:rules=3++4", wantErr: "rules: want rule indexes"},
		{in: "spike:rules=-3", wantErr: "rules: each must be between"},
		{in: "spike:region=mars", wantErr: "region: must be one of"},
		{in: "broad:rise=-1h", wantErr: "rise: must not be negative"},
	}
	for _, tt := range tests {
		got, err := ParseIncident(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseIncident(%q) error = %v; want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseIncident(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if back, err := ParseIncident(got.String()); err != nil || !reflect.DeepEqual(back, got) {
			t.Errorf("ParseIncident(%q.String()) = %+v, %v; want %+v", tt.in, back, err, got)
		}
	}
}

func FuzzParseIncident(f *testing.F) {
	for _, s := range []string{"spike", "spike:rule=3,at=2h,for=30m,factor=12", "malformed:factor=0.1", "ramp:", "broad:at=-1s", "new_rule:factor=1e400",
		"new_rule:rate=600,action=ban_account", "ramp:curve=exp,action=warn", "spike:rules=1+2,region=eu,rise=1h", "release:rules=0+3,version=v2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in, err := ParseIncident(s)
		if err != nil {
			return
		}
		if in.For <= 0 || in.At < 0 || !(in.Factor > 0) || in.Rise < 0 || (in.Kind == Release && in.Version == "") {
			t.Fatalf("ParseIncident(%q) = %+v: accepted an invalid incident", s, in)
		}
		if back, err := ParseIncident(in.String()); err != nil || !reflect.DeepEqual(back, in) {
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

// TestSegmentsAndReleases checks the incidents of several rules, of one
// region and of a new model version: who acts, with which labels, how much
// more, and that a rise climbs and then stays.
func TestSegmentsAndReleases(t *testing.T) {
	start := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	sc := Scenario{
		Start: start, Duration: 5 * time.Hour, Rules: 6, Rate: 12, Seed: 4,
		Incidents: []Incident{
			{Kind: Spike, Rule: 0, At: time.Hour, For: time.Hour, Factor: 6, Region: "eu"},
			{Kind: Release, Rules: []int{2, 4}, At: 2 * time.Hour, For: time.Hour, Factor: 2, Version: "2025.06.0"},
			{Kind: Broad, At: 3 * time.Hour, For: 2 * time.Hour, Factor: 3, Rise: time.Hour},
		},
	}
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	sim := NewSimulation(sc)
	type key struct {
		hour    int
		rule    string
		region  string
		version string
		inc     int
	}
	counts := map[key]int{}
	perHalfHour := map[int]int{}
	var line []byte
	for {
		var ok bool
		line, ok = sim.Next(line[:0])
		if !ok {
			break
		}
		a, err := event.Decode(line)
		if err != nil {
			t.Fatal(err)
		}
		l := sim.Label()
		el := a.OccurredAt.Sub(start)
		counts[key{int(el / time.Hour), a.RuleID, a.Region, a.ModelVersion, l.Incident}]++
		perHalfHour[int(el/(30*time.Minute))]++
		switch {
		case l.Incident == 1 && (a.RuleID != RuleID(0) || a.Region != "eu" || el < time.Hour || el >= 2*time.Hour):
			t.Fatalf("segment incident action %s of %s in %s at %s", a.ActionID, a.RuleID, a.Region, el)
		case l.Incident == 2 && (a.ModelVersion != "2025.06.0" || (a.RuleID != RuleID(2) && a.RuleID != RuleID(4))):
			t.Fatalf("release action %s of %s version %s", a.ActionID, a.RuleID, a.ModelVersion)
		case l.Incident != 2 && a.ModelVersion != ModelVersion:
			t.Fatalf("action %s labelled %d has version %s", a.ActionID, l.Incident, a.ModelVersion)
		}
	}
	sum := func(f func(k key) bool) int {
		n := 0
		for k, c := range counts {
			if f(k) {
				n += c
			}
		}
		return n
	}
	// The segment: rule-00 in eu six times its hour before, the other
	// regions unchanged.
	euBefore := sum(func(k key) bool { return k.hour == 0 && k.rule == RuleID(0) && k.region == "eu" })
	euDuring := sum(func(k key) bool { return k.hour == 1 && k.rule == RuleID(0) && k.region == "eu" })
	usDuring := sum(func(k key) bool { return k.hour == 1 && k.rule == RuleID(0) && k.region == "us" })
	if r := float64(euDuring) / float64(euBefore); r < 4.5 || r > 7.5 {
		t.Errorf("rule-00 in eu: %d actions the hour before, %d during (%.1fx); want about 6x", euBefore, euDuring, r)
	}
	if r := float64(usDuring) / float64(euBefore); r < 0.7 || r > 1.4 {
		t.Errorf("rule-00 in us during the segment incident: %d, eu before %d; want about equal", usDuring, euBefore)
	}
	// The release: every action of rules 2 and 4 is the new version's and
	// the incident's, twice as many; none of the old version's.
	for _, r := range []string{RuleID(2), RuleID(4)} {
		before := sum(func(k key) bool { return k.hour == 1 && k.rule == r })
		during := sum(func(k key) bool { return k.hour == 2 && k.rule == r && k.inc == 2 })
		old := sum(func(k key) bool { return k.hour == 2 && k.rule == r && k.version == ModelVersion })
		if old != 0 || float64(during) < 1.6*float64(before) || float64(during) > 2.5*float64(before) {
			t.Errorf("%s: %d actions the hour before, %d of the new version during, %d of the old; want twice as many, all new", r, before, during, old)
		}
	}
	// The rise: climbing over its first hour, flat at 3x in its second.
	base := perHalfHour[1] // 00:30-01:00: no incident, no daily cycle
	first, second, third, fourth := perHalfHour[6], perHalfHour[7], perHalfHour[8], perHalfHour[9]
	if !(first < second && second < third) || float64(third) < 2.2*float64(base) || float64(fourth) > 1.25*float64(third) || float64(fourth) < 0.8*float64(third) {
		t.Errorf("broad rise per half hour from 03:00: %d %d %d %d (before %d); want a climb to about 3x, then flat", first, second, third, fourth, base)
	}
}

func TestMisfire(t *testing.T) {
	base := Scenario{Start: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), Duration: 3 * time.Hour, Rules: 5, Rate: 5, Seed: 9}
	mis := base
	mis.Incidents = []Incident{{Kind: Misfire, Rule: 1, At: time.Hour, For: time.Hour, Factor: 0.6}}
	a, b := NewSimulation(base), NewSimulation(mis)
	var ba, bb []byte
	wrong, during, outside := 0, 0, 0
	for {
		var oka, okb bool
		ba, oka = a.Next(ba[:0])
		bb, okb = b.Next(bb[:0])
		if oka != okb {
			t.Fatalf("the misfire changed the number of events")
		}
		if !oka {
			break
		}
		// The same volume, the same bytes: only the labels differ.
		if string(ba) != string(bb) {
			t.Fatalf("the misfire changed an event:\n%s\n%s", ba, bb)
		}
		inc := b.Label().Incident == 1
		in := b.At().Sub(base.Start) >= time.Hour && b.At().Sub(base.Start) < 2*time.Hour && strings.Contains(string(bb), `"rule_id":"`+RuleID(1)+`"`)
		switch {
		case in:
			during++
			if inc {
				wrong++
			}
		case inc:
			outside++
		}
	}
	if share := float64(wrong) / float64(during); during < 500 || share < 0.55 || share > 0.65 || outside != 0 {
		t.Errorf("misfire: %d of %d actions of the rule during it labelled (%.2f), %d outside; want about 0.6 and none", wrong, during, share, outside)
	}
	if _, err := ParseIncident("misfire:rule=2,factor=1.5"); err == nil {
		t.Errorf("ParseIncident(misfire factor 1.5) passed; want an error")
	}
	if in, err := ParseIncident("misfire:rule=2,factor=0.5,for=2h"); err != nil || in.Kind != Misfire || in.Factor != 0.5 {
		t.Errorf("ParseIncident(misfire) = %+v, %v", in, err)
	}
}

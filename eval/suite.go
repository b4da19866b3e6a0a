package eval

import (
	"math"
	"time"

	"github.com/breakwater/breakwater/traffic"
)

// Goal names a target of the suite, one line of the summary it prints.
type Goal int

// The goals, in the order the summary lists them.
const (
	// NoLeakAfter: no incident action gated after the incident's first
	// held one, in every run.
	NoLeakAfter Goal = iota
	// SpikeWindow: spikes of 5x or more detected within one window.
	SpikeWindow
	// Rise2x: a 2x rise detected within RiseFast on rules of at least
	// BusyRule actions an hour, within RiseSlow on quieter ones.
	Rise2x
	// PlatformRamp: a platform-wide ramp to 1.8x over 6 hours detected
	// within 2h30m of its start.
	PlatformRamp
	// OtherDetect: the detection targets of the suite's other incidents
	// (a new rule, a ramp of bans).
	OtherDetect
	// LeakShare: at most MaxLeakShare of the actions of an incident of 3
	// hours or more leaked (median over the seeds).
	LeakShare
	// Collateral: incidents of one rule, segment or model version held
	// with at most MaxCollateral ordinary actions per incident action.
	Collateral
	// FalseTrips: at most MaxFalseTrips trips per two days outside
	// incidents.
	FalseTrips
	// WaveTrips: a legitimate 2x wave trips at most once.
	WaveTrips
	// Malformed: every malformed line goes to dead-letter.
	Malformed
	// AppealsOnly: an incident only appeals reveal (the same volume, the
	// wrong people) is tripped by overturn_rate within AppealsDetect, in
	// every run.
	AppealsOnly
	numGoals
)

// String describes the goal as the summary lists it.
func (g Goal) String() string {
	switch g {
	case NoLeakAfter:
		return "0 incident actions gated after detection, in every run"
	case SpikeWindow:
		return "spikes of 5x or more detected within one window (1m)"
	case Rise2x:
		return "a 2x rise detected within 30m (rules of 100/h or more), 90m (20 to 100/h)"
	case PlatformRamp:
		return "a platform-wide ramp to 1.8x over 6h detected within 2h30m of its start"
	case OtherDetect:
		return "other detection targets (new rule 1m, ramp of bans 15m)"
	case LeakShare:
		return "at most 10% of incident actions leaked (median), incidents of 3h or more"
	case Collateral:
		return "collateral at most 0.25x (one rule, segment, model version)"
	case FalseTrips:
		return "at most 1 trip per two days outside incidents (all seeds pooled)"
	case WaveTrips:
		return "a real 2x wave of 1 to 3 rules for 1 to 2 hours trips at most once"
	case Malformed:
		return "every malformed line to dead-letter"
	case AppealsOnly:
		return "an incident only appeals reveal tripped by overturn_rate within 8h"
	}
	return "unknown goal"
}

// The figures of the goals.
const (
	// BusyRule is the volume (actions an hour, daily mean) from which a
	// rule's 2x rise must be detected within RiseFast; quieter rules get
	// RiseSlow.
	BusyRule = 100
	// RiseFast and RiseSlow are the detection targets of a 2x rise.
	RiseFast = 30 * time.Minute
	RiseSlow = 90 * time.Minute
	// MaxLeakShare is the most of an incident's actions that may reach
	// enforcement (median over the seeds), for incidents of LongIncident
	// or more.
	MaxLeakShare = 0.10
	// LongIncident is the least duration of an incident the leak-share
	// goal applies to.
	LongIncident = 3 * time.Hour
	// MaxCollateral is the most ordinary actions held per incident action
	// while an incident of one rule, segment or model version runs.
	MaxCollateral = 0.25
	// MaxFalseTrips is the most trips outside incidents per two days
	// across all rules.
	MaxFalseTrips = 1.0
	// MaxWaveTrips is the most trips a legitimate wave may cause.
	MaxWaveTrips = 1
	// AppealsDetect is the longest time from the start of an incident
	// only appeals reveal to its first held action.
	AppealsDetect = 8 * time.Hour
)

// Scenario is one labelled class of the suite.
type Scenario struct {
	// Name identifies the scenario in the table.
	Name string
	// Incidents are injected into the simulated traffic.
	Incidents []traffic.Incident
	// Ranked makes the Rule and Rules of the incidents ranks by volume (0
	// the busiest rule) instead of rule indexes, so that "the busiest" and
	// "the quietest" mean what they say whatever the seed.
	Ranked bool
	// Untuned replays under the base configuration instead of the
	// suggested one (a rule nobody tuned for).
	Untuned bool
	// Legitimate marks the injected incidents as ordinary traffic (a real
	// wave of abuse the rules should act on): the scenario counts trips,
	// not detections.
	Legitimate bool
	// Broad marks an incident that raises every rule, to which the
	// collateral goal does not apply.
	Broad bool
	// PerRule judges the detection of every rule an incident concerns
	// (the first held action of that rule) instead of the incident's first
	// held action: a rise of many rules is detected when each is held.
	PerRule bool
	// Detect is the longest time to detect (from the incident's start)
	// of each incident, or each rule with PerRule; 0 means none. With
	// ByVolume it is ignored.
	Detect time.Duration
	// ByVolume sets the detection target of each rule by its volume:
	// RiseFast from BusyRule actions an hour, RiseSlow below.
	ByVolume bool
	// DetectGoal is the goal the detection target belongs to.
	DetectGoal Goal
	// AppealsOnly marks an incident that only appeals reveal: it must
	// trip overturn_rate. Appeals come hours after the actions, so the
	// goals on what leaked (after detection, the share) and on collateral
	// (a rule 40% precise holds its right actions with the wrong ones)
	// are not judged; the reversal columns show what an undo recovers.
	AppealsOnly bool
}

// day4 is when the incidents of the suite begin: 10:00 UTC on the fourth day.
const day4 = 3*24*time.Hour + 10*time.Hour

// Suite returns the scenarios of make eval for rules rules (at least 10).
// The incidents: three rules spiking 30x for 6 hours, one rule 8x for 3
// hours, every rule 3x for 3 hours, every rule ramping to 1.8x over 6 hours
// then flat for 3, the six quietest rules 2.5x for 8 hours, the busiest
// rule 6x in one region for 3 hours, a new model version doubling five
// rules of different sizes for 4 hours, one rule ramping 1.6x per hour in
// bans, a new rule banning 600 accounts an hour for 4 hours (tuned and
// untuned), 1% malformed lines, four normal days, a legitimate 2x wave
// of three rules for 2 hours, and a rule whose precision falls from 95% to
// 40% for 12 hours at the same volume, which only appeals reveal.
func Suite(rules int) []Scenario {
	spike := func(rank int, factor float64, d time.Duration) traffic.Incident {
		return traffic.Incident{Kind: traffic.Spike, Rule: rank, At: day4, For: d, Factor: factor}
	}
	quiet := make([]int, 0, 6)
	for r := rules - 6; r < rules; r++ {
		quiet = append(quiet, r)
	}
	spread := []int{1, rules / 5, 2 * rules / 5, 3 * rules / 5, 4 * rules / 5} // five rules of different sizes
	newRule := traffic.Incident{Kind: traffic.NewRule, At: day4, For: 4 * time.Hour, Rate: 600, Action: "ban_account"}
	return []Scenario{
		{
			Name: "3 rules 30x 6h", Ranked: true, Detect: time.Minute, DetectGoal: SpikeWindow,
			Incidents: []traffic.Incident{spike(1, 30, 6*time.Hour), spike(rules/3, 30, 6*time.Hour), spike(2*rules/3, 30, 6*time.Hour)},
		},
		{Name: "1 rule 8x 3h", Ranked: true, Incidents: []traffic.Incident{spike(rules/5, 8, 3*time.Hour)}, Detect: time.Minute, DetectGoal: SpikeWindow},
		{
			Name: "all rules 3x 3h", Broad: true, PerRule: true, ByVolume: true, DetectGoal: Rise2x,
			Incidents: []traffic.Incident{{Kind: traffic.Broad, At: day4, For: 3 * time.Hour, Factor: 3}},
		},
		{
			Name: "all rules ramp 1.8x", Broad: true, PerRule: true, Detect: 150 * time.Minute, DetectGoal: PlatformRamp,
			Incidents: []traffic.Incident{{Kind: traffic.Broad, At: day4, For: 9 * time.Hour, Rise: 6 * time.Hour, Factor: 1.8}},
		},
		{
			Name: "6 quietest 2.5x 8h", Ranked: true, PerRule: true, ByVolume: true, DetectGoal: Rise2x,
			Incidents: []traffic.Incident{{Kind: traffic.Spike, Rules: quiet, At: day4, For: 8 * time.Hour, Factor: 2.5}},
		},
		{
			Name: "busiest x6 in eu 3h", Ranked: true, Detect: time.Minute, DetectGoal: SpikeWindow,
			Incidents: []traffic.Incident{{Kind: traffic.Spike, Rule: 0, Region: "eu", At: day4, For: 3 * time.Hour, Factor: 6}},
		},
		{
			Name: "release 2x 5 rules 4h", Ranked: true, PerRule: true, ByVolume: true, DetectGoal: Rise2x,
			Incidents: []traffic.Incident{{Kind: traffic.Release, Rules: spread, At: day4, For: 4 * time.Hour, Factor: 2, Version: "2025.06.0"}},
		},
		{
			Name: "ramp 1.6x/h bans", Ranked: true, Detect: 15 * time.Minute, DetectGoal: OtherDetect,
			Incidents: []traffic.Incident{{Kind: traffic.Ramp, Rule: 3, At: day4, For: 5 * time.Hour, Factor: math.Pow(1.6, 5), Exponential: true, Action: "ban_account"}},
		},
		{Name: "new rule 600 bans/h", Incidents: []traffic.Incident{newRule}, Detect: time.Minute, DetectGoal: OtherDetect},
		{Name: "new rule, untuned", Incidents: []traffic.Incident{newRule}, Untuned: true, Detect: time.Minute, DetectGoal: OtherDetect},
		{Name: "1% malformed", Incidents: []traffic.Incident{{Kind: traffic.Malformed, At: 0, For: 4 * 24 * time.Hour, Factor: 0.01}}},
		{Name: "normal days", Legitimate: true},
		{
			Name: "2x wave 3 rules 2h", Ranked: true, Legitimate: true,
			Incidents: []traffic.Incident{{Kind: traffic.Spike, Rules: []int{2, rules / 2, rules - 3}, At: 2*24*time.Hour + 14*time.Hour, For: 2 * time.Hour, Factor: 2}},
		},
		{
			// 60% of its actions wrong on top of the ordinary 5%: 95% to 38% precise.
			Name: "misfire 40% 12h", Ranked: true, AppealsOnly: true, Detect: AppealsDetect, DetectGoal: AppealsOnly,
			Incidents: []traffic.Incident{{Kind: traffic.Misfire, Rule: 3, At: day4, For: 12 * time.Hour, Factor: 0.6}},
		},
	}
}

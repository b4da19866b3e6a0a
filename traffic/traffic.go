// Package traffic generates realistic classifier traffic: many rules acting
// at steady, noisy rates, and an incident in which one rule suddenly acts
// far more than it normally does. The embedded demo plays it; tests use it
// to build inputs.
package traffic

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

// Generator produces action events.
type Generator struct {
	// Rules is how many rules act.
	Rules int
	// Rate is the normal actions per second across all rules.
	Rate int
	// IncidentRule is the index of the rule that spikes.
	IncidentRule int
	// IncidentAfter is when, after the start, the incident begins; negative means never.
	IncidentAfter time.Duration
	// IncidentFactor multiplies the spiking rule's rate.
	IncidentFactor float64

	rng   *rand.Rand
	seq   uint64
	start time.Time
}

// New returns a generator seeded with seed.
func New(rules, rate int, incidentAfter time.Duration, factor float64, seed int64) *Generator {
	return &Generator{
		Rules: rules, Rate: rate, IncidentRule: min(2, rules-1), IncidentAfter: incidentAfter,
		IncidentFactor: factor, rng: rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
	}
}

// RuleID names rule i.
func RuleID(i int) string { return fmt.Sprintf("rule-%02d", i) }

// actionKind is an action type the generators produce, its share of the
// actions and the type of its target.
type actionKind struct {
	name   string
	share  float64
	target string
}

var actions = []actionKind{
	{"remove_pin", 0.45, "pin"},
	{"limit_distribution", 0.2, "pin"},
	{"warn", 0.15, "account"},
	{"deactivate_board", 0.08, "board"},
	{"suspend_account", 0.07, "account"},
	{"ban_account", 0.05, "account"},
}

// Event is one generated action event, ready to produce.
type Event struct {
	// Key is the Kafka key: the target id.
	Key []byte
	// Value is the JSON event.
	Value []byte
	// Rule is the event's rule_id.
	Rule string
	// ActionID is the event's action_id.
	ActionID string
}

// Incident reports whether the incident is under way at elapsed.
func (g *Generator) Incident(elapsed time.Duration) bool {
	return g.IncidentAfter >= 0 && elapsed >= g.IncidentAfter
}

// Tick returns the events of one interval of length d ending at now, the
// interval's elapsed time since the start deciding whether the incident runs.
func (g *Generator) Tick(now time.Time, d time.Duration) []Event {
	if g.start.IsZero() {
		g.start = now
	}
	elapsed := now.Sub(g.start)
	var out []Event
	per := float64(g.Rate) / float64(g.Rules) * d.Seconds()
	for r := range g.Rules {
		mean := per * (0.8 + 0.4*g.rng.Float64())
		if r == g.IncidentRule && g.Incident(elapsed) {
			mean *= g.IncidentFactor
		}
		n := int(mean)
		if g.rng.Float64() < mean-float64(n) {
			n++
		}
		for range n {
			at := now.Add(-time.Duration(g.rng.Int64N(int64(d))))
			out = append(out, g.event(r, at))
		}
	}
	return out
}

// Events returns n events spread evenly over span of event time starting at
// start, with the incident rule multiplied by IncidentFactor after
// IncidentAfter, for tests and benchmarks that need a fixed input.
func (g *Generator) Events(start time.Time, span time.Duration, n int) []Event {
	out := make([]Event, 0, n)
	weights := make([]float64, g.Rules)
	for i := range n {
		elapsed := time.Duration(int64(span) * int64(i) / int64(max(n, 1)))
		total := 0.0
		for r := range g.Rules {
			weights[r] = 1
			if r == g.IncidentRule && g.Incident(elapsed) {
				weights[r] = g.IncidentFactor
			}
			total += weights[r]
		}
		x := g.rng.Float64() * total
		r := 0
		for ; r < g.Rules-1 && x >= weights[r]; r++ {
			x -= weights[r]
		}
		out = append(out, g.event(r, start.Add(elapsed)))
	}
	return out
}

func (g *Generator) event(rule int, at time.Time) Event {
	g.seq++
	x := g.rng.Float64()
	a := actions[len(actions)-1]
	for _, c := range actions {
		if x < c.share {
			a = c
			break
		}
		x -= c.share
	}
	target := fmt.Sprintf("%s-%d", a.target, g.rng.IntN(50000))
	id := fmt.Sprintf("act-%d-%08d", g.rng.Uint32(), g.seq)
	v, _ := json.Marshal(map[string]any{
		"action_id":   id,
		"rule_id":     RuleID(rule),
		"action":      a.name,
		"target":      map[string]string{"type": a.target, "id": target},
		"occurred_at": at.UTC().Format(time.RFC3339Nano),
		"model":       map[string]string{"name": "safety-classifier", "version": "2025.04.1"},
		"confidence":  0.5 + g.rng.Float64()/2,
		"region":      []string{"us", "eu", "br", "in"}[g.rng.IntN(4)],
	})
	return Event{Key: []byte(target), Value: v, Rule: RuleID(rule), ActionID: id}
}

package config

import "time"

// Limits of the appeals section.
const (
	minAppealsJoinFor = time.Hour
	maxAppealsJoinFor = 365 * 24 * time.Hour
	maxAppealsJoinMax = 100_000_000
	maxAppealsWindow  = 1000
)

// Appeals configures the appeals signal: the outcomes of the appeals
// system, joined to the actions Breakwater forwarded, trip a rule whose
// precision is likely below a floor (trip reason overturn_rate).
type Appeals struct {
	// Enabled makes the daemon read the appeals topic and index the gated
	// topic for the join. Off by default: the topic is another team's.
	Enabled bool `yaml:"enabled"`
	// Topic carries the appeals system's outcomes, one JSON record per
	// message: {action_id, outcome: overturned|upheld, decided_at}.
	Topic string `yaml:"topic"`
	// PrecisionFloor is the least precision (share of appeal outcomes
	// upheld) of a rule or a model version of a rule before it trips.
	PrecisionFloor float64 `yaml:"precision_floor"`
	// Confidence is how sure the estimate must be: the trip needs
	// P(precision < precision_floor) at least this under a Beta posterior.
	Confidence float64 `yaml:"confidence"`
	// MinOutcomes is the fewest outcomes a rule or model version is judged on.
	MinOutcomes int `yaml:"min_outcomes"`
	// Window is how many of the latest outcomes of a rule or model version
	// are judged.
	Window int `yaml:"window"`
	// JoinFor is how long after it was forwarded an action's outcome can
	// still be joined; older ones go to dead-letter as unknown.
	JoinFor time.Duration `yaml:"join_for"`
	// JoinMax is the most forwarded actions kept joinable in Redis; above
	// it the oldest day of them falls out.
	JoinMax int `yaml:"join_max"`
}

// defaultAppeals returns the built-in appeals section.
func defaultAppeals() Appeals {
	return Appeals{
		Topic: "moderation.appeals", PrecisionFloor: 0.8, Confidence: 0.95, MinOutcomes: 20, Window: 50,
		JoinFor: 30 * 24 * time.Hour, JoinMax: 5_000_000,
	}
}

// validateAppeals checks the appeals section.
func (c Config) validateAppeals(p *problems) {
	a := c.Appeals
	if msg := topicProblem(a.Topic); msg != "" {
		p.addf("appeals.topic", "%s", msg)
	} else {
		for _, u := range c.TopicUses() {
			if u.Key != "appeals.topic" && u.Name == a.Topic {
				p.addf("appeals.topic", "must differ from %s, both are %q", u.Key, a.Topic)
			}
		}
	}
	if !(a.PrecisionFloor > 0 && a.PrecisionFloor < 1) {
		p.addf("appeals.precision_floor", "must be above 0 and below 1, got %v", a.PrecisionFloor)
	}
	if !(a.Confidence >= 0.5 && a.Confidence < 1) {
		p.addf("appeals.confidence", "must be at least 0.5 and below 1, got %v", a.Confidence)
	}
	if a.MinOutcomes < 1 {
		p.addf("appeals.min_outcomes", "must be at least 1, got %d", a.MinOutcomes)
	}
	if a.Window < a.MinOutcomes || a.Window > maxAppealsWindow {
		p.addf("appeals.window", "must be between appeals.min_outcomes (%d) and %d, got %d", a.MinOutcomes, maxAppealsWindow, a.Window)
	}
	if a.JoinFor < minAppealsJoinFor || a.JoinFor > maxAppealsJoinFor {
		p.addf("appeals.join_for", "must be between %s and %s, got %s", minAppealsJoinFor, maxAppealsJoinFor, a.JoinFor)
	}
	if a.JoinMax < 1000 || a.JoinMax > maxAppealsJoinMax {
		p.addf("appeals.join_max", "must be between 1000 and %d, got %d", maxAppealsJoinMax, a.JoinMax)
	}
}

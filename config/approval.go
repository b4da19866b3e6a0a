package config

import "time"

// Limits of the approval section.
const (
	minApprovalExpiry    = time.Minute
	maxApprovalExpiry    = 7 * 24 * time.Hour
	minApprovalRetention = time.Hour
	maxApprovalRetention = 365 * 24 * time.Hour
)

// Approval configures two-person approval: what can do harm (forcing a
// breaker that holds closed or into shadow, releasing many held actions)
// is applied only once a second person with the needed role approved the
// exact request.
type Approval struct {
	// ExpireAfter is how long a request waits for its approval; after it,
	// it can no longer be approved.
	ExpireAfter time.Duration `yaml:"expire_after"`
	// ReleaseAbove is the count of held actions above which approving
	// (releasing) them at once needs a second reviewer.
	ReleaseAbove int `yaml:"release_above"`
	// ReversalAbove is the count of actions above which a reversal needs a
	// second operator; 0 means every reversal.
	ReversalAbove int `yaml:"reversal_above"`
	// Retention is how long a decided or expired request stays listed.
	Retention time.Duration `yaml:"retention"`
}

// defaultApproval returns the built-in approval section.
func defaultApproval() Approval {
	return Approval{ExpireAfter: time.Hour, ReleaseAbove: 1000, ReversalAbove: 0, Retention: 7 * 24 * time.Hour}
}

// validateApproval checks the approval section.
func (c Config) validateApproval(p *problems) {
	a := c.Approval
	if a.ExpireAfter < minApprovalExpiry || a.ExpireAfter > maxApprovalExpiry {
		p.addf("approval.expire_after", "must be between %s and %s, got %s", minApprovalExpiry, maxApprovalExpiry, a.ExpireAfter)
	}
	if a.ReleaseAbove < 0 {
		p.addf("approval.release_above", "must be 0 or more, got %d", a.ReleaseAbove)
	}
	if a.ReversalAbove < 0 {
		p.addf("approval.reversal_above", "must be 0 or more, got %d", a.ReversalAbove)
	}
	if a.Retention < minApprovalRetention || a.Retention > maxApprovalRetention {
		p.addf("approval.retention", "must be between %s and %s, got %s", minApprovalRetention, maxApprovalRetention, a.Retention)
	}
}

// Reversals configures the compensating records of reversed actions.
type Reversals struct {
	// Topic receives one record per reversed action, keyed by target like
	// the gated topic.
	Topic string `yaml:"topic"`
	// Rate is the most reversal records written per second.
	Rate float64 `yaml:"rate"`
	// SuppressFor is how long after a reversal record an action of the
	// same rule and model version on the same target is held rather than
	// gated; 0 turns suppression off.
	SuppressFor time.Duration `yaml:"suppress_for"`
}

// maxSuppressFor is the longest reversals.suppress_for.
const maxSuppressFor = 365 * 24 * time.Hour

// defaultReversals returns the built-in reversals section.
func defaultReversals() Reversals {
	return Reversals{Topic: "moderation.actions.reversals", Rate: 200, SuppressFor: 7 * 24 * time.Hour}
}

// validateReversals checks the reversals section.
func (c Config) validateReversals(p *problems) {
	r := c.Reversals
	if msg := topicProblem(r.Topic); msg != "" {
		p.addf("reversals.topic", "%s", msg)
	} else {
		t := c.Kafka.Topics
		for field, name := range map[string]string{
			"kafka.topics.input": t.Input, "kafka.topics.gated": t.Gated, "kafka.topics.held": t.Held,
			"kafka.topics.dead_letter": t.DeadLetter, "kafka.topics.state": t.State,
			"admin.audit_topic": c.Admin.AuditTopic, "admin.rejected_topic": c.Admin.RejectedTopic,
		} {
			if name == r.Topic {
				p.addf("reversals.topic", "must differ from %s, both are %q", field, name)
			}
		}
	}
	if r.Rate < 1 || r.Rate > 100000 {
		p.addf("reversals.rate", "must be between 1 and 100000 records per second, got %v", r.Rate)
	}
	if r.SuppressFor < 0 || r.SuppressFor > maxSuppressFor {
		p.addf("reversals.suppress_for", "must be between 0 (off) and %s, got %s", maxSuppressFor, r.SuppressFor)
	}
}

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
	// Retention is how long a decided or expired request stays listed.
	Retention time.Duration `yaml:"retention"`
}

// defaultApproval returns the built-in approval section.
func defaultApproval() Approval {
	return Approval{ExpireAfter: time.Hour, ReleaseAbove: 1000, Retention: 7 * 24 * time.Hour}
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
	if a.Retention < minApprovalRetention || a.Retention > maxApprovalRetention {
		p.addf("approval.retention", "must be between %s and %s, got %s", minApprovalRetention, maxApprovalRetention, a.Retention)
	}
}

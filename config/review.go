package config

import (
	"net/url"
	"strings"
	"time"
)

// Review configures what reviewers see of held actions and how incidents
// are tied together.
type Review struct {
	// TargetURL is a template of a link to an action's target in the
	// moderation tool, shown on the sample card: {type} and {id} are
	// replaced by the target's type and id, escaped for a URL path.
	// Empty means no link.
	TargetURL string `yaml:"target_url"`
	// ContinueWithin makes a trip of a breaker continue its previous
	// incident when it begins holding within this long of the last action
	// that incident held (a re-trip soon after a reset): the incidents are
	// linked both ways and the reset's answer says so. 0 never links.
	ContinueWithin time.Duration `yaml:"continue_within"`
}

// defaultReview returns the built-in review section.
func defaultReview() Review {
	return Review{ContinueWithin: 15 * time.Minute}
}

// TargetLink returns the link to a target built from TargetURL, or "".
func (r Review) TargetLink(targetType, targetID string) string {
	if r.TargetURL == "" {
		return ""
	}
	return strings.NewReplacer("{type}", url.PathEscape(targetType), "{id}", url.PathEscape(targetID)).Replace(r.TargetURL)
}

// validateReview checks the review section.
func (c Config) validateReview(p *problems) {
	r := c.Review
	if r.TargetURL != "" {
		u, err := url.Parse(strings.NewReplacer("{type}", "t", "{id}", "i").Replace(r.TargetURL))
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || hasControl(r.TargetURL):
			p.addf("review.target_url", "must be an http or https URL template such as https://admin.example/{type}/{id}, got %q", r.TargetURL)
		case !strings.Contains(r.TargetURL, "{id}"):
			p.addf("review.target_url", "must contain {id}, got %q", r.TargetURL)
		}
	}
	if r.ContinueWithin < 0 || r.ContinueWithin > 24*time.Hour {
		p.addf("review.continue_within", "must be between 0 and 24h, got %s", r.ContinueWithin)
	}
}

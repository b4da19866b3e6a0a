package config

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Alerts configures the notifications sent to on-call people.
type Alerts struct {
	// AdminURL is the base URL of the admin API; notifications link to
	// AdminURL/v1/incidents/<incident>. Empty means no links.
	AdminURL string `yaml:"admin_url"`
	// GroupWindow gathers the events of one kind and severity raised within
	// it into one notification (a storm of trips pages once, with the
	// list); 0 sends each event on its own.
	GroupWindow time.Duration `yaml:"group_window"`
	// ClaimIdle is how long a notification may stay pending in a replica
	// that stopped making progress before another replica takes it over.
	ClaimIdle time.Duration `yaml:"claim_idle"`
	// Retention is how long raised event ids (for deduplication), groups
	// and delivery records are kept in Redis.
	Retention time.Duration `yaml:"retention"`
	// Retry is the retry schedule for timeouts, 429 and 5xx answers.
	Retry AlertRetry `yaml:"retry"`
	// HeldReviewDeadline raises held_overdue when a held action waits longer.
	HeldReviewDeadline time.Duration `yaml:"held_review_deadline"`
	// OverrideExpiryNotice raises override_expiring this long before a
	// manual state expires.
	OverrideExpiryNotice time.Duration `yaml:"override_expiry_notice"`
	// ConsumerLag raises consumer_lag when the input lag passes it (messages).
	ConsumerLag int64 `yaml:"consumer_lag"`
	// Receivers are where notifications go; empty disables delivery.
	Receivers []Receiver `yaml:"receivers"`
}

// AlertRetry is the retry schedule of notifications.
type AlertRetry struct {
	// Initial is the first delay; it doubles up to Max.
	Initial time.Duration `yaml:"initial"`
	// Max caps the delay (a longer Retry-After of the receiver is honoured).
	Max time.Duration `yaml:"max"`
	// GiveUpAfter is how long a notification is retried before it is
	// recorded as failed.
	GiveUpAfter time.Duration `yaml:"give_up_after"`
}

// ReceiverType is the protocol of a receiver.
type ReceiverType string

// The receiver types.
const (
	// ReceiverWebhook posts signed JSON to any endpoint.
	ReceiverWebhook ReceiverType = "webhook"
	// ReceiverSlack posts to a Slack incoming webhook.
	ReceiverSlack ReceiverType = "slack"
	// ReceiverPagerDuty sends to the PagerDuty Events API v2.
	ReceiverPagerDuty ReceiverType = "pagerduty"
	// ReceiverAlertmanager posts Alertmanager webhook payloads (version 4).
	ReceiverAlertmanager ReceiverType = "alertmanager"
)

// PagerDutyEventsURL is the default URL of a pagerduty receiver.
const PagerDutyEventsURL = "https://events.pagerduty.com/v2/enqueue"

// AlertSeverities are the severities a receiver may subscribe to.
var AlertSeverities = []string{"critical", "warning", "info"}

// Receiver is one destination of notifications.
type Receiver struct {
	// Name names the receiver in logs and metrics (lower case letters,
	// digits, '-' and '_'); BREAKWATER_ALERT_<NAME>_URL and
	// BREAKWATER_ALERT_<NAME>_SECRET override its url and secret, with NAME
	// upper-cased and '-' turned into '_'.
	Name string `yaml:"name"`
	// Type is webhook, slack, pagerduty or alertmanager.
	Type ReceiverType `yaml:"type"`
	// URL is where to post; it is treated as a secret (a Slack webhook URL
	// is the credential) and never logged. Default for pagerduty: the
	// Events API v2.
	URL string `yaml:"url"`
	// URLEnv names an environment variable holding the URL.
	URLEnv string `yaml:"url_env"`
	// Secret is the HMAC key of a webhook or the routing key of PagerDuty;
	// prefer SecretEnv or BREAKWATER_ALERT_<NAME>_SECRET. Never logged.
	Secret string `yaml:"secret"`
	// SecretEnv names an environment variable holding the secret.
	SecretEnv string `yaml:"secret_env"`
	// Severities are the severities the receiver gets; default all.
	Severities []string `yaml:"severities"`
	// Timeout bounds one request.
	Timeout time.Duration `yaml:"timeout"`
}

// defaultAlerts returns the alerts section of Default().
func defaultAlerts() Alerts {
	return Alerts{
		GroupWindow:          30 * time.Second,
		ClaimIdle:            time.Minute,
		Retention:            7 * 24 * time.Hour,
		Retry:                AlertRetry{Initial: time.Second, Max: 5 * time.Minute, GiveUpAfter: 24 * time.Hour},
		HeldReviewDeadline:   4 * time.Hour,
		OverrideExpiryNotice: 15 * time.Minute,
		ConsumerLag:          100000,
	}
}

// EnvName returns the NAME part of the receiver's environment variables.
func (r Receiver) EnvName() string {
	return strings.ToUpper(strings.ReplaceAll(r.Name, "-", "_"))
}

// URLVar returns the environment variable that overrides the URL.
func (r Receiver) URLVar() string { return "BREAKWATER_ALERT_" + r.EnvName() + "_URL" }

// SecretVar returns the environment variable that overrides the secret.
func (r Receiver) SecretVar() string { return "BREAKWATER_ALERT_" + r.EnvName() + "_SECRET" }

// resolveAlerts fills the defaults of every receiver.
func (a *Alerts) resolve() {
	if len(a.Receivers) == 0 {
		a.Receivers = nil
	}
	for i := range a.Receivers {
		r := &a.Receivers[i]
		if r.Timeout == 0 {
			r.Timeout = 10 * time.Second
		}
		if len(r.Severities) == 0 {
			r.Severities = slices.Clone(AlertSeverities)
		}
		if r.Type == ReceiverPagerDuty && r.URL == "" && r.URLEnv == "" {
			r.URL = PagerDutyEventsURL
		}
	}
}

// applyEnv sets the URL and secret of every receiver from the environment:
// BREAKWATER_ALERT_<NAME>_URL / _SECRET first, then url_env / secret_env.
// Values are used exactly as given; an empty one is ignored.
func (a *Alerts) applyEnv(lookup func(string) (string, bool)) {
	get := func(names ...string) (string, bool) {
		for _, n := range names {
			if n == "" {
				continue
			}
			if v, ok := lookup(n); ok && v != "" {
				return v, true
			}
		}
		return "", false
	}
	for i := range a.Receivers {
		r := &a.Receivers[i]
		if v, ok := get(r.URLVar(), r.URLEnv); ok {
			r.URL = v
		}
		if v, ok := get(r.SecretVar(), r.SecretEnv); ok {
			r.Secret = v
		}
	}
}

var (
	receiverName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	envVarName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// validateAlerts checks the alerts section. No message shows a URL or a secret.
func (c Config) validateAlerts(p *problems) {
	a := c.Alerts
	if a.AdminURL != "" && !httpURL(a.AdminURL) {
		p.addf("alerts.admin_url", "must be an http or https URL with a host")
	}
	if a.GroupWindow < 0 || a.GroupWindow > 10*time.Minute {
		p.addf("alerts.group_window", "must be between 0s and 10m, got %s", dur(a.GroupWindow))
	}
	if a.ClaimIdle < time.Second {
		p.addf("alerts.claim_idle", "must be at least 1s, got %s", dur(a.ClaimIdle))
	}
	if a.Retention < time.Hour {
		p.addf("alerts.retention", "must be at least 1h, got %s", dur(a.Retention))
	}
	if a.Retry.Initial <= 0 {
		p.addf("alerts.retry.initial", "must be > 0, got %s", dur(a.Retry.Initial))
	}
	if a.Retry.Max < a.Retry.Initial {
		p.addf("alerts.retry.max", "must be at least alerts.retry.initial (%s), got %s", dur(a.Retry.Initial), dur(a.Retry.Max))
	}
	if a.Retry.GiveUpAfter < a.Retry.Max || a.Retry.GiveUpAfter > a.Retention {
		p.addf("alerts.retry.give_up_after", "must be between alerts.retry.max (%s) and alerts.retention (%s), got %s", dur(a.Retry.Max), dur(a.Retention), dur(a.Retry.GiveUpAfter))
	}
	if a.HeldReviewDeadline <= 0 {
		p.addf("alerts.held_review_deadline", "must be > 0, got %s", dur(a.HeldReviewDeadline))
	}
	if a.OverrideExpiryNotice < 0 {
		p.addf("alerts.override_expiry_notice", "must be >= 0, got %s", dur(a.OverrideExpiryNotice))
	}
	if a.ConsumerLag < 1 {
		p.addf("alerts.consumer_lag", "must be at least 1, got %d", a.ConsumerLag)
	}
	names := map[string]int{}
	for i, r := range a.Receivers {
		field := fmt.Sprintf("alerts.receivers[%d]", i)
		if !receiverName.MatchString(r.Name) {
			p.addf(field+".name", "must be 1 to 63 of a-z, 0-9, '-' and '_', starting with a letter or digit, got %q", r.Name)
		} else {
			if j, dup := names[r.EnvName()]; dup {
				p.addf(field+".name", "%q collides with alerts.receivers[%d].name (their environment variables %s would be the same)", r.Name, j, r.SecretVar())
			}
			names[r.EnvName()] = i
		}
		switch r.Type {
		case ReceiverWebhook, ReceiverSlack, ReceiverPagerDuty, ReceiverAlertmanager:
		default:
			p.addf(field+".type", "must be webhook, slack, pagerduty or alertmanager, got %q", r.Type)
		}
		for _, e := range []struct{ key, v string }{{"url_env", r.URLEnv}, {"secret_env", r.SecretEnv}} {
			if e.v != "" && !envVarName.MatchString(e.v) {
				p.addf(field+"."+e.key, "must be an environment variable name, got %q", e.v)
			}
		}
		switch {
		case r.URL == "":
			p.addf(field+".url", "must be set (or set %s or url_env)", r.URLVar())
		case !httpURL(r.URL):
			p.addf(field+".url", "must be an http or https URL with a host (value not shown)")
		}
		if hasControl(r.Secret) {
			p.addf(field+".secret", "must not contain control characters, such as a trailing newline (value not shown)")
		}
		switch r.Type {
		case ReceiverWebhook:
			if r.Secret == "" {
				p.addf(field+".secret", "a webhook signs its body with a shared secret: set %s, secret_env or secret", r.SecretVar())
			}
		case ReceiverPagerDuty:
			if r.Secret == "" {
				p.addf(field+".secret", "the PagerDuty routing key: set %s, secret_env or secret", r.SecretVar())
			}
		case ReceiverSlack, ReceiverAlertmanager:
			if r.Secret != "" {
				p.addf(field+".secret", "a %s receiver has no secret (a Slack webhook URL is its own secret); remove it", r.Type)
			}
		}
		seen := map[string]bool{}
		for j, s := range r.Severities {
			if !slices.Contains(AlertSeverities, s) {
				p.addf(fmt.Sprintf("%s.severities[%d]", field, j), "must be critical, warning or info, got %q", s)
			} else if seen[s] {
				p.addf(fmt.Sprintf("%s.severities[%d]", field, j), "%q is listed twice", s)
			}
			seen[s] = true
		}
		if r.Timeout <= 0 || r.Timeout > 5*time.Minute {
			p.addf(field+".timeout", "must be between 1ns and 5m, got %s", dur(r.Timeout))
		}
	}
}

// httpURL reports whether s is an absolute http or https URL with a host.
func httpURL(s string) bool {
	if hasControl(s) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Opaque == ""
}

// redactedReceiver is Receiver without its methods, for String and MarshalJSON.
type redactedReceiver Receiver

// safe returns r with a non-empty URL and secret replaced by "REDACTED".
func (r Receiver) safe() redactedReceiver {
	if r.URL != "" {
		r.URL = redacted
	}
	if r.Secret != "" {
		r.Secret = redacted
	}
	return redactedReceiver(r)
}

// String formats r with its URL and secret redacted.
func (r Receiver) String() string { return fmt.Sprintf("%+v", r.safe()) }

// GoString formats r for %#v with its URL and secret redacted.
func (r Receiver) GoString() string { return fmt.Sprintf("config.Receiver%+v", r.safe()) }

// MarshalJSON encodes r with its URL and secret redacted. The YAML encoding
// is not redacted.
func (r Receiver) MarshalJSON() ([]byte, error) { return json.Marshal(r.safe()) }

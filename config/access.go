package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// redacted replaces a non-empty secret in Redacted, String and MarshalJSON.
const redacted = "REDACTED"

// EmbeddedKafka reports whether no brokers are configured, in which case
// Breakwater runs an in-process Kafka broker.
func (c Config) EmbeddedKafka() bool { return len(c.Kafka.Brokers) == 0 }

// EmbeddedRedis reports whether no Redis address (nor Cluster seed nor
// Sentinel) is configured, in which
// case Breakwater runs an in-process Redis.
func (c Config) EmbeddedRedis() bool { return c.Redis.Topology() == RedisEmbedded }

// RuleThresholds returns the thresholds of rule: its own, with the unset
// fields taken from breakers.defaults, if the rule has an entry in
// breakers.rules, and breakers.defaults otherwise.
func (c Config) RuleThresholds(rule string) Thresholds {
	r, ok := c.Breakers.Rules[rule]
	if !ok {
		return c.Breakers.Defaults
	}
	return r.Thresholds.inherit(c.Breakers.Defaults)
}

// ActionThresholds returns the thresholds of action type action within rule,
// with the unset fields taken from the rule's thresholds, and true, if the
// rule configures a breaker for that action type; otherwise it returns the
// zero Thresholds and false.
func (c Config) ActionThresholds(rule, action string) (Thresholds, bool) {
	t, ok := c.Breakers.Rules[rule].Actions[action]
	if !ok {
		return Thresholds{}, false
	}
	return t.inherit(c.RuleThresholds(rule)), true
}

// ActionType returns the entry of action in the action type table, or
// DefaultAction if it has none.
func (c Config) ActionType(action string) ActionType {
	if a, ok := c.Actions[action]; ok {
		return a
	}
	return c.DefaultAction
}

// OutagePolicy returns what happens to actions of severity s while the rate
// store is unreachable: the store_unavailable entry of s, or OutagePause if
// there is none.
func (c Config) OutagePolicy(s Severity) Outage {
	if o, ok := c.StoreUnavailable[s]; ok && o != "" {
		return o
	}
	return OutagePause
}

// Redacted returns a deep copy of c, safe to log, whose Redis and Sentinel
// passwords, Kafka SASL password, OIDC client secret and receiver URLs and
// secrets are replaced by "REDACTED" where they are set.
func (c Config) Redacted() Config {
	d := c.clone()
	if d.Redis.Password != "" {
		d.Redis.Password = redacted
	}
	if d.Redis.SentinelPassword != "" {
		d.Redis.SentinelPassword = redacted
	}
	if d.Kafka.SASL.Password != "" {
		d.Kafka.SASL.Password = redacted
	}
	if d.SignIn.OIDC.ClientSecret != "" {
		d.SignIn.OIDC.ClientSecret = redacted
	}
	for i, r := range d.Alerts.Receivers {
		d.Alerts.Receivers[i] = Receiver(r.safe())
	}
	return d
}

// clone returns a deep copy of c: no slice or map is shared.
func (c Config) clone() Config {
	d := c
	if c.Kafka.Brokers != nil {
		d.Kafka.Brokers = append([]string(nil), c.Kafka.Brokers...)
	}
	d.Redis.Addrs = slices.Clone(c.Redis.Addrs)
	d.Redis.SentinelAddrs = slices.Clone(c.Redis.SentinelAddrs)
	if c.Admin.Tokens != nil {
		d.Admin.Tokens = append([]Token(nil), c.Admin.Tokens...)
	}
	d.Actions = maps.Clone(c.Actions)
	if c.Alerts.Receivers != nil {
		d.Alerts.Receivers = make([]Receiver, len(c.Alerts.Receivers))
		for i, r := range c.Alerts.Receivers {
			r.Severities = slices.Clone(r.Severities)
			d.Alerts.Receivers[i] = r
		}
	}
	d.StoreUnavailable = maps.Clone(c.StoreUnavailable)
	d.SignIn.Groups = maps.Clone(c.SignIn.Groups)
	d.SignIn.OIDC.Scopes = slices.Clone(c.SignIn.OIDC.Scopes)
	d.SignIn.TrustedProxy.CIDRs = slices.Clone(c.SignIn.TrustedProxy.CIDRs)
	if c.Breakers.Rules != nil {
		d.Breakers.Rules = make(map[string]Rule, len(c.Breakers.Rules))
		for id, r := range c.Breakers.Rules {
			r.Actions = maps.Clone(r.Actions)
			d.Breakers.Rules[id] = r
		}
	}
	return d
}

// redactedRedis is Redis without its methods, for String and MarshalJSON.
type redactedRedis Redis

// safe returns r with a non-empty password replaced by "REDACTED".
func (r Redis) safe() redactedRedis {
	if r.Password != "" {
		r.Password = redacted
	}
	if r.SentinelPassword != "" {
		r.SentinelPassword = redacted
	}
	return redactedRedis(r)
}

// String formats r with the password redacted, so that printing a Config
// with the fmt package never shows it.
func (r Redis) String() string { return fmt.Sprintf("%+v", r.safe()) }

// GoString formats r for %#v with the password redacted.
func (r Redis) GoString() string { return fmt.Sprintf("config.Redis%+v", r.safe()) }

// MarshalJSON encodes r with the password redacted, so that logging a
// Config as JSON (zap.Any, for example) never shows it. The YAML encoding
// is not redacted.
func (r Redis) MarshalJSON() ([]byte, error) { return json.Marshal(r.safe()) }

package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Limits checked by Validate.
const (
	maxBatchSize      = 10000
	maxBatchWait      = 10 * time.Second
	minSessionTimeout = time.Second
	maxTopicLen       = 249
	minDecisionTTL    = time.Minute
	minWindow         = 10 * time.Millisecond
	maxWindow         = 24 * time.Hour
	maxBaselineRatio  = 1000
	maxWeight         = 1000
	maxDemoRate       = 100000
	maxDemoRules      = 1000
	// maxScopes bounds the breakers configured under breakers.rules (rules
	// and their per-action entries together). It keeps an alias that
	// repeats a large actions block under many rules from growing the
	// configuration, and the per-batch work, without bound.
	maxScopes = 2000
)

// fieldError is one validation problem of one field.
type fieldError struct {
	field string
	msg   string
}

// Error returns "field: message".
func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// problems collects the fieldErrors of a validation.
type problems []error

// addf records a problem of field.
func (p *problems) addf(field, format string, args ...any) {
	*p = append(*p, &fieldError{field: field, msg: fmt.Sprintf(format, args...)})
}

// Validate checks every field and returns all the problems found, joined
// with errors.Join, each naming its field path, or nil. It checks the
// configuration as it is: use it on the result of Parse or Load, or after
// ApplyEnv, not on a hand-built Config whose inherited fields are unset.
// No message includes the Redis address, username or password, nor a
// receiver's URL or secret.
func (c Config) Validate() error {
	var p problems
	c.validateKafka(&p)
	c.validateRedis(&p)
	c.validateHTTP(&p)
	c.validateBreakers(&p)
	c.validateActions(&p)
	c.validateOutage(&p)
	c.validateAlerts(&p)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.addf("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		p.addf("log.format", "must be json or console, got %q", c.Log.Format)
	}
	c.validateDemo(&p)
	c.validateAdmin(&p)
	c.validateApproval(&p)
	c.validateReview(&p)
	c.validateSignIn(&p)
	c.validateReversals(&p)
	c.validateAppeals(&p)
	return errors.Join(p...)
}

// validateKafka checks the kafka section.
func (c Config) validateKafka(p *problems) {
	k := c.Kafka
	for i, b := range k.Brokers {
		field := fmt.Sprintf("kafka.brokers[%d]", i)
		if b == "" {
			p.addf(field, "must not be empty")
		} else if !validHostPort(b, true) || hasControl(b) {
			p.addf(field, "must be host:port with a port between 1 and 65535, got %q", b)
		}
	}
	if k.GroupID == "" {
		p.addf("kafka.group_id", "must not be empty")
	} else if hasControl(k.GroupID) {
		p.addf("kafka.group_id", "must not contain control characters, got %q", k.GroupID)
	}
	topics := []struct {
		field, name string
	}{
		{"kafka.topics.input", k.Topics.Input},
		{"kafka.topics.gated", k.Topics.Gated},
		{"kafka.topics.held", k.Topics.Held},
		{"kafka.topics.dead_letter", k.Topics.DeadLetter},
		{"kafka.topics.state", k.Topics.State},
	}
	for i, t := range topics {
		if msg := topicProblem(t.name); msg != "" {
			p.addf(t.field, "%s", msg)
			continue
		}
		for _, u := range topics[:i] {
			if u.name == t.name {
				p.addf(t.field, "must differ from %s, both are %q", u.field, t.name)
				break
			}
		}
	}
	if k.BatchSize < 1 || k.BatchSize > maxBatchSize {
		p.addf("kafka.batch_size", "must be between 1 and %d, got %d", maxBatchSize, k.BatchSize)
	}
	if k.BatchWait < 0 || k.BatchWait > maxBatchWait {
		p.addf("kafka.batch_wait", "must be between 0s and %s, got %s", dur(maxBatchWait), dur(k.BatchWait))
	}
	if k.WriteTimeout <= 0 {
		p.addf("kafka.write_timeout", "must be > 0, got %s", dur(k.WriteTimeout))
	}
	if k.SessionTimeout < minSessionTimeout {
		p.addf("kafka.session_timeout", "must be at least %s, got %s", dur(minSessionTimeout), dur(k.SessionTimeout))
	}
	if k.DrainTimeout <= 0 {
		p.addf("kafka.drain_timeout", "must be > 0, got %s", dur(k.DrainTimeout))
	}
	if k.StallTimeout < 2*k.WriteTimeout {
		p.addf("kafka.stall_timeout", "must be at least twice kafka.write_timeout (%s), got %s", dur(k.WriteTimeout), dur(k.StallTimeout))
	}
	if k.CreateTopics {
		if k.Partitions < 1 {
			p.addf("kafka.partitions", "must be at least 1 when create_topics is true, got %d", k.Partitions)
		}
		if k.ReplicationFactor < 1 {
			p.addf("kafka.replication_factor", "must be at least 1 when create_topics is true, got %d", k.ReplicationFactor)
		}
	}
	k.TLS.validate(p, "kafka.tls")
	k.SASL.validate(p)
}

// topicProblem returns why name is not a valid Kafka topic name, or "".
func topicProblem(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case len(name) > maxTopicLen:
		return fmt.Sprintf("must be at most %d characters, got %d", maxTopicLen, len(name))
	case name == "." || name == "..":
		return fmt.Sprintf("%q is not a valid topic name", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Sprintf("may only contain a-z, A-Z, 0-9, '.', '_' and '-', got %q", name)
		}
	}
	return ""
}

// validHostPort reports whether s is host:port with a numeric port in
// 1..65535; the host may be empty unless needHost.
func validHostPort(s string, needHost bool) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || needHost && host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// validateRedis checks the redis section; no message shows a value of it
// that could be a credential.
func (c Config) validateRedis(p *problems) {
	r := c.Redis
	// The address is never quoted: it may carry credentials.
	if r.Addr != "" && (!validHostPort(r.Addr, false) || hasControl(r.Addr)) {
		p.addf("redis.addr", "must be host:port with a port between 1 and 65535 (value not shown)")
	}
	if hasControl(r.Username) {
		p.addf("redis.username", "must not contain control characters (value not shown)")
	}
	if hasControl(r.Password) {
		p.addf("redis.password", "must not contain control characters, such as a trailing newline (value not shown)")
	}
	if r.DB < 0 {
		p.addf("redis.db", "must be >= 0, got %d", r.DB)
	}
	r.validateTopology(p)
	switch {
	case r.KeyPrefix == "":
		p.addf("redis.key_prefix", "must not be empty")
	case strings.ContainsAny(r.KeyPrefix, "{}"):
		p.addf("redis.key_prefix", "must not contain '{' or '}' (it is wrapped in a hash tag), got %q", r.KeyPrefix)
	case strings.IndexFunc(r.KeyPrefix, unicode.IsSpace) >= 0 || hasControl(r.KeyPrefix):
		p.addf("redis.key_prefix", "must not contain whitespace or control characters, got %q", r.KeyPrefix)
	}
	if r.Timeout <= 0 {
		p.addf("redis.timeout", "must be > 0, got %s", dur(r.Timeout))
	}
	if r.DecisionTTL < minDecisionTTL {
		p.addf("redis.decision_ttl", "must be at least %s, got %s", dur(minDecisionTTL), dur(r.DecisionTTL))
	}
	if r.MinReplicasAcked < 0 {
		p.addf("redis.min_replicas_acked", "must be >= 0, got %d", r.MinReplicasAcked)
	}
	if r.MinReplicasAcked > 0 && r.Timeout > 0 && r.Timeout < 2*time.Millisecond {
		p.addf("redis.min_replicas_acked", "needs redis.timeout of at least 2ms to wait for the replicas (half of it), got %s", dur(r.Timeout))
	}
}

// validateBreakers checks the thresholds of every scope.
func (c Config) validateBreakers(p *problems) {
	c.Breakers.Defaults.validate(p, "breakers.defaults")
	c.Breakers.Global.validate(p, "breakers.global")
	switch c.Breakers.Global.Hold {
	case HoldContributors, HoldAll:
	default:
		p.addf("breakers.global.hold", "must be contributors or all, got %q", c.Breakers.Global.Hold)
	}
	if !finiteAtLeast(c.Breakers.Global.ContributorFactor, 1) {
		p.addf("breakers.global.contributor_factor", "must be a finite number >= 1, got %v", c.Breakers.Global.ContributorFactor)
	}
	if !finiteAtLeast(c.Breakers.NewRules.MaxActions, 0) {
		p.addf("breakers.new_rules.max_actions", "must be a finite number >= 0 (0 turns the budget off), got %v", c.Breakers.NewRules.MaxActions)
	}
	switch l := c.Breakers.NewRules.Learning; {
	case l < 0:
		p.addf("breakers.new_rules.learning", "must be >= 0, got %s", dur(l))
	case c.Breakers.NewRules.MaxActions > 0 && l < c.Breakers.Defaults.Window:
		p.addf("breakers.new_rules.learning", "must be at least breakers.defaults.window (%s) when max_actions is set, got %s", dur(c.Breakers.Defaults.Window), dur(l))
	}
	c.Breakers.Segments.validate(p)
	scopes := len(c.Breakers.Rules)
	for _, r := range c.Breakers.Rules {
		scopes += len(r.Actions)
	}
	if scopes > maxScopes {
		p.addf("breakers.rules", "at most %d breakers may be configured here (rules and their per-action entries together), got %d", maxScopes, scopes)
	}
	for _, id := range sortedKeys(c.Breakers.Rules) {
		r := c.Breakers.Rules[id]
		field := fmt.Sprintf("breakers.rules[%q]", id)
		if id == "" {
			p.addf(field, "a rule id must not be empty")
		} else if hasControl(id) {
			p.addf(field, "a rule id must not contain control characters")
		}
		if len(r.Description) > 500 || hasControl(r.Description) {
			p.addf(field+".description", "must be at most 500 bytes without control characters, got %d bytes", len(r.Description))
		}
		r.Thresholds.validate(p, field)
		validDimensions(p, field+".segments", r.Segments)
		for _, name := range sortedKeys(r.Actions) {
			afield := fmt.Sprintf("%s.actions[%q]", field, name)
			if name == "" {
				p.addf(afield, "an action type must not be empty")
			} else if hasControl(name) {
				p.addf(afield, "an action type must not contain control characters")
			}
			r.Actions[name].validate(p, afield)
		}
	}
}

// SegmentDimensions are the event fields a rule can be split by, besides
// the model version (breakers.segments.model_version).
var SegmentDimensions = []string{"region", "target.type", "model.name"}

// MaxDimensions is the most segment dimensions (besides the model
// version) one rule is split by: each of SegmentDimensions once.
const MaxDimensions = 3

func (s Segments) validate(p *problems) {
	validDimensions(p, "breakers.segments.dimensions", s.Dimensions)
	if s.MaxValues < 1 || s.MaxValues > 256 {
		p.addf("breakers.segments.max_values", "must be between 1 and 256, got %d", s.MaxValues)
	}
	if s.Idle < time.Minute {
		p.addf("breakers.segments.idle", "must be at least 1m, got %s", dur(s.Idle))
	}
}

// validDimensions checks a list of segment dimensions at field path: each
// one of SegmentDimensions, once. A rule's list adds to the global one, so
// a rule has at most MaxDimensions.
func validDimensions(p *problems, path string, dims []string) {
	for i, d := range dims {
		if !slices.Contains(SegmentDimensions, d) {
			p.addf(fmt.Sprintf("%s[%d]", path, i), "must be one of %s, got %q", strings.Join(SegmentDimensions, ", "), d)
			continue
		}
		if slices.Contains(dims[:i], d) {
			p.addf(fmt.Sprintf("%s[%d]", path, i), "%q is listed twice", d)
		}
	}
}

// validate checks the thresholds of the scope at field path.
func (t Thresholds) validate(p *problems, path string) {
	f := func(name string) string { return path + "." + name }
	windowOK := t.Window >= minWindow && t.Window <= maxWindow
	if !windowOK {
		p.addf(f("window"), "must be between %s and %s, got %s", dur(minWindow), dur(maxWindow), dur(t.Window))
	}
	if !finiteAtLeast(t.MaxActions, 0) {
		p.addf(f("max_actions"), "must be a finite number >= 0, got %v", t.MaxActions)
	}
	if t.Factor != 0 && !finiteAtLeast(t.Factor, 1) {
		p.addf(f("factor"), "must be 0 (off) or at least 1, got %v", t.Factor)
	}
	if !finiteAtLeast(t.MinActions, 0) {
		p.addf(f("min_actions"), "must be a finite number >= 0, got %v", t.MinActions)
	}
	switch {
	case t.Baseline < 0:
		p.addf(f("baseline"), "must be >= 0, got %s", dur(t.Baseline))
	case t.Factor > 0 && windowOK && t.Baseline <= t.Window:
		p.addf(f("baseline"), "must be longer than window (%s) when factor is set, got %s", dur(t.Window), dur(t.Baseline))
	case t.Factor > 0 && windowOK && t.Baseline > maxBaselineRatio*t.Window:
		p.addf(f("baseline"), "must be at most %d times window (%s), that is %s, got %s", maxBaselineRatio, dur(t.Window), dur(maxBaselineRatio*t.Window), dur(t.Baseline))
	}
	if t.AutoCloseAfter < 0 {
		p.addf(f("auto_close_after"), "must be >= 0 (0 means a human resets the breaker), got %s", dur(t.AutoCloseAfter))
	}
	if t.Probation < 0 {
		p.addf(f("probation"), "must be >= 0, got %s", dur(t.Probation))
	}
	if !(t.ProbationScale > 0 && t.ProbationScale <= 1) {
		p.addf(f("probation_scale"), "must be greater than 0 and at most 1, got %v", t.ProbationScale)
	}
	if !t.Disabled && !(t.MaxActions > 0) && !(t.Factor > 0) && (t.Evidence.Off || !(t.Evidence.Threshold > 0)) {
		p.addf(path, "no trip condition: set max_actions or factor above 0, or disabled: true")
	}
	t.Evidence.validate(p, f("evidence"))
}

// validate checks the evidence detector's settings at field path.
func (e Evidence) validate(p *problems, path string) {
	f := func(name string) string { return path + "." + name }
	if e.Bin < time.Minute || e.Bin > 15*time.Minute {
		p.addf(f("bin"), "must be between 1m and 15m, got %s", dur(e.Bin))
	}
	if !(e.Ratio > 1 && e.Ratio <= 10) {
		p.addf(f("ratio"), "must be above 1 and at most 10, got %v", e.Ratio)
	}
	if !(e.Threshold > 0) || math.IsInf(e.Threshold, 1) {
		p.addf(f("threshold"), "must be a finite number above 0, got %v", e.Threshold)
	}
	if !finiteAtLeast(e.MinExpected, 0) {
		p.addf(f("min_expected"), "must be a finite number >= 0, got %v", e.MinExpected)
	}
	if e.Days < 1 || e.Days > 90 {
		p.addf(f("days"), "must be between 1 and 90, got %d", e.Days)
	}
}

// finiteAtLeast reports whether v is a finite number >= min (false for NaN).
func finiteAtLeast(v, min float64) bool {
	return v >= min && !math.IsInf(v, 1)
}

// validateActions checks default_action and the action type table.
func (c Config) validateActions(p *problems) {
	c.DefaultAction.validate(p, "default_action")
	for _, name := range sortedKeys(c.Actions) {
		field := fmt.Sprintf("actions[%q]", name)
		if name == "" {
			p.addf(field, "an action type must not be empty")
		} else if hasControl(name) {
			p.addf(field, "an action type must not contain control characters")
		}
		c.Actions[name].validate(p, field)
	}
}

// validate checks the action type at field path.
func (a ActionType) validate(p *problems, path string) {
	if !(a.Weight > 0 && a.Weight <= maxWeight) {
		p.addf(path+".weight", "must be greater than 0 and at most %d, got %v", maxWeight, a.Weight)
	}
	if !a.Severity.Valid() {
		p.addf(path+".severity", "must be high, medium or low, got %q", a.Severity)
	}
}

// validateOutage checks store_unavailable.
func (c Config) validateOutage(p *problems) {
	keys := make([]string, 0, len(c.StoreUnavailable))
	for s := range c.StoreUnavailable {
		keys = append(keys, string(s))
	}
	sort.Strings(keys)
	for _, k := range keys {
		s := Severity(k)
		o := c.StoreUnavailable[s]
		field := fmt.Sprintf("store_unavailable[%q]", k)
		if !s.Valid() {
			p.addf(field, "unknown severity; the keys must be high, medium or low")
			continue
		}
		if !o.Valid() {
			p.addf(field, "must be pause, hold or pass, got %q", o)
			continue
		}
		if o == OutagePass {
			if irr := c.irreversibleOf(s); len(irr) > 0 {
				p.addf(field, "pass is not allowed for severity %s: irreversible action types have it (%s); use pause or hold", s, strings.Join(irr, ", "))
			}
		}
	}
}

// irreversibleOf lists the irreversible action types of severity s, the
// default action included (as "default_action"), sorted.
func (c Config) irreversibleOf(s Severity) []string {
	var names []string
	for name, a := range c.Actions {
		if a.Irreversible && a.Severity == s {
			names = append(names, strconv.Quote(name))
		}
	}
	sort.Strings(names)
	if c.DefaultAction.Irreversible && c.DefaultAction.Severity == s {
		names = append(names, "default_action")
	}
	return names
}

// validateDemo checks the demo section.
func (c Config) validateDemo(p *problems) {
	d := c.Demo
	if d.KafkaPort < 0 || d.KafkaPort > 65535 {
		p.addf("demo.kafka_port", "must be between 0 and 65535, got %d", d.KafkaPort)
	}
	if d.Rate < 1 || d.Rate > maxDemoRate {
		p.addf("demo.rate", "must be between 1 and %d, got %d", maxDemoRate, d.Rate)
	}
	if d.Rules < 1 || d.Rules > maxDemoRules {
		p.addf("demo.rules", "must be between 1 and %d, got %d", maxDemoRules, d.Rules)
	}
	if d.IncidentAfter < 0 {
		p.addf("demo.incident_after", "must be >= 0, got %s", dur(d.IncidentAfter))
	}
	if !finiteAtLeast(d.IncidentFactor, 1) {
		p.addf("demo.incident_factor", "must be at least 1, got %v", d.IncidentFactor)
	}
	if d.IncidentFor < 0 {
		p.addf("demo.incident_for", "must be >= 0, got %s", dur(d.IncidentFor))
	}
	if d.ReviewAfter < 0 {
		p.addf("demo.review_after", "must be >= 0, got %s", dur(d.ReviewAfter))
	}
}

// Valid reports whether s is high, medium or low.
func (s Severity) Valid() bool {
	return slices.Contains(severities, s)
}

// Valid reports whether o is pause, hold or pass.
func (o Outage) Valid() bool {
	return o == OutagePause || o == OutageHold || o == OutagePass
}

// sortedKeys returns the keys of m in order, for deterministic messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dur formats d for a message without trailing zero units: 1m, not 1m0s.
func dur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// hasControl reports whether s contains a control character (tab and
// newline included). Names and credentials never legitimately do; a
// trailing newline is a common mistake in a secret, and YAML cannot always
// write such strings back.
func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

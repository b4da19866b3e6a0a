package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The environment variables that ApplyEnv reads. A variable that is set to
// the empty string (or, except for the Redis credentials, to blanks only) is
// ignored, so that an empty value in a deployment manifest cannot silently
// switch Kafka or Redis to the embedded mode.
const (
	// EnvKafkaBrokers overrides kafka.brokers, as a comma separated list.
	EnvKafkaBrokers = "BREAKWATER_KAFKA_BROKERS"
	// EnvKafkaGroupID overrides kafka.group_id.
	EnvKafkaGroupID = "BREAKWATER_KAFKA_GROUP_ID"
	// EnvRedisAddr overrides redis.addr.
	EnvRedisAddr = "BREAKWATER_REDIS_ADDR"
	// EnvRedisUsername overrides redis.username.
	EnvRedisUsername = "BREAKWATER_REDIS_USERNAME"
	// EnvRedisPassword overrides redis.password.
	EnvRedisPassword = "BREAKWATER_REDIS_PASSWORD"
	// EnvRedisSentinelPassword overrides redis.sentinel_password.
	EnvRedisSentinelPassword = "BREAKWATER_REDIS_SENTINEL_PASSWORD"
	// EnvKafkaSASLPassword overrides kafka.sasl.password (and clears
	// kafka.sasl.password_file).
	EnvKafkaSASLPassword = "BREAKWATER_KAFKA_SASL_PASSWORD"
	// EnvHTTPListen overrides http.listen.
	EnvHTTPListen = "BREAKWATER_HTTP_LISTEN"
)

// builtinActions returns a fresh copy of the built-in action type table.
func builtinActions() map[string]ActionType {
	return map[string]ActionType{
		"ban_account":        {Weight: 10, Severity: SeverityHigh, Irreversible: true},
		"suspend_account":    {Weight: 5, Severity: SeverityHigh},
		"deactivate_board":   {Weight: 3, Severity: SeverityMedium},
		"remove_board":       {Weight: 3, Severity: SeverityMedium},
		"remove_pin":         {Weight: 1, Severity: SeverityLow},
		"limit_distribution": {Weight: 1, Severity: SeverityLow},
		"warn":               {Weight: 0.5, Severity: SeverityLow},
	}
}

// severities lists the valid severities, most severe first.
var severities = []Severity{SeverityHigh, SeverityMedium, SeverityLow}

// Default returns the built-in configuration: embedded Kafka and Redis, the
// default topics and thresholds, the built-in action type table and the
// pause outage policy for every severity. Every call returns fresh maps.
func Default() Config {
	return Config{
		Kafka: Kafka{
			GroupID: "breakwater",
			Topics: Topics{
				Input:      "moderation.actions",
				Gated:      "moderation.actions.gated",
				Held:       "moderation.actions.held",
				DeadLetter: "moderation.actions.dead-letter",
				State:      "breakwater.state",
			},
			BatchSize:         2000,
			BatchWait:         10 * time.Millisecond,
			WriteTimeout:      10 * time.Second,
			SessionTimeout:    10 * time.Second,
			DrainTimeout:      30 * time.Second,
			StallTimeout:      5 * time.Minute,
			CreateTopics:      false,
			Partitions:        12,
			ReplicationFactor: 3,
		},
		Redis: Redis{
			KeyPrefix:   "breakwater",
			Timeout:     2 * time.Second,
			DecisionTTL: 24 * time.Hour,
		},
		HTTP: HTTP{Listen: "127.0.0.1:8080"},
		Breakers: Breakers{
			Defaults: Thresholds{
				Window:         time.Minute,
				MaxActions:     1000,
				Baseline:       time.Hour,
				Factor:         5,
				MinActions:     50,
				AutoCloseAfter: 0,
				Probation:      30 * time.Minute,
				ProbationScale: 0.5,
				Evidence:       DefaultEvidence(),
			},
			Global: Global{
				Thresholds: Thresholds{
					Window:         time.Minute,
					MaxActions:     0,
					Baseline:       time.Hour,
					Factor:         3,
					MinActions:     500,
					Probation:      30 * time.Minute,
					ProbationScale: 0.5,
					Evidence:       DefaultEvidence(),
				},
				Hold:              HoldContributors,
				ContributorFactor: 2,
			},
			NewRules: NewRules{MaxActions: 50, Learning: 24 * time.Hour},
			Segments: Segments{ModelVersion: true, MaxValues: 16, Idle: 24 * time.Hour},
		},
		Actions:       builtinActions(),
		DefaultAction: ActionType{Weight: 1, Severity: SeverityMedium},
		StoreUnavailable: map[Severity]Outage{
			SeverityHigh:   OutagePause,
			SeverityMedium: OutagePause,
			SeverityLow:    OutagePause,
		},
		Alerts: defaultAlerts(),
		Log:    Log{Level: "info", Format: "json"},
		Demo: Demo{
			Rate:           200,
			Rules:          10,
			IncidentAfter:  20 * time.Second,
			IncidentFactor: 20,
			IncidentFor:    2 * time.Minute,
			ReviewAfter:    5 * time.Minute,
			Seed:           1,
			AlertWebhook:   true,
			KafkaPort:      9092,
		},
		Admin:     defaultAdmin(),
		Approval:  defaultApproval(),
		Review:    defaultReview(),
		SignIn:    defaultSignIn(),
		Reversals: defaultReversals(),
		Appeals:   defaultAppeals(),
	}
}

// Parse decodes a YAML configuration, fills the defaults and validates the
// result.
//
// Decoding is strict: an unknown key, a value of the wrong type (a bare
// number for a duration, a fraction for an integer, ...), a duplicate or
// null key or a second YAML document is an error that names the line and
// the field. Empty input (or input with only comments) yields Default().
// Anchors, aliases and merge keys (<<) are allowed.
//
// Keys that are absent keep their default. Within breakers.rules, a zero or
// absent threshold field inherits the value of breakers.defaults, and the
// per-action thresholds of a rule inherit the rule's resolved thresholds;
// disabled is never inherited. An entry of actions is merged over the
// built-in entry of the same name (or over default_action for a new name):
// the fields it leaves out keep the built-in value.
func Parse(data []byte) (Config, error) {
	c, err := parse(data)
	if err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Load reads the YAML configuration file at path and parses it with Parse.
// Errors name the path.
func Load(path string) (Config, error) {
	c, err := loadFile(path)
	if err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// LoadWithEnv loads the configuration file at path (the empty path means
// Default()), applies the environment overrides found through lookup (see
// ApplyEnv) and validates the result. Validation happens after the
// overrides, so that a value of the file that the environment replaces is
// not checked.
func LoadWithEnv(path string, lookup func(string) (string, bool)) (Config, error) {
	c := Default()
	if path != "" {
		var err error
		if c, err = loadFile(path); err != nil {
			return Config{}, err
		}
	}
	c.ApplyEnv(lookup)
	if err := c.Validate(); err != nil {
		if path != "" {
			return Config{}, fmt.Errorf("%s (with environment overrides): %w", path, err)
		}
		return Config{}, fmt.Errorf("defaults with environment overrides: %w", err)
	}
	return c, nil
}

// loadFile reads and parses the file at path without validating it.
func loadFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ApplyEnv overrides fields with the environment variables found through
// lookup (main passes os.LookupEnv; the package never reads the
// environment itself). EnvVars lists them, with the key each overrides.
//
// A variable set to the empty string is ignored; so are blanks only, except
// for the Redis username and passwords and the SASL password, which are
// used exactly as given.
// Empty entries of the broker list are kept, so that Validate reports them.
// ApplyEnv does not validate; a nil lookup changes nothing.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) {
	if lookup == nil {
		return
	}
	trimmed := func(name string) (string, bool) {
		v, ok := lookup(name)
		v = strings.TrimSpace(v)
		return v, ok && v != ""
	}
	exact := func(name string) (string, bool) {
		v, ok := lookup(name)
		return v, ok && v != ""
	}
	if v, ok := trimmed(EnvKafkaBrokers); ok {
		parts := strings.Split(v, ",")
		brokers := make([]string, len(parts))
		for i, p := range parts {
			brokers[i] = strings.TrimSpace(p)
		}
		c.Kafka.Brokers = brokers
	}
	if v, ok := trimmed(EnvKafkaGroupID); ok {
		c.Kafka.GroupID = v
	}
	if v, ok := trimmed(EnvRedisAddr); ok {
		c.Redis.Addr = v
	}
	if v, ok := exact(EnvRedisUsername); ok {
		c.Redis.Username = v
	}
	if v, ok := exact(EnvRedisPassword); ok {
		c.Redis.Password = v
	}
	if v, ok := exact(EnvRedisSentinelPassword); ok {
		c.Redis.SentinelPassword = v
	}
	if v, ok := exact(EnvKafkaSASLPassword); ok {
		c.Kafka.SASL.Password = v
		c.Kafka.SASL.PasswordFile = ""
	}
	if v, ok := trimmed(EnvHTTPListen); ok {
		c.HTTP.Listen = v
	}
	c.Alerts.applyEnv(lookup)
	c.applyAdminEnv(lookup)
	c.applySignInEnv(lookup)
}

// parse decodes data over the defaults and resolves the inherited values,
// without validating.
func parse(data []byte) (Config, error) {
	c := Default()
	// The maps are decoded from scratch and merged with the built-in
	// values afterwards, so that the merge knows what the file gave.
	c.Actions = nil
	c.StoreUnavailable = nil

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(&c)
	switch {
	case errors.Is(err, io.EOF):
		// No document at all: every value is a default.
	case err != nil:
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return Config{}, explain(data, err)
		}
		return Config{}, err
	default:
		var extra yaml.Node
		switch err := dec.Decode(&extra); {
		case errors.Is(err, io.EOF):
		case err != nil:
			return Config{}, fmt.Errorf("a second YAML document follows the first, and only one is allowed: %w", err)
		default:
			return Config{}, fmt.Errorf("line %d: a second YAML document is not allowed; a configuration is one document", docLine(&extra))
		}
	}

	if err := explain(data, nil); err != nil {
		return Config{}, err
	}
	given, err := givenActionFields(data)
	if err != nil {
		return Config{}, err
	}
	c.resolve(given)
	// An empty list is no list: the same configuration either way.
	if len(c.Admin.Tokens) == 0 {
		c.Admin.Tokens = nil
	}
	if len(c.Alerts.Receivers) == 0 {
		c.Alerts.Receivers = nil
	}
	if len(c.SignIn.Groups) == 0 {
		c.SignIn.Groups = nil
	}
	if len(c.SignIn.TrustedProxy.CIDRs) == 0 {
		c.SignIn.TrustedProxy.CIDRs = nil
	}
	return c, nil
}

// docLine returns the line where the document node n starts.
func docLine(n *yaml.Node) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 && n.Content[0].Line > 0 {
		return n.Content[0].Line
	}
	return n.Line
}

// actionFields records which fields an entry of the actions table sets.
type actionFields struct {
	Weight       *float64  `yaml:"weight"`
	Severity     *Severity `yaml:"severity"`
	Irreversible *bool     `yaml:"irreversible"`
}

// givenActionFields decodes which fields each entry of the actions table
// sets, so that the merge over the built-in table can tell "irreversible:
// false" from no irreversible key at all.
func givenActionFields(data []byte) (map[string]actionFields, error) {
	var doc struct {
		Actions map[string]actionFields `yaml:"actions"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	return doc.Actions, nil
}

// resolve fills the values that the configuration inherits: the unset fields
// of the rules and of their actions, the merge of the actions table over the
// built-in one and the missing outage policies. given tells which fields
// each entry of c.Actions was given explicitly.
func (c *Config) resolve(given map[string]actionFields) {
	table := builtinActions()
	for name, a := range c.Actions {
		base, ok := table[name]
		if !ok {
			base = c.DefaultAction
		}
		g := given[name]
		if g.Weight == nil {
			a.Weight = base.Weight
		}
		if g.Severity == nil {
			a.Severity = base.Severity
		}
		if g.Irreversible == nil {
			a.Irreversible = base.Irreversible
		}
		table[name] = a
	}
	c.Actions = table

	policies := make(map[Severity]Outage, len(severities)+len(c.StoreUnavailable))
	for s, o := range c.StoreUnavailable {
		policies[s] = o
	}
	for _, s := range severities {
		if _, ok := policies[s]; !ok {
			policies[s] = OutagePause
		}
	}
	c.StoreUnavailable = policies

	for id, r := range c.Breakers.Rules {
		r.Thresholds = r.Thresholds.inherit(c.Breakers.Defaults)
		for name, t := range r.Actions {
			r.Actions[name] = t.inherit(r.Thresholds)
		}
		if len(r.Actions) == 0 {
			r.Actions = nil
		}
		if len(r.Segments) == 0 {
			r.Segments = nil
		}
		c.Breakers.Rules[id] = r
	}
	if len(c.Breakers.Rules) == 0 {
		c.Breakers.Rules = nil
	}
	if len(c.Breakers.Segments.Dimensions) == 0 {
		c.Breakers.Segments.Dimensions = nil
	}
	if len(c.Kafka.Brokers) == 0 {
		c.Kafka.Brokers = nil
	}
	if len(c.Redis.Addrs) == 0 {
		c.Redis.Addrs = nil
	}
	if len(c.Redis.SentinelAddrs) == 0 {
		c.Redis.SentinelAddrs = nil
	}
	c.Alerts.resolve()
}

// inherit returns t with every zero field taken from parent. Disabled is
// not inherited: it applies to the scope where it is written.
func (t Thresholds) inherit(parent Thresholds) Thresholds {
	if t.Window == 0 {
		t.Window = parent.Window
	}
	if t.MaxActions == 0 {
		t.MaxActions = parent.MaxActions
	}
	if t.Baseline == 0 {
		t.Baseline = parent.Baseline
	}
	if t.Factor == 0 {
		t.Factor = parent.Factor
	}
	if t.MinActions == 0 {
		t.MinActions = parent.MinActions
	}
	if t.AutoCloseAfter == 0 {
		t.AutoCloseAfter = parent.AutoCloseAfter
	}
	if t.Probation == 0 {
		t.Probation = parent.Probation
	}
	if t.ProbationScale == 0 {
		t.ProbationScale = parent.ProbationScale
	}
	t.Evidence = t.Evidence.inherit(parent.Evidence)
	return t
}

// DefaultEvidence returns the detector's defaults: 5-minute bins, tuned to
// a rise of 1.5x, h = 12, at least 0.5 expected per bin, a week of
// history. It judges an hour of the day only after one day of history of
// that hour, so a scope with no history is never tripped by it.
func DefaultEvidence() Evidence {
	return Evidence{Bin: 5 * time.Minute, Ratio: 1.5, Threshold: 12, MinExpected: 0.5, Days: 7}
}

// inherit returns e with every zero field taken from parent; Off is not
// inherited.
func (e Evidence) inherit(parent Evidence) Evidence {
	if e.Bin == 0 {
		e.Bin = parent.Bin
	}
	if e.Ratio == 0 {
		e.Ratio = parent.Ratio
	}
	if e.Threshold == 0 {
		e.Threshold = parent.Threshold
	}
	if e.MinExpected == 0 {
		e.MinExpected = parent.MinExpected
	}
	if e.Days == 0 {
		e.Days = parent.Days
	}
	return e
}

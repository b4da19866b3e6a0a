// Package config loads, defaults and validates the Breakwater configuration.
//
// Loading is strict: unknown keys are errors that name the key, and every
// validation message names the offending field, so that a bad configuration
// stops the daemon at start rather than at the first message.
package config

//go:generate go test -run ^TestReference$ -update .

import "time"

// Config is the whole daemon configuration.
type Config struct {
	// Kafka holds the brokers, topics and batching of the pipeline.
	Kafka Kafka `yaml:"kafka"`
	// Redis holds the address and options of the shared rate store.
	Redis Redis `yaml:"redis"`
	// HTTP holds the listen address of the metrics, health and admin endpoints.
	HTTP HTTP `yaml:"http"`
	// Breakers holds the thresholds per scope and their defaults.
	Breakers Breakers `yaml:"breakers"`
	// Actions maps an action type (ban_account, remove_pin, ...) to its weight and severity.
	Actions map[string]ActionType `yaml:"actions"`
	// DefaultAction applies to action types that have no entry in Actions.
	DefaultAction ActionType `yaml:"default_action"`
	// StoreUnavailable maps a severity to what happens to its actions while
	// Redis cannot be reached: pause, hold or pass.
	StoreUnavailable map[Severity]Outage `yaml:"store_unavailable"`
	// Alerts configures the notifications of on-call people and their receivers.
	Alerts Alerts `yaml:"alerts"`
	// Log sets the zap logger.
	Log Log `yaml:"log"`
	// Demo configures the built-in traffic generator of the embedded mode.
	Demo Demo `yaml:"demo"`
	// Admin configures the admin API: its tokens, roles and topics.
	Admin Admin `yaml:"admin"`
	// Approval configures two-person approval of what can do harm.
	Approval Approval `yaml:"approval"`
	// Review configures the review of held actions: target links and
	// continued incidents.
	Review Review `yaml:"review"`
	// SignIn configures how people sign in: OIDC or a trusted proxy.
	SignIn SignIn `yaml:"signin"`
	// Reversals configures the compensating records of reversed actions.
	Reversals Reversals `yaml:"reversals"`
	// Appeals configures the appeals signal: outcomes of appeals that can
	// trip a rule whose precision fell.
	Appeals Appeals `yaml:"appeals"`
}

// Kafka configures the consumer and the producers.
type Kafka struct {
	// Brokers are the bootstrap addresses. Empty means the embedded broker.
	// Overridden by BREAKWATER_KAFKA_BROKERS (comma separated).
	Brokers []string `yaml:"brokers"`
	// GroupID is the consumer group shared by all replicas.
	GroupID string `yaml:"group_id"`
	// Topics names the input and output topics.
	Topics Topics `yaml:"topics"`
	// BatchSize is the most input messages decided together (one Redis call).
	BatchSize int `yaml:"batch_size"`
	// BatchWait is how long to wait for a batch to fill before deciding a partial one.
	BatchWait time.Duration `yaml:"batch_wait"`
	// WriteTimeout bounds one acknowledged write of a batch's outputs.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// SessionTimeout is the consumer group session timeout.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// DrainTimeout bounds how long the batches in flight may take to be
	// written and committed once shutdown begins; it starts at shutdown.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// StallTimeout is how long a batch in flight may go without any
	// attempt finishing (a store call, a write, a commit, a retry) before
	// the pipeline counts as wedged and /healthz fails.
	StallTimeout time.Duration `yaml:"stall_timeout"`
	// CreateTopics creates missing topics at start (development and the embedded mode).
	CreateTopics bool `yaml:"create_topics"`
	// Partitions is the partition count used when CreateTopics creates a topic.
	Partitions int `yaml:"partitions"`
	// ReplicationFactor is the replication factor used when CreateTopics creates a topic.
	ReplicationFactor int `yaml:"replication_factor"`
	// TLS encrypts (and with a client certificate, authenticates) every
	// connection to the brokers.
	TLS TLS `yaml:"tls"`
	// SASL authenticates every connection to the brokers.
	SASL SASL `yaml:"sasl"`
}

// Topics names the topics Breakwater reads and writes.
type Topics struct {
	// Input is the classifier's action topic.
	Input string `yaml:"input"`
	// Gated is what the enforcement service consumes.
	Gated string `yaml:"gated"`
	// Held receives actions whose breaker is open, for human review.
	Held string `yaml:"held"`
	// DeadLetter receives undecodable or invalid input; it is never enforced.
	DeadLetter string `yaml:"dead_letter"`
	// State is the compacted topic of breaker states, the durable record.
	State string `yaml:"state"`
}

// Redis configures the shared rate and state store.
type Redis struct {
	// Addr is host:port of one Redis, or of a Redis Cluster's
	// configuration endpoint when Cluster is true. Empty, with Addrs and
	// SentinelAddrs empty too, means the embedded in-process store.
	// Overridden by BREAKWATER_REDIS_ADDR.
	Addr string `yaml:"addr"`
	// Addrs are the seed nodes of a Redis Cluster (host:port each).
	Addrs []string `yaml:"addrs"`
	// Cluster forces Redis Cluster mode on Addr (a configuration endpoint).
	Cluster bool `yaml:"cluster"`
	// MasterName is the name of the primary that Sentinel manages; set with
	// SentinelAddrs.
	MasterName string `yaml:"master_name"`
	// SentinelAddrs are the Sentinels (host:port each) that name the primary.
	SentinelAddrs []string `yaml:"sentinel_addrs"`
	// SentinelUsername is the ACL user for the Sentinels, if they need one.
	SentinelUsername string `yaml:"sentinel_username"`
	// SentinelPassword is a secret; prefer BREAKWATER_REDIS_SENTINEL_PASSWORD.
	SentinelPassword string `yaml:"sentinel_password"`
	// TLS encrypts every connection to Redis (and to the Sentinels).
	TLS TLS `yaml:"tls"`
	// Username for Redis ACLs. Overridden by BREAKWATER_REDIS_USERNAME.
	Username string `yaml:"username"`
	// Password is a secret; prefer BREAKWATER_REDIS_PASSWORD. It is never logged.
	Password string `yaml:"password"`
	// DB is the database number.
	DB int `yaml:"db"`
	// KeyPrefix is the hash tag shared by every key, so that one Lua call
	// touches one Redis Cluster slot.
	KeyPrefix string `yaml:"key_prefix"`
	// Timeout bounds one Redis call.
	Timeout time.Duration `yaml:"timeout"`
	// DecisionTTL is how long a batch's decisions are kept for redelivery,
	// at most; they are deleted once the offsets are committed.
	DecisionTTL time.Duration `yaml:"decision_ttl"`
	// MinReplicasAcked is how many replicas must acknowledge every write
	// of the rate store (WAIT) before the pipeline acts on it; 0 does not
	// wait. With Sentinel, 1 keeps a decision from being lost in a
	// failover.
	MinReplicasAcked int `yaml:"min_replicas_acked"`
}

// HTTP configures the metrics, health and admin listener.
type HTTP struct {
	// Listen is the host:port to serve on; empty disables the listener.
	// The default is the loopback interface only. A listener on any other
	// address must have TLS (tls_cert_file) or a sign-in for people in
	// front of it, or allow_insecure set.
	Listen string `yaml:"listen"`
	// AllowInsecure lets a listener on an address other than loopback
	// serve plain HTTP without a sign-in, where something else protects it
	// (a private network, a TLS-terminating sidecar). Bearer tokens then
	// cross the network in the clear.
	AllowInsecure bool `yaml:"allow_insecure"`
	// TLSCertFile and TLSKeyFile, set together, serve HTTPS with this
	// certificate (PEM, chain included) and key.
	TLSCertFile string `yaml:"tls_cert_file"`
	// TLSKeyFile is the private key of TLSCertFile (PEM).
	TLSKeyFile string `yaml:"tls_key_file"`
}

// Breakers holds the thresholds of every scope.
type Breakers struct {
	// Defaults apply to every rule with no entry in Rules, and fill the
	// unset fields of those that have one.
	Defaults Thresholds `yaml:"defaults"`
	// Rules holds per-rule thresholds, keyed by rule_id.
	Rules map[string]Rule `yaml:"rules"`
	// Global guards the weighted total across all rules.
	Global Global `yaml:"global"`
	// NewRules is the budget of a rule with no entry in Rules that was
	// first seen after counting began, during its learning period.
	NewRules NewRules `yaml:"new_rules"`
	// Segments adds breakers per segment of every rule: its model
	// versions and the values of the dimensions listed.
	Segments Segments `yaml:"segments"`
}

// Segments configures the breakers of a rule's segments: the actions of
// one model version (rule:<id>|model:<version>), or of one value of an
// event field (rule:<id>|region:eu). A segment breaker runs on its rule's
// thresholds, its detector learns the segment's own normal, and when it
// trips it holds only the segment's actions.
type Segments struct {
	// ModelVersion gives every model version of a rule a breaker. A
	// version first seen on a rule that has counts starts from the rule's
	// counts and expectation (those of the versions it replaces) and trips
	// on the rule's thresholds for new_rules.learning after its first
	// action, so a release that raises a rule trips the version's breaker;
	// other versions are their rule's to guard.
	ModelVersion bool `yaml:"model_version"`
	// Dimensions are the event fields (region, target.type, model.name)
	// whose values give every rule a breaker each; a rule's own segments
	// add to them.
	Dimensions []string `yaml:"dimensions"`
	// MaxValues bounds the values of one dimension tracked per rule, 1 to
	// 256: a value seen when as many are tracked, none of them idle, is
	// counted in the rule's overflow segment (value %other).
	MaxValues int `yaml:"max_values"`
	// Idle is how long a value goes unseen (event time) before another may
	// take its place among the tracked ones.
	Idle time.Duration `yaml:"idle"`
}

// Global configures the breaker of the weighted total across all rules. It
// counts only what would reach enforcement: an action held by its rule's
// breaker (or its rule and action type's) does not count.
type Global struct {
	Thresholds `yaml:",inline"`
	// Hold is what a tripped global breaker holds: contributors (the rules
	// that drive the excess, when they explain it; everything when the rise
	// is broad) or all.
	Hold GlobalHold `yaml:"hold"`
	// ContributorFactor is how many times its own baseline a rule must
	// count to drive a global trip; a rule without a baseline yet always does.
	ContributorFactor float64 `yaml:"contributor_factor"`
}

// GlobalHold is what a tripped global breaker holds.
type GlobalHold string

// The global hold modes.
const (
	// HoldContributors holds the rules that stand out when they explain
	// the excess, and everything when they do not.
	HoldContributors GlobalHold = "contributors"
	// HoldAll holds every action.
	HoldAll GlobalHold = "all"
)

// NewRules is the small budget of a rule nobody configured, from its first
// action until it has a baseline and a learning period has passed.
type NewRules struct {
	// MaxActions trips a new rule when its weighted count in the defaults'
	// window exceeds it. 0 turns the budget off.
	MaxActions float64 `yaml:"max_actions"`
	// Learning is how long after its first action a rule stays new. Rules
	// first seen within Learning of the first action counted at all were
	// there before and are not new.
	Learning time.Duration `yaml:"learning"`
}

// Rule configures one rule's breaker and, optionally, breakers per action type
// within the rule.
type Rule struct {
	// Description says what the rule enforces, for reviewers: the
	// console's sample card shows it beside each held action. At most 500
	// bytes.
	Description string `yaml:"description"`
	Thresholds  `yaml:",inline"`
	// Actions adds a breaker per action type of this rule (rule and action scope).
	Actions map[string]Thresholds `yaml:"actions"`
	// Segments are dimensions this rule is split by, in addition to
	// breakers.segments.dimensions.
	Segments []string `yaml:"segments"`
}

// Thresholds are the trip conditions and policy of one scope. A zero field
// takes its value from the defaults.
type Thresholds struct {
	// Window is the sliding event-time window the counts are taken over.
	Window time.Duration `yaml:"window"`
	// MaxActions trips when the weighted count in Window exceeds it. 0 disables.
	MaxActions float64 `yaml:"max_actions"`
	// Baseline is the trailing period the scope's normal rate is averaged over.
	Baseline time.Duration `yaml:"baseline"`
	// Factor trips when the window count exceeds Factor times the baseline
	// count per window, with at least MinActions in the window. 0 disables.
	Factor float64 `yaml:"factor"`
	// MinActions is the least weighted count in Window for Factor to trip.
	MinActions float64 `yaml:"min_actions"`
	// AutoCloseAfter lets an open breaker move to probation by itself after
	// this long. 0 (the default) means never: a human resets it.
	AutoCloseAfter time.Duration `yaml:"auto_close_after"`
	// Probation is how long a reset breaker stays on tighter thresholds.
	// With none in effect, a reset of a breaker that holds closes it
	// outright and needs a second operator's approval (docs/approval.md).
	Probation time.Duration `yaml:"probation"`
	// ProbationScale multiplies MaxActions and MinActions during probation (0..1].
	ProbationScale float64 `yaml:"probation_scale"`
	// Disabled turns this scope's breaker off (it is still counted).
	Disabled bool `yaml:"disabled"`
	// Evidence configures the evidence detector of the scope.
	Evidence Evidence `yaml:"evidence"`
}

// Evidence configures the evidence detector: a one-sided Poisson CUSUM of
// the scope's number of actions per bin (weights do not count here)
// against a seasonal expectation learned online per hour of the day
// (docs/detection.md). Every field left out, or 0, inherits; Off does not.
type Evidence struct {
	// Bin is the width of the bins counts are compared in, 1m..15m.
	Bin time.Duration `yaml:"bin"`
	// Ratio is the rise the detector is tuned to (r), above 1 and at most
	// 10: a rise of about this factor is caught fastest; S grows only
	// while the scope runs above (r-1)/ln(r) times its expectation.
	Ratio float64 `yaml:"ratio"`
	// Threshold is h: the breaker trips when the evidence S reaches it, in
	// natural log-likelihood units. Higher: fewer false trips, slower
	// detection.
	Threshold float64 `yaml:"threshold"`
	// MinExpected floors the expected number of actions per bin, >= 0.
	MinExpected float64 `yaml:"min_expected"`
	// Days is how many days of history the expectation of each hour of
	// the day averages over, 1..90.
	Days int `yaml:"days"`
	// Off turns the detector off for this scope. Not inherited.
	Off bool `yaml:"off"`
}

// Severity ranks action types for the outage policy.
type Severity string

// The severities.
const (
	SeverityHigh   Severity = "high"
	SeverityMedium Severity = "medium"
	SeverityLow    Severity = "low"
)

// Outage is what happens to an action while the rate store is unreachable.
type Outage string

// The outage policies.
const (
	// OutagePause stops consuming, keeps offsets and retries with backoff.
	OutagePause Outage = "pause"
	// OutageHold sends the actions to the held topic unvetted.
	OutageHold Outage = "hold"
	// OutagePass forwards unvetted; allowed only for reversible action types.
	OutagePass Outage = "pass"
)

// ActionType describes one kind of enforcement action.
type ActionType struct {
	// Weight is how much one action counts towards thresholds (a ban weighs
	// more than a pin removal).
	Weight float64 `yaml:"weight"`
	// Severity selects the outage policy.
	Severity Severity `yaml:"severity"`
	// Irreversible marks actions that cannot be undone; their breakers never
	// close by themselves and they are never passed unvetted.
	Irreversible bool `yaml:"irreversible"`
}

// Log configures the zap logger.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json or console.
	Format string `yaml:"format"`
}

// Demo configures the traffic generator of the embedded mode.
type Demo struct {
	// Rate is the normal actions per second across all rules.
	Rate int `yaml:"rate"`
	// Rules is how many rules the generator plays.
	Rules int `yaml:"rules"`
	// IncidentAfter is when one rule starts to spike.
	IncidentAfter time.Duration `yaml:"incident_after"`
	// IncidentFactor multiplies the spiking rule's rate.
	IncidentFactor float64 `yaml:"incident_factor"`
	// IncidentFor is how long the spike lasts; 0 means it never ends.
	IncidentFor time.Duration `yaml:"incident_for"`
	// ReviewAfter is how long after its first held action the demo
	// reviews an incident itself: it rejects the pending actions and
	// resets the breaker, so that what the embedded Redis and broker keep
	// stays bounded; 0 leaves every incident to people.
	ReviewAfter time.Duration `yaml:"review_after"`
	// Seed makes the generated traffic reproducible.
	Seed int64 `yaml:"seed"`
	// AlertWebhook starts a local webhook receiver on the loopback interface
	// that logs every notification, when alerts.receivers is empty.
	AlertWebhook bool `yaml:"alert_webhook"`
	// KafkaPort is the port of the embedded Kafka-protocol broker on the
	// loopback interface; 0 picks a free port, and so does a port that is
	// taken.
	KafkaPort int `yaml:"kafka_port"`
}

// RuleDimensions returns the segment dimensions of rule: those of
// breakers.segments.dimensions, then the rule's own, each once.
func (c Config) RuleDimensions(rule string) []string {
	own := c.Breakers.Rules[rule].Segments
	if len(own) == 0 {
		return c.Breakers.Segments.Dimensions
	}
	out := append([]string(nil), c.Breakers.Segments.Dimensions...)
	for _, d := range own {
		if !containsString(out, d) {
			out = append(out, d)
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

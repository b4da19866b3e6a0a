package config

// TopicUse is one Kafka topic Breakwater uses: the key that names it, what
// it carries, and what the daemon does with it.
type TopicUse struct {
	// Key is the configuration key that names the topic.
	Key string
	// Name is the topic's name in this configuration.
	Name string
	// Carries says what the topic holds.
	Carries string
	// Reads and Writes say whether the daemon reads and writes it.
	Reads, Writes bool
	// Compacted marks the topic that must have cleanup.policy=compact.
	Compacted bool
}

// TopicUses lists every topic Breakwater uses, in one order: the input,
// the outputs of the pipeline, the durable state, then the review topics.
// The daemon creates these (kafka.create_topics), check checks these, and
// the configuration reference lists these.
func (c Config) TopicUses() []TopicUse {
	t := c.Kafka.Topics
	uses := []TopicUse{
		{Key: "kafka.topics.input", Name: t.Input, Carries: "the classifier's actions", Reads: true},
		{Key: "kafka.topics.gated", Name: t.Gated, Carries: "vetted and approved actions, which the enforcement service consumes; read back to rebuild decisions and to find reversal candidates", Reads: true, Writes: true},
		{Key: "kafka.topics.held", Name: t.Held, Carries: "actions whose breaker is open, waiting for review", Reads: true, Writes: true},
		{Key: "kafka.topics.dead_letter", Name: t.DeadLetter, Carries: "undecodable or invalid input, never enforced", Writes: true},
		{Key: "kafka.topics.state", Name: t.State, Carries: "every breaker transition, the durable record of the breakers", Reads: true, Writes: true, Compacted: true},
		{Key: "admin.audit_topic", Name: c.Admin.AuditTopic, Carries: "the audit trail: every transition and review decision with its actor", Reads: true, Writes: true},
		{Key: "admin.rejected_topic", Name: c.Admin.RejectedTopic, Carries: "held actions a reviewer rejected, for the classifier's team", Writes: true},
		{Key: "reversals.topic", Name: c.Reversals.Topic, Carries: "compensating records of reversed actions, which the enforcement service consumes", Reads: true, Writes: true},
	}
	if c.Appeals.Enabled {
		uses = append(uses, TopicUse{Key: "appeals.topic", Name: c.Appeals.Topic, Carries: "the appeals system's outcomes of forwarded actions (appeals.enabled)", Reads: true})
	}
	return uses
}

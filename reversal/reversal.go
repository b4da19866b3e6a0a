// Package reversal undoes what got through before a trip: it finds the
// actions of an incident's scope that were forwarded between the estimated
// onset and the trip, and writes one compensating record per action to the
// reversals topic, at a configured rate, each action at most once across
// retries, restarts and replicas.
//
// Exactly once works as the review release does: one replica at a time
// writes (a lease in Redis); before every batch it reads the reversals
// topic from where it last read to its end, so whatever an earlier attempt
// or an earlier holder wrote is known before anything is written again. A
// replica that takes the lease from another waits longer than one write may
// take before it reads, so that a write of the old holder still in flight
// has landed or failed. The reversals topic is the record of what is done;
// the jobs are journaled in the audit topic; Redis holds the fast view and
// is rebuilt from both when it lost its data.
package reversal

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/event"
	"github.com/breakwater/breakwater/wire"
)

// Version is the version of the record schema.
const Version = 1

// Target is the object an action applied to.
type Target struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Origin locates the reversed action on the gated topic.
type Origin struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Record is the value of one compensating record on the reversals topic:
// the contract with the enforcement service (docs/reversals.md).
type Record struct {
	// Version is the schema version, 1.
	Version int `json:"version"`
	// ReversalID is unique per reversed action ("reversal:<action_id>"):
	// the consumer deduplicates on it.
	ReversalID string `json:"reversal_id"`
	// ActionID, RuleID, Action, Target, ModelVersion, Region and
	// OccurredAt are those of the original action.
	ActionID     string    `json:"action_id"`
	RuleID       string    `json:"rule_id"`
	Action       string    `json:"action"`
	Target       Target    `json:"target"`
	ModelVersion string    `json:"model_version,omitempty"`
	Region       string    `json:"region,omitempty"`
	OccurredAt   time.Time `json:"occurred_at"`
	// Original is where the action was forwarded.
	Original Origin `json:"original"`
	// Incident is the trip the reversal undoes the leak of; Job names the
	// reversal (its approval request).
	Incident string `json:"incident"`
	Job      string `json:"job"`
	// RequestedBy and ApprovedBy are the two people; ApprovedBy is empty
	// for a break-glass reversal, which BreakGlass flags.
	RequestedBy string `json:"requested_by"`
	ApprovedBy  string `json:"approved_by,omitempty"`
	BreakGlass  bool   `json:"break_glass,omitempty"`
	// Reason is the requester's.
	Reason string `json:"reason"`
	// ReversedAt is when the record was written.
	ReversedAt time.Time `json:"reversed_at"`
}

// ReversalID is the reversal id of an action.
func ReversalID(actionID string) string { return "reversal:" + actionID }

// Item is a forwarded action a reversal may undo.
type Item struct {
	ActionID     string    `json:"action_id"`
	Rule         string    `json:"rule_id"`
	Action       string    `json:"action"`
	TargetType   string    `json:"target_type"`
	TargetID     string    `json:"target_id"`
	ModelVersion string    `json:"model_version,omitempty"`
	Region       string    `json:"region,omitempty"`
	OccurredAt   time.Time `json:"occurred_at"`
	ForwardedAt  time.Time `json:"forwarded_at"`
	Partition    int       `json:"partition"`
	Offset       int64     `json:"offset"`
	// Key is the gated record's key (the target), which the reversal
	// keeps so that it lands on the same partition.
	Key []byte `json:"key"`
	// modelName is the action's model.name, which a segment of that
	// dimension is of.
	modelName string
}

// itemOf returns the item of a gated record, or false for a record that is
// not a forwarded action (undecodable, or a reviewer's release).
func itemOf(m kafka.Message) (Item, bool) {
	for _, h := range m.Headers {
		if h.Key == wire.HeaderDecision && string(h.Value) == "approved" {
			return Item{}, false
		}
	}
	a, err := event.Decode(m.Value)
	if err != nil {
		return Item{}, false
	}
	return Item{
		ActionID: a.ActionID, Rule: a.RuleID, Action: a.Action, TargetType: a.TargetType, TargetID: a.TargetID,
		ModelVersion: a.ModelVersion, Region: a.Region, OccurredAt: a.OccurredAt.UTC(), ForwardedAt: m.Time.UTC(),
		Partition: m.Partition, Offset: m.Offset, Key: append([]byte(nil), m.Key...), modelName: a.ModelName,
	}, true
}

// message returns the reversal record of it for job j.
func message(it Item, j api.Reversal, gated string, now time.Time) (kafka.Message, error) {
	v, err := json.Marshal(Record{
		Version: Version, ReversalID: ReversalID(it.ActionID), ActionID: it.ActionID, RuleID: it.Rule, Action: it.Action,
		Target: Target{Type: it.TargetType, ID: it.TargetID}, ModelVersion: it.ModelVersion, Region: it.Region,
		OccurredAt: it.OccurredAt, Original: Origin{Topic: gated, Partition: it.Partition, Offset: it.Offset},
		Incident: j.Incident, Job: j.ID, RequestedBy: j.RequestedBy, ApprovedBy: j.ApprovedBy, BreakGlass: j.BreakGlass,
		Reason: j.Reason, ReversedAt: now.UTC(),
	})
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode the reversal of %s: %w", it.ActionID, err)
	}
	return kafka.Message{
		Key: it.Key, Value: v,
		Headers: []kafka.Header{
			{Key: wire.HeaderActionID, Value: []byte(it.ActionID)},
			{Key: wire.HeaderReversalJob, Value: []byte(j.ID)},
		},
	}, nil
}

// actionOf returns the action id a reversal record reverses, or false.
func actionOf(m kafka.Message) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == wire.HeaderActionID {
			return string(h.Value), true
		}
	}
	var r Record
	if err := json.Unmarshal(m.Value, &r); err != nil || r.ActionID == "" {
		return "", false
	}
	return r.ActionID, true
}

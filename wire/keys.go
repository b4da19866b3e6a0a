package wire

import (
	"fmt"
	"strconv"
	"strings"
)

// Keys is the layout of Breakwater's Redis keys. Every key starts with one
// hash tag, "{prefix}", so that every key lives in one Redis Cluster slot
// and one script can touch any of them; each script declares every key it
// touches in KEYS.
type Keys struct {
	tag string
}

// NewKeys returns the layout under the hash tag of prefix (given without
// braces).
func NewKeys(prefix string) (Keys, error) {
	if prefix == "" || strings.ContainsAny(prefix, "{} \t\r\n") {
		return Keys{}, fmt.Errorf("key prefix %q must be non-empty, without braces or spaces", prefix)
	}
	return Keys{tag: "{" + prefix + "}"}, nil
}

// Tag is the hash tag every key starts with, braces included.
func (k Keys) Tag() string { return k.tag }

// The rate store.

// Epoch marks a store whose breaker states are restored; its absence means
// Redis lost its data.
func (k Keys) Epoch() string { return k.tag + ":epoch" }

// Scopes is the set of breakers that ever left their initial status.
func (k Keys) Scopes() string { return k.tag + ":scopes" }

// Status is the status hash of one breaker.
func (k Keys) Status(scope string) string { return k.tag + ":s:" + scope }

// Ring is the counting ring of one breaker.
func (k Keys) Ring(scope string) string { return k.tag + ":r:" + scope }

// Evidence is the evidence detector's state of one breaker: its open bin,
// its evidence and its seasonal expectation.
func (k Keys) Evidence(scope string) string { return k.tag + ":e:" + scope }

// Records holds the decisions of one input partition's batches, for
// redeliveries.
func (k Keys) Records(topic string, partition int) string {
	return k.tag + ":o:" + topic + ":" + strconv.Itoa(partition)
}

// Replicated is a counter every replicated write of the rate store
// increments right before it waits for the replicas, so that the wait
// covers everything the primary wrote before it, even when the call
// itself wrote nothing (a replayed decision).
func (k Keys) Replicated() string { return k.tag + ":replicated" }

// Frontiers holds, per consumer group member, how far in event time it has
// decided the backlog of its partitions, with an expiry.
func (k Keys) Frontiers() string { return k.tag + ":frontiers" }

// The audit trail's index.

// Audit is the capped index of the audit trail.
func (k Keys) Audit() string { return k.tag + ":audit" }

// AuditBuilt marks the audit index as rebuilt from the topic.
func (k Keys) AuditBuilt() string { return k.tag + ":audit:built" }

// AuditGroup holds the progress of a group of audit entries (the batches
// of an incident's release, the steps of a standing decision), folded into
// the one entry of the index that shows them.
func (k Keys) AuditGroup(group string) string { return k.tag + ":audit:group:" + group }

// The review index of held actions.

// HeldNext maps each held partition to the next offset to index.
func (k Keys) HeldNext() string { return k.tag + ":held:next" }

// HeldReady marks the review index as complete.
func (k Keys) HeldReady() string { return k.tag + ":held:ready" }

// HeldAction is the hash of one held action.
func (k Keys) HeldAction(id string) string { return k.tag + ":held:a:" + id }

// HeldAll orders every held action by its position.
func (k Keys) HeldAll() string { return k.tag + ":held:all" }

// HeldIncidents orders the incidents by when they first held.
func (k Keys) HeldIncidents() string { return k.tag + ":held:incidents" }

// HeldIncident is the progress hash of one incident.
func (k Keys) HeldIncident(id string) string { return k.tag + ":held:i:" + id }

// HeldIncidentItems orders one incident's actions by position.
func (k Keys) HeldIncidentItems(id string) string { return k.tag + ":held:ii:" + id }

// HeldIncidentNotes holds the notes of one incident, by audit entry id.
func (k Keys) HeldIncidentNotes(id string) string { return k.tag + ":held:in:" + id }

// HeldStanding is the set of incidents whose standing decision is applied.
func (k Keys) HeldStanding() string { return k.tag + ":held:standing" }

// HeldByTarget orders the held actions of one target by when they were
// held. The key is "held:t:<type>:<id>" with the type's ':' and '%'
// percent-escaped, so that the first ':' after "held:t:" always ends the
// type and two targets never share a key (type "a:b" with id "c" and type
// "a" with id "b:c" did). A type with neither, as every usual type is,
// keeps the key it had before, so existing indexes need no migration.
func (k Keys) HeldByTarget(targetType, targetID string) string {
	if strings.ContainsAny(targetType, ":%") {
		targetType = strings.NewReplacer("%", "%25", ":", "%3A").Replace(targetType)
	}
	return k.tag + ":held:t:" + targetType + ":" + targetID
}

// HeldByKey orders the held actions of one record key (target) that still
// wait for their release.
func (k Keys) HeldByKey(key string) string { return k.tag + ":held:k:" + key }

// ReleaseQueue orders the decided actions waiting for release.
func (k Keys) ReleaseQueue() string { return k.tag + ":rel:queue" }

// ReleaseLock is the lease of the replica that releases.
func (k Keys) ReleaseLock() string { return k.tag + ":rel:lock" }

// ReleaseInflight records the batch being released.
func (k Keys) ReleaseInflight() string { return k.tag + ":rel:inflight" }

// Two-person approval.

// Approval is the JSON record of one approval request.
func (k Keys) Approval(id string) string { return k.tag + ":approval:" + id }

// Approvals orders the approval requests by when they were made.
func (k Keys) Approvals() string { return k.tag + ":approvals" }

// Reversals.

// RevJobs orders the reversal jobs by when they were approved.
func (k Keys) RevJobs() string { return k.tag + ":rev:jobs" }

// RevJob is the JSON record of one reversal job.
func (k Keys) RevJob(id string) string { return k.tag + ":rev:job:" + id }

// RevItems is the JSON list of the actions one reversal job reverses.
func (k Keys) RevItems(id string) string { return k.tag + ":rev:items:" + id }

// RevDone is the set of the action ids on the reversals topic.
func (k Keys) RevDone() string { return k.tag + ":rev:done" }

// RevRead maps each reversals partition to the next offset to read.
func (k Keys) RevRead() string { return k.tag + ":rev:read" }

// RevLock is the lease of the replica that writes reversals.
func (k Keys) RevLock() string { return k.tag + ":rev:lock" }

// RevBuilt marks the reversal state as rebuilt from the audit and
// reversals topics.
func (k Keys) RevBuilt() string { return k.tag + ":rev:built" }

// The appeals signal.

// AppealsJoin is one day's (UTC, by the actions' event time) join of
// forwarded actions: action id to rule, model version and event time, and
// "o:" plus the action id to the outcome recorded for it.
func (k Keys) AppealsJoin(day string) string { return k.tag + ":ap:j:" + day }

// AppealsMeta counts the forwarded actions of each day of the join and
// numbers the outcomes.
func (k Keys) AppealsMeta() string { return k.tag + ":ap:meta" }

// AppealsWindow is the latest outcomes of a rule, or of a model version of
// a rule (key as appeals.Key formats it).
func (k Keys) AppealsWindow(key string) string { return k.tag + ":ap:w:" + key }

// AppealsIndex lists the windows of AppealsWindow (their keys' names),
// scored by when an outcome was last recorded in each, in milliseconds.
func (k Keys) AppealsIndex() string { return k.tag + ":ap:index" }

// AppealsSwitch is whether the appeals trip is turned off, by whom, why
// and until when.
func (k Keys) AppealsSwitch() string { return k.tag + ":ap:switch" }

// The alert outbox.

// AlertPrefix starts every key of the alert outbox.
func (k Keys) AlertPrefix() string { return k.tag + ":alert:" }

// AlertStream is the outbox stream.
func (k Keys) AlertStream() string { return k.AlertPrefix() + "outbox" }

// AlertSeen remembers a raised event id.
func (k Keys) AlertSeen(id string) string { return k.AlertPrefix() + "seen:" + id }

// AlertSeq numbers the alert groups.
func (k Keys) AlertSeq() string { return k.AlertPrefix() + "seq" }

// AlertOpen names the group open for events of one kind and severity.
func (k Keys) AlertOpen(kind, severity string) string {
	return k.AlertPrefix() + "open:" + kind + ":" + severity
}

// AlertMembers lists the events of one group.
func (k Keys) AlertMembers(group string) string { return k.AlertPrefix() + "members:" + group }

// AlertFix records what the resolves of one group end.
func (k Keys) AlertFix(group string) string { return k.AlertPrefix() + "fix:" + group }

// AlertGroupOpen is the set of a group's incidents not resolved yet.
func (k Keys) AlertGroupOpen(group string) string { return k.AlertPrefix() + "gopen:" + group }

// AlertTrip records the incident and group of a scope's last trip.
func (k Keys) AlertTrip(scope string) string { return k.AlertPrefix() + "trip:" + scope }

// AlertDone marks a group delivered to one receiver.
func (k Keys) AlertDone(group, receiver string) string {
	return k.AlertPrefix() + "done:" + group + ":" + receiver
}

// Sign-in.

// Session is one person's console session, under the SHA-256 of its
// cookie, so that the keys do not hold usable cookies.
func (k Keys) Session(hash string) string { return k.tag + ":signin:session:" + hash }

// SignInState is one started OIDC sign-in, under the SHA-256 of its state,
// until its callback takes it (once).
func (k Keys) SignInState(hash string) string { return k.tag + ":signin:state:" + hash }

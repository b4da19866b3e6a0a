// Package api holds the admin API's wire types: the request and response
// bodies of every endpoint under /v1/, as the server writes them and its
// clients (the CLI, the web console's tests) read them.
//
// It imports nothing but the pure breaker and config packages, so that a
// client links neither Kafka, Redis nor the server's logging.
package api

import (
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
)

// Error is the body of every error answer.
type Error struct {
	// Error says what went wrong.
	Error string `json:"error"`
}

// Principal is the caller (GET /v1/whoami): the holder of a valid token,
// or a person signed in through OIDC or a trusted proxy.
type Principal struct {
	// Name is the token's name or the person's: the actor of what they do.
	Name string `json:"name"`
	// Role is what they may do.
	Role config.Role `json:"role"`
	// Via is how they signed in: token, oidc or proxy.
	Via string `json:"via,omitempty"`
	// CSRFToken, for a person signed in through OIDC, must come back in
	// the X-CSRF-Token header of every request that changes something.
	CSRFToken string `json:"csrf_token,omitempty"`
}

// Settings are what a client needs to know of the server's configuration
// (GET /v1/settings).
type Settings struct {
	// ConfirmAbove is the count of actions above which a bulk decision asks
	// the reviewer to type a confirmation (admin.confirm_above).
	ConfirmAbove int `json:"confirm_above"`
	// HistoryStep is the width of one point of a breaker's history.
	HistoryStep string `json:"history_step"`
	// HistorySpan is how far back a breaker's history goes: the longest
	// range of its chart.
	HistorySpan string `json:"history_span"`
	// ReleaseAbove is the count of held actions above which approving them
	// at once needs a second reviewer (approval.release_above).
	ReleaseAbove int `json:"release_above"`
}

// Breaker is one breaker as the API shows it.
type Breaker struct {
	// Scope is the breaker.
	Scope breaker.Scope `json:"scope"`
	breaker.Status
	// Holds is true when the scope's actions are held.
	Holds bool `json:"holds"`
	// Thresholds are the breaker's trip conditions.
	Thresholds Thresholds `json:"thresholds"`
	// Counts are the last window and baseline figures.
	Counts *Counts `json:"counts,omitempty"`
	// Explanation says why the breaker last tripped: the condition,
	// observed against expected or allowed, the evidence and the
	// estimated onset; absent when it never tripped.
	Explanation *breaker.Explanation `json:"explanation,omitempty"`
}

// Breakers is the answer of GET /v1/breakers.
type Breakers struct {
	// Breakers are sorted by scope.
	Breakers []Breaker `json:"breakers"`
}

// Thresholds are a policy with readable durations.
type Thresholds struct {
	Window         string  `json:"window"`
	MaxActions     float64 `json:"max_actions"`
	Baseline       string  `json:"baseline"`
	Factor         float64 `json:"factor"`
	MinActions     float64 `json:"min_actions"`
	AutoCloseAfter string  `json:"auto_close_after"`
	Probation      string  `json:"probation"`
	ProbationScale float64 `json:"probation_scale"`
	Disabled       bool    `json:"disabled"`
	// Evidence is the evidence detector's settings; absent when it is off.
	Evidence *Evidence `json:"evidence,omitempty"`
}

// Evidence is the evidence detector's settings (breakers.*.evidence).
type Evidence struct {
	Bin         string  `json:"bin"`
	Ratio       float64 `json:"ratio"`
	Threshold   float64 `json:"threshold"`
	MinExpected float64 `json:"min_expected"`
	Days        int     `json:"days"`
}

// Counts are a scope's figures at a moment.
type Counts struct {
	// Window is the weighted count in the window.
	Window float64 `json:"window"`
	// Baseline is the trailing average per window.
	Baseline float64 `json:"baseline"`
	// BaselineReady is true once a full baseline period was seen.
	BaselineReady bool `json:"baseline_ready"`
	// ObservedAt is when they were read.
	ObservedAt time.Time `json:"observed_at"`
	// EventTime is the scope's watermark, the latest event time counted,
	// when the counts come from the shared store.
	EventTime time.Time `json:"event_time,omitzero"`
	// Expected is the evidence detector's expected number of actions in
	// its open bin, Observed the number so far and Evidence its S (see
	// docs/detection.md); absent while it cannot judge the scope.
	Expected float64 `json:"expected,omitempty"`
	Observed float64 `json:"observed,omitempty"`
	Evidence float64 `json:"evidence,omitempty"`
}

// OverrideRequest is the body of POST /v1/breakers/{scope}/override.
type OverrideRequest struct {
	// State is forced_open, forced_closed or shadow.
	State breaker.State `json:"state"`
	// Reason is required.
	Reason string `json:"reason"`
	// For is how long the manual state lasts ("2h"); empty means until
	// the next reset or override.
	For string `json:"for,omitempty"`
	// BreakGlass, when set, is why a change that needs a second person's
	// approval cannot wait for one: it is applied at once, on-call is
	// paged and the audit trail flags it.
	BreakGlass string `json:"break_glass,omitempty"`
}

// ResetRequest is the body of POST /v1/breakers/{scope}/reset.
type ResetRequest struct {
	// Reason is required.
	Reason string `json:"reason"`
	// Probation is the scope's probation in effect ("0s"), which the
	// server fills in when the reset needs a second person's approval: the
	// payload of the request names it, and applying it fails if the
	// scope's probation changed meanwhile. A reset's body leaves it out.
	Probation string `json:"probation,omitempty"`
	// BreakGlass, when set, is why a reset that needs a second person's
	// approval (of a breaker that holds, in a scope without probation)
	// cannot wait for one (see OverrideRequest.BreakGlass).
	BreakGlass string `json:"break_glass,omitempty"`
}

// ChangeResponse answers an override or a reset.
type ChangeResponse struct {
	// Breaker is the breaker after the change.
	Breaker Breaker `json:"breaker"`
	// From is the status before.
	From breaker.Status `json:"from"`
}

// Point is one step of a breaker's history.
type Point struct {
	// At is the start of the step.
	At time.Time `json:"at"`
	// Window and Baseline are the counts read during the step.
	Window        float64 `json:"window"`
	Baseline      float64 `json:"baseline"`
	BaselineReady bool    `json:"baseline_ready"`
	// Held counts the actions held under the scope during the step.
	Held int64 `json:"held"`
	// Expected is the evidence detector's expected count for its open bin
	// (absent while it cannot judge the scope) and Evidence its S.
	Expected float64 `json:"expected,omitempty"`
	Evidence float64 `json:"evidence,omitempty"`
	// State is the breaker's state when it was read.
	State breaker.State `json:"state"`
}

// History is the answer of GET /v1/history: the recent points of every
// breaker, oldest first.
type History struct {
	// Step is the width of one point.
	Step string `json:"step"`
	// From and To bound the points.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Scopes are the points per breaker.
	Scopes map[breaker.Scope][]Point `json:"scopes"`
}

// AuditEntry is one record of the audit trail.
type AuditEntry struct {
	// ID is unique per entry.
	ID string `json:"id"`
	// At is when it happened.
	At time.Time `json:"at"`
	// Actor is the token name of the person, or "breakwater".
	Actor string `json:"actor"`
	// Kind is transition, override, reset, approve, reject, release,
	// acknowledge, owner, note, standing, standing_revoked or
	// standing_ended.
	Kind string `json:"kind"`
	// Scope is the breaker concerned.
	Scope breaker.Scope `json:"scope,omitempty"`
	// Reason is the operator's or the trip's reason.
	Reason string `json:"reason,omitempty"`
	// From and To are the breaker's status before and after.
	From *breaker.Status `json:"from,omitempty"`
	To   *breaker.Status `json:"to,omitempty"`
	// Incident names the incident of a review decision or of a change to
	// an incident (acknowledge, owner, note, standing decision).
	Incident string `json:"incident,omitempty"`
	// Count is how many held actions a review decision or release covered.
	Count int `json:"count,omitempty"`
	// Approval names the approval request an entry belongs to, Approver
	// is who approved what the entry records, and BreakGlass flags a
	// change applied without a second person.
	Approval   string `json:"approval,omitempty"`
	Approver   string `json:"approver,omitempty"`
	BreakGlass bool   `json:"break_glass,omitempty"`
	// Decision is approve or reject, for a standing decision set or
	// revoked.
	Decision string `json:"decision,omitempty"`
	// ActionID names the action of a decision on one action.
	ActionID string `json:"action_id,omitempty"`
	// Via is "standing" for the decisions a standing decision made.
	Via string `json:"via,omitempty"`
	// Owner is the new owner of an incident ("" when released).
	Owner string `json:"owner,omitempty"`
	// Window is the window count of a trip: the count that tripped it.
	Window float64 `json:"window,omitempty"`
	// Group, on one step of a longer piece of work (a batch of an
	// incident's release, a step of a standing decision), names the entry
	// the step is folded into: the journal keeps every step, the trail
	// shows one entry with its Progress. A release's batches are grouped
	// as "release/<incident>", a standing decision's steps under the id of
	// the standing entry.
	Group string `json:"group,omitempty"`
	// Progress, on the entry a group is shown as (an incident's release,
	// a standing decision), is what its steps did so far.
	Progress *AuditProgress `json:"progress,omitempty"`
}

// AuditProgress is what the steps of a release or a standing decision
// did so far, folded into the one audit entry that shows them.
type AuditProgress struct {
	// Count is how many actions the steps covered (released, or decided
	// by the standing decision); Steps how many steps there were.
	Count int `json:"count"`
	Steps int `json:"steps"`
	// First and Last are the times of the first and the latest step.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

// Audit is the answer of GET /v1/audit, newest first.
type Audit struct {
	// Entries are the matching entries.
	Entries []AuditEntry `json:"entries"`
}

// The lifecycle states of an incident.
const (
	// IncidentActive means its breaker still holds under the incident's
	// generation: new actions may join it.
	IncidentActive = "active"
	// IncidentContained means its breaker stopped holding under it (closed,
	// reset, overridden or tripped again under a new generation): nothing
	// new joins it, and some of its actions wait for a reviewer.
	IncidentContained = "contained"
	// IncidentReviewed means it is contained and nothing is pending; some
	// decided actions are not yet written to their topic.
	IncidentReviewed = "reviewed"
	// IncidentClosed means it is reviewed and every decided action is
	// written to the gated or rejected topic: nothing is left to do.
	IncidentClosed = "closed"
)

// Incident is the held actions of one trip and their review progress.
type Incident struct {
	// ID is "<scope>@<generation>".
	ID string `json:"id"`
	// Scope is the breaker that tripped.
	Scope string `json:"scope"`
	// State is active, contained, reviewed or closed (the Incident
	// constants); StateReason says why in a sentence.
	State       string `json:"state"`
	StateReason string `json:"state_reason"`
	// Standing is the decision that applies to every action the incident
	// holds now and will hold, if one is set.
	Standing *Standing `json:"standing,omitempty"`
	// AckBy and AckAt say who acknowledged the incident, and when.
	AckBy string    `json:"ack_by,omitempty"`
	AckAt time.Time `json:"ack_at,omitzero"`
	// Owner is who is responsible for it, if someone took it.
	Owner string `json:"owner,omitempty"`
	// Notes are what people wrote on it, oldest first.
	Notes []Note `json:"notes,omitempty"`
	// Continues names the incident of the same breaker that this one
	// continues: it tripped again within review.continue_within of the
	// last action that one held (after a reset, typically).
	Continues string `json:"continues,omitempty"`
	// ContinuedBy names the incident that continues this one.
	ContinuedBy string `json:"continued_by,omitempty"`
	// Held counts its held actions, Pending, Approved and Rejected by status.
	Held     int64 `json:"held"`
	Pending  int64 `json:"pending"`
	Approved int64 `json:"approved"`
	Rejected int64 `json:"rejected"`
	// Written counts the decided actions written to their topic: the
	// approved ones released to the gated topic (ApprovedReleased), the
	// rejected ones recorded on the rejected topic (RejectedWritten).
	// Actions written before the two were counted apart count in Written
	// only.
	Written          int64 `json:"written"`
	ApprovedReleased int64 `json:"approved_released"`
	RejectedWritten  int64 `json:"rejected_written"`
	// FirstHeldAt and LastHeldAt span its held actions.
	FirstHeldAt time.Time `json:"first_held_at"`
	LastHeldAt  time.Time `json:"last_held_at"`
	// Sample is the incident's estimated precision from the reviewers'
	// verdicts on single actions (GET /v1/incidents/{id} only; absent
	// before the first).
	Sample *SamplePrecision `json:"sample,omitempty"`
}

// AppealsTrip is the switch of the appeals trip (overturn_rate): GET and
// POST /v1/appeals/trip. Turning it off needs a second operator.
type AppealsTrip struct {
	// Enabled is false while the trip is turned off: outcomes are still
	// joined and judged, but no breaker trips on them.
	Enabled bool `json:"enabled"`
	// By, Approver and Reason say who changed it last, who approved, and
	// why; At when.
	By       string    `json:"by,omitempty"`
	Approver string    `json:"approver,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at,omitzero"`
	// Until is when a turned-off trip turns itself on again; zero means
	// until further notice.
	Until time.Time `json:"until,omitzero"`
}

// AppealsEstimates are the appeals signal's estimates (GET /v1/appeals):
// per rule and per model version of a rule, the latest outcomes as the
// overturn_rate trip judges them, and the policy they are judged under.
type AppealsEstimates struct {
	// Floor, Confidence, MinOutcomes and Window are the appeals section's
	// precision_floor, confidence, min_outcomes and window.
	Floor       float64 `json:"precision_floor"`
	Confidence  float64 `json:"confidence"`
	MinOutcomes int     `json:"min_outcomes"`
	Window      int     `json:"window"`
	// Trip is the switch of the trip.
	Trip AppealsTrip `json:"trip"`
	// Estimates are ordered by rule, the rule's own first, then its model
	// versions.
	Estimates []AppealsEstimate `json:"estimates"`
}

// AppealsEstimate is the estimate of one rule, or of one model version of
// a rule.
type AppealsEstimate struct {
	Rule         string `json:"rule_id"`
	ModelVersion string `json:"model_version,omitempty"`
	// Scope is the breaker of the estimate: rule:R, or rule:R|model:V.
	Scope string `json:"scope"`
	// Outcomes and Overturned count the latest outcomes judged: those of
	// actions forwarded after the last trip of the scope's breaker (or its
	// rule's). LeftOut counts the latest outcomes left out for a trip.
	Outcomes   int `json:"outcomes"`
	Overturned int `json:"overturned"`
	LeftOut    int `json:"left_out"`
	// Below is P(precision < floor) under a Beta(1 + upheld, 1 +
	// overturned) posterior.
	Below float64 `json:"p_below_floor"`
	// Trips is true when these outcomes alone trip (at least min_outcomes
	// and Below >= confidence); which breaker trips is decided with the
	// rule's other versions (docs/appeals.md).
	Trips bool `json:"trips"`
}

// AppealsTripRequest is the body of POST /v1/appeals/trip.
type AppealsTripRequest struct {
	// Enabled turns the trip on (at once) or off (with a second
	// operator's approval).
	Enabled bool `json:"enabled"`
	// Reason is required.
	Reason string `json:"reason"`
	// For, when turning it off, is how long (a Go duration); empty means
	// until further notice.
	For string `json:"for,omitempty"`
	// BreakGlass, when set, turns it off at once without approval (see
	// OverrideRequest.BreakGlass).
	BreakGlass string `json:"break_glass,omitempty"`
}

// SamplePrecision is what the reviewers found judging an incident's held
// actions one at a time (a sample): the share rejected estimates how much
// of what the breaker holds was wrong. Bulk decisions and decisions put
// back (undone) do not count.
type SamplePrecision struct {
	// Judged counts the actions judged one at a time, Rejected those
	// rejected.
	Judged   int `json:"judged"`
	Rejected int `json:"rejected"`
	// Wrong is Rejected over Judged.
	Wrong float64 `json:"wrong"`
	// Text says it: "17 of 20 sampled rejected: about 85% wrong".
	Text string `json:"text"`
}

// Standing is a standing decision on an incident: every action it holds,
// now and until its breaker stops holding under it, is approved or
// rejected without a reviewer looking at each.
type Standing struct {
	// Decision is approve or reject.
	Decision string `json:"decision"`
	// Actor set it, At is when, Reason is why.
	Actor  string    `json:"actor"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
	// Applied counts the actions it decided so far.
	Applied int64 `json:"applied"`
	// Entry is the id of its audit entry, which shows its progress.
	Entry string `json:"entry,omitempty"`
	// Ended is set once it stopped deciding: its incident no longer
	// holds and nothing of it is pending.
	Ended time.Time `json:"ended,omitzero"`
}

// Note is a remark on an incident.
type Note struct {
	// Actor wrote it at At.
	Actor string    `json:"actor"`
	At    time.Time `json:"at"`
	// Text is the note.
	Text string `json:"text"`
}

// StandingRequest is the body of POST /v1/incidents/{id}/standing.
type StandingRequest struct {
	// Decision is approve or reject.
	Decision string `json:"decision"`
	// Reason is required: it is what the audit trail says of every action
	// the decision covers.
	Reason string `json:"reason"`
}

// AckRequest is the body of POST /v1/incidents/{id}/ack.
type AckRequest struct {
	// Note, if set, is added to the incident's notes.
	Note string `json:"note,omitempty"`
}

// OwnerRequest is the body of POST /v1/incidents/{id}/owner.
type OwnerRequest struct {
	// Owner is who takes the incident; "" releases it.
	Owner string `json:"owner"`
}

// NoteRequest is the body of POST /v1/incidents/{id}/notes.
type NoteRequest struct {
	// Text is the note, up to 2,000 characters.
	Text string `json:"text"`
}

// Incidents is the answer of GET /v1/incidents.
type Incidents struct {
	// Incidents are the incidents, newest first.
	Incidents []Incident `json:"incidents"`
}

// Breakdown counts an incident's held actions by what they are
// (GET /v1/incidents/{id}/breakdown).
type Breakdown struct {
	// Incident is the incident's id.
	Incident string `json:"incident"`
	// Action, ModelVersion and Region count the held actions per action
	// type, model version and region ("" when the event had none).
	Action       map[string]int64 `json:"action"`
	ModelVersion map[string]int64 `json:"model_version"`
	Region       map[string]int64 `json:"region"`
	// Counted is how many held actions were counted; Truncated is true
	// when the incident has more than the server counts in one answer
	// (10,000): the counts are then those of its first held actions.
	Counted   int64 `json:"counted"`
	Truncated bool  `json:"truncated"`
}

// Held is one held action and its review status.
type Held struct {
	// ActionID is the action's idempotency key.
	ActionID string `json:"action_id"`
	// Incident is the trip it was held under ("<scope>@<generation>").
	Incident string `json:"incident"`
	// Scope is the breaker that held it.
	Scope string `json:"scope"`
	// Rule, Action, TargetType and TargetID come from the event.
	Rule       string `json:"rule_id"`
	Action     string `json:"action"`
	TargetType string `json:"target_type"`
	TargetID   string `json:"target_id"`
	// ModelName, ModelVersion, Region and Confidence are optional fields
	// of the event; Confidence is absent when the event had none.
	ModelName    string   `json:"model_name,omitempty"`
	ModelVersion string   `json:"model_version,omitempty"`
	Region       string   `json:"region,omitempty"`
	Confidence   *float64 `json:"confidence,omitempty"`
	// RuleDescription is the rule's description from the configuration
	// (breakers.rules.<rule>.description).
	RuleDescription string `json:"rule_description,omitempty"`
	// TargetURL links to the target in the moderation tool, from the
	// review.target_url template.
	TargetURL string `json:"target_url,omitempty"`
	// OccurredAt is the event time.
	OccurredAt time.Time `json:"occurred_at"`
	// HeldAt is when it was written to the held topic.
	HeldAt time.Time `json:"held_at"`
	// Partition and Offset locate it on the held topic.
	Partition int   `json:"partition"`
	Offset    int64 `json:"offset"`
	// Source is the input topic/partition/offset it came from.
	Source string `json:"source,omitempty"`
	// HoldReason says why an action held without a trip was held: the
	// outage policy (store_unavailable), or a suppression after a
	// reversal ("suppressed: ..." naming the reversal and until when).
	// Empty for an action its incident's breaker held.
	HoldReason string `json:"hold_reason,omitempty"`
	// Status is pending, approved or rejected.
	Status string `json:"status"`
	// Reviewer is who approved or rejected it, DecidedAt when; Via is
	// "standing" when the reviewer's standing decision on its incident
	// decided it rather than the reviewer looking at it.
	Reviewer  string    `json:"reviewer,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Via       string    `json:"via,omitempty"`
	// Released is true once it is on the gated (approved) or rejected topic.
	Released bool `json:"released"`
}

// HeldPage is one page of held actions in held order (GET /v1/held).
type HeldPage struct {
	// Items are the held actions.
	Items []Held `json:"items"`
	// Next is the cursor of the next page, "" after the last.
	Next string `json:"next_cursor,omitempty"`
}

// Related is the answer of GET /v1/held/{id}/related: the other held
// actions on the same target, in any incident, newest first.
type Related struct {
	// Target is "<type>:<id>".
	Target string `json:"target"`
	// Items are the other actions, at most 20.
	Items []Held `json:"items"`
}

// Pick is the answer of GET /v1/incidents/{id}/pick: pending actions of an
// incident drawn at random, for a reviewer to look at one by one.
type Pick struct {
	// Items are the drawn actions.
	Items []Held `json:"items"`
	// Pending is how many were pending when they were drawn.
	Pending int `json:"pending"`
}

// Forwarded is an action that reached the gated topic.
type Forwarded struct {
	// ActionID, Rule, Action, TargetType and TargetID come from the event.
	ActionID   string `json:"action_id"`
	Rule       string `json:"rule_id"`
	Action     string `json:"action"`
	TargetType string `json:"target_type"`
	TargetID   string `json:"target_id"`
	// OccurredAt is the event time.
	OccurredAt time.Time `json:"occurred_at"`
	// ForwardedAt is the timestamp of the gated record.
	ForwardedAt time.Time `json:"forwarded_at"`
	// Partition and Offset locate it on the gated topic.
	Partition int   `json:"partition"`
	Offset    int64 `json:"offset"`
}

// LookBack is what was forwarded of a scope shortly before a trip
// (GET /v1/incidents/{id}/lookback).
type LookBack struct {
	// From and To bound the window, in gated-topic time.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Actions are the scope's actions forwarded in the window, oldest first.
	Actions []Forwarded `json:"actions"`
	// Truncated is true when more than the limit were found.
	Truncated bool `json:"truncated"`
}

// DecideRequest is the body of POST /v1/held/approve and /v1/held/reject.
type DecideRequest struct {
	// IDs are the action ids.
	IDs []string `json:"ids"`
	// Reason is optional.
	Reason string `json:"reason,omitempty"`
	// BreakGlass, when set, is why a release that needs a second person's
	// approval cannot wait for one (see OverrideRequest.BreakGlass).
	BreakGlass string `json:"break_glass,omitempty"`
}

// IncidentDecisionRequest is the body of POST /v1/incidents/{id}/approve
// and /v1/incidents/{id}/reject.
type IncidentDecisionRequest struct {
	// Reason is optional.
	Reason string `json:"reason,omitempty"`
	// BreakGlass, when set, is why a release that needs a second person's
	// approval cannot wait for one (see OverrideRequest.BreakGlass).
	BreakGlass string `json:"break_glass,omitempty"`
	// Through, if positive, limits the decision to the incident's first
	// Through held actions: the held count the reviewer saw when deciding.
	// Actions the incident held after it stay pending, so that the count
	// a dialog showed is the count decided.
	Through int64 `json:"through,omitempty"`
}

// SampleRequest is the body of POST /v1/incidents/{id}/sample.
type SampleRequest struct {
	// N is how many pending actions to approve at random.
	N int `json:"n"`
	// Reason is optional.
	Reason string `json:"reason,omitempty"`
	// BreakGlass, when set, is why a release that needs a second person's
	// approval cannot wait for one (see OverrideRequest.BreakGlass).
	BreakGlass string `json:"break_glass,omitempty"`
}

// Outcome is what a decision call did.
type Outcome struct {
	// Changed counts the actions that were pending and now carry the decision.
	Changed int `json:"changed"`
	// Already counts the actions that already carried the same decision.
	Already int `json:"already"`
	// Conflicts are the actions that carry the other decision; they keep it.
	Conflicts []string `json:"conflicts"`
	// Unknown are the ids the index does not know.
	Unknown []string `json:"unknown"`
}

// UndoResponse answers POST /v1/held/undo.
type UndoResponse struct {
	// Undone are the actions put back to pending.
	Undone []string `json:"undone"`
	// Released are the actions already written to their topic (or being
	// written): their decision stands.
	Released []string `json:"released"`
	// Pending are the actions that carried no decision.
	Pending []string `json:"pending"`
	// Unknown are the ids the index does not know.
	Unknown []string `json:"unknown"`
}

// DecideResponse answers a decision.
type DecideResponse struct {
	Outcome
	// Sampled are the ids a sample approved.
	Sampled []string `json:"sampled,omitempty"`
}

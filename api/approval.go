package api

import (
	"encoding/json"
	"time"

	"github.com/breakwater/breakwater/config"
)

// Operation names what an approval request does once approved.
type Operation string

// The operations that need a second person's approval.
const (
	// OpOverride forces a breaker that holds closed or into shadow. Its
	// target is the scope and its payload an OverrideRequest.
	OpOverride Operation = "override"
	// OpRelease approves held actions for release to the gated topic. Its
	// target is the incident ("" for actions of several incidents) and its
	// payload a DecideRequest naming every action id.
	OpRelease Operation = "release"
	// OpReset resets a breaker that holds while its scope has no
	// probation, which closes it outright. Its target is the scope and its
	// payload a ResetRequest naming the probation in effect ("0s").
	OpReset Operation = "reset"
)

// ApprovalStatus is where an approval request stands.
type ApprovalStatus string

// The statuses of an approval request.
const (
	// ApprovalPending waits for a second person.
	ApprovalPending ApprovalStatus = "pending"
	// ApprovalApproved was approved; applying it failed or is under way,
	// and approving it again applies it again.
	ApprovalApproved ApprovalStatus = "approved"
	// ApprovalApplied was approved and applied.
	ApprovalApplied ApprovalStatus = "applied"
	// ApprovalRefused was refused by an approver or withdrawn by its
	// requester; it is never applied.
	ApprovalRefused ApprovalStatus = "refused"
	// ApprovalExpired was not approved in time; it is never applied.
	ApprovalExpired ApprovalStatus = "expired"
	// ApprovalBreakGlass was applied by its requester alone, with a
	// reason, on-call paged.
	ApprovalBreakGlass ApprovalStatus = "break_glass"
)

// Approval is a request for an operation that needs a second person, and
// what became of it (GET /v1/approvals/{id}).
type Approval struct {
	// ID names the request.
	ID string `json:"id"`
	// Operation is what it does, Target what it does it to (a scope or an
	// incident).
	Operation Operation `json:"operation"`
	Target    string    `json:"target,omitempty"`
	// Payload is the exact request body that is applied once approved:
	// an OverrideRequest or a DecideRequest. Lists leave it out.
	Payload json.RawMessage `json:"payload,omitempty"`
	// PayloadSHA256 is the hex SHA-256 of operation, target and payload;
	// an approval names it, so that an edit voids every approval given
	// before it.
	PayloadSHA256 string `json:"payload_sha256"`
	// Count is how many held actions a release concerns.
	Count int `json:"count,omitempty"`
	// Summary says in one line what it does.
	Summary string `json:"summary"`
	// Requester is who asked; Role is the least role that may approve.
	Requester string      `json:"requester"`
	Role      config.Role `json:"role"`
	// RequestedAt is when it was asked, or last edited; ExpiresAt is when
	// it expires unless approved.
	RequestedAt time.Time `json:"requested_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	// Edits counts the edits of the payload.
	Edits int `json:"edits,omitempty"`
	// Status is where it stands.
	Status ApprovalStatus `json:"status"`
	// DecidedBy is who approved or refused it; DecidedAt when; Reason is
	// the refusal's reason, or the break-glass reason.
	DecidedBy string    `json:"decided_by,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Reason    string    `json:"reason,omitempty"`
	// AppliedAt is when it was applied; Result is what applying it answered
	// (a ChangeResponse or a DecideResponse); Error is the last failure to
	// apply it.
	AppliedAt time.Time       `json:"applied_at,omitzero"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     string          `json:"error,omitempty"`
}

// Approvals is the answer of GET /v1/approvals, newest first.
type Approvals struct {
	// Approvals are the requests, without their payloads.
	Approvals []Approval `json:"approvals"`
}

// ApproveRequest is the body of POST /v1/approvals/{id}/approve.
type ApproveRequest struct {
	// PayloadSHA256 is the hash of the payload the approver read; the
	// approval is refused if the request was edited since.
	PayloadSHA256 string `json:"payload_sha256"`
}

// RefuseRequest is the body of POST /v1/approvals/{id}/refuse.
type RefuseRequest struct {
	// Reason is required.
	Reason string `json:"reason"`
}

// EditRequest is the body of PUT /v1/approvals/{id}: the new payload, a
// whole OverrideRequest or DecideRequest. Only the requester may edit, and
// an edit voids every approval of the old payload.
type EditRequest struct {
	// Payload replaces the request's payload.
	Payload json.RawMessage `json:"payload"`
}

// OpReversal writes compensating records for forwarded actions of an
// incident. Its target is the incident and its payload a ReversalRequest
// naming every action id.
const OpReversal Operation = "reversal"

// ReversalRequest is the body of POST /v1/incidents/{id}/reversal, and,
// with IDs filled in, the payload of its approval request.
type ReversalRequest struct {
	// Reason is required.
	Reason string `json:"reason"`
	// Actions, if set, keeps only these action types.
	Actions []string `json:"actions,omitempty"`
	// From and To, if set, narrow the window (forwarding time) within the
	// preview's.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// IDs are the action ids reversed; the server fills them in from the
	// candidates, and an approval request names them.
	IDs []string `json:"ids,omitempty"`
	// BreakGlass, when set, is why the reversal cannot wait for a second
	// person (see OverrideRequest.BreakGlass).
	BreakGlass string `json:"break_glass,omitempty"`
}

// ReversalPreview is the answer of GET /v1/incidents/{id}/reversal: the
// forwarded actions of the incident's scope a reversal would undo.
type ReversalPreview struct {
	// Incident and Scope name the trip.
	Incident string `json:"incident"`
	Scope    string `json:"scope"`
	// From and To bound the window in forwarding time: from the estimated
	// onset to the trip. Onset says where From comes from: "detector"
	// (the tripping transition's estimated onset, in event time: the
	// candidates are the actions stamped from it on and forwarded until
	// To) or "lookback" (the breaker's window before the first held
	// action, in forwarding time).
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Onset string    `json:"onset"`
	// Candidates counts the actions a reversal would write;
	// AlreadyReversed those left out because an earlier reversal wrote
	// them.
	Candidates      int `json:"candidates"`
	AlreadyReversed int `json:"already_reversed"`
	// Action, Rule, ModelVersion and Region count the candidates.
	Action       map[string]int `json:"action"`
	Rule         map[string]int `json:"rule"`
	ModelVersion map[string]int `json:"model_version"`
	Region       map[string]int `json:"region"`
	// Sample is up to 20 candidates, spread over the window.
	Sample []Forwarded `json:"sample"`
}

// Reversal is one reversal job and its progress (GET /v1/reversals/{id}).
type Reversal struct {
	// ID names the job (its approval request).
	ID string `json:"id"`
	// Incident is the trip; From and To the window it reverses.
	Incident string    `json:"incident"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	// RequestedBy, ApprovedBy, BreakGlass and Reason say who and why.
	RequestedBy string `json:"requested_by"`
	ApprovedBy  string `json:"approved_by,omitempty"`
	BreakGlass  bool   `json:"break_glass,omitempty"`
	Reason      string `json:"reason"`
	// Total counts the actions it reverses; Written those on the reversals
	// topic, by this job or an earlier one.
	Total   int `json:"total"`
	Written int `json:"written"`
	// Status is running or done.
	Status string `json:"status"`
	// StartedAt and FinishedAt bound it.
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Reversals is the answer of GET /v1/reversals, newest first.
type Reversals struct {
	// Reversals are the jobs.
	Reversals []Reversal `json:"reversals"`
}

// OpAppealsTrip turns the appeals trip (overturn_rate) off. Its target is
// "appeals" and its payload an AppealsTripRequest with Enabled false.
const OpAppealsTrip Operation = "appeals_trip"

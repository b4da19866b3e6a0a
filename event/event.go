// Package event decodes and validates schema v1 action events, the JSON
// objects that moderation systems publish to Kafka, one per message value.
//
// The decoder is a hand-written single-pass scanner. It validates the JSON
// syntax of the whole value, because Breakwater forwards the original bytes
// to enforcement unchanged, but it decodes only the members that a decision
// needs: action_id, rule_id, action, target.type, target.id and occurred_at
// (all required), and model.name, model.version and region (optional; null
// counts as absent). All other members, at any level, are checked for syntax
// and otherwise ignored.
//
// The decoder is stricter than encoding/json in a few ways that matter for an
// event that will be forwarded to consumers written in other languages:
//
//   - A member that the decoder reads may appear only once in its object,
//     because encoding/json silently keeps the last one and other decoders
//     keep the first (ReasonDuplicateField).
//   - A key that matches the name of a member the decoder reads only when
//     letter case is ignored (for example "Action_ID"), which encoding/json
//     would accept for that member and case-sensitive decoders would not, is
//     rejected (ReasonInvalidField).
//   - The strings that the decoder reads must be valid UTF-8 and must not
//     contain an unpaired UTF-16 surrogate escape; encoding/json would
//     silently replace those with U+FFFD (ReasonInvalidField).
//   - Containers may nest at most 64 deep (ReasonMalformed).
//
// Whenever Decode succeeds, the value is valid JSON, and encoding/json would
// decode the same strings from it. A value with several problems is reported
// with the first of: a syntax error, the first schema error in document
// order, a missing member, and an occurred_at that does not parse.
package event

import (
	"errors"
	"strconv"
	"time"
)

// MaxValueBytes is the largest message value, in bytes, that Decode accepts;
// larger values are rejected with ReasonTooLarge before they are scanned.
const MaxValueBytes = 1 << 20

// Limits on the decoded (unescaped) lengths of the required string fields, and
// the nesting depth of containers, which the top-level object counts as 1.
const (
	maxActionIDBytes = 128
	maxRuleIDBytes   = 256
	maxActionBytes   = 64
	maxDepth         = 64
)

// Action is the part of a schema v1 action event that Breakwater decides on.
//
// Its strings never alias the value that was decoded, so they stay valid after
// that buffer is reused. The strings of one Action may share a single
// allocation.
type Action struct {
	// ActionID is the idempotency key of the action (action_id).
	ActionID string
	// RuleID identifies the moderation rule that produced the action (rule_id).
	RuleID string
	// Action is the kind of action, for example ban_account or remove_pin.
	Action string
	// TargetType is the kind of object the action applies to (target.type).
	TargetType string
	// TargetID identifies the object the action applies to (target.id).
	TargetID string
	// OccurredAt is the event time (occurred_at), parsed with the
	// time.RFC3339Nano layout.
	OccurredAt time.Time
	// ModelName is the name of the model that triggered the rule
	// (model.name), or "" when absent.
	ModelName string
	// ModelVersion is the version of that model (model.version), or "" when
	// absent.
	ModelVersion string
	// Region is the region the action applies to (region), or "" when absent.
	Region string
}

// Reason is a short machine-readable reason why a value was rejected. It is
// used as a Kafka header value on the dead-letter topic.
type Reason string

// The reasons a value can be rejected for.
const (
	// ReasonMalformed means the value is not valid JSON, or nests deeper than
	// 64 containers.
	ReasonMalformed Reason = "malformed_json"
	// ReasonNotObject means the value is valid JSON but not an object.
	ReasonNotObject Reason = "not_an_object"
	// ReasonMissingField means a required member is absent.
	ReasonMissingField Reason = "missing_field"
	// ReasonInvalidField means a member has the wrong JSON type or a value
	// that breaks the schema.
	ReasonInvalidField Reason = "invalid_field"
	// ReasonDuplicateField means a member that the decoder reads appears more
	// than once in its object.
	ReasonDuplicateField Reason = "duplicate_field"
	// ReasonTooLarge means the value is longer than MaxValueBytes.
	ReasonTooLarge Reason = "too_large"
)

// ErrMalformed is the error that a *DecodeError with ReasonMalformed wraps:
// the value is not valid JSON.
var ErrMalformed = errors.New("event: malformed JSON")

// ErrInvalid is the error that every *DecodeError other than ReasonMalformed
// wraps: the value does not satisfy the schema.
var ErrInvalid = errors.New("event: invalid event")

// DecodeError describes why a value was rejected.
type DecodeError struct {
	// Reason classifies the problem.
	Reason Reason
	// Field is the dotted path of the member concerned, for example
	// "action_id" or "target.type", or "" when no single member is.
	Field string
	// Detail is a human-readable description, or "".
	Detail string
}

// Error formats the error as the reason followed by the field and the detail,
// for example `missing_field: "occurred_at"` or
// `invalid_field "action_id": longer than 128 bytes`.
func (e *DecodeError) Error() string {
	switch {
	case e.Field == "" && e.Detail == "":
		return string(e.Reason)
	case e.Field == "":
		return string(e.Reason) + ": " + e.Detail
	case e.Detail == "":
		return string(e.Reason) + ": " + strconv.Quote(e.Field)
	default:
		return string(e.Reason) + " " + strconv.Quote(e.Field) + ": " + e.Detail
	}
}

// Unwrap returns ErrMalformed for JSON syntax problems and ErrInvalid for all
// other problems.
func (e *DecodeError) Unwrap() error {
	if e.Reason == ReasonMalformed {
		return ErrMalformed
	}
	return ErrInvalid
}

// Decode parses and validates one event. On bad input it returns a
// *DecodeError, which wraps ErrMalformed or ErrInvalid.
func Decode(value []byte) (Action, error) {
	var a Action
	err := DecodeInto(&a, value)
	return a, err
}

// DecodeInto is the allocation-conscious form of Decode used on the hot path.
// It overwrites *a: with the decoded event on success, and with the zero
// Action on error. A typical event with a UTC timestamp costs one allocation.
func DecodeInto(a *Action, value []byte) error {
	*a = Action{}
	if len(value) > MaxValueBytes {
		return &DecodeError{
			Reason: ReasonTooLarge,
			Detail: strconv.Itoa(len(value)) + " bytes exceeds the limit of " + strconv.Itoa(MaxValueBytes),
		}
	}
	d := decoder{data: value}
	if err := d.document(); err != nil {
		return err
	}
	return d.finish(a)
}

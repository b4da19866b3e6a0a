// Package appeals turns the outcomes of the appeals system into a
// precision signal per rule and model version: each outcome (an appeal of
// a forwarded action, overturned or upheld) is joined to the action it is
// about, and when the recent outcomes of a rule, or of one model version of
// a rule, make it likely that its precision fell below a floor, the rule's
// breaker trips with reason overturn_rate.
//
// The record parser, the statistics and the judgement (Judge, Tracker) are
// pure; the live daemon keeps the join and the outcomes in Redis (Store)
// and reads the appeals topic with its own consumer (Service), outside the
// per-batch decision of the action pipeline.
package appeals

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Outcome is what the appeals system decided.
type Outcome string

// The outcomes.
const (
	// Overturned means the action was wrong and is undone.
	Overturned Outcome = "overturned"
	// Upheld means the action stands.
	Upheld Outcome = "upheld"
)

// MaxActionID is the longest action_id, as in the action event.
const MaxActionID = 128

// MaxRecordBytes is the largest record the parser reads.
const MaxRecordBytes = 64 << 10

// ErrMalformed is wrapped by every error of Parse.
var ErrMalformed = errors.New("malformed appeal outcome")

// Record is one outcome of the appeals topic (schema version 1).
type Record struct {
	// ActionID is the action_id of the action appealed, as Breakwater
	// forwarded it to the gated topic.
	ActionID string `json:"action_id"`
	// Outcome is overturned or upheld.
	Outcome Outcome `json:"outcome"`
	// DecidedAt is when the appeal was decided.
	DecidedAt time.Time `json:"decided_at"`
}

// Parse reads one record: a JSON object with action_id (1 to 128
// characters), outcome ("overturned" or "upheld") and decided_at (RFC
// 3339). Other members are ignored; a member given twice, a value of the
// wrong type or trailing data is an error wrapping ErrMalformed.
func Parse(b []byte) (Record, error) {
	if len(b) > MaxRecordBytes {
		return Record{}, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(b), MaxRecordBytes)
	}
	if !utf8.Valid(b) {
		return Record{}, fmt.Errorf("%w: not UTF-8", ErrMalformed)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if raw == nil {
		return Record{}, fmt.Errorf("%w: want a JSON object", ErrMalformed)
	}
	if _, err := dec.Token(); err == nil {
		return Record{}, fmt.Errorf("%w: data after the object", ErrMalformed)
	}
	if err := duplicateMember(b); err != nil {
		return Record{}, err
	}
	str := func(name string) (string, error) {
		v, ok := raw[name]
		if !ok {
			return "", fmt.Errorf("%w: %s is missing", ErrMalformed, name)
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", fmt.Errorf("%w: %s must be a string", ErrMalformed, name)
		}
		return s, nil
	}
	var r Record
	var err error
	if r.ActionID, err = str("action_id"); err != nil {
		return Record{}, err
	}
	if r.ActionID == "" || len(r.ActionID) > MaxActionID {
		return Record{}, fmt.Errorf("%w: action_id must be 1 to %d bytes, got %d", ErrMalformed, MaxActionID, len(r.ActionID))
	}
	o, err := str("outcome")
	if err != nil {
		return Record{}, err
	}
	r.Outcome = Outcome(o)
	if r.Outcome != Overturned && r.Outcome != Upheld {
		return Record{}, fmt.Errorf("%w: outcome must be %q or %q, got %q", ErrMalformed, Overturned, Upheld, o)
	}
	at, err := str("decided_at")
	if err != nil {
		return Record{}, err
	}
	if r.DecidedAt, err = time.Parse(time.RFC3339Nano, at); err != nil {
		return Record{}, fmt.Errorf("%w: decided_at must be an RFC 3339 time, got %q", ErrMalformed, at)
	}
	r.DecidedAt = r.DecidedAt.UTC()
	return r, nil
}

// duplicateMember fails when a top-level member is given twice (a record
// read one way by one consumer and another way by another).
func duplicateMember(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		k, _ := t.(string)
		if seen[k] {
			return fmt.Errorf("%w: %s is given twice", ErrMalformed, k)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	return nil
}

// Encode returns the record as the appeals topic carries it.
func (r Record) Encode() []byte {
	b, _ := json.Marshal(struct {
		ActionID  string  `json:"action_id"`
		Outcome   Outcome `json:"outcome"`
		DecidedAt string  `json:"decided_at"`
	}{r.ActionID, r.Outcome, r.DecidedAt.UTC().Format(time.RFC3339Nano)})
	return b
}

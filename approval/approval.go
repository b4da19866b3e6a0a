// Package approval keeps two-person approval: a change that can do harm is
// a request carrying its exact payload, applied only once a different
// person with the needed role approved it, naming the hash of that payload
// (so that an edit voids every earlier approval), before it expires.
//
// The rules (who may approve, refuse or edit what, and when) are pure
// functions of a request, a person and a time; Store keeps the requests in
// Redis and changes them atomically, so that two replicas never both
// approve, or approve an edited payload.
package approval

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/breakwater/breakwater/api"
)

// Errors the API maps to answers.
var (
	// ErrNotFound is a request that does not exist (or is past its retention).
	ErrNotFound = errors.New("no such approval request")
	// ErrSelf is a requester approving their own request.
	ErrSelf = errors.New("a request must be approved by a different person than its requester")
	// ErrRole is a person whose role is below the one the request needs.
	ErrRole = errors.New("role may not decide this request")
	// ErrStale is an approval naming a payload hash that is not the
	// request's: the request was edited since the approver read it.
	ErrStale = errors.New("the request's payload changed since it was read; read it again")
	// ErrExpired is a request past its expiry.
	ErrExpired = errors.New("the request expired")
	// ErrDecided is a request that was already refused, applied or expired.
	ErrDecided = errors.New("the request is already decided")
	// ErrNotRequester is an edit by someone other than the requester.
	ErrNotRequester = errors.New("only the requester may edit a request")
)

// Hash returns the hex SHA-256 that binds an approval to a request: of its
// operation, target and payload bytes, each length-prefixed so that no two
// different requests share the bytes hashed.
func Hash(op api.Operation, target string, payload []byte) string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(op), []byte(target), payload} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// NewID returns a random request id.
func NewID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Status returns the status of a at now: a pending request past its
// expiry is expired.
func Status(a api.Approval, now time.Time) api.ApprovalStatus {
	if a.Status == api.ApprovalPending && !now.Before(a.ExpiresAt) {
		return api.ApprovalExpired
	}
	return a.Status
}

// CheckApprove reports why who may not approve a at now, naming the payload
// hash sum, or nil. A request already approved (whose application failed
// or was cut short) may be approved again, which applies it again; the
// operations are idempotent.
func CheckApprove(a api.Approval, who api.Principal, sum string, now time.Time) error {
	switch st := Status(a, now); st {
	case api.ApprovalPending, api.ApprovalApproved:
	case api.ApprovalExpired:
		return fmt.Errorf("%w at %s", ErrExpired, a.ExpiresAt.Format(time.RFC3339))
	default:
		return fmt.Errorf("%w: it is %s", ErrDecided, st)
	}
	switch {
	case who.Name == a.Requester:
		return ErrSelf
	case !who.Role.Allows(a.Role):
		return fmt.Errorf("%w: %s is %s, the request needs %s", ErrRole, who.Name, who.Role, a.Role)
	case sum != a.PayloadSHA256:
		return fmt.Errorf("%w (approved %.12s, the request is %.12s)", ErrStale, sum, a.PayloadSHA256)
	case a.Status == api.ApprovalApproved && a.DecidedBy != who.Name:
		// The first approver stays the approver of record.
		return fmt.Errorf("%w: %s approved it; only they may apply it again", ErrDecided, a.DecidedBy)
	}
	return nil
}

// CheckRefuse reports why who may not refuse a at now, or nil. The
// requester may withdraw their own request; anyone else needs the role
// that approving needs.
func CheckRefuse(a api.Approval, who api.Principal, now time.Time) error {
	if st := Status(a, now); st != api.ApprovalPending {
		return fmt.Errorf("%w: it is %s", ErrDecided, st)
	}
	if who.Name != a.Requester && !who.Role.Allows(a.Role) {
		return fmt.Errorf("%w: %s is %s, the request needs %s", ErrRole, who.Name, who.Role, a.Role)
	}
	return nil
}

// CheckEdit reports why who may not edit a at now, or nil. Only the
// requester edits, while the request is pending or approved but not yet
// applied; the edit voids the approval.
func CheckEdit(a api.Approval, who api.Principal, now time.Time) error {
	switch st := Status(a, now); st {
	case api.ApprovalPending, api.ApprovalApproved:
	case api.ApprovalExpired:
		return fmt.Errorf("%w at %s", ErrExpired, a.ExpiresAt.Format(time.RFC3339))
	default:
		return fmt.Errorf("%w: it is %s", ErrDecided, st)
	}
	if who.Name != a.Requester {
		return ErrNotRequester
	}
	if !who.Role.Allows(a.Role) {
		return fmt.Errorf("%w: %s is %s, the request needs %s", ErrRole, who.Name, who.Role, a.Role)
	}
	return nil
}

// Edit returns a with its payload replaced, its hash recomputed, any
// approval voided and its expiry restarted at now.
func Edit(a api.Approval, payload []byte, summary string, count int, now time.Time, expireAfter time.Duration) api.Approval {
	a.Payload = append([]byte(nil), payload...)
	a.PayloadSHA256 = Hash(a.Operation, a.Target, payload)
	a.Summary, a.Count = summary, count
	a.Status = api.ApprovalPending
	a.DecidedBy, a.DecidedAt, a.Error = "", time.Time{}, ""
	a.RequestedAt = now
	a.ExpiresAt = now.Add(expireAfter)
	a.Edits++
	return a
}

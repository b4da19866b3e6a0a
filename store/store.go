// Package store keeps the counts and breaker states that all replicas share.
//
// Redis is the live store: one Lua script call per batch counts the batch,
// decides every breaker it touches and records the decisions for
// redeliveries, atomically, so that replicas agree. Memory is the in-process
// store for replays and tests. Both only persist: the decision itself is
// decide.Step, which decide.lua mirrors.
package store

import (
	"errors"
	"time"

	"github.com/breakwater/breakwater/breaker"
)

// ErrStateLost means the store lost its data (for example a Redis restart
// without persistence): breaker states must be restored from the durable
// record before anything is decided.
var ErrStateLost = errors.New("rate store lost its state")

// ScopeStatus is one breaker's status, as listed and restored.
type ScopeStatus struct {
	// Scope is the breaker.
	Scope breaker.Scope `json:"scope"`
	// Status is its status.
	Status breaker.Status `json:"status"`
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

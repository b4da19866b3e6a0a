// Package store keeps the counts and breaker states that all replicas share.
//
// Redis is the live store: one Lua script call per batch counts the batch,
// decides every breaker it touches and records the decisions for
// redeliveries, atomically, so that replicas agree. Memory is the in-process
// store for replays and tests; it applies the same rules from package breaker.
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

// Batch is what one decision call counts and decides.
type Batch struct {
	// Partitions are the input offsets the batch covers, per partition.
	Partitions []Range
	// Scopes are the counts of the batch per scope.
	Scopes []ScopeCounts
}

// Range is the contiguous input offsets of one partition in a batch.
type Range struct {
	// Topic and Partition name the input partition.
	Topic     string
	Partition int
	// First and Last are the first and last offsets of the batch.
	First, Last int64
	// Committed is the partition's committed offset; records of batches
	// that end below it can no longer be redelivered and are dropped.
	Committed int64
}

// ScopeCounts are the weights of one scope's actions in a batch, grouped by
// fine bucket in the order they first appeared.
type ScopeCounts struct {
	// Scope is the breaker.
	Scope breaker.Scope
	// Policy is its thresholds.
	Policy breaker.Policy
	// Buckets are the bucket start times and summed weights.
	Buckets []Bucket
}

// Bucket is the summed weight (in breaker.Milli units) of a scope's actions
// in one fine bucket.
type Bucket struct {
	// At is the bucket's start in Unix milliseconds of event time.
	At int64
	// Weight is the summed weight.
	Weight int64
}

// Result is the outcome of a decision call.
type Result struct {
	// Replayed, when not empty, means some offsets were decided before: the
	// call counted nothing, and the caller answers those offsets from the
	// records and decides the rest in a new call.
	Replayed []Record
	// Scopes are the statuses after the batch, in the order of Batch.Scopes.
	Scopes []ScopeResult
	// Now is the store's wall clock at the decision.
	Now time.Time
}

// ScopeResult is one breaker after a batch.
type ScopeResult struct {
	// Scope is the breaker.
	Scope breaker.Scope
	// Status is its status after the batch.
	Status breaker.Status
	// Changed is true when the batch moved the breaker (Transition is valid).
	Changed bool
	// Counts are the figures at the trip, or at the end of the batch.
	Counts breaker.Counts
}

// Record is the decision of an earlier batch over a range of offsets: the
// scopes that held, with their generation.
type Record struct {
	// Topic and Partition name the input partition.
	Topic     string
	Partition int
	// First and Last are the offsets the record covers.
	First, Last int64
	// Holding maps each holding scope to its generation.
	Holding map[breaker.Scope]uint64
}

// Covers reports whether offset lies in the record.
func (r Record) Covers(topic string, partition int, offset int64) bool {
	return r.Topic == topic && r.Partition == partition && offset >= r.First && offset <= r.Last
}

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

package decide

import (
	"fmt"
	"slices"
	"time"

	"github.com/breakwater/breakwater/breaker"
)

// The wire between the decision core and the rate stores: what one call
// counts and decides, and what it answers.

// Batch is what one decision call counts and decides.
type Batch struct {
	// Partitions are the input offsets the batch covers, per partition.
	Partitions []Range
	// Scopes are the counts of the batch per scope, narrower scopes before
	// the wider ones they count towards (see Bucket.Via).
	Scopes []ScopeCounts
	// Reference is the 1-based index in Scopes of the scope whose first
	// counted action marks when counting began (the global scope), for the
	// learning period of new scopes; 0 means none.
	Reference int
}

// Counted reports whether a bucket of the batch was counted by the store
// that returned res: it is left out when a narrower scope it counts through
// holds after the batch.
func (b Batch) Counted(bk Bucket, res Result) bool {
	for _, v := range bk.Via {
		if v > 0 && int(v) <= len(res.Scopes) && res.Scopes[v-1].Status.Holds() {
			return false
		}
	}
	return true
}

// Validate checks that every bucket's Via names an earlier scope, so that
// its holding status is decided before the bucket is counted.
func (b Batch) Validate() error {
	if b.Reference < 0 || b.Reference > len(b.Scopes) {
		return fmt.Errorf("decide batch: reference scope %d of %d", b.Reference, len(b.Scopes))
	}
	for i, sc := range b.Scopes {
		if sc.Seed != 0 {
			if sc.Seed < 0 || sc.Seed > len(b.Scopes) || sc.Seed-1 == i {
				return fmt.Errorf("decide batch: %s seeded from scope %d of %d", sc.Scope, sc.Seed, len(b.Scopes))
			}
			sp := b.Scopes[sc.Seed-1].Policy
			if sp.Grid() != sc.Policy.Grid() || sp.EvidenceOn() != sc.Policy.EvidenceOn() ||
				sp.EvidenceBinMillis() != sc.Policy.EvidenceBinMillis() || sp.SlotMillis() != sc.Policy.SlotMillis() {
				return fmt.Errorf("decide batch: %s seeded from %s, whose counts are laid out differently", sc.Scope, b.Scopes[sc.Seed-1].Scope)
			}
		}
		for _, bk := range sc.Buckets {
			for k, v := range bk.Via {
				if v != 0 && k > 0 && bk.Via[k-1] == 0 {
					return fmt.Errorf("decide batch: bucket of %s counted via %v: a scope after a 0", sc.Scope, bk.Via)
				}
				if v < 0 || int(v) > i {
					return fmt.Errorf("decide batch: bucket of %s counted via scope %d, not an earlier one", sc.Scope, v)
				}
			}
		}
	}
	return nil
}

// Range is the contiguous input offsets of one partition in a batch.
type Range struct {
	// Topic and Partition name the input partition.
	Topic     string
	Partition int
	// First and Last are the first and last offsets of the batch.
	First, Last int64
	// Committed is the partition's committed offset; records of batches
	// that end below it and below First can no longer be redelivered and
	// are dropped.
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
	// Seed, when positive, is the 1-based index in Batch.Scopes of a
	// scope of the same layout whose state (counts and detector) a scope
	// that trips only while new (breaker.Policy.NewOnly) starts from when
	// it is first seen: a rule's model version starts from its rule, what
	// the versions it replaces did.
	Seed int
}

// Bucket is the summed weight (in breaker.Milli units) of a scope's actions
// in one fine bucket.
type Bucket struct {
	// At is the bucket's start in Unix milliseconds of event time.
	At int64
	// Weight is the summed weight.
	Weight int64
	// Count is the number of actions, what the evidence detector counts:
	// their weights would make its Poisson model wrong (a ban weighs ten).
	Count int64
	// Via are the narrower scopes of the bucket's actions that the scope
	// counts them through, as 1-based indexes of earlier entries of
	// Batch.Scopes, the immediate one first (for global, the rule); 0 is
	// none, and the nonzero ones come first. A wider scope counts only
	// what would reach enforcement: the bucket is left out when any of
	// them holds after the batch.
	Via [MaxVia]int32
}

// Result is the outcome of a decision call.
type Result struct {
	// Replayed, when not empty, means some offsets were decided before: the
	// call counted nothing, and the caller answers those offsets from the
	// records and decides the rest in a new call.
	Replayed []Record
	// Rebuild, when not empty, lists the partitions whose records may be
	// incomplete from their First offset on (Redis lost or dropped them):
	// the call decided nothing, and the caller rebuilds their records from
	// the output topics (Redis.Rebuild) and calls again.
	Rebuild []Range
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
	// Only maps a holding scope that holds some of its narrower scopes
	// alone (breaker.Status.HeldScopes) to those scopes.
	Only map[breaker.Scope][]breaker.Scope
}

// HoldsFor reports whether the record's scope s held the actions whose
// narrower scope is child, and at which generation.
func (r Record) HoldsFor(s, child breaker.Scope) (uint64, bool) {
	gen, ok := r.Holding[s]
	if !ok {
		return 0, false
	}
	if only, ok := r.Only[s]; ok && !slices.Contains(only, child) {
		return 0, false
	}
	return gen, true
}

// Covers reports whether offset lies in the record.
func (r Record) Covers(topic string, partition int, offset int64) bool {
	return r.Topic == topic && r.Partition == partition && offset >= r.First && offset <= r.Last
}

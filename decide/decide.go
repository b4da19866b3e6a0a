// Package decide is the decision core: it classifies a decoded action under
// the configuration (its breaker scopes, weight and severity), groups the
// actions of a batch into one rate store call (Batch), counts the batch and
// decides every breaker it touches (Step, the function the Redis store's
// Lua script mirrors), and turns the outcome (or the records of a first
// delivery, or the outage policy) into a decision per action.
//
// It does no I/O: the live pipeline (package consumer), the replay of
// recorded traffic and the stores run the same code, so that they decide
// alike. The stores only persist what Step reads and writes.
package decide

import (
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/event"
)

// Decision is where one action goes.
type Decision string

// The decisions.
const (
	Gated      Decision = "gated"
	Held       Decision = "held"
	DeadLetter Decision = "dead_letter"
)

// ReasonRedelivered is the reason of an action answered from the record of
// its first delivery.
const ReasonRedelivered = "redelivered"

// ReasonStoreUnavailable is the reason of an action decided by the outage
// policy while the rate store could not be reached.
const ReasonStoreUnavailable = "store_unavailable"

// Position is where an action was read: its input topic, partition and offset.
type Position struct {
	Topic     string
	Partition int
	Offset    int64
}

// Item is one action of a batch and, once decided, its decision.
type Item struct {
	// Pos is where the action was read.
	Pos Position
	// Act is the decoded action; valid only when Bad is nil.
	Act event.Action
	// Bad is why the action could not be decoded or is invalid.
	Bad *event.DecodeError
	// Scopes are the breakers the action counts towards, least specific
	// first: global, the rule, then the rule's narrower scopes the action
	// is in (the rule and action type if configured, the model version's
	// and the configured dimensions' segments).
	Scopes  [MaxScopes]breaker.Scope
	NScopes int
	// Weight is the action type's weight in breaker.Milli units.
	Weight int64
	// Severity selects the outage policy.
	Severity config.Severity

	// Decision is where the action goes.
	Decision Decision
	// Scope is the deciding scope: the most specific holding one, or the rule.
	Scope breaker.Scope
	// State is the deciding scope's state.
	State breaker.State
	// Gen is the holding scope's generation (0 when gated).
	Gen uint64
	// Reason explains a dead letter, a redelivery or an outage decision.
	Reason string
}

// Incident names the incident of a held action, or "" if it has none.
func (it *Item) Incident() string {
	if it.Decision != Held || it.Gen == 0 {
		return ""
	}
	return breaker.Incident(it.Scope, it.Gen)
}

// MaxScopes is the most scopes one action counts towards: global, its
// rule, its rule and action type, its model version and
// config.MaxDimensions segments.
const MaxScopes = 4 + config.MaxDimensions

// MaxVia is the most narrower scopes a bucket is counted through.
const MaxVia = MaxScopes - 1

// Gate classifies and decides actions under one configuration.
type Gate struct {
	cfg  config.Config
	segs *tracker
	// dims are the segment dimensions of the rules that add their own,
	// and dimsAll those of the others.
	dims    map[string][]string
	dimsAll []string
	// ruleScopes are the scopes of the configured rules, built once: read
	// by every partition reader, never written after New.
	ruleScopes map[string]breaker.Scope
	// otherRules are the scopes of rules missing from the configuration,
	// built when first seen, at most maxOtherRules of them (the rule ids
	// come from the input).
	otherRules sync.Map // string -> breaker.Scope
	nOther     atomic.Int64
}

// maxOtherRules bounds Gate.otherRules.
const maxOtherRules = 4096

// ruleScope returns the scope of a rule.
func (g *Gate) ruleScope(rule string) breaker.Scope {
	if s, ok := g.ruleScopes[rule]; ok {
		return s
	}
	if s, ok := g.otherRules.Load(rule); ok {
		return s.(breaker.Scope)
	}
	s := breaker.RuleScope(rule)
	if g.nOther.Load() < maxOtherRules {
		if _, loaded := g.otherRules.LoadOrStore(rule, s); !loaded {
			g.nOther.Add(1)
		}
	}
	return s
}

// New returns a gate for a validated configuration.
func New(cfg config.Config) *Gate {
	g := &Gate{cfg: cfg, segs: newTracker(cfg.Breakers.Segments.MaxValues, cfg.Breakers.Segments.Idle),
		dims: map[string][]string{}, dimsAll: cfg.Breakers.Segments.Dimensions, ruleScopes: map[string]breaker.Scope{}}
	for id, r := range cfg.Breakers.Rules {
		g.ruleScopes[id] = breaker.RuleScope(id)
		if len(r.Segments) > 0 {
			g.dims[id] = cfg.RuleDimensions(id)
		}
	}
	return g
}

// Classify decodes value into it and finds its scopes, weight and severity.
// An undecodable or invalid action is decided as a dead letter at once.
func (g *Gate) Classify(it *Item, pos Position, value []byte) {
	*it = Item{Pos: pos} // DecodeInto sets all of it.Act
	if err := event.DecodeInto(&it.Act, value); err != nil {
		var de *event.DecodeError
		if !errors.As(err, &de) {
			de = &event.DecodeError{Reason: event.ReasonMalformed, Detail: err.Error()}
		}
		it.deadLetter(de)
		return
	}
	if strings.ContainsFunc(it.Act.Action, isControl) {
		it.deadLetter(&event.DecodeError{Reason: event.ReasonInvalidField, Field: "action", Detail: "control character"})
		return
	}
	at := g.cfg.ActionType(it.Act.Action)
	it.Weight = max(int64(math.Round(at.Weight*breaker.Milli)), 1)
	it.Severity = at.Severity
	it.Scopes[0] = breaker.Global
	it.Scopes[1] = g.ruleScope(it.Act.RuleID)
	it.NScopes = 2
	// The rule's action type has thresholds of its own (what
	// config.ActionThresholds reports, without building them).
	if _, ok := g.cfg.Breakers.Rules[it.Act.RuleID].Actions[it.Act.Action]; ok {
		it.Scopes[2] = breaker.ActionScope(it.Act.RuleID, it.Act.Action)
		it.NScopes = 3
	}
	ms := it.Act.OccurredAt.UnixMilli()
	if g.cfg.Breakers.Segments.ModelVersion && it.Act.ModelVersion != "" {
		it.Scopes[it.NScopes] = g.segs.scope(it.Act.RuleID, breaker.DimModel, it.Act.ModelVersion, ms)
		it.NScopes++
	}
	dims, ok := g.dims[it.Act.RuleID]
	if !ok {
		dims = g.dimsAll
	}
	for _, d := range dims {
		if v := dimension(&it.Act, d); v != "" && it.NScopes < MaxScopes {
			it.Scopes[it.NScopes] = g.segs.scope(it.Act.RuleID, d, v, ms)
			it.NScopes++
		}
	}
}

// dimension returns the value of a segment dimension of a, "" if none.
func dimension(a *event.Action, dim string) string {
	switch dim {
	case breaker.DimModel:
		return a.ModelVersion
	case breaker.DimModelName:
		return a.ModelName
	case breaker.DimRegion:
		return a.Region
	case breaker.DimTargetType:
		return a.TargetType
	}
	return ""
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func (it *Item) deadLetter(de *event.DecodeError) {
	it.Bad = de
	it.Decision = DeadLetter
	it.Reason = de.Error()
}

// child returns the scope of the action just narrower than its scope j:
// the rule for global, the first narrower scope for the rule, and "" for
// the narrowest ones (the rule's narrower scopes are side by side).
func (it *Item) child(j int) breaker.Scope {
	if j < 2 && j+1 < it.NScopes {
		return it.Scopes[j+1]
	}
	return ""
}

// Pending returns the indexes of the items that still need a decision from
// the store: every decodable one.
func Pending(items []Item, into []int) []int {
	into = into[:0]
	for i := range items {
		if items[i].Bad == nil {
			into = append(into, i)
		}
	}
	return into
}

// Batch groups the pending items' weights per scope and fine bucket, and
// their offsets per partition. committed returns a partition's committed
// offset, or -1 if unknown.
//
// Narrower scopes come first (a rule's narrower scopes: its action types
// and segments; then rules, then global), and a wider scope's buckets are
// kept apart by the narrower scopes of their actions (Bucket.Via): the
// store decides the narrower breakers first and counts towards the wider
// ones only what they do not hold. A model version's scope starts from
// its rule's counts when it has none (ScopeCounts.Seed).
func (g *Gate) Batch(items []Item, pending []int, committed func(topic string, partition int) int64) Batch {
	var b Batch
	x := batchScratchPool.Get().(*batchScratch)
	defer x.release()
	// levels[l] are the scopes of level l (0 global, 1 the rule, 2 the
	// rule's narrower scopes), each in the order of first appearance; a
	// bucket's Via counts within the deeper levels until the end, where
	// they become indexes of b.Scopes.
	var levels [3][]ScopeCounts
	var local [MaxScopes]int
	for _, i := range pending {
		it := &items[i]
		pi := x.partition(it.Pos.Topic, it.Pos.Partition, len(b.Partitions))
		if pi == len(b.Partitions) {
			b.Partitions = append(b.Partitions, Range{
				Topic: it.Pos.Topic, Partition: it.Pos.Partition,
				First: it.Pos.Offset, Last: it.Pos.Offset,
				Committed: committed(it.Pos.Topic, it.Pos.Partition),
			})
		}
		r := &b.Partitions[pi]
		r.First = min(r.First, it.Pos.Offset)
		r.Last = max(r.Last, it.Pos.Offset)
		at := it.Act.OccurredAt.UnixMilli()
		for d := it.NScopes - 1; d >= 0; d-- {
			lv := min(d, 2)
			s := it.Scopes[d]
			si, ok := x.scopes[s]
			if !ok {
				si = len(levels[lv])
				x.scopes[s] = si
				levels[lv] = append(levels[lv], ScopeCounts{Scope: s, Policy: g.Policy(s, it)})
			}
			local[d] = si
			sc := &levels[lv][si]
			var via [MaxVia]int32
			if d < 2 {
				for k := d + 1; k < it.NScopes; k++ {
					via[k-d-1] = int32(local[k] + 1)
				}
			}
			k := bucketKey{d, si, sc.Policy.Grid().Bucket(at), via}
			last := x.last(lv, si, via[0])
			bi, ok := -1, false
			if last.bucket > 0 && last.at == k.at && last.depth == d && last.via == via {
				bi, ok = int(last.bucket)-1, true
			} else {
				bi, ok = x.buckets[k]
			}
			if !ok {
				bi = len(sc.Buckets)
				x.buckets[k] = bi
				sc.Buckets = append(sc.Buckets, Bucket{At: k.at, Via: via})
			}
			*last = lastBucket{at: k.at, depth: d, via: via, bucket: int32(bi) + 1}
			sc.Buckets[bi].Weight += it.Weight
			sc.Buckets[bi].Count++
		}
	}
	// off[l] is where level l starts in b.Scopes: deepest first.
	var off [3]int
	off[1] = len(levels[2])
	off[0] = off[1] + len(levels[1])
	b.Scopes = make([]ScopeCounts, 0, off[0]+len(levels[0]))
	for lv := 2; lv >= 0; lv-- {
		for _, sc := range levels[lv] {
			for bi := range sc.Buckets {
				for k, v := range sc.Buckets[bi].Via {
					if v > 0 {
						sc.Buckets[bi].Via[k] = v + int32(off[min(lv+1+k, 2)])
					}
				}
			}
			if sc.Scope == breaker.Global {
				b.Reference = len(b.Scopes) + 1
			}
			if dim, _ := sc.Scope.Segment(); dim == breaker.DimModel {
				if ri, ok := x.scopes[breaker.RuleScope(sc.Scope.Rule())]; ok {
					sc.Seed = off[1] + ri + 1
				}
			}
			b.Scopes = append(b.Scopes, sc)
		}
	}
	return b
}

// bucketKey names a bucket of one scope of a batch: the scope's level and
// index in it, the bucket's start, and the narrower scopes it is counted
// through.
type bucketKey struct {
	depth, scope int
	at           int64
	via          [MaxVia]int32
}

// batchScratch are the indexes Batch builds, kept from call to call so
// that their maps do not grow from empty for every batch.
type batchScratch struct {
	// topic is the topic of the partitions in byPart: byPart[p] is 1 + the
	// index in Batch.Partitions of partition p of topic, 0 if none yet.
	topic   string
	byPart  []int32
	others  map[partKey]int // partitions of other topics
	scopes  map[breaker.Scope]int
	buckets map[bucketKey]int
	// lasts[l][i][c] is the bucket that scope i of level l last counted
	// an action in, among those counted through the narrower scope c
	// (Bucket.Via[0]): actions come in event time, so the next one is
	// mostly in the same bucket, and this spares the map.
	lasts [3][][]lastBucket
}

// lastBucket names a bucket of a scope as its bucketKey does (the start,
// the scope's depth in the action, Via) with 1 + its index in
// ScopeCounts.Buckets (0: none).
type lastBucket struct {
	at     int64
	depth  int
	via    [MaxVia]int32
	bucket int32
}

// last returns the bucket last counted in scope si of level lv through the
// narrower scope via0, to be updated.
func (x *batchScratch) last(lv, si int, via0 int32) *lastBucket {
	ls := &x.lasts[lv]
	if si >= len(*ls) {
		*ls = slices.Grow(*ls, si+1-len(*ls))[:si+1]
	}
	cs := &(*ls)[si]
	if int(via0) >= len(*cs) {
		*cs = slices.Grow(*cs, int(via0)+1-len(*cs))[:via0+1]
	}
	return &(*cs)[via0]
}

type partKey struct {
	topic     string
	partition int
}

var batchScratchPool = sync.Pool{New: func() any {
	return &batchScratch{others: map[partKey]int{}, scopes: map[breaker.Scope]int{}, buckets: map[bucketKey]int{}}
}}

// partition returns the index in Batch.Partitions of a partition, or
// next, the index it gets, when it has none yet.
func (x *batchScratch) partition(topic string, partition, next int) int {
	if x.topic == "" && next == 0 {
		x.topic = topic
	}
	if topic == x.topic && partition >= 0 && partition < 1<<16 {
		if partition >= len(x.byPart) {
			x.byPart = slices.Grow(x.byPart, partition+1-len(x.byPart))[:partition+1]
		}
		if i := x.byPart[partition]; i > 0 {
			return int(i) - 1
		}
		x.byPart[partition] = int32(next) + 1
		return next
	}
	k := partKey{topic, partition}
	if i, ok := x.others[k]; ok {
		return i
	}
	x.others[k] = next
	return next
}

// release empties x and returns it to the pool.
func (x *batchScratch) release() {
	x.topic = ""
	clear(x.byPart)
	clear(x.others)
	clear(x.scopes)
	clear(x.buckets)
	for lv := range x.lasts {
		for i := range x.lasts[lv] {
			clear(x.lasts[lv][i])
		}
	}
	batchScratchPool.Put(x)
}

// Apply decides the pending items from the scope statuses after their batch.
func Apply(items []Item, pending []int, r Result) {
	st := make(map[breaker.Scope]breaker.Status, len(r.Scopes))
	holds := false
	for _, s := range r.Scopes {
		st[s.Scope] = s.Status
		holds = holds || s.Status.Holds()
	}
	if !holds {
		// No breaker holds: every action is gated under its rule.
		for _, i := range pending {
			it := &items[i]
			it.Decision, it.Scope = Gated, it.Scopes[1]
			it.State = st[it.Scope].State
		}
		return
	}
	for _, i := range pending {
		it := &items[i]
		it.Decision = Gated
		it.Scope = it.Scopes[1]
		it.State = st[it.Scope].State
		// The most specific holding scope names the incident. A wider
		// scope that holds only some narrower ones holds the action if its
		// next narrower scope is one of them.
		for j := it.NScopes - 1; j >= 0; j-- {
			s := st[it.Scopes[j]]
			if s.HoldsFor(it.child(j)) {
				it.Decision, it.Scope, it.State, it.Gen = Held, it.Scopes[j], s.State, s.Generation
				break
			}
		}
	}
}

// ApplyRecords decides the pending items that a first delivery already
// decided, and returns those still pending (into rest, which may be
// pending[:0]).
func ApplyRecords(items []Item, pending []int, recs []Record) (rest []int) {
	rest = make([]int, 0, len(pending))
	for _, i := range pending {
		it := &items[i]
		var rec *Record
		for k := range recs {
			if recs[k].Covers(it.Pos.Topic, it.Pos.Partition, it.Pos.Offset) {
				rec = &recs[k]
				break
			}
		}
		if rec == nil {
			// Not decided before (new, or a gap inside decided ranges).
			rest = append(rest, i)
			continue
		}
		it.Decision = Gated
		it.Scope = it.Scopes[1]
		it.State = breaker.Closed
		it.Reason = ReasonRedelivered
		for j := it.NScopes - 1; j >= 0; j-- {
			if gen, ok := rec.HoldsFor(it.Scopes[j], it.child(j)); ok {
				it.Decision, it.Scope, it.State, it.Gen = Held, it.Scopes[j], breaker.Open, gen
				break
			}
		}
	}
	return rest
}

// Outage decides the pending items without the store when every one of
// them has an outage policy of hold or pass, and reports whether it did;
// if any of them must pause, it decides nothing.
func (g *Gate) Outage(items []Item, pending []int) bool {
	for _, i := range pending {
		if g.cfg.OutagePolicy(items[i].Severity) == config.OutagePause {
			return false
		}
	}
	for _, i := range pending {
		it := &items[i]
		it.Scope = breaker.RuleScope(it.Act.RuleID)
		it.Reason = ReasonStoreUnavailable
		if g.cfg.OutagePolicy(it.Severity) == config.OutagePass {
			it.Decision = Gated
		} else {
			it.Decision = Held
		}
	}
	return true
}

// Chunk splits pending into the items one store call may decide now and
// the rest. A call covers, per partition, the range from its lowest to its
// highest offset, and the store answers any call whose range overlaps a
// record of an earlier delivery from that record; so a chunk never spans a
// known record. Offsets of a partition come in increasing order, so the
// rest keeps its order and is decided by later calls. With no known
// records the whole of pending is one chunk.
func Chunk(items []Item, pending []int, known []Record) (chunk, rest []int) {
	if len(known) == 0 {
		return pending, nil
	}
	type pkey struct {
		topic     string
		partition int
	}
	type span struct{ lo, hi int64 }
	spans := map[pkey]span{}
	chunk = make([]int, 0, len(pending))
	for _, i := range pending {
		pos := items[i].Pos
		k := pkey{pos.Topic, pos.Partition}
		sp, ok := spans[k]
		if !ok {
			sp = span{pos.Offset, pos.Offset}
		}
		sp.lo, sp.hi = min(sp.lo, pos.Offset), max(sp.hi, pos.Offset)
		if overlaps(known, pos.Topic, pos.Partition, sp.lo, sp.hi) {
			rest = append(rest, i)
			continue
		}
		spans[k] = sp
		chunk = append(chunk, i)
	}
	return chunk, rest
}

func overlaps(recs []Record, topic string, partition int, lo, hi int64) bool {
	for _, r := range recs {
		if r.Topic == topic && r.Partition == partition && r.First <= hi && r.Last >= lo {
			return true
		}
	}
	return false
}

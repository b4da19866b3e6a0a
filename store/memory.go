package store

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/breakwater/breakwater/breaker"
)

// Memory is an in-process store with the same decisions as Redis, for
// replays and tests. It is safe for concurrent use.
type Memory struct {
	now func() time.Time

	mu      sync.Mutex // guards scopes and records
	scopes  map[breaker.Scope]*memScope
	records map[string][]Record
}

type memScope struct {
	status breaker.Status
	window *breaker.Window
	grid   breaker.Grid
	known  bool
}

// NewMemory returns an empty store that reads wall time from now.
func NewMemory(now func() time.Time) *Memory {
	return &Memory{now: now, scopes: map[breaker.Scope]*memScope{}, records: map[string][]Record{}}
}

func recordKey(topic string, p int) string { return topic + "\x00" + strconv.Itoa(p) }

// Rebuild adds records, as Redis.Rebuild does; the memory store never
// loses its records, so it never asks for a rebuild.
func (m *Memory) Rebuild(_ context.Context, topic string, partition int, _ int64, recs []Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := recordKey(topic, partition)
	m.records[k] = append(m.records[k], recs...)
	return nil
}

// Decide counts a batch and decides its breakers, as Redis.Decide does.
func (m *Memory) Decide(_ context.Context, b Batch) (Result, error) {
	if err := b.validate(); err != nil {
		return Result{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now().Truncate(time.Millisecond).UTC()
	var res Result
	for _, p := range b.Partitions {
		k := recordKey(p.Topic, p.Partition)
		kept := m.records[k][:0]
		for _, r := range m.records[k] {
			if r.Last < min(p.Committed, p.First) {
				continue
			}
			kept = append(kept, r)
			if r.First <= p.Last && r.Last >= p.First {
				res.Replayed = append(res.Replayed, r)
			}
		}
		m.records[k] = kept
	}
	if len(res.Replayed) > 0 {
		return res, nil
	}
	res.Now = now
	res.Scopes = make([]ScopeResult, len(b.Scopes))
	holding := map[breaker.Scope]uint64{}
	var only map[breaker.Scope][]breaker.Scope
	var ref int64
	var hasRef bool
	if b.Reference > 0 {
		if e := m.scopes[b.Scopes[b.Reference-1].Scope]; e != nil && e.window != nil {
			ref, hasRef = e.window.First()
		}
	}
	for i, sc := range b.Scopes {
		g := sc.Policy.Grid()
		e := m.scopes[sc.Scope]
		if e == nil {
			e = &memScope{status: breaker.Initial()}
			m.scopes[sc.Scope] = e
		}
		if e.window == nil || e.grid != g {
			e.window, e.grid = breaker.NewWindow(g), g
		}
		start := e.status
		st, _ := breaker.Expire(e.status, now)
		var last, trip breaker.Counts
		tripped, tripProbation := false, false
		all := breaker.CountsHeld(st)
		for _, bk := range sc.Buckets {
			if !all && !b.Counted(bk, res) {
				continue
			}
			at := e.window.Add(bk.At, bk.Weight)
			last = e.window.Counts(at)
			first, _ := e.window.First()
			last.Learning = sc.Policy.InLearning(first, at, ref, hasRef)
			prev := st
			st, _ = breaker.Evaluate(sc.Policy, st, last, now)
			if st.Auto == breaker.Open && prev.Auto != breaker.Open {
				trip, tripped, tripProbation = last, true, prev.Auto == breaker.Probation
			}
		}
		if tripped && st.Auto == breaker.Open {
			st.HeldScopes = breaker.Contributors(sc.Policy, trip, breaker.Reason(st.Reason), tripProbation, all, children(sc, res.Scopes))
		}
		changed := st.Generation != start.Generation
		e.status = st
		if changed {
			e.known = true
		}
		c := last
		if tripped {
			c = trip
		}
		res.Scopes[i] = ScopeResult{Scope: sc.Scope, Status: st, Changed: changed, Counts: c}
		if st.Holds() {
			holding[sc.Scope] = st.Generation
			if st.State != breaker.ForcedOpen && len(st.HeldScopes) > 0 {
				if only == nil {
					only = map[breaker.Scope][]breaker.Scope{}
				}
				only[sc.Scope] = st.HeldScopes
			}
		}
	}
	for _, p := range b.Partitions {
		k := recordKey(p.Topic, p.Partition)
		m.records[k] = append(m.records[k], Record{Topic: p.Topic, Partition: p.Partition, First: p.First, Last: p.Last, Holding: holding, Only: only})
	}
	return res, nil
}

// Status returns one breaker's status.
func (m *Memory) Status(_ context.Context, scope breaker.Scope) (breaker.Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.scopes[scope]
	if e == nil {
		return breaker.Initial(), nil
	}
	s, _ := breaker.Expire(e.status, m.now())
	return s, nil
}

// List returns every breaker that has left its initial status.
func (m *Memory) List(_ context.Context) ([]ScopeStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ScopeStatus
	for k, e := range m.scopes {
		if e.known {
			s, _ := breaker.Expire(e.status, m.now())
			out = append(out, ScopeStatus{Scope: k, Status: s})
		}
	}
	return out, nil
}

// Update applies an operator's change to one breaker.
func (m *Memory) Update(_ context.Context, scope breaker.Scope, fn func(breaker.Status, time.Time) (breaker.Status, error)) (breaker.Transition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.scopes[scope]
	if e == nil {
		e = &memScope{status: breaker.Initial()}
		m.scopes[scope] = e
	}
	now := m.now().Truncate(time.Millisecond).UTC()
	from, _ := breaker.Expire(e.status, now)
	to, err := fn(from, now)
	if err != nil {
		return breaker.Transition{}, err
	}
	e.status, e.known = to, true
	return breaker.Transition{Scope: scope, From: from, To: to}, nil
}

// children returns the immediate narrower scopes of sc's buckets (their
// first Via), in the order they first appear, as decided in this batch.
func children(sc ScopeCounts, decided []ScopeResult) []breaker.Child {
	var out []breaker.Child
	seen := map[int32]bool{}
	for _, bk := range sc.Buckets {
		v := bk.Via[0]
		if v == 0 || seen[v] {
			continue
		}
		seen[v] = true
		r := decided[v-1]
		out = append(out, breaker.Child{Scope: r.Scope, Counts: r.Counts, Holds: r.Status.Holds()})
	}
	return out
}

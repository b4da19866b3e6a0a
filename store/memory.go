package store

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
)

// Memory is an in-process store with the same decisions as Redis, for
// replays and tests. It is safe for concurrent use.
type Memory struct {
	now func() time.Time

	mu      sync.Mutex // guards scopes and records
	scopes  map[breaker.Scope]*memScope
	records map[string][]decide.Record
}

type memScope struct {
	decide.State
	known bool
}

// NewMemory returns an empty store that reads wall time from now.
func NewMemory(now func() time.Time) *Memory {
	return &Memory{now: now, scopes: map[breaker.Scope]*memScope{}, records: map[string][]decide.Record{}}
}

func recordKey(topic string, p int) string { return topic + "\x00" + strconv.Itoa(p) }

// Rebuild adds records, as Redis.Rebuild does; the memory store never
// loses its records, so it never asks for a rebuild.
func (m *Memory) Rebuild(_ context.Context, topic string, partition int, _ int64, recs []decide.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := recordKey(topic, partition)
	m.records[k] = append(m.records[k], recs...)
	return nil
}

// Decide counts a batch and decides its breakers, as Redis.Decide does.
func (m *Memory) Decide(_ context.Context, b decide.Batch) (decide.Result, error) {
	if err := b.Validate(); err != nil {
		return decide.Result{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now().Truncate(time.Millisecond).UTC()
	var res decide.Result
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
	states := make([]*decide.State, len(b.Scopes))
	for i, sc := range b.Scopes {
		e := m.scopes[sc.Scope]
		if e == nil {
			e = &memScope{State: decide.State{Status: breaker.Initial()}}
			m.scopes[sc.Scope] = e
		}
		states[i] = &e.State
	}
	res = decide.Step(b, now, states)
	for _, r := range res.Scopes {
		if r.Changed {
			m.scopes[r.Scope].known = true
		}
	}
	holding, only := decide.Holding(res)
	for _, p := range b.Partitions {
		k := recordKey(p.Topic, p.Partition)
		m.records[k] = append(m.records[k], decide.Record{Topic: p.Topic, Partition: p.Partition, First: p.First, Last: p.Last, Holding: holding, Only: only})
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
	s, _ := breaker.Expire(e.Status, m.now())
	return s, nil
}

// List returns every breaker that has left its initial status.
func (m *Memory) List(_ context.Context) ([]ScopeStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ScopeStatus
	for k, e := range m.scopes {
		if e.known {
			s, _ := breaker.Expire(e.Status, m.now())
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
		e = &memScope{State: decide.State{Status: breaker.Initial()}}
		m.scopes[scope] = e
	}
	now := m.now().Truncate(time.Millisecond).UTC()
	from, _ := breaker.Expire(e.Status, now)
	to, err := fn(from, now)
	if err != nil {
		return breaker.Transition{}, err
	}
	e.Status, e.known = to, true
	return breaker.Transition{Scope: scope, From: from, To: to}, nil
}

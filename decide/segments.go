package decide

import (
	"sync"
	"time"

	"github.com/breakwater/breakwater/breaker"
)

// tracker bounds the segment values tracked per rule and dimension: the
// first values seen get a breaker each, up to max; a value seen when max
// are tracked takes the place of the one unseen the longest if that one
// has been unseen (in event time) for longer than idle, and otherwise
// counts in the rule's overflow segment (breaker.OverflowScope). The state
// is at most max values per rule and dimension.
type tracker struct {
	mu   sync.Mutex
	max  int
	idle int64
	seen map[segKey]*segValues
}

type segKey struct{ rule, dim string }

// segValues are the tracked values of one rule and dimension.
type segValues struct {
	overflow breaker.Scope
	values   map[string]*segValue
}

type segValue struct {
	last  int64 // event time it was last seen, Unix ms
	scope breaker.Scope
}

func newTracker(max int, idle time.Duration) *tracker {
	return &tracker{max: max, idle: idle.Milliseconds(), seen: map[segKey]*segValues{}}
}

// scope returns the segment scope of value of dimension dim of rule, for
// an action at event time atMillis: the value's own, or the overflow
// segment's if it is not tracked and there is no room for it.
func (t *tracker) scope(rule, dim, value string, atMillis int64) breaker.Scope {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := segKey{rule, dim}
	m := t.seen[k]
	if m == nil {
		m = &segValues{overflow: breaker.OverflowScope(rule, dim), values: map[string]*segValue{}}
		t.seen[k] = m
	}
	if v, ok := m.values[value]; ok {
		v.last = max(v.last, atMillis)
		return v.scope
	}
	if len(m.values) >= t.max {
		// The value unseen the longest (the least value among equals, so
		// the choice does not depend on map order) gives up its place if
		// idle.
		var oldest string
		var at int64
		found := false
		for v, e := range m.values {
			if !found || e.last < at || (e.last == at && v < oldest) {
				oldest, at, found = v, e.last, true
			}
		}
		if atMillis-at <= t.idle {
			return m.overflow
		}
		delete(m.values, oldest)
	}
	v := &segValue{last: atMillis, scope: breaker.SegmentScope(rule, dim, value)}
	m.values[value] = v
	return v.scope
}

package daemon

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
)

// maxAuditQueue bounds the automatic transitions waiting for the audit
// topic; transitions are rare, so reaching it means the topic is down.
const maxAuditQueue = 10000

// auditQueue hands the automatic transitions of committed batches to the
// audit trail, retrying while the audit topic fails.
type auditQueue struct {
	trail *audit.Trail
	log   *zap.Logger
	wake  chan struct{}

	mu      sync.Mutex // guards pending and closed
	pending []breaker.Transition
	closed  bool
}

func newAuditQueue(trail *audit.Trail, log *zap.Logger) *auditQueue {
	return &auditQueue{trail: trail, log: log, wake: make(chan struct{}, 1)}
}

// add queues ts; it never blocks.
func (q *auditQueue) add(ts []breaker.Transition) {
	if len(ts) == 0 {
		return
	}
	q.mu.Lock()
	if len(q.pending)+len(ts) > maxAuditQueue {
		q.log.Error("audit queue full: automatic transitions are missing from the audit trail (they are in the state topic)",
			zap.Int("dropped", len(ts)))
	} else {
		q.pending = append(q.pending, ts...)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// close lets run return once the queue is empty.
func (q *auditQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run writes queued transitions until close was called and the queue is
// empty, or ctx ends.
func (q *auditQueue) run(ctx context.Context) {
	backoff := 200 * time.Millisecond
	for {
		q.mu.Lock()
		batch, closed := q.pending, q.closed
		q.mu.Unlock()
		if len(batch) == 0 {
			if closed {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
			}
			continue
		}
		if err := q.trail.Record(ctx, batch); err != nil {
			q.log.Warn("audit the automatic transitions; retrying", zap.Int("transitions", len(batch)), zap.Error(err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 200 * time.Millisecond
		q.mu.Lock()
		q.pending = q.pending[len(batch):]
		q.mu.Unlock()
	}
}

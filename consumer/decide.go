// The decision stage: a fetched batch is decided by the rate store (or
// from the records of a first delivery, or by the outage policy), and its
// transitions are alerted, audited and recorded before it is written.

package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/internal/redisconn"
	"github.com/breakwater/breakwater/store"
)

// HeldCounts counts the actions of a scope that a batch held, by action
// type and by model (name@version).
type HeldCounts struct {
	Actions, Models map[string]int
}

// heldCounts counts the held actions of the scopes that tripped.
func heldCounts(items []decide.Item, ts []breaker.Transition) map[breaker.Scope]HeldCounts {
	var out map[breaker.Scope]HeldCounts
	for _, t := range ts {
		if t.To.Auto != breaker.Open {
			continue
		}
		if out == nil {
			out = map[breaker.Scope]HeldCounts{}
		}
		out[t.Scope] = HeldCounts{Actions: map[string]int{}, Models: map[string]int{}}
	}
	if out == nil {
		return nil
	}
	for i := range items {
		it := &items[i]
		c, ok := out[it.Scope]
		if it.Decision != decide.Held || !ok {
			continue
		}
		c.Actions[it.Act.Action]++
		if it.Act.ModelName != "" || it.Act.ModelVersion != "" {
			c.Models[it.Act.ModelName+"@"+it.Act.ModelVersion]++
		}
	}
	return out
}

// job is a decided batch on its way to the writer stage.
type job struct {
	start  time.Time
	inHand time.Time       // when the batch was in hand, fetched
	out    []kafka.Message // its output records
	f      *fetched
	msgs   []kafka.Message
	items  []decide.Item
	res    decided
	batch  []byte // the batch header of its records
}

// batchPrefix returns a random prefix of batch ids, unique per process.
func batchPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "-"
}

// prepare decides one batch, which the source classified as it fetched
// it, and records its transitions.
func (p *Pipeline) prepare(b batchRun, f *fetched) (*job, error) {
	j := &job{start: time.Now(), f: f, msgs: f.msgs, items: f.items,
		batch: []byte(p.batchPrefix + strconv.FormatUint(p.batches.Add(1), 10))}
	res, err := p.decide(b, j.items, oldest(f.msgs))
	if err != nil {
		return nil, err
	}
	j.res = res
	p.suppress(j.items, j.msgs)
	ts := res.transitions
	if rec := append(ts[:len(ts):len(ts)], res.rerecords...); len(rec) > 0 {
		// Alerts and audit first: a transition the state log has seen is
		// not recorded again on a redelivery, and would not be raised or
		// audited again.
		if p.opts.Alerts != nil {
			held := heldCounts(j.items, ts)
			if err := p.retry(b, "alert", func(ctx context.Context) error {
				return p.opts.Alerts.Raise(ctx, rec, held)
			}); err != nil {
				return nil, err
			}
		}
		if p.opts.Audit != nil {
			if err := p.retry(b, "audit", func(ctx context.Context) error {
				return p.opts.Audit.Record(ctx, rec)
			}); err != nil {
				return nil, err
			}
		}
		if err := p.retry(b, "state", func(ctx context.Context) error {
			return p.opts.States.Record(ctx, res.now, rec)
		}); err != nil {
			return nil, err
		}
		for _, t := range ts {
			p.m.Transitions.WithLabelValues(p.m.Scope(t.Scope), string(t.To.State)).Inc()
			p.log.Warn("breaker transition",
				zap.String("scope", string(t.Scope)),
				zap.String("state", string(t.To.State)),
				zap.String("auto", string(t.To.Auto)),
				zap.Uint64("generation", t.To.Generation),
				zap.String("reason", t.To.Reason),
				zap.Float64("window_count", t.Counts.Window),
				zap.Float64("baseline", t.Counts.Baseline))
		}
	}
	for _, s := range res.scopes {
		p.m.SetState(s.Scope, s.Status.State)
	}
	return j, nil
}

// suppress holds the gated items the suppressor names (a reversal undid
// their rule's action on their target): under their rule's scope, with no
// incident, and the suppression as the reason. It runs after every way of
// deciding a batch, a redelivery's records included, and asks at the
// input record's timestamp, so that a redelivered action is suppressed as
// its first delivery was.
func (p *Pipeline) suppress(items []decide.Item, msgs []kafka.Message) {
	if p.opts.Suppress == nil {
		return
	}
	for i := range items {
		it := &items[i]
		if it.Decision != decide.Gated || it.Bad != nil {
			continue
		}
		if reason, ok := p.opts.Suppress.Suppressed(&it.Act, msgs[i].Time); ok {
			it.Decision, it.Scope, it.Gen, it.Reason = decide.Held, breaker.RuleScope(it.Act.RuleID), 0, reason
		}
	}
}

// decided is the store's side of a batch.
type decided struct {
	scopes      []decide.ScopeResult
	transitions []breaker.Transition
	// rerecords are the statuses of the scopes a redelivery found holding,
	// recorded again: the first delivery may have stopped before it
	// recorded the trip.
	rerecords []breaker.Transition
	now       time.Time
	storeTime time.Duration // spent in the store's Decide calls
}

// oldest returns the oldest input timestamp per partition of a batch.
func oldest(msgs []kafka.Message) map[int]time.Time {
	out := map[int]time.Time{}
	for i := range msgs {
		m := &msgs[i]
		if t, ok := out[m.Partition]; !ok || m.Time.Before(t) {
			out[m.Partition] = m.Time
		}
	}
	return out
}

// decide fills the decision of every item, from the store, from the
// records of a first delivery (rebuilt from the output topics when the
// store lost them), or from the outage policy. since is the oldest input
// timestamp per partition.
func (p *Pipeline) decide(b batchRun, items []decide.Item, since map[int]time.Time) (decided, error) {
	var res decided
	pending := decide.Pending(items, nil)
	var known []decide.Record
	backoff := newBackoff()
	var pause outage
	defer func() {
		if pause.on() {
			p.setPaused(false)
		}
	}()
	for len(pending) > 0 {
		// A group rewound into decided offsets can leave gaps between
		// records; each call covers offsets on one side of every record.
		chunk, rest := decide.Chunk(items, pending, known)
		sb := p.gate.Batch(items, chunk, p.committedOffset)
		t0 := time.Now()
		r, err := p.opts.Store.Decide(b.ctx, sb)
		took := time.Since(t0)
		res.storeTime += took
		p.m.StoreSeconds.Observe(took.Seconds())
		p.progress.beat()
		if err == nil && pause.on() {
			// Any answer ends the pause, a replayed decision too (after a
			// write the replicas did not acknowledge, the retry finds
			// it recorded).
			p.setPaused(false)
			pause.end(p.log)
		}
		switch {
		case err == nil && len(r.Rebuild) > 0:
			done := make([]bool, len(r.Rebuild))
			if err := p.retry(b, "rebuild", func(ctx context.Context) error {
				return p.rebuild(ctx, r.Rebuild, since, done)
			}); err != nil {
				return res, err
			}
			continue
		case err == nil && len(r.Replayed) > 0:
			n := len(pending)
			known = append(known, r.Replayed...)
			pending = decide.ApplyRecords(items, pending, known)
			if err := p.rerecord(b, r.Replayed, &res); err != nil {
				return res, err
			}
			if len(pending) == n && b.stopping() {
				return res, fmt.Errorf("decide batch: %w", context.Canceled)
			}
			continue
		case err == nil:
			decide.Apply(items, chunk, r)
			for _, s := range r.Scopes {
				if s.Changed {
					res.transitions = append(res.transitions, breaker.Transition{Scope: s.Scope, To: s.Status, Counts: s.Counts})
				}
			}
			res.scopes = append(res.scopes, r.Scopes...)
			res.now = r.Now
			p.storeUp()
			pending = rest
			continue
		case errors.Is(err, store.ErrStateLost):
			p.log.Warn("rate store lost its state; restoring breakers from the state topic")
			if rerr := p.opts.Restore(b.ctx); rerr != nil {
				p.log.Error("restore breaker state", zap.Error(rerr))
				if werr := backoff.wait(b.ctx, b.stop); werr != nil {
					return res, werr
				}
			}
			continue
		}
		p.m.StoreErrors.Inc()
		if b.stopping() || redisconn.Refused(err) {
			// A refused permission is not an outage: retrying cannot
			// mend it, so the batch stays uncommitted and the pipeline
			// stops with it.
			return res, fmt.Errorf("decide batch: %w", err)
		}
		if p.gate.Outage(items, pending) {
			p.storeDownSince(time.Now(), "hold")
			p.log.Error("rate store unreachable; applied the outage policy", zap.Error(err), zap.Int("actions", len(pending)))
			return res, nil
		}
		p.storeDownSince(time.Now(), "pause")
		if !pause.on() {
			p.setPaused(true)
		}
		pause.failed(p.log, time.Now(), err)
		if werr := backoff.wait(b.ctx, b.stop); werr != nil {
			return res, werr
		}
	}
	return res, nil
}

// outage is the log of one pause of the decision stage on the rate store:
// it logs the cause when the pause begins, when the cause changes, and at
// least once a minute while it lasts, then its end.
type outage struct {
	since, logged time.Time
	cause         string
	failures      int
}

// pauseLogEvery is how often a pause that goes on logs its cause again.
const pauseLogEvery = time.Minute

func (o *outage) on() bool { return !o.since.IsZero() }

// causeOf names why the rate store did not decide.
func causeOf(err error) string {
	if errors.Is(err, store.ErrNotReplicated) {
		return "the Redis replicas did not acknowledge the write in time (redis.min_replicas_acked)"
	}
	return "the rate store does not answer"
}

// failed records a failed call at now and logs it when due.
func (o *outage) failed(log *zap.Logger, now time.Time, err error) {
	o.failures++
	cause := causeOf(err)
	first := !o.on()
	if first {
		o.since = now
	}
	if !first && cause == o.cause && now.Sub(o.logged) < pauseLogEvery {
		return
	}
	o.cause, o.logged = cause, now
	msg := "rate store unreachable; pausing consumption, offsets kept"
	if !first {
		msg = "rate store still unreachable; consumption paused, offsets kept"
	}
	log.Error(msg, zap.String("cause", cause), zap.Error(err),
		zap.Duration("paused_for", now.Sub(o.since).Round(time.Millisecond)), zap.Int("failed_calls", o.failures))
}

// end logs the end of the pause and resets o.
func (o *outage) end(log *zap.Logger) {
	log.Info("rate store reachable again; resuming", zap.String("last_cause", o.cause),
		zap.Duration("paused_for", time.Since(o.since).Round(time.Millisecond)), zap.Int("failed_calls", o.failures))
	*o = outage{}
}

// rerecord adds the current status of every scope that held in a
// redelivered record, at a generation the state log has not seen, to the
// transitions to record: the first delivery may have stopped between its
// decision and its write to the state topic, and the state topic must not
// miss a trip. Recording a status twice is harmless: the state topic keeps
// the highest generation per scope.
func (p *Pipeline) rerecord(b batchRun, recs []decide.Record, res *decided) error {
	for _, rec := range recs {
		for s, gen := range rec.Holding {
			if p.opts.States.Recorded(s) >= gen || slices.ContainsFunc(res.rerecords, func(t breaker.Transition) bool { return t.Scope == s }) {
				continue
			}
			var st breaker.Status
			err := p.retry(b, "status", func(ctx context.Context) error {
				var err error
				st, err = p.opts.Store.Status(ctx, s)
				if errors.Is(err, store.ErrStateLost) {
					// Redis lost its data since the batch was answered.
					if rerr := p.opts.Restore(ctx); rerr != nil {
						return fmt.Errorf("%w; restore: %w", err, rerr)
					}
					st, err = p.opts.Store.Status(ctx, s)
				}
				return err
			})
			if err != nil {
				return err
			}
			res.rerecords = append(res.rerecords, breaker.Transition{Scope: s, To: st})
		}
	}
	return nil
}

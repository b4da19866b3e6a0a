package reversal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/internal/partition"
	"github.com/breakwater/breakwater/wire"
)

// ErrNotFound is a reversal job that does not exist.
var ErrNotFound = errors.New("no such reversal")

// Journal is the audit trail the jobs are journaled in (audit.Trail).
type Journal interface {
	Write(ctx context.Context, entries ...audit.Entry) error
	Scan(ctx context.Context, fn func(audit.Entry) error) error
}

// Options configure a Service.
type Options struct {
	// Kafka, Gated and Topic locate the gated topic the candidates are read
	// from and the reversals topic.
	Kafka *kafkaconn.Endpoint
	Gated string
	Topic string
	// WriteTimeout bounds one acknowledged write; Lease is how long the
	// writing replica holds its lease without renewing it, and must exceed
	// twice WriteTimeout.
	WriteTimeout time.Duration
	Lease        time.Duration
	// Rate is the most reversal records written per second.
	Rate float64
	// Poll is how often an idle replica looks for work.
	Poll time.Duration
	// Redis and Prefix hold the state.
	Redis  redis.UniversalClient
	Prefix string
	// Journal is the audit trail.
	Journal Journal
	// Done, if set, is told of every job that finished (the alert).
	Done func(ctx context.Context, j api.Reversal)
	// Logger logs the jobs.
	Logger *zap.Logger
}

func (o Options) validate() error {
	switch {
	case o.Kafka == nil:
		return errors.New("reversal: Options.Kafka is nil")
	case o.Gated == "" || o.Topic == "":
		return errors.New("reversal: Options.Gated and Options.Topic must be set")
	case o.WriteTimeout <= 0 || o.Lease <= 2*o.WriteTimeout:
		return errors.New("reversal: Options.Lease must exceed twice Options.WriteTimeout, which must be positive")
	case o.Rate <= 0:
		return errors.New("reversal: Options.Rate must be positive")
	case o.Poll <= 0:
		return errors.New("reversal: Options.Poll must be positive")
	case o.Redis == nil:
		return errors.New("reversal: Options.Redis is nil")
	case o.Journal == nil:
		return errors.New("reversal: Options.Journal is nil")
	case o.Logger == nil:
		return errors.New("reversal: Options.Logger is nil")
	}
	return nil
}

// Service finds candidates, starts jobs and writes them.
type Service struct {
	opts  Options
	keys  wire.Keys
	tr    *kafka.Transport
	w     *kafka.Writer
	owner string
	poke  chan struct{}
}

// New returns a service; Close releases its writer.
func New(opts Options) (*Service, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	keys, err := wire.NewKeys(opts.Prefix)
	if err != nil {
		return nil, fmt.Errorf("reversal: Options.Prefix: %w", err)
	}
	tr := opts.Kafka.Transport()
	return &Service{
		opts: opts, keys: keys, tr: tr, owner: audit.NewID(), poke: make(chan struct{}, 1),
		w: &kafka.Writer{
			Addr: opts.Kafka.Addr(), Transport: tr, Topic: opts.Topic, Balancer: &kafka.Hash{},
			RequiredAcks: kafka.RequireAll, BatchTimeout: 100 * time.Microsecond, WriteTimeout: opts.WriteTimeout,
			// One attempt: a retry whose first attempt landed would write
			// twice; the next step finds what landed and writes the rest.
			MaxAttempts: 1,
		},
	}, nil
}

// Close flushes and closes the writer.
func (s *Service) Close() error {
	err := s.w.Close()
	s.tr.CloseIdleConnections()
	return err
}

// Poke asks the writer to look for work now.
func (s *Service) Poke() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// inScope reports whether it is one of scope's actions (a segment's: its
// rule's with the segment's value).
func inScope(scope breaker.Scope, it Item) bool {
	return scope.Covers(breaker.Fields{Rule: it.Rule, Action: it.Action, ModelVersion: it.ModelVersion, ModelName: it.modelName,
		Region: it.Region, TargetType: it.TargetType})
}

// Skew is how far ahead of the forwarding replica's clock an action's
// event time may be and still be a candidate from an onset in event time
// on: the gated topic is read from this long before the onset.
const Skew = 5 * time.Minute

// Window bounds the candidates of a reversal.
type Window struct {
	// From and To bound the forwarding time (the gated record's
	// timestamp), both included.
	From, To time.Time
	// Since, if set, keeps only the actions whose event time is at or
	// after it: the detector's estimated onset is in event time.
	Since time.Time
}

// Candidates returns the forwarded actions of scope on the gated topic
// within w, of the action types actions if any are given, in forwarding
// order. Reviewers' releases are left out.
func (s *Service) Candidates(ctx context.Context, scope breaker.Scope, w Window, actions []string) ([]Item, error) {
	var out []Item
	parts, err := partition.List(ctx, s.opts.Kafka, s.opts.Gated)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		start, err := partition.At(ctx, s.opts.Kafka, s.opts.Gated, p, w.From)
		if err != nil {
			return nil, err
		}
		err = partition.Read(ctx, s.opts.Kafka, s.opts.Gated, p, start, partition.End, func(msgs []kafka.Message, _, _ int64) error {
			for _, m := range msgs {
				if m.Time.After(w.To) {
					return partition.ErrStop
				}
				it, ok := itemOf(m)
				if !ok || !inScope(scope, it) || it.ForwardedAt.Before(w.From) || it.OccurredAt.Before(w.Since) ||
					(len(actions) > 0 && !slices.Contains(actions, it.Action)) {
					continue
				}
				out = append(out, it)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read %s/%d: %w", s.opts.Gated, p, err)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ForwardedAt.Before(out[j].ForwardedAt) })
	// A redelivered input can be forwarded twice; it is reversed once.
	seen := map[string]bool{}
	kept := out[:0]
	for _, it := range out {
		if !seen[it.ActionID] {
			seen[it.ActionID] = true
			kept = append(kept, it)
		}
	}
	return kept, nil
}

// Reversed reports, per id, whether the reversals topic has it, as far as
// the writer has read it.
func (s *Service) Reversed(ctx context.Context, ids []string) ([]bool, error) {
	out := make([]bool, 0, len(ids))
	for start := 0; start < len(ids); start += 1000 {
		chunk := ids[start:min(start+1000, len(ids))]
		v, err := s.opts.Redis.SMIsMember(ctx, s.keys.RevDone(), toAny(chunk)...).Result()
		if err != nil {
			return nil, fmt.Errorf("read the reversed actions: %w", err)
		}
		out = append(out, v...)
	}
	return out, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// journalChunk bounds the ids of one journal entry.
const journalChunk = 1000

// Start journals job j with its items in the audit trail, then stores it
// for the writer. The job's Total is set from items.
func (s *Service) Start(ctx context.Context, j api.Reversal, items []Item) (api.Reversal, error) {
	j.Total, j.Status = len(items), "running"
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ActionID
	}
	var entries []audit.Entry
	for start := 0; start < len(ids); start += journalChunk {
		chunk := ids[start:min(start+journalChunk, len(ids))]
		entries = append(entries, audit.Entry{AuditEntry: api.AuditEntry{
			ID: fmt.Sprintf("reversal:%s:start:%d", j.ID, start), At: j.StartedAt, Actor: j.RequestedBy, Kind: audit.KindReversalStart,
			Incident: j.Incident, Reason: j.Reason, Count: len(chunk), Approval: j.ID, Approver: j.ApprovedBy, BreakGlass: j.BreakGlass,
		}, IDs: chunk, Since: j.From, Until: j.To})
	}
	if err := s.opts.Journal.Write(ctx, entries...); err != nil {
		return j, fmt.Errorf("journal reversal %s: %w", j.ID, err)
	}
	if err := s.store(ctx, j, items); err != nil {
		return j, err
	}
	s.Poke()
	return j, nil
}

// store writes a job and its items to Redis.
func (s *Service) store(ctx context.Context, j api.Reversal, items []Item) error {
	jv, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode reversal %s: %w", j.ID, err)
	}
	iv, err := json.Marshal(items)
	if err != nil {
		return fmt.Errorf("encode the items of reversal %s: %w", j.ID, err)
	}
	_, err = s.opts.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.keys.RevItems(j.ID), iv, 0)
		p.Set(ctx, s.keys.RevJob(j.ID), jv, 0)
		p.ZAdd(ctx, s.keys.RevJobs(), redis.Z{Score: float64(j.StartedAt.UnixMilli()), Member: j.ID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("store reversal %s: %w", j.ID, err)
	}
	return nil
}

// Get returns the job id.
func (s *Service) Get(ctx context.Context, id string) (api.Reversal, error) {
	v, err := s.opts.Redis.Get(ctx, s.keys.RevJob(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return api.Reversal{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return api.Reversal{}, fmt.Errorf("read reversal %s: %w", id, err)
	}
	var j api.Reversal
	if err := json.Unmarshal(v, &j); err != nil {
		return api.Reversal{}, fmt.Errorf("decode reversal %s: %w", id, err)
	}
	return j, nil
}

// List returns the jobs, newest first.
func (s *Service) List(ctx context.Context) ([]api.Reversal, error) {
	ids, err := s.opts.Redis.ZRevRange(ctx, s.keys.RevJobs(), 0, 999).Result()
	if err != nil {
		return nil, fmt.Errorf("list reversals: %w", err)
	}
	out := []api.Reversal{}
	for _, id := range ids {
		j, err := s.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

func (s *Service) items(ctx context.Context, id string) ([]Item, error) {
	v, err := s.opts.Redis.Get(ctx, s.keys.RevItems(id)).Bytes()
	if err != nil {
		return nil, fmt.Errorf("read the items of reversal %s: %w", id, err)
	}
	var out []Item
	if err := json.Unmarshal(v, &out); err != nil {
		return nil, fmt.Errorf("decode the items of reversal %s: %w", id, err)
	}
	return out, nil
}

// leaseScript takes the lease if it is free (2) or renews it if it is
// ours (1); 0 means another replica holds it.
var leaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
`)

// Scripts are the Lua scripts of the package, for preloading.
func Scripts() []*redis.Script { return []*redis.Script{leaseScript} }

// lease takes or renews the writer's lease.
func (s *Service) lease(ctx context.Context) (int, error) {
	n, err := leaseScript.Run(ctx, s.opts.Redis, []string{s.keys.RevLock()}, s.owner, s.opts.Lease.Milliseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("take the reversal lease: %w", err)
	}
	return n, nil
}

// fence is how long a replica that takes the lease waits before it reads
// the reversals topic: longer than a write of the previous holder may
// still take to land or fail.
func (s *Service) fence() time.Duration { return s.opts.WriteTimeout + time.Second }

// Run writes reversals until ctx ends. Every replica runs it; one at a
// time writes.
func (s *Service) Run(ctx context.Context) {
	for {
		n, err := s.Step(ctx)
		if err != nil && ctx.Err() == nil {
			s.opts.Logger.Warn("write reversals", zap.Error(err))
		}
		wait := s.opts.Poll
		if n > 0 && err == nil {
			// The rate: a batch of n takes n/rate seconds.
			wait = time.Duration(float64(n) / s.opts.Rate * float64(time.Second))
		}
		if err != nil {
			// A failed write may still land: wait it out before reading.
			wait = s.fence()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.poke:
			if n > 0 && err == nil {
				// Keep the rate: a poke does not cut a batch's pause short.
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
		case <-t.C:
		}
		t.Stop()
	}
}

// batchSize is how many records one step writes: a second's worth at the
// rate, at most 500.
func (s *Service) batchSize() int { return max(1, min(500, int(s.opts.Rate))) }

// Step writes at most one batch of the oldest running job, if this replica
// holds the lease, and returns how many records it wrote.
func (s *Service) Step(ctx context.Context) (int, error) {
	held, err := s.lease(ctx)
	if err != nil || held == 0 {
		return 0, err
	}
	if held == 2 {
		// Taken from nobody or from a replica that stopped renewing: let
		// its last write land before reading what is done.
		s.opts.Logger.Info("reversal writer lease taken", zap.String("owner", s.owner))
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(s.fence()):
		}
		if held, err = s.lease(ctx); err != nil || held != 1 {
			return 0, err
		}
	}
	if err := s.rebuildIfLost(ctx); err != nil {
		return 0, err
	}
	ids, err := s.opts.Redis.ZRange(ctx, s.keys.RevJobs(), 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("list reversals: %w", err)
	}
	for _, id := range ids {
		j, err := s.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if j.Status != "running" {
			continue
		}
		// What is on the topic is known before anything is written.
		if err := s.readTail(ctx); err != nil {
			return 0, err
		}
		return s.advance(ctx, j)
	}
	return 0, nil
}

// advance writes the next batch of j, or finishes it.
func (s *Service) advance(ctx context.Context, j api.Reversal) (int, error) {
	items, err := s.items(ctx, j.ID)
	if err != nil {
		return 0, err
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ActionID
	}
	done, err := s.Reversed(ctx, ids)
	if err != nil {
		return 0, err
	}
	var rest []Item
	for i, it := range items {
		if !done[i] {
			rest = append(rest, it)
		}
	}
	if len(rest) == 0 {
		return 0, s.finish(ctx, j)
	}
	batch := rest[:min(len(rest), s.batchSize())]
	now := time.Now()
	msgs := make([]kafka.Message, len(batch))
	for i, it := range batch {
		if msgs[i], err = message(it, j, s.opts.Gated, now); err != nil {
			return 0, err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	if err := s.w.WriteMessages(wctx, msgs...); err != nil {
		return 0, fmt.Errorf("write %d reversals of %s: %w", len(msgs), j.ID, err)
	}
	written := make([]string, len(batch))
	for i, it := range batch {
		written[i] = it.ActionID
	}
	if err := s.opts.Redis.SAdd(ctx, s.keys.RevDone(), toAny(written)...).Err(); err != nil {
		return len(batch), fmt.Errorf("record %d reversals: %w", len(batch), err)
	}
	j.Written = j.Total - (len(rest) - len(batch))
	if err := s.save(ctx, j); err != nil {
		return len(batch), err
	}
	return len(batch), nil
}

func (s *Service) save(ctx context.Context, j api.Reversal) error {
	v, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode reversal %s: %w", j.ID, err)
	}
	if err := s.opts.Redis.Set(ctx, s.keys.RevJob(j.ID), v, 0).Err(); err != nil {
		return fmt.Errorf("store reversal %s: %w", j.ID, err)
	}
	return nil
}

// finish marks j done, journals it and raises its alert.
func (s *Service) finish(ctx context.Context, j api.Reversal) error {
	j.Status, j.Written = "done", j.Total
	if j.FinishedAt.IsZero() {
		j.FinishedAt = time.Now().UTC()
	}
	if err := s.opts.Journal.Write(ctx, audit.Entry{AuditEntry: api.AuditEntry{
		ID: "reversal:" + j.ID + ":done", At: j.FinishedAt, Actor: audit.System, Kind: audit.KindReversalDone,
		Incident: j.Incident, Reason: j.Reason, Count: j.Total, Approval: j.ID, Approver: j.ApprovedBy, BreakGlass: j.BreakGlass,
	}}); err != nil {
		return fmt.Errorf("journal the end of reversal %s: %w", j.ID, err)
	}
	if err := s.save(ctx, j); err != nil {
		return err
	}
	s.opts.Logger.Info("reversal done", zap.String("reversal", j.ID), zap.String("incident", j.Incident), zap.Int("actions", j.Total))
	if s.opts.Done != nil {
		s.opts.Done(ctx, j)
	}
	return nil
}

// readTail reads the reversals topic from where the writer last read to
// its end, and records what it finds as done.
func (s *Service) readTail(ctx context.Context) error {
	parts, err := partition.List(ctx, s.opts.Kafka, s.opts.Topic)
	if err != nil {
		return err
	}
	read, err := s.opts.Redis.HGetAll(ctx, s.keys.RevRead()).Result()
	if err != nil {
		return fmt.Errorf("read the reversal offsets: %w", err)
	}
	for _, p := range parts {
		var from int64
		if v, ok := read[fmt.Sprint(p)]; ok {
			_, _ = fmt.Sscan(v, &from)
		}
		err := partition.Read(ctx, s.opts.Kafka, s.opts.Topic, p, from, partition.End, func(msgs []kafka.Message, _, next int64) error {
			var ids []string
			for _, m := range msgs {
				if id, ok := actionOf(m); ok {
					ids = append(ids, id)
				}
			}
			_, err := s.opts.Redis.TxPipelined(ctx, func(pl redis.Pipeliner) error {
				if len(ids) > 0 {
					pl.SAdd(ctx, s.keys.RevDone(), toAny(ids)...)
				}
				pl.HSet(ctx, s.keys.RevRead(), fmt.Sprint(p), next)
				return nil
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("read %s/%d: %w", s.opts.Topic, p, err)
		}
	}
	return nil
}

// rebuildIfLost rebuilds the jobs from the audit trail when Redis lost
// them; the done set is rebuilt by reading the reversals topic from the
// start (readTail, with its offsets gone too).
func (s *Service) rebuildIfLost(ctx context.Context) error {
	n, err := s.opts.Redis.Exists(ctx, s.keys.RevBuilt()).Result()
	if err != nil {
		return fmt.Errorf("read the reversal state: %w", err)
	}
	if n > 0 {
		return nil
	}
	jobs := map[string]*api.Reversal{}
	want := map[string]map[string]bool{}
	done := map[string]bool{}
	var order []string
	err = s.opts.Journal.Scan(ctx, func(e audit.Entry) error {
		switch e.Kind {
		case audit.KindReversalStart:
			j, ok := jobs[e.Approval]
			if !ok {
				j = &api.Reversal{
					ID: e.Approval, Incident: e.Incident, From: e.Since, To: e.Until, RequestedBy: e.Actor, ApprovedBy: e.Approver,
					BreakGlass: e.BreakGlass, Reason: e.Reason, StartedAt: e.At, Status: "running",
				}
				jobs[e.Approval] = j
				want[e.Approval] = map[string]bool{}
				order = append(order, e.Approval)
			}
			for _, id := range e.IDs {
				want[e.Approval][id] = true
			}
		case audit.KindReversalDone:
			done[e.Approval] = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild the reversals from the audit trail: %w", err)
	}
	for _, id := range order {
		j := jobs[id]
		scope, _, _ := strings.Cut(j.Incident, "@")
		// The window's start may be an onset in event time: read from
		// Skew before it; the journaled ids select the actions.
		items, err := s.Candidates(ctx, breaker.Scope(scope), Window{From: j.From.Add(-Skew), To: j.To}, nil)
		if err != nil {
			return fmt.Errorf("rebuild reversal %s: %w", id, err)
		}
		kept := items[:0]
		for _, it := range items {
			if want[id][it.ActionID] {
				kept = append(kept, it)
				delete(want[id], it.ActionID) // once, even if forwarded twice
			}
		}
		j.Total = len(kept)
		if done[id] {
			j.Status, j.Written = "done", j.Total
		}
		if err := s.store(ctx, *j, kept); err != nil {
			return err
		}
	}
	// The done set too, so that a preview counts what was reversed.
	if err := s.readTail(ctx); err != nil {
		return err
	}
	if err := s.opts.Redis.Set(ctx, s.keys.RevBuilt(), "1", 0).Err(); err != nil {
		return fmt.Errorf("mark the reversal state rebuilt: %w", err)
	}
	s.opts.Logger.Info("reversal state rebuilt from the audit trail", zap.Int("jobs", len(order)))
	return nil
}

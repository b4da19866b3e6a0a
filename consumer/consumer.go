// Package consumer is the Kafka pipeline: it reads the classifier's actions
// in batches, decides each batch in one rate store call, writes every action
// to the gated, held or dead-letter topic with acknowledgements from all
// in-sync replicas, and only then commits the input offsets.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/event"
	"github.com/breakwater/breakwater/metrics"
	"github.com/breakwater/breakwater/store"
)

// The headers Breakwater adds to what it forwards. The original key, value
// and headers are kept as they are.
const (
	HeaderDecision = "breakwater-decision"
	HeaderScope    = "breakwater-scope"
	HeaderState    = "breakwater-breaker-state"
	HeaderIncident = "breakwater-incident"
	HeaderReason   = "breakwater-reason"
	HeaderSource   = "breakwater-source"
)

// Decision is where one action goes.
type Decision string

// The decisions.
const (
	Gated      Decision = "gated"
	Held       Decision = "held"
	DeadLetter Decision = "dead_letter"
)

// Decider counts a batch and decides its breakers.
type Decider interface {
	Decide(ctx context.Context, b store.Batch) (store.Result, error)
}

// StateLog is the durable record of breaker transitions.
type StateLog interface {
	Record(ctx context.Context, at time.Time, ts []breaker.Transition) error
}

// Restorer brings breaker states back into a store that lost them.
type Restorer func(ctx context.Context) error

// Options are the dependencies of a Pipeline.
type Options struct {
	// Config is the validated daemon configuration.
	Config config.Config
	// Store decides batches.
	Store Decider
	// States records transitions durably.
	States StateLog
	// Restore is called when the store reports store.ErrStateLost.
	Restore Restorer
	// Logger logs; it must not be nil.
	Logger *zap.Logger
	// Metrics are updated per batch; it must not be nil.
	Metrics *metrics.Metrics
	// OnBatch, if set, is called after each committed batch (for the demo's summaries and tests).
	OnBatch func(BatchReport)
}

func (o Options) validate() error {
	switch {
	case o.Store == nil:
		return errors.New("consumer: Options.Store is nil")
	case o.States == nil:
		return errors.New("consumer: Options.States is nil")
	case o.Restore == nil:
		return errors.New("consumer: Options.Restore is nil")
	case o.Logger == nil:
		return errors.New("consumer: Options.Logger is nil")
	case o.Metrics == nil:
		return errors.New("consumer: Options.Metrics is nil")
	case len(o.Config.Kafka.Brokers) == 0:
		return errors.New("consumer: Options.Config.Kafka.Brokers is empty")
	}
	rc := ReaderConfig(o.Config, nil)
	return rc.Validate()
}

// BatchReport summarises one committed batch.
type BatchReport struct {
	// Actions counts the batch's actions per decision.
	Actions map[Decision]int
	// PerRule counts the batch's decodable actions per rule.
	PerRule map[string]int
	// Transitions are the breaker changes the batch caused.
	Transitions []breaker.Transition
	// Scopes are the counts and statuses of the scopes the batch touched.
	Scopes []store.ScopeResult
}

// Pipeline is one consumer group member.
type Pipeline struct {
	opts      Options
	cfg       config.Config
	log       *zap.Logger
	m         *metrics.Metrics
	reader    *kafka.Reader
	writer    *kafka.Writer
	transport *kafka.Transport
	committed map[int]int64
}

// ReaderConfig returns the consumer group reader configuration for cfg.
func ReaderConfig(cfg config.Config, log *zap.Logger) kafka.ReaderConfig {
	rc := kafka.ReaderConfig{
		Brokers:               cfg.Kafka.Brokers,
		GroupID:               cfg.Kafka.GroupID,
		Topic:                 cfg.Kafka.Topics.Input,
		MinBytes:              1,
		MaxBytes:              10 << 20,
		MaxWait:               100 * time.Millisecond,
		QueueCapacity:         max(2*cfg.Kafka.BatchSize, 100),
		CommitInterval:        0,
		StartOffset:           kafka.FirstOffset,
		SessionTimeout:        cfg.Kafka.SessionTimeout,
		HeartbeatInterval:     max(cfg.Kafka.SessionTimeout/4, 100*time.Millisecond),
		RebalanceTimeout:      2 * cfg.Kafka.SessionTimeout,
		JoinGroupBackoff:      500 * time.Millisecond,
		ReadBackoffMin:        10 * time.Millisecond,
		ReadBackoffMax:        500 * time.Millisecond,
		WatchPartitionChanges: true,
	}
	if log != nil {
		s := log.Named("kafka").Sugar()
		rc.ErrorLogger = kafka.LoggerFunc(func(msg string, args ...any) {
			// A fetch that found no data within MaxWait can surface as a
			// read timeout; kafka-go retries it, so it is not worth a warning.
			if line := fmt.Sprintf(msg, args...); strings.Contains(line, "i/o timeout") {
				s.Debug(line)
			} else {
				s.Warn(line)
			}
		})
	}
	return rc
}

// New returns a pipeline; it joins the group when Run starts.
func New(opts Options) (*Pipeline, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	cfg := opts.Config
	transport := &kafka.Transport{}
	return &Pipeline{
		opts:      opts,
		cfg:       cfg,
		log:       opts.Logger,
		m:         opts.Metrics,
		committed: map[int]int64{},
		reader:    kafka.NewReader(ReaderConfig(cfg, opts.Logger)),
		transport: transport,
		writer: &kafka.Writer{
			Addr:         kafka.TCP(cfg.Kafka.Brokers...),
			Transport:    transport,
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			BatchSize:    max(cfg.Kafka.BatchSize, 100),
			BatchBytes:   1 << 20,
			BatchTimeout: 50 * time.Microsecond,
			WriteTimeout: cfg.Kafka.WriteTimeout,
			MaxAttempts:  5,
		},
	}, nil
}

// Run consumes until ctx is cancelled. The batch in flight when that
// happens is finished and committed before Run returns and the member
// leaves the group.
func (p *Pipeline) Run(ctx context.Context) error {
	defer func() {
		if err := p.writer.Close(); err != nil {
			p.log.Warn("close writer", zap.Error(err))
		}
		p.transport.CloseIdleConnections()
		if err := p.reader.Close(); err != nil {
			p.log.Warn("leave consumer group", zap.Error(err))
		}
	}()
	for {
		msgs, err := p.fetch(ctx)
		if len(msgs) > 0 {
			// Finish the batch even if shutdown began: it is bounded by the
			// drain timeout and commits what was written.
			drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			perr := p.process(drainable(ctx, drain), msgs)
			cancel()
			if perr != nil {
				if ctx.Err() != nil {
					p.log.Warn("stopped before the batch was committed; it will be redelivered", zap.Error(perr))
					return nil
				}
				return perr
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// drainable is the context a batch runs on: it ignores shutdown while the
// batch can still finish, but gives up on retry loops (a paused store) as
// soon as shutdown begins, keeping the offsets uncommitted.
func drainable(stop, drain context.Context) context.Context {
	return &batchCtx{Context: drain, stop: stop}
}

type batchCtx struct {
	context.Context
	stop context.Context
}

// stopping reports whether ctx is done or, for a batch, shutdown began.
func stopping(ctx context.Context) bool {
	if bc, ok := ctx.(*batchCtx); ok && bc.stop.Err() != nil {
		return true
	}
	return ctx.Err() != nil
}

func (p *Pipeline) fetch(ctx context.Context) ([]kafka.Message, error) {
	first, err := p.reader.FetchMessage(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.m.KafkaErrors.WithLabelValues("fetch").Inc()
		}
		return nil, fmt.Errorf("fetch from %s: %w", p.cfg.Kafka.Topics.Input, err)
	}
	msgs := []kafka.Message{first}
	wait, cancel := context.WithTimeout(ctx, p.cfg.Kafka.BatchWait)
	defer cancel()
	for len(msgs) < p.cfg.Kafka.BatchSize {
		m, err := p.reader.FetchMessage(wait)
		if err != nil {
			break
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

type item struct {
	msg      kafka.Message
	act      event.Action
	bad      *event.DecodeError
	scopes   [3]breaker.Scope
	nscopes  int
	weight   int64
	severity config.Severity
	decision Decision
	scope    breaker.Scope
	state    breaker.State
	gen      uint64
	reason   string
}

// process decides, writes and commits one batch.
func (p *Pipeline) process(ctx context.Context, msgs []kafka.Message) error {
	start := time.Now()
	items := make([]item, len(msgs))
	for i := range msgs {
		p.classify(&items[i], msgs[i])
	}
	res, err := p.decide(ctx, items)
	if err != nil {
		return err
	}
	var ts []breaker.Transition
	for _, s := range res.Scopes {
		if s.Changed {
			ts = append(ts, breaker.Transition{Scope: s.Scope, To: s.Status, Counts: s.Counts})
		}
	}
	if len(ts) > 0 {
		if err := p.retry(ctx, "state", func(ctx context.Context) error {
			return p.opts.States.Record(ctx, res.Now, ts)
		}); err != nil {
			return err
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
	for _, s := range res.Scopes {
		p.m.SetState(s.Scope, s.Status.State)
	}
	out := make([]kafka.Message, len(items))
	report := BatchReport{Actions: map[Decision]int{}, PerRule: map[string]int{}, Transitions: ts, Scopes: res.Scopes}
	for i := range items {
		out[i] = p.output(&items[i])
		report.Actions[items[i].decision]++
		if items[i].bad == nil {
			report.PerRule[items[i].act.RuleID]++
		}
		p.m.Actions.WithLabelValues(string(items[i].decision), p.m.Scope(items[i].scope)).Inc()
	}
	if err := p.retry(ctx, "write", func(ctx context.Context) error {
		return p.writer.WriteMessages(ctx, out...)
	}); err != nil {
		return err
	}
	if err := p.commit(ctx, msgs); err != nil {
		return err
	}
	p.m.BatchSize.Observe(float64(len(msgs)))
	p.m.BatchSeconds.Observe(time.Since(start).Seconds())
	if p.opts.OnBatch != nil {
		p.opts.OnBatch(report)
	}
	return nil
}

func (p *Pipeline) commit(ctx context.Context, msgs []kafka.Message) error {
	last := map[int]kafka.Message{}
	for _, m := range msgs {
		if cur, ok := last[m.Partition]; !ok || m.Offset > cur.Offset {
			last[m.Partition] = m
		}
	}
	commits := make([]kafka.Message, 0, len(last))
	for _, m := range last {
		commits = append(commits, m)
	}
	err := p.retry(ctx, "commit", func(ctx context.Context) error {
		return p.reader.CommitMessages(ctx, commits...)
	})
	if err != nil {
		return err
	}
	for _, m := range commits {
		p.committed[m.Partition] = m.Offset + 1
	}
	return nil
}

// classify decodes one message and finds its scopes and weight.
func (p *Pipeline) classify(it *item, m kafka.Message) {
	it.msg = m
	if err := event.DecodeInto(&it.act, m.Value); err != nil {
		var de *event.DecodeError
		if !errors.As(err, &de) {
			de = &event.DecodeError{Reason: event.ReasonMalformed, Detail: err.Error()}
		}
		it.bad = de
		it.decision = DeadLetter
		it.reason = de.Error()
		return
	}
	if strings.ContainsFunc(it.act.Action, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		it.bad = &event.DecodeError{Reason: event.ReasonInvalidField, Field: "action", Detail: "control character"}
		it.decision = DeadLetter
		it.reason = it.bad.Error()
		return
	}
	at := p.cfg.ActionType(it.act.Action)
	it.weight = max(int64(math.Round(at.Weight*breaker.Milli)), 1)
	it.severity = at.Severity
	it.scopes[0] = breaker.Global
	it.scopes[1] = breaker.RuleScope(it.act.RuleID)
	it.nscopes = 2
	if _, ok := p.cfg.ActionThresholds(it.act.RuleID, it.act.Action); ok {
		it.scopes[2] = breaker.ActionScope(it.act.RuleID, it.act.Action)
		it.nscopes = 3
	}
}

func (p *Pipeline) policy(s breaker.Scope, it *item) breaker.Policy {
	var t config.Thresholds
	switch {
	case s == breaker.Global:
		t = p.cfg.Breakers.Global
	case s == breaker.RuleScope(it.act.RuleID):
		t = p.cfg.RuleThresholds(it.act.RuleID)
	default:
		t, _ = p.cfg.ActionThresholds(it.act.RuleID, it.act.Action)
	}
	return Policy(t)
}

// Policy converts configured thresholds to a breaker policy.
func Policy(t config.Thresholds) breaker.Policy {
	return breaker.Policy{
		Window: t.Window, MaxActions: t.MaxActions, Baseline: t.Baseline, Factor: t.Factor,
		MinActions: t.MinActions, AutoCloseAfter: t.AutoCloseAfter, Probation: t.Probation,
		ProbationScale: t.ProbationScale, Disabled: t.Disabled,
	}
}

// decide fills the decision of every item, from the store, from the
// records of a first delivery, or from the outage policy.
func (p *Pipeline) decide(ctx context.Context, items []item) (store.Result, error) {
	pending := make([]int, 0, len(items))
	for i := range items {
		if items[i].bad == nil {
			pending = append(pending, i)
		}
	}
	var res store.Result
	backoff := newBackoff()
	paused := false
	defer func() {
		if paused {
			p.m.Paused.Set(0)
		}
	}()
	for attempt := 0; len(pending) > 0; attempt++ {
		b := p.batch(items, pending)
		t0 := time.Now()
		r, err := p.opts.Store.Decide(ctx, b)
		p.m.StoreSeconds.Observe(time.Since(t0).Seconds())
		switch {
		case err == nil && len(r.Replayed) > 0:
			pending = p.applyRecords(items, pending, r.Replayed)
			continue
		case err == nil:
			p.apply(items, pending, r)
			res.Scopes = append(res.Scopes, r.Scopes...)
			res.Now = r.Now
			if paused {
				p.log.Info("rate store reachable again; resuming")
			}
			return res, nil
		case errors.Is(err, store.ErrStateLost):
			p.log.Warn("rate store lost its state; restoring breakers from the state topic")
			if rerr := p.opts.Restore(ctx); rerr != nil {
				p.log.Error("restore breaker state", zap.Error(rerr))
				if werr := backoff.wait(ctx); werr != nil {
					return res, werr
				}
			}
			continue
		}
		p.m.StoreErrors.Inc()
		if stopping(ctx) {
			return res, fmt.Errorf("decide batch: %w", err)
		}
		if p.outage(items, pending) {
			p.log.Error("rate store unreachable; applied the outage policy", zap.Error(err), zap.Int("actions", len(pending)))
			return res, nil
		}
		if !paused {
			paused = true
			p.m.Paused.Set(1)
			p.log.Error("rate store unreachable; pausing consumption, offsets kept", zap.Error(err))
		}
		if werr := backoff.wait(ctx); werr != nil {
			return res, werr
		}
	}
	return res, nil
}

// outage decides pending items without the store when every one of them
// has an outage policy of hold or pass; otherwise it decides nothing.
func (p *Pipeline) outage(items []item, pending []int) bool {
	for _, i := range pending {
		if p.cfg.OutagePolicy(items[i].severity) == config.OutagePause {
			return false
		}
	}
	for _, i := range pending {
		it := &items[i]
		it.scope = breaker.RuleScope(it.act.RuleID)
		it.reason = "store_unavailable"
		if p.cfg.OutagePolicy(it.severity) == config.OutagePass {
			it.decision = Gated
		} else {
			it.decision = Held
		}
	}
	return true
}

// batch groups the pending items' weights per scope and fine bucket.
func (p *Pipeline) batch(items []item, pending []int) store.Batch {
	var b store.Batch
	parts := map[int]int{}
	scopeIdx := map[breaker.Scope]int{}
	type bkey struct {
		scope int
		at    int64
	}
	bucketIdx := map[bkey]int{}
	for _, i := range pending {
		it := &items[i]
		pi, ok := parts[it.msg.Partition]
		if !ok {
			pi = len(b.Partitions)
			parts[it.msg.Partition] = pi
			c, ok := p.committed[it.msg.Partition]
			if !ok {
				c = -1
			}
			b.Partitions = append(b.Partitions, store.Range{Topic: it.msg.Topic, Partition: it.msg.Partition, First: it.msg.Offset, Last: it.msg.Offset, Committed: c})
		}
		r := &b.Partitions[pi]
		r.First = min(r.First, it.msg.Offset)
		r.Last = max(r.Last, it.msg.Offset)
		at := it.act.OccurredAt.UnixMilli()
		for _, s := range it.scopes[:it.nscopes] {
			si, ok := scopeIdx[s]
			if !ok {
				si = len(b.Scopes)
				scopeIdx[s] = si
				b.Scopes = append(b.Scopes, store.ScopeCounts{Scope: s, Policy: p.policy(s, it)})
			}
			sc := &b.Scopes[si]
			k := bkey{si, sc.Policy.Grid().Bucket(at)}
			if bi, ok := bucketIdx[k]; ok {
				sc.Buckets[bi].Weight += it.weight
				continue
			}
			bucketIdx[k] = len(sc.Buckets)
			sc.Buckets = append(sc.Buckets, store.Bucket{At: k.at, Weight: it.weight})
		}
	}
	return b
}

// apply decides items from the scope statuses after their batch.
func (p *Pipeline) apply(items []item, pending []int, r store.Result) {
	st := make(map[breaker.Scope]breaker.Status, len(r.Scopes))
	for _, s := range r.Scopes {
		st[s.Scope] = s.Status
	}
	for _, i := range pending {
		it := &items[i]
		it.decision = Gated
		it.scope = it.scopes[1]
		it.state = st[it.scope].State
		// The most specific holding scope names the incident.
		for j := it.nscopes - 1; j >= 0; j-- {
			s := st[it.scopes[j]]
			if s.Holds() {
				it.decision, it.scope, it.state, it.gen = Held, it.scopes[j], s.State, s.Generation
				break
			}
		}
	}
}

// applyRecords decides the items a first delivery already decided and
// returns those still pending.
func (p *Pipeline) applyRecords(items []item, pending []int, recs []store.Record) []int {
	rest := pending[:0:0]
	for _, i := range pending {
		it := &items[i]
		var rec *store.Record
		for k := range recs {
			if recs[k].Covers(it.msg.Topic, it.msg.Partition, it.msg.Offset) {
				rec = &recs[k]
				break
			}
		}
		if rec == nil {
			// Not decided before (new, or a gap inside decided ranges): decide it now.
			rest = append(rest, i)
			continue
		}
		it.decision = Gated
		it.scope = it.scopes[1]
		it.state = breaker.Closed
		it.reason = "redelivered"
		for j := it.nscopes - 1; j >= 0; j-- {
			if g, ok := rec.Holding[it.scopes[j]]; ok {
				it.decision, it.scope, it.state, it.gen = Held, it.scopes[j], breaker.Open, g
				break
			}
		}
	}
	return rest
}

func (p *Pipeline) output(it *item) kafka.Message {
	m := it.msg
	h := make([]kafka.Header, 0, len(m.Headers)+5)
	h = append(h, m.Headers...)
	h = append(h, kafka.Header{Key: HeaderDecision, Value: []byte(it.decision)})
	topic := p.cfg.Kafka.Topics.Gated
	switch it.decision {
	case Held:
		topic = p.cfg.Kafka.Topics.Held
		if it.gen > 0 {
			h = append(h, kafka.Header{Key: HeaderIncident, Value: []byte(breaker.Incident(it.scope, it.gen))})
		}
	case DeadLetter:
		topic = p.cfg.Kafka.Topics.DeadLetter
	}
	if it.scope != "" {
		h = append(h, kafka.Header{Key: HeaderScope, Value: []byte(it.scope)})
	}
	if it.state != "" {
		h = append(h, kafka.Header{Key: HeaderState, Value: []byte(it.state)})
	}
	if it.reason != "" {
		h = append(h, kafka.Header{Key: HeaderReason, Value: []byte(it.reason)})
	}
	if it.decision != Gated {
		h = append(h, kafka.Header{Key: HeaderSource, Value: []byte(m.Topic + "/" + strconv.Itoa(m.Partition) + "/" + strconv.FormatInt(m.Offset, 10))})
	}
	return kafka.Message{Topic: topic, Key: m.Key, Value: m.Value, Headers: h, Time: m.Time}
}

// retry runs fn until it succeeds or shutdown begins.
func (p *Pipeline) retry(ctx context.Context, op string, fn func(context.Context) error) error {
	b := newBackoff()
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		p.m.KafkaErrors.WithLabelValues(op).Inc()
		p.log.Error("kafka operation failed; retrying", zap.String("op", op), zap.Error(err))
		if werr := b.wait(ctx); werr != nil {
			return fmt.Errorf("%s: %w (last error: %w)", op, werr, err)
		}
	}
}

type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 50 * time.Millisecond} }

func (b *backoff) wait(ctx context.Context) error {
	t := time.NewTimer(b.d)
	defer t.Stop()
	b.d = min(2*b.d, 5*time.Second)
	var stop <-chan struct{}
	if bc, ok := ctx.(*batchCtx); ok {
		stop = bc.stop.Done()
	}
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return context.Canceled
	}
}

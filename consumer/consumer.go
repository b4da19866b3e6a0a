// Package consumer is the Kafka pipeline: it reads the classifier's actions
// in batches, decides each batch in one rate store call, writes every action
// to the gated, held or dead-letter topic with acknowledgements from all
// in-sync replicas, and only then commits the input offsets.
package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/gate"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/metrics"
	"github.com/breakwater/breakwater/store"
	"github.com/breakwater/breakwater/wire"
)

// Decider counts a batch and decides its breakers. When Decide answers
// with partitions to rebuild, the pipeline reads their first decisions
// back from the output topics and hands them to Rebuild.
type Decider interface {
	Decide(ctx context.Context, b store.Batch) (store.Result, error)
	Status(ctx context.Context, scope breaker.Scope) (breaker.Status, error)
	Rebuild(ctx context.Context, topic string, partition int, floor int64, recs []store.Record) error
}

// StateLog is the durable record of breaker transitions.
type StateLog interface {
	Record(ctx context.Context, at time.Time, ts []breaker.Transition) error
	// Recorded returns the highest generation of scope known to be recorded.
	Recorded(scope breaker.Scope) uint64
}

// AlertSink raises the alerts of breaker transitions. Raising the same
// transition twice must raise one alert. held gives, per scope that
// tripped, its actions the batch held, for the alert's figures; it may be
// nil.
type AlertSink interface {
	Raise(ctx context.Context, ts []breaker.Transition, held map[breaker.Scope]HeldCounts) error
}

// Auditor writes transitions to the audit trail; writing one twice must
// keep one entry in its index.
type Auditor interface {
	Record(ctx context.Context, ts []breaker.Transition) error
}

// HeldCounts counts the actions of a scope that a batch held, by action
// type and by model (name@version).
type HeldCounts struct {
	Actions, Models map[string]int
}

// heldCounts counts the held actions of the scopes that tripped.
func heldCounts(items []gate.Item, ts []breaker.Transition) map[breaker.Scope]HeldCounts {
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
		if it.Decision != Held || !ok {
			continue
		}
		c.Actions[it.Act.Action]++
		if it.Act.ModelName != "" || it.Act.ModelVersion != "" {
			c.Models[it.Act.ModelName+"@"+it.Act.ModelVersion]++
		}
	}
	return out
}

// Restorer brings breaker states back into a store that lost them.
type Restorer func(ctx context.Context) error

// Options are the dependencies of a Pipeline.
type Options struct {
	// Config is the validated daemon configuration.
	Config config.Config
	// Kafka is the cluster of Config.Kafka, with its TLS and SASL settings.
	Kafka *kafkaconn.Endpoint
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
	// Alerts, if set, raises the alerts of the transitions, before they are
	// recorded and the batch is committed.
	Alerts AlertSink
	// Audit, if set, writes the transitions to the audit trail, before they
	// are recorded and the batch is committed.
	Audit Auditor
	// OnBatch, if set, is called after each committed batch (for the demo's summaries and tests).
	OnBatch func(BatchReport)
	// Frontiers, if set, keeps the replicas within the smallest configured
	// window of event time of each other while they consume a backlog.
	Frontiers Frontiers
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
	case o.Kafka == nil:
		return errors.New("consumer: Options.Kafka is nil")
	}
	so := sourceOptionsFor(o)
	gc := groupConfig(so)
	if err := gc.Validate(); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	rc := so.partitionReader(0)
	if err := rc.Validate(); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	return nil
}

// sourceOptionsFor returns the options of the pipeline's input source.
func sourceOptionsFor(o Options) sourceOptions {
	cfg := o.Config
	return sourceOptions{
		kafka:          o.Kafka,
		group:          cfg.Kafka.GroupID,
		topic:          cfg.Kafka.Topics.Input,
		sessionTimeout: cfg.Kafka.SessionTimeout,
		queue:          max(cfg.Kafka.BatchSize, 100),
		frontiers:      o.Frontiers,
		lead:           smallestWindow(cfg),
		log:            o.Logger,
		m:              o.Metrics,
	}
}

// smallestWindow is the shortest window of the configured scopes.
func smallestWindow(cfg config.Config) time.Duration {
	w := cfg.Breakers.Defaults.Window
	shorter := func(d time.Duration) {
		if d > 0 && (w <= 0 || d < w) {
			w = d
		}
	}
	if !cfg.Breakers.Global.Disabled {
		shorter(cfg.Breakers.Global.Window)
	}
	for id, r := range cfg.Breakers.Rules {
		shorter(cfg.RuleThresholds(id).Window)
		for a := range r.Actions {
			t, _ := cfg.ActionThresholds(id, a)
			shorter(t.Window)
		}
	}
	return w
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
	src       source
	writer    *kafka.Writer
	transport *kafka.Transport
	gate      *gate.Gate

	scopeHeader map[breaker.Scope][]byte
	// batchPrefix and batches make the batch header: a random prefix per
	// pipeline and a count of the batches it decided.
	batchPrefix string
	batches     atomic.Uint64

	health struct {
		sync.Mutex
		storeDown  time.Time // when the rate store stopped answering; zero while it answers
		policy     string    // what the pipeline does meanwhile: pause or hold
		lag        map[int]int64
		storeSince time.Time // the start of the last outage, kept after it ends
	}

	mu        sync.Mutex // guards committed: written by the writer stage, read when deciding
	committed map[int]int64

	drainTimeout time.Duration
	progress     progress
	pause        struct {
		sync.Mutex
		n     int       // the retry loops paused on the rate store now
		since time.Time // when the pause began; zero when n is 0
	}
}

// progress tracks the batches in flight and the last sign of life of any
// of them: a finished store call, write, commit or retry attempt.
type progress struct {
	mu       sync.Mutex // guards the fields below
	inflight int
	last     time.Time
}

func (g *progress) start() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inflight == 0 {
		g.last = time.Now()
	}
	g.inflight++
}

func (g *progress) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight--
	g.last = time.Now()
}

func (g *progress) beat() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.last = time.Now()
}

// idle returns how long the batches in flight went without a sign of
// life, zero when none is in flight.
func (g *progress) idle(now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inflight == 0 {
		return 0
	}
	return max(now.Sub(g.last), 0)
}

// setPaused counts a retry loop that began or stopped waiting for the rate
// store, and keeps breakwater_paused in step.
func (p *Pipeline) setPaused(on bool) {
	p.pause.Lock()
	defer p.pause.Unlock()
	switch {
	case on:
		if p.pause.n == 0 {
			p.pause.since = time.Now()
			p.m.Paused.Set(1)
		}
		p.pause.n++
	case p.pause.n > 0:
		p.pause.n--
		if p.pause.n == 0 {
			p.pause.since = time.Time{}
			p.m.Paused.Set(0)
		}
	}
}

// Health is what the pipeline tells the health endpoints.
type Health struct {
	// PausedSince is when the pipeline paused because the rate store does
	// not answer; zero while it is not paused. A paused pipeline keeps its
	// offsets and resumes by itself.
	PausedSince time.Time
	// Stalled is how long the batches in flight went without any attempt
	// finishing, when that is longer than kafka.stall_timeout: the pipeline
	// is wedged and needs a restart. Zero otherwise.
	Stalled time.Duration
}

// Health returns the pipeline's health at now.
func (p *Pipeline) Health(now time.Time) Health {
	var h Health
	p.pause.Lock()
	h.PausedSince = p.pause.since
	p.pause.Unlock()
	if idle := p.progress.idle(now); idle > p.cfg.Kafka.StallTimeout && h.PausedSince.IsZero() {
		h.Stalled = idle
	}
	return h
}

// New returns a pipeline; it joins the group when Run starts.
func New(opts Options) (*Pipeline, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	cfg := opts.Config
	transport := opts.Kafka.Transport()
	drain := cfg.Kafka.DrainTimeout
	if drain <= 0 {
		drain = 30 * time.Second
	}
	if cfg.Kafka.StallTimeout <= 0 {
		cfg.Kafka.StallTimeout = 5 * time.Minute
	}
	return &Pipeline{
		drainTimeout: drain,
		opts:         opts,
		cfg:          cfg,
		log:          opts.Logger,
		m:            opts.Metrics,
		committed:    map[int]int64{},
		scopeHeader:  map[breaker.Scope][]byte{},
		batchPrefix:  batchPrefix(),
		gate:         gate.New(cfg),
		transport:    transport,
		writer: &kafka.Writer{
			Addr:         opts.Kafka.Addr(),
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

// Run consumes until ctx is cancelled or the pipeline cannot go on. The
// batches in flight when ctx is cancelled are finished and committed within
// kafka.drain_timeout, counted from the cancellation, before Run returns
// and the member leaves the group; a batch that cannot finish by then (a
// paused store, a broker that does not answer) is left uncommitted and
// redelivered. Run returns nil after a shutdown, and an error only when it
// stopped by itself.
//
// Two stages overlap: while one batch is written and committed, the next
// is fetched and decided. Writes and commits stay in batch order, so the
// order per key on the output topics is the input's; a batch decided but
// not yet written when the process stops is redelivered and answered from
// the store's records.
func (p *Pipeline) Run(ctx context.Context) error {
	so := sourceOptionsFor(p.opts)
	so.classify = p.gate.Classify
	src, err := newMergedSource(so)
	if err != nil {
		return err
	}
	p.src = src
	defer func() {
		if err := p.writer.Close(); err != nil {
			p.log.Warn("close writer", zap.Error(err))
		}
		p.transport.CloseIdleConnections()
		if err := p.src.Close(); err != nil {
			p.log.Warn("leave consumer group", zap.Error(err))
		}
	}()
	// The batches run on work, which outlives ctx by the drain timeout:
	// a batch decided when shutdown begins is still written and committed.
	// Retry loops see stop instead and give up at once.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var drain *time.Timer
	var drainMu sync.Mutex // guards drain
	stopDrain := context.AfterFunc(ctx, func() {
		drainMu.Lock()
		drain = time.AfterFunc(p.drainTimeout, cancelWork)
		drainMu.Unlock()
	})
	defer func() {
		stopDrain()
		drainMu.Lock()
		if drain != nil {
			drain.Stop()
		}
		drainMu.Unlock()
	}()
	b := batchRun{ctx: work, stop: ctx.Done()}
	// One decided batch waits while the one before it is written.
	jobs := make(chan *job, 1)
	written := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for j := range jobs {
			if err := p.finish(b, j); err != nil {
				p.progress.done()
				written <- err
				for range jobs {
					// Batches decided after the failure are redelivered.
					p.progress.done()
				}
				return
			}
		}
	}()
	err = p.consume(ctx, b, jobs, written)
	close(jobs)
	<-done
	select {
	case werr := <-written:
		if err == nil {
			err = werr
		}
	default:
	}
	if err != nil && ctx.Err() != nil {
		p.log.Warn("stopped before a batch was committed; it will be redelivered", zap.Error(err))
		return nil
	}
	return err
}

// batchRun is what a batch runs with: ctx, which survives the start of a
// shutdown until the drain timeout, and stop, closed when shutdown begins,
// on which retry loops (a paused store) give up and leave the offsets
// uncommitted.
type batchRun struct {
	ctx  context.Context
	stop <-chan struct{}
}

// stopping reports whether shutdown began or the batch's time is up.
func (b batchRun) stopping() bool {
	select {
	case <-b.stop:
		return true
	default:
		return b.ctx.Err() != nil
	}
}

// consume fetches and decides batches and hands them to the writer stage
// until ctx is cancelled or a stage fails.
func (p *Pipeline) consume(ctx context.Context, b batchRun, jobs chan<- *job, written <-chan error) error {
	for {
		select {
		case err := <-written:
			return err
		default:
		}
		f, err := p.fetch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if f == nil || len(f.msgs) == 0 {
			continue
		}
		p.progress.start()
		j, err := p.prepare(b, f)
		if err != nil {
			p.progress.done()
			return err
		}
		select {
		case jobs <- j:
		case err := <-written:
			p.progress.done()
			return err
		}
	}
}

// fetch returns the next batch of the partitions this member owns, merged
// by event time: it waits for a first message, then up to
// kafka.batch_wait for more. The source retries what a retry can cure (a
// broker restart, a rebalance, a coordinator move); fetch returns an error
// only for what waiting cannot cure (a denied authorisation, a
// misconfigured topic or group) or when ctx ends.
func (p *Pipeline) fetch(ctx context.Context) (*fetched, error) {
	t0 := time.Now()
	f, err := p.src.Fetch(ctx, p.cfg.Kafka.BatchSize, p.cfg.Kafka.BatchWait)
	if err != nil {
		return nil, fmt.Errorf("fetch from %s: %w", p.cfg.Kafka.Topics.Input, err)
	}
	p.m.KafkaSeconds.WithLabelValues("fetch").Observe(time.Since(t0).Seconds())
	return f, nil
}

// permanent are the Kafka errors that waiting does not cure: the process
// must stop and say so.
var permanent = []kafka.Error{
	kafka.TopicAuthorizationFailed,
	kafka.GroupAuthorizationFailed,
	kafka.ClusterAuthorizationFailed,
	kafka.SASLAuthenticationFailed,
	kafka.UnsupportedSASLMechanism,
	kafka.IllegalSASLState,
	kafka.InvalidTopic,
	kafka.InvalidGroupId,
	kafka.InvalidSessionTimeout,
	kafka.InconsistentGroupProtocol,
	kafka.UnsupportedVersion,
}

// Transient reports whether err, from a Kafka fetch, write or commit, may
// go away by retrying: a network error, a broker restart, a rebalance, a
// coordinator that moved. Errors of authorisation and configuration are
// not transient. Unknown errors count as transient: the pipeline keeps
// retrying them with backoff, and a pipeline that makes no progress at all
// shows in /healthz.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		// A write fails per message; one permanent failure is enough.
		for _, e := range we {
			if e != nil && !Transient(e) {
				return false
			}
		}
		return true
	}
	for _, e := range permanent {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
}

// Decision is where one action goes.
type Decision = gate.Decision

// The decisions.
const (
	Gated      = gate.Gated
	Held       = gate.Held
	DeadLetter = gate.DeadLetter
)

// Policy converts configured thresholds to a breaker policy.
func Policy(t config.Thresholds) breaker.Policy { return gate.Policy(t) }

// job is a decided batch on its way to the writer stage.
type job struct {
	start time.Time
	f     *fetched
	msgs  []kafka.Message
	items []gate.Item
	res   decided
	batch []byte // the batch header of its records
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

// finish writes a decided batch's actions and commits its offsets.
func (p *Pipeline) finish(b batchRun, j *job) error {
	out := make([]kafka.Message, len(j.items))
	type key struct {
		d     Decision
		scope breaker.Scope
	}
	counts := map[key]int{}
	for i := range j.items {
		it := &j.items[i]
		out[i] = p.output(&j.msgs[i], it, j.batch)
		counts[key{it.Decision, it.Scope}]++
	}
	t0 := time.Now()
	pending := out
	if err := p.retry(b, "write", func(ctx context.Context) error {
		err := p.writer.WriteMessages(ctx, pending...)
		// A retry writes only what failed: writing the whole batch again
		// would add a second copy of every record that reached its topic,
		// one that does not say it is a copy. A partition's records of a
		// batch go in one request, so they fail or succeed together and
		// the order per key holds.
		if we := (kafka.WriteErrors)(nil); errors.As(err, &we) && len(we) == len(pending) {
			failed := make([]kafka.Message, 0, we.Count())
			for i, e := range we {
				if e != nil {
					failed = append(failed, pending[i])
				}
			}
			pending = failed
		}
		return err
	}); err != nil {
		return err
	}
	t1 := time.Now()
	if err := p.commit(b, j.f); err != nil {
		return err
	}
	p.progress.done()
	p.m.KafkaSeconds.WithLabelValues("write").Observe(t1.Sub(t0).Seconds())
	p.m.KafkaSeconds.WithLabelValues("commit").Observe(time.Since(t1).Seconds())
	p.m.LastBatch.SetToCurrentTime()
	// The lag after this batch, per partition: what the broker held beyond
	// the batch's last message when it was fetched.
	lag := map[int]int64{}
	for i := range j.msgs {
		m := &j.msgs[i]
		if m.HighWaterMark > 0 {
			lag[m.Partition] = max(m.HighWaterMark-m.Offset-1, 0)
		}
	}
	p.health.Lock()
	if p.health.lag == nil {
		p.health.lag = map[int]int64{}
	}
	for part, n := range lag {
		p.m.ConsumerLag.WithLabelValues(strconv.Itoa(part)).Set(float64(n))
		p.health.lag[part] = n
	}
	p.health.Unlock()
	for k, n := range counts {
		p.m.Actions.WithLabelValues(string(k.d), p.m.Scope(k.scope)).Add(float64(n))
	}
	p.m.BatchSize.Observe(float64(len(j.msgs)))
	p.m.BatchSeconds.Observe(time.Since(j.start).Seconds())
	if p.opts.OnBatch != nil {
		report := BatchReport{Actions: map[Decision]int{}, PerRule: map[string]int{}, Transitions: j.res.transitions, Scopes: j.res.scopes}
		for i := range j.items {
			it := &j.items[i]
			report.Actions[it.Decision]++
			if it.Bad == nil {
				report.PerRule[it.Act.RuleID]++
			}
		}
		p.opts.OnBatch(report)
	}
	return nil
}

// commit commits the batch's offsets, once, in the consumer group
// generation the batch was fetched in. An error that reaches here means
// the generation ended (a rebalance) or the coordinator is gone; a retry
// could not do better. So a failed commit is left to the next batch's
// commit, which covers its offsets, or to a redelivery, answered from the
// records: they are kept, since only a confirmed commit lets the store
// drop them. A batch whose partitions were revoked before its commit is
// read again by their next owner.
func (p *Pipeline) commit(b batchRun, f *fetched) error {
	if err := p.src.Commit(b.ctx, f); err != nil {
		if errors.Is(err, errRevoked) {
			p.log.Info("partitions revoked before a batch was committed; it is redelivered to their next owner", zap.Int("actions", len(f.msgs)))
			return nil
		}
		if b.stopping() {
			return fmt.Errorf("commit: %w", err)
		}
		p.m.KafkaErrors.WithLabelValues("commit").Inc()
		p.log.Warn("commit failed; the next batch's commit covers its offsets", zap.Error(err))
		return nil
	}
	p.mu.Lock()
	for i := range f.msgs {
		m := &f.msgs[i]
		p.committed[m.Partition] = m.Offset + 1
	}
	p.mu.Unlock()
	return nil
}

func (p *Pipeline) committedOffset(_ string, partition int) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.committed[partition]; ok {
		return c
	}
	return -1
}

// decided is the store's side of a batch.
type decided struct {
	scopes      []store.ScopeResult
	transitions []breaker.Transition
	// rerecords are the statuses of the scopes a redelivery found holding,
	// recorded again: the first delivery may have stopped before it
	// recorded the trip.
	rerecords []breaker.Transition
	now       time.Time
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
func (p *Pipeline) decide(b batchRun, items []gate.Item, since map[int]time.Time) (decided, error) {
	var res decided
	pending := gate.Pending(items, nil)
	var known []store.Record
	backoff := newBackoff()
	paused := false
	defer func() {
		if paused {
			p.setPaused(false)
		}
	}()
	for len(pending) > 0 {
		// A group rewound into decided offsets can leave gaps between
		// records; each call covers offsets on one side of every record.
		chunk, rest := gate.Chunk(items, pending, known)
		sb := p.gate.Batch(items, chunk, p.committedOffset)
		t0 := time.Now()
		r, err := p.opts.Store.Decide(b.ctx, sb)
		p.m.StoreSeconds.Observe(time.Since(t0).Seconds())
		p.progress.beat()
		switch {
		case err == nil && len(r.Rebuild) > 0:
			for _, rg := range r.Rebuild {
				if err := p.retry(b, "rebuild", func(ctx context.Context) error {
					return p.rebuild(ctx, rg, since[rg.Partition])
				}); err != nil {
					return res, err
				}
			}
			continue
		case err == nil && len(r.Replayed) > 0:
			n := len(pending)
			known = append(known, r.Replayed...)
			pending = gate.ApplyRecords(items, pending, known)
			if err := p.rerecord(b, r.Replayed, &res); err != nil {
				return res, err
			}
			if len(pending) == n && b.stopping() {
				return res, fmt.Errorf("decide batch: %w", context.Canceled)
			}
			continue
		case err == nil:
			gate.Apply(items, chunk, r)
			for _, s := range r.Scopes {
				if s.Changed {
					res.transitions = append(res.transitions, breaker.Transition{Scope: s.Scope, To: s.Status, Counts: s.Counts})
				}
			}
			res.scopes = append(res.scopes, r.Scopes...)
			res.now = r.Now
			if paused {
				paused = false
				p.setPaused(false)
				p.log.Info("rate store reachable again; resuming")
			}
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
		if b.stopping() {
			return res, fmt.Errorf("decide batch: %w", err)
		}
		if p.gate.Outage(items, pending) {
			p.storeDownSince(time.Now(), "hold")
			p.log.Error("rate store unreachable; applied the outage policy", zap.Error(err), zap.Int("actions", len(pending)))
			return res, nil
		}
		p.storeDownSince(time.Now(), "pause")
		if !paused {
			paused = true
			p.setPaused(true)
			p.log.Error("rate store unreachable; pausing consumption, offsets kept", zap.Error(err))
		}
		if werr := backoff.wait(b.ctx, b.stop); werr != nil {
			return res, werr
		}
	}
	return res, nil
}

func (p *Pipeline) storeDownSince(at time.Time, policy string) {
	p.health.Lock()
	defer p.health.Unlock()
	if p.health.storeDown.IsZero() {
		p.health.storeDown, p.health.storeSince = at, at
	}
	p.health.policy = policy
}

func (p *Pipeline) storeUp() {
	p.health.Lock()
	p.health.storeDown = time.Time{}
	p.health.Unlock()
}

// StoreOutage reports whether the rate store is unreachable now, since
// when, and what the pipeline does meanwhile (pause or hold); once it
// answers again, down is false and since is the start of the last outage.
func (p *Pipeline) StoreOutage() (down bool, since time.Time, policy string) {
	p.health.Lock()
	defer p.health.Unlock()
	return !p.health.storeDown.IsZero(), p.health.storeSince, p.health.policy
}

// Lag returns the input messages beyond the last committed batch, summed
// over the partitions this member consumed, as the broker reported them
// when the batches were fetched.
func (p *Pipeline) Lag() int64 {
	p.health.Lock()
	defer p.health.Unlock()
	var n int64
	for _, l := range p.health.lag {
		n += l
	}
	return n
}

// rerecord adds the current status of every scope that held in a
// redelivered record, at a generation the state log has not seen, to the
// transitions to record: the first delivery may have stopped between its
// decision and its write to the state topic, and the state topic must not
// miss a trip. Recording a status twice is harmless: the state topic keeps
// the highest generation per scope.
func (p *Pipeline) rerecord(b batchRun, recs []store.Record, res *decided) error {
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

// headerValues are the bytes of the fixed header values, shared by every
// message: the writer only reads them.
var headerValues = func() map[string][]byte {
	m := map[string][]byte{}
	for _, d := range []Decision{Gated, Held, DeadLetter} {
		m[string(d)] = []byte(d)
	}
	for _, st := range breaker.States {
		m[string(st)] = []byte(st)
	}
	m[gate.ReasonRedelivered] = []byte(gate.ReasonRedelivered)
	m[gate.ReasonStoreUnavailable] = []byte(gate.ReasonStoreUnavailable)
	return m
}()

func headerValue(v string) []byte {
	if b, ok := headerValues[v]; ok {
		return b
	}
	return []byte(v)
}

func (p *Pipeline) output(m *kafka.Message, it *gate.Item, batch []byte) kafka.Message {
	h := make([]kafka.Header, 0, len(m.Headers)+7)
	h = append(h, m.Headers...)
	h = append(h, kafka.Header{Key: wire.HeaderDecision, Value: headerValue(string(it.Decision))})
	topic := p.cfg.Kafka.Topics.Gated
	switch it.Decision {
	case Held:
		topic = p.cfg.Kafka.Topics.Held
		if inc := it.Incident(); inc != "" {
			h = append(h, kafka.Header{Key: wire.HeaderIncident, Value: []byte(inc)})
		}
	case DeadLetter:
		topic = p.cfg.Kafka.Topics.DeadLetter
	}
	if it.Scope != "" {
		h = append(h, kafka.Header{Key: wire.HeaderScope, Value: p.scopeBytes(it.Scope)})
	}
	if it.State != "" {
		h = append(h, kafka.Header{Key: wire.HeaderState, Value: headerValue(string(it.State))})
	}
	if it.Reason != "" {
		h = append(h, kafka.Header{Key: wire.HeaderReason, Value: headerValue(it.Reason)})
	}
	// Every output carries its input position: the first decisions of
	// uncommitted input are read back from it when Redis lost them.
	h = append(h, kafka.Header{Key: wire.HeaderSource, Value: []byte(wire.Source(m.Topic, m.Partition, m.Offset))},
		kafka.Header{Key: wire.HeaderBatch, Value: batch})
	return kafka.Message{Topic: topic, Key: m.Key, Value: m.Value, Headers: h, Time: m.Time}
}

// scopeBytes returns the header bytes of a scope, shared between messages
// of a batch; only the writer stage calls it.
func (p *Pipeline) scopeBytes(s breaker.Scope) []byte {
	if b, ok := p.scopeHeader[s]; ok {
		return b
	}
	if len(p.scopeHeader) > 4096 {
		clear(p.scopeHeader)
	}
	b := []byte(s)
	p.scopeHeader[s] = b
	return b
}

// retry runs fn until it succeeds or shutdown begins. A Redis call that
// keeps failing pauses the pipeline like a failing decision does.
func (p *Pipeline) retry(b batchRun, op string, fn func(context.Context) error) error {
	bo := newBackoff()
	paused := false
	defer func() {
		if paused {
			p.setPaused(false)
		}
	}()
	for {
		err := fn(b.ctx)
		p.progress.beat()
		if err == nil {
			return nil
		}
		switch op {
		case "alert", "status":
			// Redis calls: counted by the outbox and the store.
			if !paused {
				paused = true
				p.setPaused(true)
			}
		default:
			p.m.KafkaErrors.WithLabelValues(op).Inc()
			if !Transient(err) {
				return fmt.Errorf("%s: %w", op, err)
			}
		}
		p.log.Error("operation failed; retrying", zap.String("op", op), zap.Error(err))
		if werr := bo.wait(b.ctx, b.stop); werr != nil {
			return fmt.Errorf("%s: %w (last error: %w)", op, werr, err)
		}
	}
}

// backoff is an exponential delay between retries, from 50ms to 5s.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 50 * time.Millisecond} }

// wait sleeps for the current delay and doubles it; it returns early with
// an error when ctx ends or stop closes.
func (b *backoff) wait(ctx context.Context, stop <-chan struct{}) error {
	t := time.NewTimer(b.d)
	defer t.Stop()
	b.d = min(2*b.d, 5*time.Second)
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return context.Canceled
	}
}

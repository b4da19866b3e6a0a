// Package consumer is the Kafka pipeline: it reads the classifier's actions
// in batches, decides each batch in one rate store call, writes every action
// to the gated, held or dead-letter topic with acknowledgements from all
// in-sync replicas, and only then commits the input offsets.
//
// The stages read one file each: the batch loop (loop.go), the source that
// merges the owned partitions in event time (source.go), the decision stage
// (decide.go), the writer stage (writer.go), the output records and their
// headers (headers.go), retries and backoff (retry.go), health and outage
// state (health.go), and the rebuild of first decisions from the output
// topics (rebuild.go).
package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/event"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/metrics"
)

// Decider counts a batch and decides its breakers. When Decide answers
// with partitions to rebuild, the pipeline reads their first decisions
// back from the output topics and hands them to Rebuild.
type Decider interface {
	Decide(ctx context.Context, b decide.Batch) (decide.Result, error)
	Status(ctx context.Context, scope breaker.Scope) (breaker.Status, error)
	Rebuild(ctx context.Context, topic string, partition int, floor int64, recs []decide.Record) error
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
	// Suppress, if set, holds the actions it names that would be gated:
	// those of a rule on a target a reversal undid that rule's action on.
	Suppress Suppressor
}

// Suppressor names the actions held after a reversal
// (reversal.Suppressions): it returns the hold reason of an action whose
// input record is stamped at, if it must be held.
type Suppressor interface {
	Suppressed(a *event.Action, at time.Time) (reason string, ok bool)
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
	Actions map[decide.Decision]int
	// PerRule counts the batch's decodable actions per rule.
	PerRule map[string]int
	// Transitions are the breaker changes the batch caused.
	Transitions []breaker.Transition
	// Scopes are the counts and statuses of the scopes the batch touched.
	Scopes []decide.ScopeResult
}

// Pipeline is one consumer group member.
type Pipeline struct {
	opts Options
	cfg  config.Config
	log  *zap.Logger
	m    *metrics.Metrics
	src  source
	// membership is the group member of the running pipeline, for Health.
	membership atomic.Pointer[mergedSource]
	// producer writes the output records; its Runs keeps each call
	// within runRecords and maxRunBytes.
	producer   *producer
	runRecords int
	transport  *kafka.Transport
	gate       *decide.Gate

	scopeHeader map[breaker.Scope][]byte // owned by the decide lane, which encodes
	counts      map[countKey]int         // owned by the commit stage
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
	writeTimeout := cfg.Kafka.WriteTimeout
	if writeTimeout <= 0 {
		writeTimeout = 10 * time.Second
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
		counts:       map[countKey]int{},
		batchPrefix:  batchPrefix(),
		gate:         decide.New(cfg),
		transport:    transport,
		runRecords:   max(cfg.Kafka.BatchSize, 100),
		// One attempt per write: writeRun retries, marking the copies a
		// lost answer may have left.
		producer: newProducer(opts.Kafka.Client(transport, writeTimeout), kafka.RequireAll),
	}, nil
}

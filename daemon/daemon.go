// Package daemon wires the Breakwater daemon together: the rate store, the
// durable state log, the Kafka pipeline, the HTTP endpoints and, in the
// embedded default, the in-process broker, Redis and demo traffic.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/admin"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/consumer"
	"github.com/breakwater/breakwater/embedded"
	"github.com/breakwater/breakwater/metrics"
	"github.com/breakwater/breakwater/review"
	"github.com/breakwater/breakwater/statelog"
	"github.com/breakwater/breakwater/store"
	"github.com/breakwater/breakwater/traffic"
)

// Options are what Run needs.
type Options struct {
	// Config is the validated configuration.
	Config config.Config
	// Logger logs; it must not be nil.
	Logger *zap.Logger
	// Registry collects the metrics; nil means a new registry.
	Registry *prometheus.Registry
	// OnBatch, if set, sees every committed batch.
	OnBatch func(consumer.BatchReport)
	// Ready, if set, is called once the pipeline is about to consume.
	Ready func(addrs Addrs)
}

// Addrs are the addresses the daemon ended up using, including those of the
// embedded components.
type Addrs struct {
	// Kafka are the broker addresses.
	Kafka []string
	// Redis is the Redis address.
	Redis string
	// HTTP is the listen address of the HTTP endpoints.
	HTTP string
}

// Run runs the daemon until ctx is cancelled, then drains and returns.
func Run(ctx context.Context, opts Options) error {
	cfg := opts.Config
	log := opts.Logger
	if log == nil {
		return errors.New("daemon: Options.Logger is nil")
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if !cfg.EmbeddedKafka() && cfg.EmbeddedRedis() {
		// An in-process Redis would silently split the shared counts per replica.
		return errors.New("redis.addr (or BREAKWATER_REDIS_ADDR) is required when kafka.brokers is set: the embedded Redis is only for the embedded demo")
	}
	demo := false
	if cfg.EmbeddedKafka() {
		k, err := embedded.StartKafka(9092)
		if err != nil {
			return err
		}
		defer k.Close()
		cfg.Kafka.Brokers = k.Addrs()
		cfg.Kafka.CreateTopics = true
		cfg.Kafka.ReplicationFactor = 1
		demo = true
		log.Info("no Kafka configured: started the embedded Kafka-protocol broker and the demo classifier",
			zap.Strings("brokers", cfg.Kafka.Brokers),
			zap.String("real_kafka", "set kafka.brokers in the config file (--config) or BREAKWATER_KAFKA_BROKERS=host:9092"))
	}
	if cfg.EmbeddedRedis() {
		r, err := embedded.StartRedis()
		if err != nil {
			return err
		}
		defer r.Close()
		cfg.Redis.Addr = r.Addr()
		log.Info("no Redis configured: started the embedded in-process Redis",
			zap.String("addr", cfg.Redis.Addr),
			zap.String("real_redis", "set redis.addr in the config file (--config) or BREAKWATER_REDIS_ADDR=host:6379"))
	}
	if cfg.Kafka.CreateTopics {
		if err := CreateTopics(ctx, cfg); err != nil {
			return err
		}
	}

	rc := redis.NewClient(&redis.Options{
		Addr:                  cfg.Redis.Addr,
		Username:              cfg.Redis.Username,
		Password:              cfg.Redis.Password,
		DB:                    cfg.Redis.DB,
		DialTimeout:           cfg.Redis.Timeout,
		ReadTimeout:           cfg.Redis.Timeout,
		WriteTimeout:          cfg.Redis.Timeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            2,
	})
	defer closeLogged(log, "redis client", rc)
	st, err := store.NewRedis(rc, store.RedisOptions{Prefix: cfg.Redis.KeyPrefix, RecordTTL: cfg.Redis.DecisionTTL})
	if err != nil {
		return err
	}
	states := statelog.New(cfg.Kafka.Brokers, cfg.Kafka.Topics.State, cfg.Kafka.WriteTimeout)
	defer closeLogged(log, "state log", states)
	m := metrics.New(reg, 500)
	if demo && cfg.Demo.AlertWebhook && len(cfg.Alerts.Receivers) == 0 {
		r, stop, err := startDemoWebhook(log)
		if err != nil {
			return err
		}
		defer stop()
		cfg.Alerts.Receivers = []config.Receiver{r}
		log.Info("demo: alerts go to a local webhook receiver that logs them",
			zap.String("real_receivers", "set alerts.receivers in the config file (--config)"))
	}
	alerts, err := newAlerting(cfg, rc, log, m)
	if err != nil {
		return err
	}
	restore := func(ctx context.Context) error {
		ss, err := states.Load(ctx)
		if err != nil {
			return fmt.Errorf("load breaker states: %w", err)
		}
		n, err := st.Restore(ctx, ss)
		if err != nil {
			return err
		}
		m.Restores.Inc()
		log.Info("breaker states restored from the state topic", zap.Int("recorded", len(ss)), zap.Int("restored", n))
		for _, s := range ss {
			m.SetState(s.Scope, s.Status.State)
		}
		return nil
	}
	trail, err := audit.New(audit.Options{
		Brokers: cfg.Kafka.Brokers, Topic: cfg.Admin.AuditTopic, WriteTimeout: cfg.Kafka.WriteTimeout,
		Redis: rc, Prefix: cfg.Redis.KeyPrefix, IndexSize: cfg.Admin.AuditIndexSize,
	})
	if err != nil {
		return err
	}
	defer closeLogged(log, "audit trail", trail)
	held, err := review.NewIndex(review.Options{
		Brokers: cfg.Kafka.Brokers, Topic: cfg.Kafka.Topics.Held, Redis: rc, Prefix: cfg.Redis.KeyPrefix,
		Poll: 500 * time.Millisecond, Logger: log.Named("review"), Journal: trail,
	})
	if err != nil {
		return err
	}
	defer held.Close()
	releaser, err := review.NewReleaser(held, review.ReleaseOptions{
		Brokers: cfg.Kafka.Brokers, Gated: cfg.Kafka.Topics.Gated, Rejected: cfg.Admin.RejectedTopic,
		WriteTimeout: cfg.Kafka.WriteTimeout, Lease: 3*cfg.Kafka.WriteTimeout + 5*time.Second, Batch: cfg.Admin.ReleaseBatch, Poll: time.Second,
	}, log.Named("release"))
	if err != nil {
		return err
	}
	defer closeLogged(log, "releaser", releaser)
	api, err := admin.New(admin.Options{
		Config: cfg, Breakers: st, States: states, Audit: trail, Review: held, Release: releaser.Poke,
		Restore: restore, Logger: log.Named("admin"), Alerts: alertSink(alerts),
	})
	if err != nil {
		return err
	}
	if len(cfg.Admin.Tokens) == 0 {
		log.Warn("no admin token configured: the admin API refuses every request",
			zap.String("configure", "admin.tokens in the config file or BREAKWATER_ADMIN_TOKENS=name:role:token"))
	}
	var ready atomic.Bool
	srv, httpAddr, err := serveHTTP(cfg.HTTP.Listen, reg, st, &ready, api, log)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := retryStart(ctx, log, "restore breaker states", restore); err != nil {
		return err
	}
	if alerts != nil {
		// The consumer groups exist before anything is raised, so that no
		// event falls before a receiver's starting point.
		if err := retryStart(ctx, log, "create the alert consumer groups", alerts.dispatcher.Setup); err != nil {
			return err
		}
	}

	onBatch := func(r consumer.BatchReport) {
		api.Observe(time.Now(), r.Scopes)
		if opts.OnBatch != nil {
			opts.OnBatch(r)
		}
	}
	var sum *summary
	if demo {
		sum = newSummary()
		inner := onBatch
		onBatch = func(r consumer.BatchReport) {
			sum.add(r)
			inner(r)
		}
	}
	p, err := consumer.New(consumer.Options{
		Config: cfg, Store: st, States: states, Restore: restore, Logger: log, Metrics: m, OnBatch: onBatch,
		Alerts: alertSink(alerts), Audit: trail,
	})
	if err != nil {
		return err
	}
	ready.Store(true)
	if opts.Ready != nil {
		opts.Ready(Addrs{Kafka: cfg.Kafka.Brokers, Redis: cfg.Redis.Addr, HTTP: httpAddr})
	}
	var wg sync.WaitGroup
	if alerts != nil {
		wg.Go(func() { _ = alerts.dispatcher.Run(ctx) })
		wg.Go(func() { alerts.watch(ctx, cfg, p, st, 5*time.Second) })
	}
	// The review goroutines stop when the pipeline does, whatever the reason.
	reviewCtx, stopReview := context.WithCancel(ctx)
	defer stopReview()
	wg.Go(func() { held.Run(reviewCtx) })
	wg.Go(func() { watchHeld(reviewCtx, cfg, held, m, alerts, 15*time.Second) })
	wg.Go(func() { releaser.Run(reviewCtx) })
	if demo {
		wg.Go(func() { runDemo(ctx, cfg, log) })
		wg.Go(func() { sum.run(ctx, log, st, 5*time.Second) })
	}
	log.Info("consuming", zap.String("input", cfg.Kafka.Topics.Input), zap.String("group", cfg.Kafka.GroupID),
		zap.String("http", httpAddr))
	err = p.Run(ctx)
	stopReview()
	wg.Wait()
	log.Info("stopped")
	return err
}

func retryStart(ctx context.Context, log *zap.Logger, what string, fn func(context.Context) error) error {
	d := 200 * time.Millisecond
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		log.Warn(what+" failed; retrying", zap.Error(err), zap.Duration("in", d))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		case <-time.After(d):
		}
		d = min(2*d, 5*time.Second)
	}
}

// CreateTopics creates the topics of cfg that do not exist yet; the state
// topic is compacted.
func CreateTopics(ctx context.Context, cfg config.Config) error {
	c := &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...), Timeout: 10 * time.Second}
	t := cfg.Kafka.Topics
	var reqs []kafka.TopicConfig
	for _, name := range []string{t.Input, t.Gated, t.Held, t.DeadLetter, t.State, cfg.Admin.AuditTopic, cfg.Admin.RejectedTopic} {
		tc := kafka.TopicConfig{Topic: name, NumPartitions: cfg.Kafka.Partitions, ReplicationFactor: cfg.Kafka.ReplicationFactor}
		if name == t.State {
			tc.ConfigEntries = []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}
		}
		reqs = append(reqs, tc)
	}
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: reqs})
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for name, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", name, err)
		}
	}
	return nil
}

type statusReader interface {
	Ping(ctx context.Context) error
}

func serveHTTP(addr string, reg *prometheus.Registry, st statusReader, ready *atomic.Bool, api http.Handler, log *zap.Logger) (*http.Server, string, error) {
	mux := http.NewServeMux()
	mux.Handle("/v1/", api)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		switch {
		case !ready.Load():
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"starting"}` + "\n"))
		case st.Ping(ctx) != nil:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"rate store unreachable"}` + "\n"))
		default:
			_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if addr == "" {
		return srv, "", nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen on http.listen %s: %w", addr, err)
	}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", zap.Error(err))
		}
	}()
	return srv, l.Addr().String(), nil
}

// runDemo plays the built-in classifier into the input topic.
func runDemo(ctx context.Context, cfg config.Config, log *zap.Logger) {
	w := &kafka.Writer{
		Addr: kafka.TCP(cfg.Kafka.Brokers...), Topic: cfg.Kafka.Topics.Input, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 100 * time.Microsecond, BatchSize: 1000,
	}
	defer closeLogged(log, "demo producer", w)
	d := cfg.Demo
	start := time.Now()
	hot := min(2, d.Rules-1)
	sc := traffic.Scenario{
		Start: start, Duration: 100 * 365 * 24 * time.Hour, Rules: d.Rules, Rate: float64(d.Rate),
		Skew: 0.3, Noise: 0.05, Seed: d.Seed,
	}
	if d.IncidentAfter >= 0 {
		sc.Incidents = []traffic.Incident{{Kind: traffic.Spike, Rule: hot, At: d.IncidentAfter, For: 99 * 365 * 24 * time.Hour, Factor: d.IncidentFactor}}
	}
	if err := sc.Validate(); err != nil {
		log.Error("demo classifier not started", zap.Error(err))
		return
	}
	g := traffic.NewLive(sc)
	log.Info("demo classifier started",
		zap.Int("rules", d.Rules), zap.Int("rate_per_second", d.Rate),
		zap.String("incident_rule", traffic.RuleID(hot)),
		zap.Duration("incident_after", d.IncidentAfter), zap.Float64("incident_factor", d.IncidentFactor))
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	announced := false
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if !announced && d.IncidentAfter >= 0 && now.Sub(start) >= d.IncidentAfter {
				announced = true
				log.Warn("demo: incident begins: one rule starts acting far more than normal",
					zap.String("rule", traffic.RuleID(hot)), zap.Float64("factor", d.IncidentFactor))
			}
			evs := g.Until(now)
			msgs := make([]kafka.Message, len(evs))
			for i, e := range evs {
				msgs[i] = kafka.Message{Key: e.Key, Value: e.Value}
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil && ctx.Err() == nil {
				log.Warn("demo: produce", zap.Error(err))
			}
		}
	}
}

// summary aggregates committed batches for the demo's periodic log line.
type summary struct {
	mu      sync.Mutex // guards the fields below
	perRule map[string]int
	total   map[consumer.Decision]int
}

func newSummary() *summary {
	return &summary{perRule: map[string]int{}, total: map[consumer.Decision]int{}}
}

func (s *summary) add(r consumer.BatchReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range r.PerRule {
		s.perRule[k] += v
	}
	for k, v := range r.Actions {
		s.total[k] += v
	}
}

type lister interface {
	List(ctx context.Context) ([]store.ScopeStatus, error)
}

func (s *summary) run(ctx context.Context, log *zap.Logger, st lister, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		rules := make([]string, 0, len(s.perRule))
		for r := range s.perRule {
			rules = append(rules, r)
		}
		sort.Strings(rules)
		var rates []string
		for _, r := range rules {
			rates = append(rates, fmt.Sprintf("%s=%.1f/s", r, float64(s.perRule[r])/every.Seconds()))
		}
		gated, held, dead := s.total[consumer.Gated], s.total[consumer.Held], s.total[consumer.DeadLetter]
		s.perRule = map[string]int{}
		s.mu.Unlock()
		var open []string
		if ss, err := st.List(ctx); err == nil {
			for _, x := range ss {
				if x.Status.State != breaker.Closed {
					open = append(open, fmt.Sprintf("%s:%s", x.Scope, x.Status.State))
				}
			}
		}
		sort.Strings(open)
		log.Info("demo summary",
			zap.String("rates", strings.Join(rates, " ")),
			zap.Int("gated_total", gated), zap.Int("held_total", held), zap.Int("dead_letter_total", dead),
			zap.Strings("breakers_not_closed", open))
	}
}

// closeLogged closes c at shutdown and logs a failure.
func closeLogged(log *zap.Logger, what string, c interface{ Close() error }) {
	if err := c.Close(); err != nil {
		log.Warn("close "+what, zap.Error(err))
	}
}

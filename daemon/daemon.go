// Package daemon wires the Breakwater daemon together: the rate store, the
// durable state log, the Kafka pipeline, the HTTP endpoints and, in the
// embedded default, the in-process broker, Redis and demo traffic.
package daemon

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/admin"
	"github.com/breakwater/breakwater/alert"
	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/appeals"
	"github.com/breakwater/breakwater/approval"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/check"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/consumer"
	"github.com/breakwater/breakwater/embedded"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/internal/redisconn"
	"github.com/breakwater/breakwater/metrics"
	"github.com/breakwater/breakwater/reversal"
	"github.com/breakwater/breakwater/review"
	"github.com/breakwater/breakwater/signin"
	"github.com/breakwater/breakwater/statelog"
	"github.com/breakwater/breakwater/store"
	"github.com/breakwater/breakwater/wire"
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

// Run builds the daemon's components, then runs them under one owner until
// ctx is cancelled or one of them fails: a failure stops all the others,
// and Run returns it once they stopped (within kafka.drain_timeout and a
// margin; Run never hangs on a member that does not stop). After a
// shutdown through ctx, Run returns nil.
func Run(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		return errors.New("daemon: Options.Logger is nil")
	}
	d, err := build(ctx, opts)
	if err != nil {
		if ctx.Err() != nil {
			// Shut down while it waited at start (for Kafka, say): the
			// shutdown it was asked for.
			opts.Logger.Info("stopped while starting", zap.Error(err))
			return nil
		}
		return err
	}
	err = d.run(ctx)
	if !closeWithin(d.close, closeTimeout) {
		d.log.Error("closing the components did not finish; exiting anyway", zap.Duration("waited", closeTimeout))
	}
	return err
}

// closeTimeout bounds how long closing the components may take once they
// stopped: a client wedged on a connection must not keep the process from
// exiting.
const closeTimeout = 15 * time.Second

// closeWithin runs fn and reports whether it returned within d; if not,
// it is left running.
func closeWithin(fn func(), d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// daemon is a built daemon: its components, and the order to close them.
type daemon struct {
	opts     Options
	cfg      config.Config
	log      *zap.Logger
	metrics  *metrics.Metrics
	store    *store.Redis
	pipeline *consumer.Pipeline
	alerts   *alerting // nil without receivers
	held     *review.Index
	releaser *review.Releaser
	reverser *reversal.Service
	appeals  *appeals.Service // nil unless appeals.enabled
	suppress *reversal.Suppressions
	api      *admin.API
	restore  func(ctx context.Context) error
	// redis is the client every component shares.
	redis redis.UniversalClient
	// refused gets the first reply of Redis that refused a permission once
	// the start-up checks passed (see watchRefusals); armed says whether
	// they did.
	refused chan error
	armed   atomic.Bool
	// demo is the built-in classifier of the embedded mode; nil otherwise.
	demo *demo

	// mux serves /v1/ (the admin API), /metrics, /healthz and /readyz.
	mux      *http.ServeMux
	listener net.Listener // nil when http.listen is empty
	health   *health
	// front is what the listener serves from the start of build: the
	// health routes, then mux once it is built. srv serves it; served
	// gets what its Serve returned.
	front  *front
	srv    *http.Server
	served chan error

	closers []func() // in the order the components were built
}

// build starts the embedded components if the configuration asks for them
// and builds every other one, without starting any goroutine. On error
// what was started is closed again.
func build(ctx context.Context, opts Options) (_ *daemon, err error) {
	cfg := opts.Config
	log := opts.Logger
	d := &daemon{opts: opts, log: log}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if !cfg.EmbeddedKafka() && cfg.EmbeddedRedis() {
		// An in-process Redis would silently split the shared counts per replica.
		return nil, errors.New("redis.addr (or BREAKWATER_REDIS_ADDR), redis.addrs (a Cluster) or redis.master_name with redis.sentinel_addrs is required when kafka.brokers is set: the embedded Redis is only for the embedded demo")
	}
	// The listener opens first, so that /healthz answers from the start
	// and /readyz says what the start waits for; the other routes answer
	// 503 until the daemon is built.
	d.health = &health{}
	if err := reg.Register(d.health); err != nil {
		return nil, fmt.Errorf("register breakwater_readiness: %w", err)
	}
	d.front = newFront(reg, d.health)
	if err := d.listen(cfg); err != nil {
		return nil, err
	}
	embeddedMode := cfg.EmbeddedKafka()
	if embeddedMode {
		k, err := embedded.StartKafka(cfg.Demo.KafkaPort)
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, k.Close)
		cfg.Kafka.Brokers = k.Addrs()
		cfg.Kafka.CreateTopics = true
		cfg.Kafka.ReplicationFactor = 1
		log.Info("no Kafka configured: started the embedded Kafka-protocol broker and the demo classifier",
			zap.Strings("brokers", cfg.Kafka.Brokers),
			zap.String("real_kafka", "set kafka.brokers in the config file (--config) or BREAKWATER_KAFKA_BROKERS=host:9092"))
	}
	if cfg.EmbeddedRedis() {
		r, err := embedded.StartRedis()
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, r.Close)
		cfg.Redis.Addr = r.Addr()
		log.Info("no Redis configured: started the embedded in-process Redis",
			zap.String("addr", cfg.Redis.Addr),
			zap.String("real_redis", "set redis.addr in the config file (--config) or BREAKWATER_REDIS_ADDR=host:6379"))
	}
	kc, err := kafkaconn.New(cfg.Kafka, log)
	if err != nil {
		return nil, err
	}
	d.health.setStarting("connecting to Kafka")
	if err := retryStart(ctx, log, "connect to Kafka", kc.Probe, nil); err != nil {
		return nil, err
	}
	if cfg.Kafka.CreateTopics {
		d.health.setStarting("creating the topics")
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		retention := time.Duration(0)
		if embeddedMode {
			retention = max(embedded.Retention, 2*cfg.Demo.ReviewAfter)
		}
		err := createTopics(cctx, cfg, kc, retention)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	d.health.setStarting("checking the Kafka permissions")
	if err := verifyKafka(ctx, log, cfg, kc); err != nil {
		return nil, err
	}
	d.health.setStarting("connecting to Redis")
	if embeddedMode {
		// The demo's alert receiver goes into the configuration before
		// alerting is built from it.
		if d.demo, err = newDemo(&cfg, log); err != nil {
			return nil, err
		}
		d.demo.kafka = kc
		d.closers = append(d.closers, d.demo.close)
	}
	d.cfg = cfg

	rc, err := redisconn.New(cfg.Redis, log)
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, func() { closeLogged(log, "redis client", rc) })
	d.redis = rc
	d.refused = make(chan error, 1)
	redisconn.OnRefusal(rc, func(err error) {
		if !d.armed.Load() {
			return // the start-up check reports its own refusals
		}
		select {
		case d.refused <- err:
		default:
		}
	})
	// A refused password stays refused: stop now. Redis merely unreachable
	// is what the pipeline pauses for.
	pctx, cancel := context.WithTimeout(ctx, cfg.Redis.Timeout)
	perr := redisconn.Probe(pctx, rc)
	cancel()
	if errors.Is(perr, redisconn.ErrRejected) {
		return nil, perr
	}
	st, err := store.NewRedis(rc, store.RedisOptions{
		Prefix: cfg.Redis.KeyPrefix, RecordTTL: cfg.Redis.DecisionTTL,
		// The wait for the replicas takes half of the bound of one call,
		// which covers the script and the wait together.
		MinReplicas: cfg.Redis.MinReplicasAcked, ReplicaTimeout: cfg.Redis.Timeout / 2,
	})
	if err != nil {
		return nil, err
	}
	d.store = st
	states := statelog.New(kc, cfg.Kafka.Topics.State, cfg.Kafka.WriteTimeout)
	d.closers = append(d.closers, func() { closeLogged(log, "state log", states) })
	m := metrics.New(reg, 500)
	d.metrics = m
	if d.alerts, err = newAlerting(cfg, rc, log, m); err != nil {
		return nil, err
	}
	d.restore = func(ctx context.Context) error {
		ss, err := states.Load(ctx)
		if err != nil {
			return fmt.Errorf("load breaker states: %w: %w", errStateTopic, err)
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
		Kafka: kc, Topic: cfg.Admin.AuditTopic, WriteTimeout: cfg.Kafka.WriteTimeout,
		Redis: rc, Prefix: cfg.Redis.KeyPrefix, IndexSize: cfg.Admin.AuditIndexSize,
	})
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, func() { closeLogged(log, "audit trail", trail) })
	d.held, err = review.NewIndex(review.Options{
		Kafka: kc, Topic: cfg.Kafka.Topics.Held, Redis: rc, Prefix: cfg.Redis.KeyPrefix,
		Poll: 500 * time.Millisecond, Logger: log.Named("review"), Journal: trail,
		States: st, ContinueWithin: cfg.Review.ContinueWithin, UndoGrace: undoGrace,
	})
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, d.held.Close)
	d.releaser, err = review.NewReleaser(d.held, review.ReleaseOptions{
		Kafka: kc, Gated: cfg.Kafka.Topics.Gated, Rejected: cfg.Admin.RejectedTopic,
		WriteTimeout: cfg.Kafka.WriteTimeout, Lease: 3*cfg.Kafka.WriteTimeout + 5*time.Second, Batch: cfg.Admin.ReleaseBatch, Poll: time.Second,
	}, log.Named("release"))
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, func() { closeLogged(log, "releaser", d.releaser) })
	d.reverser, err = reversal.New(reversal.Options{
		Kafka: kc, Gated: cfg.Kafka.Topics.Gated, Topic: cfg.Reversals.Topic,
		WriteTimeout: cfg.Kafka.WriteTimeout, Lease: 2*cfg.Kafka.WriteTimeout + 5*time.Second, Rate: cfg.Reversals.Rate, Poll: time.Second,
		Redis: rc, Prefix: cfg.Redis.KeyPrefix, Journal: trail, Logger: log.Named("reversal"),
		Done: func(ctx context.Context, j api.Reversal) {
			if d.alerts != nil {
				d.alerts.raiseQuiet(ctx, alert.ReversalDone(j.ID, j.Incident, j.Total, j.RequestedBy, j.ApprovedBy, j.FinishedAt))
			}
		},
	})
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, func() { closeLogged(log, "reverser", d.reverser) })
	var appealsSwitch admin.AppealsSwitch
	var estimates admin.AppealsEstimator
	if cfg.Appeals.Enabled {
		keys, err := wire.NewKeys(cfg.Redis.KeyPrefix)
		if err != nil {
			return nil, err
		}
		as, err := appeals.NewStore(rc, keys, cfg.Appeals.JoinFor, cfg.Appeals.JoinMax, cfg.Appeals.Window)
		if err != nil {
			return nil, err
		}
		appealsSwitch = as
		var raise func(ctx context.Context, ts []breaker.Transition) error
		if d.alerts != nil {
			raise = func(ctx context.Context, ts []breaker.Transition) error { return d.alerts.Raise(ctx, ts, nil) }
		}
		d.appeals, err = appeals.NewService(appeals.Options{
			Config: cfg, Kafka: kc, Store: as, Breakers: st, States: states, Audit: trail, Alert: raise,
			Restore: d.restore, Logger: log.Named("appeals"),
		})
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, func() { closeLogged(log, "appeals", d.appeals) })
		estimates = d.appeals
	}
	hist, err := newHistory(rc, cfg.Redis.KeyPrefix)
	if err != nil {
		return nil, err
	}
	approvals, err := approval.NewStore(rc, cfg.Redis.KeyPrefix, cfg.Approval.Retention)
	if err != nil {
		return nil, err
	}
	people, sso, err := newSignIn(cfg, rc, log.Named("signin"))
	if err != nil {
		return nil, err
	}
	api, err := admin.New(admin.Options{
		Config: cfg, Breakers: st, States: states, Audit: trail, Review: d.held, Release: d.releaser.Poke,
		Restore: d.restore, Logger: log.Named("admin"), Alerts: alertSink(d.alerts), History: hist,
		Approvals: approvals, Pager: pager(d.alerts), People: peopleOf(people),
		Reversals: d.reverser, Appeals: appealsSwitch, Estimates: estimates,
	})
	if err != nil {
		return nil, err
	}
	if len(cfg.Admin.Tokens) == 0 && !cfg.SignIn.Enabled() {
		log.Warn("no admin token and no sign-in configured: the admin API refuses every request",
			zap.String("configure", "admin.tokens in the config file or BREAKWATER_ADMIN_TOKENS=name:role:token"))
	}
	onBatch := func(r consumer.BatchReport) {
		api.Observe(time.Now(), r.Scopes)
		if d.demo != nil {
			d.demo.summary.add(r)
		}
		if opts.OnBatch != nil {
			opts.OnBatch(r)
		}
	}
	co := consumer.Options{
		Config: cfg, Kafka: kc, Store: st, States: states, Restore: d.restore, Logger: log, Metrics: m, OnBatch: onBatch,
		Alerts: alertSink(d.alerts), Audit: trail, Frontiers: st,
	}
	if cfg.Reversals.SuppressFor > 0 {
		d.suppress = reversal.NewSuppressions(kc, cfg.Reversals.Topic, cfg.Reversals.SuppressFor, log.Named("suppress"))
		co.Suppress = d.suppress
	}
	d.pipeline, err = consumer.New(co)
	if err != nil {
		return nil, err
	}
	d.health.setPipeline(d.pipeline)
	d.api = api
	d.mux = newMux(reg, d.health, api)
	mountConsole(d.mux)
	signin.MountMethods(d.mux, cfg.SignIn, people)
	if sso != nil {
		sso.Mount(d.mux)
	}
	// From here on the admin API answers; until the start restored the
	// breaker states it answers 503 "restoring" itself.
	d.front.full.Store(d.mux)
	return d, nil
}

// listen opens http.listen, if set, and serves d.front on it at once.
func (d *daemon) listen(cfg config.Config) error {
	if cfg.HTTP.Listen == "" {
		return nil
	}
	tc, err := cfg.HTTP.ServerTLS()
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listen on http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	if tc != nil {
		l = tls.NewListener(l, tc)
	}
	d.listener = l
	d.srv = &http.Server{Handler: d.front, ReadHeaderTimeout: 5 * time.Second}
	d.served = make(chan error, 1)
	go func() { d.served <- d.srv.Serve(l) }()
	d.closers = append(d.closers, func() { _ = d.srv.Close() })
	return nil
}

// close closes the components in the reverse order of their building.
func (d *daemon) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

// undoGrace is how long a decision on a single held action waits before
// its release, so that the reviewer can undo it.
const undoGrace = 10 * time.Second

// stopMargin is how long the members other than the pipeline may take to
// stop, beyond the pipeline's drain timeout.
const stopMargin = 15 * time.Second

// run runs every component under one group until ctx is cancelled or a
// component returns; it returns the first error.
func (d *daemon) run(ctx context.Context) error {
	g := newGroup(ctx)
	d.health.setStopping(g.Context().Done())
	httpAddr := ""
	if d.listener != nil {
		httpAddr = d.listener.Addr().String()
		g.Go("http server", func(ctx context.Context) error { return waitServing(ctx, d.srv, d.listener.Addr(), d.served) })
	}
	g.Go("readiness probe", func(ctx context.Context) error {
		d.health.runProbe(ctx, d.store, probeEvery, probeTimeout)
		return nil
	})
	g.Go("pipeline", func(ctx context.Context) error {
		if err := d.start(ctx); err != nil {
			if ctx.Err() != nil {
				return nil // shut down while starting
			}
			return err
		}
		d.startMembers(g)
		d.health.ready.Store(true)
		if d.opts.Ready != nil {
			d.opts.Ready(Addrs{Kafka: d.cfg.Kafka.Brokers, Redis: d.cfg.Redis.Addr, HTTP: httpAddr})
		}
		d.log.Info("consuming", zap.String("input", d.cfg.Kafka.Topics.Input), zap.String("group", d.cfg.Kafka.GroupID),
			zap.String("http", httpAddr))
		if d.demo != nil && httpAddr != "" {
			announceConsole(d.log, d.cfg, httpAddr)
		}
		err := d.pipeline.Run(ctx)
		if redisconn.Refused(err) {
			return d.refusal(err)
		}
		return err
	})
	err := g.Wait(d.cfg.Kafka.DrainTimeout + stopMargin)
	if err != nil {
		d.log.Error("stopping: a component failed", zap.Error(err))
	}
	d.log.Info("stopped")
	return err
}

// start verifies the Redis user's permissions, restores the breaker
// states and creates the alert consumer groups, retrying while Redis is
// unreachable; it returns an error if a permission is refused or ctx ended
// first.
func (d *daemon) start(ctx context.Context) error {
	verify := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return check.RedisAccess(ctx, d.redis, d.cfg.Redis)
	}
	unreachable := func(error) { d.health.setStarting("restoring: rate store unreachable") }
	d.health.setStarting("restoring: verifying the rate store's permissions")
	if err := retryStart(ctx, d.log, "verify the Redis user's permissions", verify, unreachable); err != nil {
		return err
	}
	d.armed.Store(true)
	d.health.setStarting("restoring: loading the breaker states from the state topic")
	restoreFailed := func(err error) {
		if errors.Is(err, errStateTopic) {
			d.health.setStarting("restoring: state topic unreadable")
			return
		}
		unreachable(err)
	}
	if err := retryStart(ctx, d.log, "restore breaker states", d.restore, restoreFailed); err != nil {
		return err
	}
	if d.suppress != nil {
		// The suppressions of the last reversals are known before the
		// first action is decided.
		d.health.setStarting("loading the suppressions from the reversals topic")
		if err := retryStart(ctx, d.log, "load the suppressions from the reversals topic", d.suppress.Load,
			func(error) { d.health.setStarting("loading the suppressions: reversals topic unreadable") }); err != nil {
			return err
		}
	}
	if d.alerts != nil {
		// The consumer groups exist before anything is raised, so that no
		// event falls before a receiver's starting point.
		d.health.setStarting("creating the alert consumer groups")
		if err := retryStart(ctx, d.log, "create the alert consumer groups", d.alerts.dispatcher.Setup, unreachable); err != nil {
			return err
		}
	}
	return nil
}

// errStateTopic marks a restore that could not read the state topic.
var errStateTopic = errors.New("state topic unreadable")

// watchRefusals returns an error naming the refused permission and what
// to grant as soon as Redis refuses one: a NOPERM is not an outage that
// retrying mends, so the daemon stops with it.
func (d *daemon) watchRefusals(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-d.refused:
		return d.refusal(err)
	}
}

// refusal returns the error the daemon stops with when Redis refused a
// permission at run time: the refusal and the ACL SETUSER of every
// permission Breakwater needs.
func (d *daemon) refusal(err error) error {
	keys, kerr := wire.NewKeys(d.cfg.Redis.KeyPrefix)
	if kerr != nil {
		return errors.Join(err, kerr)
	}
	return fmt.Errorf("redis refused a command at run time: %w (grant it: ACL SETUSER %s on %s)",
		err, cmp.Or(d.cfg.Redis.Username, "default"), keys.ACLRules(d.cfg.Redis.MinReplicasAcked > 0))
}

// verifyKafka runs the Kafka permission checks: a refused operation stops
// the daemon at start with what to grant; other findings (a missing
// topic, a state topic that is not compacted) are logged.
func verifyKafka(ctx context.Context, log *zap.Logger, cfg config.Config, kc *kafkaconn.Endpoint) error {
	report, err := check.KafkaAccess(ctx, cfg, kc, 10*time.Second)
	if err != nil {
		return err
	}
	for _, r := range report {
		if r.Status == check.Fail || r.Status == check.Warn {
			log.Warn("kafka check: "+r.Check, zap.String("found", r.Detail), zap.String("fix", r.Fix))
		}
	}
	return nil
}

// startMembers starts the components that run beside the pipeline.
func (d *daemon) startMembers(g *group) {
	g.Go("redis permissions", d.watchRefusals)
	if a := d.alerts; a != nil {
		g.Go("alert delivery", a.dispatcher.Run)
		g.Go("alert conditions", func(ctx context.Context) error {
			a.watch(ctx, d.cfg, d.pipeline, d.store, 5*time.Second)
			return nil
		})
	}
	g.Go("state restorer", func(ctx context.Context) error {
		d.watchRestore(ctx, 500*time.Millisecond)
		return nil
	})
	g.Go("held index", func(ctx context.Context) error {
		d.held.Run(ctx)
		return nil
	})
	g.Go("held backlog", func(ctx context.Context) error {
		watchHeld(ctx, d.cfg, d.held, d.metrics, d.alerts, 15*time.Second)
		return nil
	})
	g.Go("releaser", func(ctx context.Context) error {
		d.releaser.Run(ctx)
		return nil
	})
	g.Go("reverser", func(ctx context.Context) error {
		d.reverser.Run(ctx)
		return nil
	})
	if d.appeals != nil {
		g.Go("appeals", func(ctx context.Context) error {
			d.appeals.Run(ctx)
			return nil
		})
	}
	if d.suppress != nil {
		g.Go("suppressions", func(ctx context.Context) error {
			d.suppress.Run(ctx, time.Second)
			return nil
		})
	}
	g.Go("breaker history", func(ctx context.Context) error {
		d.api.RunHistory(ctx)
		return nil
	})
	if d.demo != nil {
		d.demo.start(g, d.cfg, d.store, d.api)
	}
}

// watchRestore restores the breaker states as soon as Redis lost them,
// rather than when the next batch arrives: until they are back, the admin
// API and /readyz answer 503 "restoring", so no reader sees a tripped
// breaker as closed.
func (d *daemon) watchRestore(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := d.store.Initialised(ctx)
		if err != nil || ok {
			continue // an outage is the pipeline's to report
		}
		d.log.Warn("rate store lost its state; restoring breakers from the state topic")
		if err := d.restore(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("restore breaker state", zap.Error(err))
		}
	}
}

// serve serves HTTP on l until ctx ends, then shuts the server down.
func serve(ctx context.Context, srv *http.Server, l net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	return waitServing(ctx, srv, l.Addr(), errc)
}

// waitServing waits while srv serves on addr (served gets what its Serve
// returns) until ctx ends, then shuts the server down.
func waitServing(ctx context.Context, srv *http.Server, addr net.Addr, served <-chan error) error {
	select {
	case err := <-served:
		return fmt.Errorf("serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-served
	return nil
}

// retryStart runs fn until it succeeds, with a backoff of up to 5 s,
// logging every failure; failed, if not nil, sees each failure. A refusal
// that retrying cannot mend (a wrong password, an untrusted certificate, a
// refused permission) ends it with the error, and so does ctx.
func retryStart(ctx context.Context, log *zap.Logger, what string, fn func(context.Context) error, failed func(error)) error {
	d := 200 * time.Millisecond
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if failed != nil {
			failed(err)
		}
		if errors.Is(err, kafkaconn.ErrRejected) || errors.Is(err, redisconn.ErrRejected) || errors.Is(err, check.ErrDenied) {
			// A wrong password, an untrusted certificate or a refused
			// permission stays so until an operator changes it.
			return fmt.Errorf("%s: %w", what, err)
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

// CreateTopics creates the topics of cfg that do not exist yet on the
// cluster k; the state topic is compacted.
func CreateTopics(ctx context.Context, cfg config.Config, k *kafkaconn.Endpoint) error {
	return createTopics(ctx, cfg, k, 0)
}

// createTopics is CreateTopics; a retention above 0 is set on every topic
// but the state topic.
func createTopics(ctx context.Context, cfg config.Config, k *kafkaconn.Endpoint, retention time.Duration) error {
	tr := k.Transport()
	defer tr.CloseIdleConnections()
	c := k.Client(tr, 10*time.Second)
	var reqs []kafka.TopicConfig
	for _, t := range cfg.TopicUses() {
		tc := kafka.TopicConfig{Topic: t.Name, NumPartitions: cfg.Kafka.Partitions, ReplicationFactor: cfg.Kafka.ReplicationFactor}
		switch {
		case t.Compacted:
			tc.ConfigEntries = []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}
		case retention > 0:
			tc.ConfigEntries = []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(retention.Milliseconds(), 10)}}
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

// closeLogged closes c at shutdown and logs a failure.
func closeLogged(log *zap.Logger, what string, c interface{ Close() error }) {
	if err := c.Close(); err != nil {
		log.Warn("close "+what, zap.Error(err))
	}
}

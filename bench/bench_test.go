package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/consumer"
	"github.com/breakwater/breakwater/daemon"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/metrics"
	"github.com/breakwater/breakwater/statelog"
	"github.com/breakwater/breakwater/store"
	"github.com/breakwater/breakwater/traffic"
)

const (
	defaultActions = 1_000_000
	partitions     = 12
	rules          = 10
	// eventRate is the event-time rate of the generated actions: the
	// 1,000,000 default actions cover 100 s of event time.
	eventRate    = 10_000
	produceChunk = 20_000
	inputTopic   = "bench.actions"
	runTimeout   = 20 * time.Minute
)

// runResult is one measured run of either side.
type runResult struct {
	variant string
	round   int
	actions int
	batches int
	// span runs from the moment the first batch is in hand (the
	// passthrough's first batch fetched; the breaker's first store call) to
	// the commit of the last batch: the consumer group join is excluded.
	span time.Duration
	// total runs from the creation of the reader (group join included) to
	// the last commit.
	total   time.Duration
	peakRSS uint64 // VmHWM during the run, bytes; 0 if unknown
	// Where the span went, summed over batches: waiting for batches
	// (fetch), the store call (breaker only), the acknowledged write and
	// the commit. For the breaker, write holds its batch duration metric
	// (classify, decide, write, commit) minus the store call, and fetch is
	// the rest of the span.
	fetch, store, write, commit time.Duration
	// CPU time over the whole run (join and close included): this process
	// (client and in-process broker) and redis-server. Less sensitive to
	// other load on the machine than the rates.
	cpu, redisCPU time.Duration

	// The breaker only.
	decides     int
	scripts     int64 // EVALSHA+EVAL seen by the client hook
	commands    int64 // every Redis command seen by the client hook
	infoEvalsha int64 // INFO commandstats, reset before the run
	infoEval    int64
	luaUsec     int64 // INFO commandstats usec of evalsha: time inside redis-server
	redisUsed   int64 // INFO memory used_memory after the run
	redisPeak   int64 // INFO memory used_memory_peak
	decisions   map[decide.Decision]int
}

func (r runResult) rate() float64 { return float64(r.actions) / r.span.Seconds() }

// BenchmarkThroughput measures the breaker's throughput as a ratio of a raw
// batched kafka-go passthrough, both run alternately in this process against
// the same broker; see the package documentation for the invocation.
func BenchmarkThroughput(b *testing.B) {
	n := envInt(b, "BENCH_ACTIONS", defaultActions)
	batch := envInt(b, "BENCH_BATCH", config.Default().Kafka.BatchSize)
	rounds := envInt(b, "BENCH_ROUNDS", 3)
	trip := os.Getenv("BENCH_TRIP") == "1"
	memStore := os.Getenv("BENCH_MEMSTORE") == "1"

	k := testbed.StartKafka(b)
	rs := testbed.StartRedis(b)
	admin := rs.Client(b)
	k.CreateTopic(b, inputTopic, partitions)
	t0 := time.Now()
	meanValue := produceInput(b, k, inputTopic, n)
	produced := time.Since(t0)
	cfg := benchConfig(b, k.Addrs(), rs.Addr(), batch, trip)
	zc := zap.NewDevelopmentConfig()
	zc.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	log, err := zc.Build()
	if err != nil {
		b.Fatal(err)
	}
	loadStart := loadAvg()
	hwm := &peakRSS{}
	hwm.reset() // the setup's peak: the generator, the producer, the broker's copy of the input
	setupRSS := hwm.setup

	var results []runResult
	seq := 0
	for b.Loop() {
		for round := 1; round <= rounds; round++ {
			seq++
			results = append(results, runPassthrough(b, k, cfg, n, seq, round, hwm))
			seq++
			results = append(results, runBreaker(b, k, admin, cfg, n, seq, round, log, hwm, false))
			if memStore {
				seq++
				results = append(results, runBreaker(b, k, admin, cfg, n, seq, round, log, hwm, true))
			}
		}
	}
	b.StopTimer()
	report(b, reportInput{
		n: n, batch: batch, wait: cfg.Kafka.BatchWait, trip: trip, meanValue: meanValue,
		produced: produced, setupRSS: setupRSS, overallRSS: hwm.overall(), results: results, loadStart: loadStart,
	})
}

// benchConfig is the configuration both sides use, parsed by the real
// loader. Thresholds are far above the traffic so that nothing trips,
// except rule-02 with BENCH_TRIP=1.
func benchConfig(b *testing.B, brokers []string, redisAddr string, batch int, trip bool) config.Config {
	b.Helper()
	rulesYAML := ""
	if trip {
		// rule-02 acts about 1,000 times a second of event time with a
		// mean weight of about 1.8: it passes 20,000 after about 11 s.
		rulesYAML = "  rules:\n    rule-02: {max_actions: 20000}\n"
	}
	y := fmt.Sprintf(`kafka:
  brokers: [%q]
  group_id: bench
  topics: {input: %q, gated: out.gated, held: out.held, dead_letter: out.dead, state: out.state}
  batch_size: %d
  batch_wait: 10ms
redis:
  addr: %q
  key_prefix: bench
breakers:
  defaults: {max_actions: 1000000000}
  global: {max_actions: 1000000000}
%s`, brokers[0], inputTopic, batch, redisAddr, rulesYAML)
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		b.Fatalf("bench config: %v\n%s", err, y)
	}
	cfg.Kafka.Brokers = brokers
	return cfg
}

// produceInput writes n generated events (keys = target ids) to topic in
// chunks, so that the generator's output never all sits in memory, and
// returns the mean value size.
func produceInput(b *testing.B, k *testbed.Kafka, topic string, n int) float64 {
	b.Helper()
	g := traffic.New(rules, eventRate, -1, 1, 1)
	per := time.Second / eventRate
	start := time.Now().Add(-time.Duration(n) * per).Truncate(time.Second)
	bytes := 0
	for done := 0; done < n; {
		c := min(produceChunk, n-done)
		evs := g.Events(start.Add(time.Duration(done)*per), time.Duration(c)*per, c)
		recs := make([]testbed.Record, len(evs))
		for i, e := range evs {
			recs[i] = testbed.Record{Partition: testbed.AnyPartition, Key: e.Key, Value: e.Value}
			bytes += len(e.Value)
		}
		k.Produce(b, topic, recs...)
		done += c
	}
	if got := sum(k.EndOffsets(b, topic)); got != int64(n) {
		b.Fatalf("input topic holds %d records, want %d", got, n)
	}
	return float64(bytes) / float64(n)
}

// pipelineWriter is configured exactly like the writer of consumer.New.
func pipelineWriter(cfg config.Config) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(cfg.Kafka.Brokers...),
		Transport:    kafkaconn.Plain(cfg.Kafka.Brokers...).Transport(),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    max(cfg.Kafka.BatchSize, 100),
		BatchBytes:   1 << 20,
		BatchTimeout: 50 * time.Microsecond,
		WriteTimeout: cfg.Kafka.WriteTimeout,
		MaxAttempts:  5,
	}
}

// fetchBatch collects a batch exactly like the pipeline's fetch: one
// blocking fetch, then up to size-1 more within wait.
func fetchBatch(ctx context.Context, r *kafka.Reader, size int, wait time.Duration) ([]kafka.Message, error) {
	first, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	msgs := []kafka.Message{first}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for len(msgs) < size {
		m, err := r.FetchMessage(wctx)
		if err != nil {
			break
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

func runPassthrough(b *testing.B, k *testbed.Kafka, base config.Config, n, seq, round int, hwm *peakRSS) runResult {
	b.Helper()
	cfg := base
	cfg.Kafka.GroupID = fmt.Sprintf("bench-pass-%d", seq)
	out := fmt.Sprintf("bench.pass.%d", seq)
	createTopics(b, cfg.Kafka.Brokers, out)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	res := runResult{variant: "passthrough", round: round}
	hwm.reset()
	cpu0 := cpuTime()
	var err error
	pprof.Do(ctx, pprof.Labels("variant", "passthrough"), func(ctx context.Context) {
		err = passthrough(ctx, cfg, out, n, &res)
	})
	res.peakRSS = hwm.read()
	res.cpu = cpuTime() - cpu0
	if err != nil {
		b.Fatalf("passthrough run %d: %v", seq, err)
	}
	if got := sum(k.EndOffsets(b, out)); got != int64(n) {
		b.Fatalf("passthrough run %d wrote %d records, want %d", seq, got, n)
	}
	if got := sum(k.CommittedOffsets(b, cfg.Kafka.GroupID, inputTopic)); got != int64(n) {
		b.Fatalf("passthrough run %d committed %d offsets, want %d", seq, got, n)
	}
	deleteTopics(b, cfg.Kafka.Brokers, out)
	return res
}

// passthroughReader is kafka-go's own consumer group reader with the
// pipeline's queue and waits: the reference the pipeline is measured
// against.
func passthroughReader(cfg config.Config) kafka.ReaderConfig {
	return kafka.ReaderConfig{
		Brokers:           cfg.Kafka.Brokers,
		GroupID:           cfg.Kafka.GroupID,
		Topic:             cfg.Kafka.Topics.Input,
		MinBytes:          1,
		MaxBytes:          10 << 20,
		MaxWait:           100 * time.Millisecond,
		QueueCapacity:     max(2*cfg.Kafka.BatchSize, 100),
		CommitInterval:    0,
		StartOffset:       kafka.FirstOffset,
		SessionTimeout:    cfg.Kafka.SessionTimeout,
		HeartbeatInterval: max(cfg.Kafka.SessionTimeout/4, 100*time.Millisecond),
		RebalanceTimeout:  2 * cfg.Kafka.SessionTimeout,
		JoinGroupBackoff:  500 * time.Millisecond,
		ReadBackoffMin:    10 * time.Millisecond,
		ReadBackoffMax:    500 * time.Millisecond,
	}
}

// passthrough fetches batches like the pipeline, writes them unchanged with
// the pipeline's writer and commits them synchronously: no decoding, no
// store.
func passthrough(ctx context.Context, cfg config.Config, out string, n int, res *runResult) error {
	start := time.Now()
	r := kafka.NewReader(passthroughReader(cfg))
	defer r.Close()
	w := pipelineWriter(cfg)
	defer w.Close()
	var t0 time.Time
	for res.actions < n {
		tf := time.Now()
		msgs, err := fetchBatch(ctx, r, cfg.Kafka.BatchSize, cfg.Kafka.BatchWait)
		if err != nil {
			return fmt.Errorf("fetch after %d actions: %w", res.actions, err)
		}
		tw := time.Now()
		if t0.IsZero() {
			t0 = tw
		} else {
			res.fetch += tw.Sub(tf)
		}
		outs := make([]kafka.Message, len(msgs))
		for i, m := range msgs {
			outs[i] = kafka.Message{Topic: out, Key: m.Key, Value: m.Value, Headers: m.Headers, Time: m.Time}
		}
		if err := w.WriteMessages(ctx, outs...); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		tc := time.Now()
		res.write += tc.Sub(tw)
		if err := r.CommitMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		res.commit += time.Since(tc)
		res.actions += len(msgs)
		res.batches++
	}
	end := time.Now()
	res.span, res.total = end.Sub(t0), end.Sub(start)
	return nil
}

// countingDecider counts the pipeline's store calls and notes the first.
// The pipeline calls it from its deciding stage only.
type countingDecider struct {
	next  consumer.Decider
	calls int
	first time.Time
}

func (d *countingDecider) Decide(ctx context.Context, b decide.Batch) (decide.Result, error) {
	if d.first.IsZero() {
		d.first = time.Now()
	}
	d.calls++
	return d.next.Decide(ctx, b)
}

func (d *countingDecider) Rebuild(ctx context.Context, topic string, partition int, floor int64, recs []decide.Record) error {
	return d.next.Rebuild(ctx, topic, partition, floor, recs)
}

func (d *countingDecider) Status(ctx context.Context, s breaker.Scope) (breaker.Status, error) {
	return d.next.Status(ctx, s)
}

// cmdCounter is a go-redis hook that counts commands and script calls.
type cmdCounter struct{ all, scripts atomic.Int64 }

func (c *cmdCounter) count(cmd redis.Cmder) {
	c.all.Add(1)
	switch cmd.Name() {
	case "evalsha", "eval", "evalsha_ro", "eval_ro", "fcall":
		c.scripts.Add(1)
	}
}

func (c *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(cmd)
		return next(ctx, cmd)
	}
}

func (c *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}

// runBreaker runs the pipeline on the real Redis store, or with memStore on
// the in-process store.Memory (a diagnostic: the pipeline without Redis).
func runBreaker(b *testing.B, k *testbed.Kafka, admin *redis.Client, base config.Config, n, seq, round int, log *zap.Logger, hwm *peakRSS, memStore bool) runResult {
	b.Helper()
	cfg := base
	cfg.Kafka.GroupID = fmt.Sprintf("bench-breaker-%d", seq)
	t := &cfg.Kafka.Topics
	t.Gated = fmt.Sprintf("bench.gated.%d", seq)
	t.Held = fmt.Sprintf("bench.held.%d", seq)
	t.DeadLetter = fmt.Sprintf("bench.dead.%d", seq)
	t.State = fmt.Sprintf("bench.state.%d", seq)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	// As the daemon does with create_topics (the state topic compacted).
	cfg.Kafka.Partitions, cfg.Kafka.ReplicationFactor = partitions, 1
	if err := daemon.CreateTopics(ctx, cfg, kafkaconn.Plain(cfg.Kafka.Brokers...)); err != nil {
		b.Fatal(err)
	}
	// Every breaker run starts from an empty store, like the first.
	if err := admin.FlushAll(ctx).Err(); err != nil {
		b.Fatal(err)
	}

	// The client and store as daemon.Run builds them, plus a counting hook.
	rc := redis.NewClient(&redis.Options{
		Addr:                  cfg.Redis.Addr,
		DialTimeout:           cfg.Redis.Timeout,
		ReadTimeout:           cfg.Redis.Timeout,
		WriteTimeout:          cfg.Redis.Timeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            2,
	})
	defer rc.Close()
	cnt := &cmdCounter{}
	rc.AddHook(cnt)
	st, err := store.NewRedis(rc, store.RedisOptions{Prefix: cfg.Redis.KeyPrefix, RecordTTL: cfg.Redis.DecisionTTL})
	if err != nil {
		b.Fatal(err)
	}
	states := statelog.New(kafkaconn.Plain(cfg.Kafka.Brokers...), t.State, cfg.Kafka.WriteTimeout)
	defer states.Close()
	restore := func(ctx context.Context) error {
		ss, err := states.Load(ctx)
		if err != nil {
			return err
		}
		_, err = st.Restore(ctx, ss)
		return err
	}
	if err := restore(ctx); err != nil {
		b.Fatalf("breaker run %d: initial restore: %v", seq, err)
	}
	variant, label := "breaker", "breaker"
	var decider consumer.Decider = st
	if memStore {
		variant, label = "breaker-mem", "breaker-memstore"
		decider = store.NewMemory(time.Now)
		restore = func(context.Context) error { return nil }
	}
	if err := admin.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	cnt.all.Store(0)
	cnt.scripts.Store(0)

	res := runResult{variant: variant, round: round, decisions: map[decide.Decision]int{}}
	dec := &countingDecider{next: decider}
	done := make(chan struct{})
	var end time.Time
	onBatch := func(r consumer.BatchReport) {
		if !end.IsZero() {
			return
		}
		for d, c := range r.Actions {
			res.actions += c
			res.decisions[d] += c
		}
		res.batches++
		if res.actions >= n {
			end = time.Now()
			close(done)
		}
	}
	hwm.reset()
	cpu0, rcpu0 := cpuTime(), redisCPU(b, admin)
	start := time.Now()
	var runErr error
	reg := prometheus.NewRegistry()
	pprof.Do(ctx, pprof.Labels("variant", label), func(ctx context.Context) {
		p, err := consumer.New(consumer.Options{
			Config: cfg, Kafka: kafkaconn.Plain(cfg.Kafka.Brokers...), Store: dec, States: states, Restore: restore, Logger: log,
			Metrics: metrics.New(reg, 500), OnBatch: onBatch,
		})
		if err != nil {
			runErr = err
			return
		}
		runCtx, stop := context.WithCancel(ctx)
		defer stop()
		errc := make(chan error, 1)
		go func() { errc <- p.Run(runCtx) }()
		select {
		case <-done:
		case err := <-errc:
			runErr = fmt.Errorf("Run returned before all actions were committed: %w", err)
			return
		case <-ctx.Done():
			runErr = ctx.Err()
		}
		stop()
		if err := <-errc; err != nil && runErr == nil {
			runErr = err
		}
	})
	res.peakRSS = hwm.read()
	res.cpu, res.redisCPU = cpuTime()-cpu0, redisCPU(b, admin)-rcpu0
	if runErr != nil {
		b.Fatalf("breaker run %d after %d actions: %v", seq, res.actions, runErr)
	}
	res.span, res.total = end.Sub(dec.first), end.Sub(start)
	batchSecs := histSum(b, reg, "breakwater_batch_duration_seconds")
	res.store = histSum(b, reg, "breakwater_store_call_duration_seconds")
	res.write = batchSecs - res.store // write + commit + per-item work
	res.fetch = res.span - batchSecs
	res.decides = dec.calls
	res.scripts, res.commands = cnt.scripts.Load(), cnt.all.Load()
	stats := redisInfo(b, admin, "commandstats")
	res.infoEvalsha = infoCalls(stats["cmdstat_evalsha"])
	res.infoEval = infoCalls(stats["cmdstat_eval"])
	res.luaUsec = infoField(stats["cmdstat_evalsha"], "usec")
	mem := redisInfo(b, admin, "memory")
	res.redisUsed, _ = strconv.ParseInt(mem["used_memory"], 10, 64)
	res.redisPeak, _ = strconv.ParseInt(mem["used_memory_peak"], 10, 64)

	written := sum(k.EndOffsets(b, t.Gated)) + sum(k.EndOffsets(b, t.Held)) + sum(k.EndOffsets(b, t.DeadLetter))
	if written != int64(n) {
		b.Fatalf("breaker run %d wrote %d records, want %d", seq, written, n)
	}
	if got := sum(k.CommittedOffsets(b, cfg.Kafka.GroupID, inputTopic)); got != int64(n) {
		b.Fatalf("breaker run %d committed %d offsets, want %d", seq, got, n)
	}
	deleteTopics(b, cfg.Kafka.Brokers, t.Gated, t.Held, t.DeadLetter, t.State)
	if err := admin.FlushAll(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	return res
}

type reportInput struct {
	n, batch   int
	wait       time.Duration
	trip       bool
	meanValue  float64
	produced   time.Duration
	setupRSS   uint64
	overallRSS uint64
	results    []runResult
	loadStart  string
}

func report(b *testing.B, in reportInput) {
	var pass, brk, mem []runResult
	for _, r := range in.results {
		switch r.variant {
		case "passthrough":
			pass = append(pass, r)
		case "breaker":
			brk = append(brk, r)
		default:
			mem = append(mem, r)
		}
	}
	rates := func(rs []runResult) []float64 {
		out := make([]float64, len(rs))
		for i, r := range rs {
			out[i] = r.rate()
		}
		return out
	}
	pr, br := median(rates(pass)), median(rates(brk))
	ratio := br / pr
	var batches, decides int
	var scripts, commands, infoScripts, luaUsec, evalsha int64
	var used, peak int64
	var passRSS, brkRSS uint64
	decisions := map[decide.Decision]int{}
	for _, r := range brk {
		batches += r.batches
		decides += r.decides
		scripts += r.scripts
		commands += r.commands
		infoScripts += r.infoEvalsha + r.infoEval
		luaUsec += r.luaUsec
		evalsha += r.infoEvalsha
		used = max(used, r.redisUsed)
		peak = max(peak, r.redisPeak)
		brkRSS = max(brkRSS, r.peakRSS)
		for d, c := range r.decisions {
			decisions[d] += c
		}
	}
	for _, r := range pass {
		passRSS = max(passRSS, r.peakRSS)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if path := os.Getenv("BENCH_HEAPPROFILE"); path != "" {
		// The heap while the broker still runs: -memprofile is written
		// after the cleanups have stopped it.
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			_ = f.Close()
		}
	}

	var w strings.Builder
	fmt.Fprintf(&w, "\n==== Breakwater throughput: breaker vs raw kafka-go passthrough ====\n")
	fmt.Fprintf(&w, "actions per run              %d (values mean %.0f B, keys = target ids, %d partitions, %d rules, 1 kfake broker)\n",
		in.n, in.meanValue, partitions, rules)
	fmt.Fprintf(&w, "batch size / batch wait      %d / %s (both sides)\n", in.batch, in.wait)
	fmt.Fprintf(&w, "trip variant                 %v\n", in.trip)
	fmt.Fprintf(&w, "input pre-produced in        %s (not timed)\n", in.produced.Round(time.Millisecond))
	fmt.Fprintf(&w, "load average                 %s at the start, %s at the end (2 cores; other load makes the rates noisy)\n", in.loadStart, loadAvg())
	for _, r := range in.results {
		fmt.Fprintf(&w, "  run %-12s round %d  %8.0f actions/s  span %8s (join incl. %8s)  batches %5d  peak RSS %s\n",
			r.variant, r.round, r.rate(), r.span.Round(time.Millisecond), r.total.Round(time.Millisecond), r.batches, mib(r.peakRSS))
		cpu := fmt.Sprintf("      CPU per action: %.2fµs this process (client + in-process broker)", float64(r.cpu.Nanoseconds())/1000/float64(r.actions))
		if r.variant != "passthrough" {
			cpu += fmt.Sprintf(", %.2fµs redis-server", float64(r.redisCPU.Nanoseconds())/1000/float64(r.actions))
		}
		fmt.Fprintln(&w, cpu)
		switch r.variant {
		case "passthrough":
			fmt.Fprintf(&w, "      per batch: fetch %s, write %s, commit %s\n", per(r.fetch, r.batches), per(r.write, r.batches), per(r.commit, r.batches))
		default:
			fmt.Fprintf(&w, "      per batch: fetch %s, store call %s, decode+write+commit %s\n", per(r.fetch, r.batches), per(r.store, r.batches), per(r.write, r.batches))
		}
	}
	fmt.Fprintf(&w, "passthrough actions/s        %.0f (median of %d)\n", pr, len(pass))
	fmt.Fprintf(&w, "breaker actions/s            %.0f (median of %d)\n", br, len(brk))
	cpus := func(rs []runResult, f func(runResult) time.Duration) float64 {
		out := make([]float64, len(rs))
		for i, r := range rs {
			out[i] = float64(f(r).Nanoseconds()) / 1000 / float64(r.actions)
		}
		return median(out)
	}
	self := func(r runResult) time.Duration { return r.cpu }
	fmt.Fprintf(&w, "CPU µs per action (median)   passthrough %.2f; breaker %.2f + redis-server %.2f (this process includes the in-process broker)\n",
		cpus(pass, self), cpus(brk, self), cpus(brk, func(r runResult) time.Duration { return r.redisCPU }))
	fmt.Fprintf(&w, "ratio breaker/passthrough    %.3f (goal >= 0.900: %s)\n", ratio, map[bool]string{true: "met", false: "NOT met"}[ratio >= 0.9])
	fmt.Fprintf(&w, "Redis script calls per batch %.3f (client hook: %d EVALSHA/EVAL over %d batches; INFO commandstats evalsha+eval: %d)\n",
		float64(scripts)/float64(batches), scripts, batches, infoScripts)
	fmt.Fprintf(&w, "Lua time inside redis-server %.3f ms per call (INFO commandstats evalsha usec/calls)\n", float64(luaUsec)/1000/float64(max(evalsha, 1)))
	if len(mem) > 0 {
		mr := median(rates(mem))
		fmt.Fprintf(&w, "diagnostic: pipeline on the in-process store.Memory instead of Redis: %.0f actions/s (median of %d), ratio %.3f\n", mr, len(mem), mr/pr)
	}
	fmt.Fprintf(&w, "Redis commands per batch     %.3f (all commands the client sent); store Decide calls per batch %.3f\n",
		float64(commands)/float64(batches), float64(decides)/float64(batches))
	fmt.Fprintf(&w, "breaker decisions            gated %d, held %d, dead_letter %d (all breaker runs)\n",
		decisions[decide.Gated], decisions[decide.Held], decisions[decide.DeadLetter])
	fmt.Fprintf(&w, "process peak RSS (VmHWM)     %s overall; %s by the end of setup; %s during passthrough runs; %s during breaker runs\n",
		mib(in.overallRSS), mib(in.setupRSS), mib(passRSS), mib(brkRSS))
	fmt.Fprintf(&w, "                             (the in-process kfake broker holds the %d input records in this process too)\n", in.n)
	fmt.Fprintf(&w, "Go heap at the end           %s live after GC (mostly the broker's copy of the input), %s obtained from the OS\n", mib(ms.HeapAlloc), mib(ms.Sys))
	fmt.Fprintf(&w, "Redis used_memory            %s after a breaker run (used_memory_peak %s)\n", mib(uint64(used)), mib(uint64(peak)))
	fmt.Fprintf(&w, "======================================================================\n")
	fmt.Print(w.String())

	b.ReportMetric(ratio, "breaker/passthrough")
	b.ReportMetric(pr, "passthrough-actions/s")
	b.ReportMetric(br, "breaker-actions/s")
	b.ReportMetric(float64(scripts)/float64(batches), "redis-calls/batch")
	b.ReportMetric(float64(in.overallRSS)/(1<<20), "peak-RSS-MiB")
}

func per(d time.Duration, n int) string {
	return fmt.Sprintf("%.2fms", d.Seconds()*1000/float64(max(n, 1)))
}

// histSum returns the sum of the histogram name in reg, as a duration.
func histSum(b *testing.B, reg *prometheus.Registry, name string) time.Duration {
	b.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return time.Duration(mf.GetMetric()[0].GetHistogram().GetSampleSum() * float64(time.Second))
		}
	}
	b.Fatalf("metric %s not found", name)
	return 0
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func sum(m map[int32]int64) int64 {
	var t int64
	for _, v := range m {
		t += v
	}
	return t
}

func mib(v uint64) string {
	if v == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MiB", float64(v)/(1<<20))
}

func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// createTopics creates topics through kafka-go's default transport, which
// then refreshes its cached metadata at once: the writers share that
// transport, and a topic created behind its back (with franz-go) stays
// unknown to them until the next periodic refresh.
func createTopics(b *testing.B, brokers []string, topics ...string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: 1})
	}
	resp, err := c.CreateTopics(ctx, req)
	if err != nil {
		b.Fatalf("create topics %v: %v", topics, err)
	}
	for name, err := range resp.Errors {
		if err != nil {
			b.Fatalf("create topic %s: %v", name, err)
		}
	}
}

func deleteTopics(b *testing.B, brokers []string, topics ...string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	resp, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		b.Fatalf("delete topics %v: %v", topics, err)
	}
	for name, err := range resp.Errors {
		if err != nil {
			b.Fatalf("delete topic %s: %v", name, err)
		}
	}
}

// redisInfo returns the key:value lines of one INFO section.
func redisInfo(b *testing.B, c *redis.Client, section string) map[string]string {
	b.Helper()
	s, err := c.Info(context.Background(), section).Result()
	if err != nil {
		b.Fatalf("redis INFO %s: %v", section, err)
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out
}

// infoCalls reads calls=N from a commandstats value.
func infoCalls(v string) int64 { return infoField(v, "calls") }

// infoField reads name=N from a commandstats value.
func infoField(v, name string) int64 {
	for f := range strings.SplitSeq(v, ",") {
		if n, ok := strings.CutPrefix(f, name+"="); ok {
			c, _ := strconv.ParseInt(n, 10, 64)
			return c
		}
	}
	return 0
}

// loadAvg returns the 1-minute load average of the machine.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "n/a"
	}
	return f[0]
}

// cpuTime returns the user and system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU returns the CPU time redis-server has used (INFO cpu).
func redisCPU(b *testing.B, c *redis.Client) time.Duration {
	info := redisInfo(b, c, "cpu")
	u, _ := strconv.ParseFloat(info["used_cpu_user"], 64)
	s, _ := strconv.ParseFloat(info["used_cpu_sys"], 64)
	return time.Duration((u + s) * float64(time.Second))
}

// peakRSS tracks the process's peak resident set size (VmHWM) per phase:
// reset clears the kernel's peak (writing 5 to /proc/self/clear_refs) after
// folding it into the overall peak.
type peakRSS struct {
	max, setup uint64
	first      bool
}

func (p *peakRSS) reset() {
	v := vmHWM()
	if !p.first {
		p.first, p.setup = true, v
	}
	p.max = max(p.max, v)
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

func (p *peakRSS) read() uint64 {
	v := vmHWM()
	p.max = max(p.max, v)
	return v
}

func (p *peakRSS) overall() uint64 { return max(p.max, vmHWM()) }

// vmHWM returns the peak resident set size of the process in bytes.
func vmHWM() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

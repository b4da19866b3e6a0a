package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/consumer"
	"github.com/breakwater/breakwater/daemon"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/event"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/statelog"
	"github.com/breakwater/breakwater/store"
	"github.com/breakwater/breakwater/traffic"
	"github.com/breakwater/breakwater/wire"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbed.RemoveBuiltBinaries()
	if code == 0 {
		// Every daemon has returned and every cluster, Redis and process
		// was stopped by its test's cleanup: nothing may be left running.
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// The names every test uses.
const (
	groupID   = "breakwater-e2e"
	keyPrefix = "bw-e2e"
	// sessionTimeout is short so that a killed member's partitions move
	// quickly (the cluster is started with a lower minimum than its 6s
	// default to accept it), yet long enough that a loaded machine does not
	// expire sessions, whose rebalances would redeliver batches.
	sessionTimeout = 5 * time.Second
)

// The admin API's topics, at their defaults.
const (
	auditTopic     = "moderation.audit"
	rejectedTopic  = "moderation.actions.rejected"
	reversalsTopic = "moderation.actions.reversals"
)

var testTopics = config.Topics{
	Input:      "moderation.actions",
	Gated:      "moderation.actions.gated",
	Held:       "moderation.actions.held",
	DeadLetter: "moderation.actions.dead-letter",
	State:      "breakwater.state",
}

// epoch is the event time the generated traffic starts at: fixed, so that
// the fine buckets the events fall into, and so the trip points, are the
// same in every run.
var epoch = time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC)

// bed is a Kafka cluster and a Redis server with Breakwater's topics.
type bed struct {
	k     *testbed.Kafka
	r     *testbed.Redis // nil when another Redis topology is configured
	parts int
	admin *kgo.Client

	kafkaYAML string                                   // extra keys of the kafka section
	redisYAML string                                   // the redis section's address keys, when r is nil
	redis     func(t testing.TB) redis.UniversalClient // a client of the bed's Redis
}

// bedOption configures newBed.
type bedOption func(t *testing.T, o *bedOptions)

type bedOptions struct {
	kafka     []testbed.KafkaOption
	kafkaYAML string
	redisYAML string
	redis     func(t testing.TB) redis.UniversalClient
}

// withKafka starts the cluster with opts and adds yaml (indented keys of
// the kafka section, such as tls and sasl) to the configuration.
func withKafka(yaml string, opts ...testbed.KafkaOption) bedOption {
	return func(_ *testing.T, o *bedOptions) { o.kafka, o.kafkaYAML = opts, yaml }
}

// withRedis uses another Redis than one redis-server: yaml holds the
// indented address keys of the redis section, client returns a client of
// it.
func withRedis(yaml string, client func(t testing.TB) redis.UniversalClient) bedOption {
	return func(_ *testing.T, o *bedOptions) { o.redisYAML, o.redis = yaml, client }
}

func newBed(t *testing.T, partitions int, opts ...bedOption) *bed {
	t.Helper()
	var o bedOptions
	for _, opt := range opts {
		opt(t, &o)
	}
	k := testbed.StartKafka(t, append([]testbed.KafkaOption{testbed.MinSessionTimeout(time.Second)}, o.kafka...)...)
	b := &bed{k: k, parts: partitions, kafkaYAML: o.kafkaYAML, redisYAML: o.redisYAML, redis: o.redis}
	if b.redis == nil {
		b.r = testbed.StartRedis(t)
		b.redis = func(t testing.TB) redis.UniversalClient { return b.r.Client(t) }
	}
	for _, name := range []string{testTopics.Input, testTopics.Gated, testTopics.Held, testTopics.DeadLetter, auditTopic, rejectedTopic, reversalsTopic} {
		k.CreateTopic(t, name, partitions)
	}
	k.CreateCompactedTopic(t, testTopics.State, 1)
	b.admin = k.NewClient(t)
	return b
}

// settings are the knobs of the configuration a test runs the daemon with.
type settings struct {
	window     string             // breakers.defaults.window
	maxActions float64            // breakers.defaults.max_actions
	rules      map[string]float64 // per rule max_actions
	batchSize  int
	extra      string // appended to the configuration file (whole top-level sections)
}

// yaml returns the daemon configuration file for s. The baseline factor is
// off everywhere and the global breaker is disabled (but still counted), so
// that only max_actions trips, at points the tests can compute.
func (b *bed) yaml(s settings) string {
	if s.batchSize == 0 {
		s.batchSize = 500
	}
	var w strings.Builder
	fmt.Fprintf(&w, "kafka:\n  brokers: [%s]\n  group_id: %s\n", strings.Join(b.k.Addrs(), ", "), groupID)
	fmt.Fprintf(&w, "  topics:\n    input: %s\n    gated: %s\n    held: %s\n    dead_letter: %s\n    state: %s\n",
		testTopics.Input, testTopics.Gated, testTopics.Held, testTopics.DeadLetter, testTopics.State)
	fmt.Fprintf(&w, "  batch_size: %d\n  batch_wait: 5ms\n  write_timeout: 10s\n  session_timeout: %s\n", s.batchSize, sessionTimeout)
	w.WriteString(b.kafkaYAML)
	if b.r != nil {
		fmt.Fprintf(&w, "redis:\n  addr: %s\n", b.r.Addr())
	} else {
		fmt.Fprintf(&w, "redis:\n%s", b.redisYAML)
	}
	fmt.Fprintf(&w, "  key_prefix: %s\n  timeout: 1s\n", keyPrefix)
	fmt.Fprintf(&w, "http:\n  listen: 127.0.0.1:0\n")
	fmt.Fprintf(&w, "breakers:\n  defaults:\n    window: %s\n    max_actions: %v\n    factor: 0\n", s.window, s.maxActions)
	fmt.Fprintf(&w, "  global:\n    window: %s\n    disabled: true\n", s.window)
	if len(s.rules) > 0 {
		fmt.Fprintf(&w, "  rules:\n")
		for _, id := range sortedKeys(s.rules) {
			fmt.Fprintf(&w, "    %s:\n      max_actions: %v\n", id, s.rules[id])
		}
	}
	fmt.Fprintf(&w, "log:\n  level: info\n  format: json\n")
	w.WriteString(s.extra)
	return w.String()
}

func (b *bed) config(t *testing.T, s settings) config.Config {
	t.Helper()
	y := b.yaml(s)
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatalf("config.Parse:\n%s\n%v", y, err)
	}
	return cfg
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ---------------------------------------------------------------------------
// The daemon in process.

// logBuffer collects a daemon's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) Sync() error { return nil }

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// replica is one daemon.Run in this process.
type replica struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error // valid once done is closed
	logs   *logBuffer
	addrs  daemon.Addrs

	mu      sync.Mutex
	batches int
	actions map[decide.Decision]int
	perRule map[string]int
	trans   []breaker.Transition
	scopes  map[breaker.Scope]decide.ScopeResult // last result per scope
	sizes   []int                                // actions per batch, in commit order
}

func (r *replica) onBatch(rep consumer.BatchReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches++
	size := 0
	for d, n := range rep.Actions {
		r.actions[d] += n
		size += n
	}
	r.sizes = append(r.sizes, size)
	for rule, n := range rep.PerRule {
		r.perRule[rule] += n
	}
	r.trans = append(r.trans, rep.Transitions...)
	for _, s := range rep.Scopes {
		r.scopes[s.Scope] = s
	}
}

// report returns a copy of what OnBatch saw.
func (r *replica) report() (batches int, actions map[decide.Decision]int, perRule map[string]int, trans []breaker.Transition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	actions = make(map[decide.Decision]int, len(r.actions))
	for k, v := range r.actions {
		actions[k] = v
	}
	perRule = make(map[string]int, len(r.perRule))
	for k, v := range r.perRule {
		perRule[k] = v
	}
	return r.batches, actions, perRule, slices.Clone(r.trans)
}

func (r *replica) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// startReplica runs daemon.Run with cfg until stop or the end of the test,
// and returns once the daemon called Ready.
func startReplica(t *testing.T, name string, cfg config.Config) *replica {
	t.Helper()
	r := &replica{
		name: name, done: make(chan struct{}), logs: &logBuffer{},
		actions: map[decide.Decision]int{}, perRule: map[string]int{}, scopes: map[breaker.Scope]decide.ScopeResult{},
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), r.logs, zap.InfoLevel)).With(zap.String("replica", name))
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	ready := make(chan daemon.Addrs, 1)
	go func() {
		defer close(r.done)
		r.err = daemon.Run(ctx, daemon.Options{
			Config: cfg, Logger: log, OnBatch: r.onBatch,
			Ready: func(a daemon.Addrs) { ready <- a },
		})
	}()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("replica %s: %v", name, err)
		}
		if t.Failed() {
			out := r.logs.String()
			if len(out) > 48<<10 {
				out = "...\n" + out[len(out)-48<<10:]
			}
			t.Logf("logs of replica %s:\n%s", name, out)
		}
	})
	select {
	case r.addrs = <-ready:
	case <-r.done:
		t.Fatalf("replica %s: daemon.Run returned before it was ready: %v", name, r.err)
	case <-time.After(30 * time.Second):
		t.Fatalf("replica %s: not ready within 30s", name)
	}
	return r
}

// warnings returns the daemon's log lines of level warn and above, but
// those about the rate store being unreachable.
func (r *replica) warnings() []string {
	var out []string
	for _, line := range strings.Split(r.logs.String(), "\n") {
		if (strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`)) &&
			!strings.Contains(line, "rate store") {
			out = append(out, line)
		}
	}
	return out
}

// stop cancels the daemon and waits for Run to return: it must drain and
// return nil.
func (r *replica) stop() error {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(45 * time.Second):
		return fmt.Errorf("daemon.Run did not return within 45s of cancellation")
	}
	if r.err != nil {
		return fmt.Errorf("daemon.Run returned %w", r.err)
	}
	return nil
}

// metric reads one unlabelled metric from the replica's /metrics endpoint.
func (r *replica) metric(ctx context.Context, name string) (float64, error) {
	body, _, err := httpGet(ctx, "http://"+r.addrs.HTTP+"/metrics")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found in /metrics", name)
}

func httpGet(ctx context.Context, url string) (string, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

// ---------------------------------------------------------------------------
// Waiting.

// waitFor polls cond every 50ms until it returns true, failing the test
// with what() after timeout. alive, if set, is checked too: an error from
// it fails the test at once (a daemon that exited cannot catch up).
func waitFor(t *testing.T, timeout time.Duration, what func() string, alive func() error, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if alive != nil {
			if err := alive(); err != nil {
				t.Fatalf("while waiting for %s: %v", what(), err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replicasAlive returns an alive check that fails once any replica's Run
// returned.
func replicasAlive(rs ...*replica) func() error {
	return func() error {
		for _, r := range rs {
			if r.exited() {
				return fmt.Errorf("replica %s stopped: %w", r.name, r.err)
			}
		}
		return nil
	}
}

func sum(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// committedSum returns how many input offsets the group has committed.
func (b *bed) committedSum(t *testing.T) int64 {
	t.Helper()
	return sum(b.k.CommittedOffsets(t, groupID, testTopics.Input))
}

// waitCommitted waits until the group's committed offset of every input
// partition is its end offset.
func (b *bed) waitCommitted(t *testing.T, timeout time.Duration, alive func() error) {
	t.Helper()
	var ends, com map[int32]int64
	waitFor(t, timeout,
		func() string { return fmt.Sprintf("all input committed: end offsets %v, committed %v", ends, com) },
		alive,
		func() bool {
			ends = b.k.EndOffsets(t, testTopics.Input)
			com = b.k.CommittedOffsets(t, groupID, testTopics.Input)
			for p, e := range ends {
				if e > 0 && com[p] != e {
					return false
				}
			}
			return true
		})
}

// producePaced produces recs in order in chunks, keeping at most maxLag
// input records uncommitted: a classifier publishing in real time to a
// daemon that keeps up, so that all input partitions are consumed at about
// the same point of event time. It returns the records as written.
func (b *bed) producePaced(t *testing.T, recs []testbed.Record, chunk int, maxLag int64, alive func() error) []testbed.Record {
	t.Helper()
	out := make([]testbed.Record, 0, len(recs))
	for len(recs) > 0 {
		n := min(chunk, len(recs))
		out = append(out, b.k.Produce(t, testTopics.Input, recs[:n]...)...)
		recs = recs[n:]
		b.waitLag(t, maxLag, alive)
	}
	return out
}

// waitLag waits until at most maxLag input records are uncommitted.
func (b *bed) waitLag(t *testing.T, maxLag int64, alive func() error) {
	t.Helper()
	var end, com int64
	waitFor(t, 60*time.Second,
		func() string { return fmt.Sprintf("the daemon to keep up: %d produced, %d committed", end, com) },
		alive,
		func() bool {
			end = sum(b.k.EndOffsets(t, testTopics.Input))
			com = b.committedSum(t)
			return end-com <= maxLag
		})
}

// groupAssignment returns the input partitions of each member of the group
// once it is stable with n members that all have partitions.
func (b *bed) groupAssignment(t *testing.T, n int, timeout time.Duration, alive func() error) map[string][]int32 {
	t.Helper()
	var got map[string][]int32
	var state string
	waitFor(t, timeout,
		func() string {
			return fmt.Sprintf("group %s stable with %d members; state %q, assignment %v", groupID, n, state, got)
		},
		alive,
		func() bool {
			got, state = b.describeGroup(t)
			if state != "Stable" || len(got) != n {
				return false
			}
			for _, ps := range got {
				if len(ps) == 0 {
					return false
				}
			}
			return true
		})
	return got
}

func (b *bed) describeGroup(t *testing.T) (map[string][]int32, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{groupID}
	resp, err := req.RequestWith(ctx, b.admin)
	if err != nil {
		return nil, "error: " + err.Error()
	}
	if len(resp.Groups) != 1 {
		return nil, fmt.Sprintf("%d groups described", len(resp.Groups))
	}
	g := resp.Groups[0]
	if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
		return nil, "error: " + err.Error()
	}
	out := map[string][]int32{}
	for _, m := range g.Members {
		var a kmsg.ConsumerMemberAssignment
		if len(m.MemberAssignment) > 0 {
			if err := a.ReadFrom(m.MemberAssignment); err != nil {
				t.Fatalf("decode assignment of member %s: %v", m.MemberID, err)
			}
		}
		var ps []int32
		for _, tp := range a.Topics {
			if tp.Topic == testTopics.Input {
				ps = append(ps, tp.Partitions...)
			}
		}
		slices.Sort(ps)
		out[m.MemberID] = ps
	}
	return out, g.State
}

// ---------------------------------------------------------------------------
// Input.

// input is what a test produced, as written.
type input struct {
	recs    []testbed.Record
	actions []event.Action // zero for a malformed record
	bad     []bool
	byValue map[string]int
}

// newInput indexes written records; every value must be unique so that an
// output can be traced back to its input by its bytes.
func newInput(t *testing.T, written []testbed.Record) *input {
	t.Helper()
	in := &input{recs: written, actions: make([]event.Action, len(written)), bad: make([]bool, len(written)), byValue: map[string]int{}}
	for i, r := range written {
		if _, dup := in.byValue[string(r.Value)]; dup {
			t.Fatalf("input value %q produced twice: values must be unique", r.Value)
		}
		in.byValue[string(r.Value)] = i
		a, err := event.Decode(r.Value)
		if err != nil {
			in.bad[i] = true
			continue
		}
		in.actions[i] = a
	}
	return in
}

// eventRecords turns generated events into input records, keyed by target
// id, with headers that must be forwarded unchanged.
func eventRecords(evs []traffic.Event) []testbed.Record {
	out := make([]testbed.Record, len(evs))
	for i, e := range evs {
		out[i] = testbed.Record{
			Partition: testbed.AnyPartition, Key: e.Key, Value: e.Value,
			Headers: []testbed.Header{
				{Key: "content-type", Value: []byte("application/json")},
				{Key: "x-trace-id", Value: fmt.Appendf(nil, "trace-%s", e.ActionID)},
			},
		}
	}
	return out
}

// malformed returns n undecodable or invalid values, each unique.
func malformed(n int) []testbed.Record {
	out := make([]testbed.Record, n)
	for i := range n {
		var v string
		switch i % 7 {
		case 0:
			v = fmt.Sprintf("not json %d", i)
		case 1:
			v = fmt.Sprintf(`{"action_id":"bad-%d","rule_id":"rule-01"`, i) // truncated
		case 2:
			v = fmt.Sprintf(`[%d]`, i) // not an object
		case 3: // no action_id
			v = fmt.Sprintf(`{"rule_id":"rule-01","action":"remove_pin","target":{"type":"pin","id":"p-%d"},"occurred_at":"2025-06-02T08:00:00Z"}`, i)
		case 4: // no occurred_at
			v = fmt.Sprintf(`{"action_id":"bad-%d","rule_id":"rule-01","action":"remove_pin","target":{"type":"pin","id":"p"}}`, i)
		case 5: // wrong type
			v = fmt.Sprintf(`{"action_id":"bad-%d","rule_id":7,"action":"remove_pin","target":{"type":"pin","id":"p"},"occurred_at":"2025-06-02T08:00:00Z"}`, i)
		case 6: // bad time
			v = fmt.Sprintf(`{"action_id":"bad-%d","rule_id":"rule-01","action":"remove_pin","target":{"type":"pin","id":"p"},"occurred_at":"yesterday"}`, i)
		}
		out[i] = testbed.Record{
			Partition: testbed.AnyPartition, Key: fmt.Appendf(nil, "malformed-%d", i), Value: []byte(v),
			Headers: []testbed.Header{{Key: "x-trace-id", Value: fmt.Appendf(nil, "malformed-%d", i)}},
		}
	}
	return out
}

// weightOf is the weight of an action in Milli units, as the daemon counts it.
func weightOf(cfg config.Config, a event.Action) int64 {
	return max(int64(math.Round(cfg.ActionType(a.Action).Weight*breaker.Milli)), 1)
}

// ---------------------------------------------------------------------------
// Output.

// outRec is one output record traced back to its input.
type outRec struct {
	topic string
	rec   testbed.Record
	in    int // index in input.recs
}

// outputs are the records of the three output topics.
type outputs struct {
	recs    []outRec
	perIn   []map[string]int // per input: topic -> copies
	dups    map[string]int   // per topic: copies beyond the first
	decided map[string]int   // per topic: distinct inputs
}

func decisionOf(topic string) decide.Decision {
	switch topic {
	case testTopics.Gated:
		return decide.Gated
	case testTopics.Held:
		return decide.Held
	}
	return decide.DeadLetter
}

func header(r testbed.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// readOutputs reads the three output topics and traces every record back
// to its input, checking that key, value and headers were forwarded
// unchanged with only breakwater-* headers added.
func (b *bed) readOutputs(t *testing.T, in *input) *outputs {
	t.Helper()
	o := &outputs{perIn: make([]map[string]int, len(in.recs)), dups: map[string]int{}, decided: map[string]int{}}
	errs := 0
	errorf := func(format string, args ...any) {
		t.Helper()
		if errs++; errs <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, topic := range []string{testTopics.Gated, testTopics.Held, testTopics.DeadLetter} {
		for _, r := range b.k.ReadAll(t, topic, 60*time.Second) {
			i, ok := in.byValue[string(r.Value)]
			if !ok {
				errorf("%s p%d@%d: value %q was never produced", topic, r.Partition, r.Offset, r.Value)
				continue
			}
			src := in.recs[i]
			where := fmt.Sprintf("%s p%d@%d (input p%d@%d)", topic, r.Partition, r.Offset, src.Partition, src.Offset)
			if !bytes.Equal(r.Key, src.Key) {
				errorf("%s: key %q, input key %q", where, r.Key, src.Key)
			}
			if len(r.Headers) < len(src.Headers) || !slices.EqualFunc(r.Headers[:len(src.Headers)], src.Headers, func(a, b testbed.Header) bool {
				return a.Key == b.Key && bytes.Equal(a.Value, b.Value)
			}) {
				errorf("%s: headers %s do not start with the input headers %s", where, fmtHeaders(r.Headers), fmtHeaders(src.Headers))
			} else {
				for _, h := range r.Headers[len(src.Headers):] {
					if !strings.HasPrefix(h.Key, "breakwater-") {
						errorf("%s: added header %q is not a breakwater-* header", where, h.Key)
					}
				}
			}
			if d, _ := header(r, wire.HeaderDecision); d != string(decisionOf(topic)) {
				errorf("%s: %s header %q", where, wire.HeaderDecision, d)
			}
			if s, ok := header(r, wire.HeaderSource); ok {
				if want := fmt.Sprintf("%s/%d/%d", testTopics.Input, src.Partition, src.Offset); s != want {
					errorf("%s: %s header %q, want %q", where, wire.HeaderSource, s, want)
				}
			} else if topic != testTopics.Gated {
				errorf("%s: no %s header", where, wire.HeaderSource)
			}
			if _, released := header(r, wire.HeaderReviewer); !released {
				if b, _ := header(r, wire.HeaderBatch); b == "" {
					errorf("%s: no %s header", where, wire.HeaderBatch)
				}
			}
			if o.perIn[i] == nil {
				o.perIn[i] = map[string]int{}
			}
			o.perIn[i][topic]++
			o.recs = append(o.recs, outRec{topic: topic, rec: r, in: i})
		}
	}
	for _, m := range o.perIn {
		for topic, n := range m {
			o.decided[topic]++
			o.dups[topic] += n - 1
		}
	}
	return o
}

func fmtHeaders(hs []testbed.Header) string {
	var parts []string
	for _, h := range hs {
		parts = append(parts, h.Key+"="+string(h.Value))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// topicOf returns the one topic input i went to, or "" with a reason.
func (o *outputs) topicOf(i int) (string, string) {
	m := o.perIn[i]
	switch len(m) {
	case 0:
		return "", "on no output topic"
	case 1:
		for topic := range m {
			return topic, ""
		}
	}
	return "", fmt.Sprintf("on several output topics %v", m)
}

// checkExactlyOne checks that every input went to exactly one output topic,
// counted both by source partition and offset and by action_id, and returns
// the copies beyond the first per topic (at-least-once duplicates).
func checkExactlyOne(t *testing.T, in *input, o *outputs) map[string]int {
	t.Helper()
	errs := 0
	for i := range in.recs {
		if _, why := o.topicOf(i); why != "" {
			if errs++; errs <= 20 {
				t.Errorf("input p%d@%d (%s): %s", in.recs[i].Partition, in.recs[i].Offset, describe(in, i), why)
			}
		}
	}
	if errs > 0 {
		t.Errorf("%d of %d inputs are not on exactly one output topic", errs, len(in.recs))
	}
	// The same by action_id, from the output values alone.
	byID := map[string]map[string]bool{}
	for _, r := range o.recs {
		a, err := event.Decode(r.rec.Value)
		if err != nil {
			continue
		}
		if byID[a.ActionID] == nil {
			byID[a.ActionID] = map[string]bool{}
		}
		byID[a.ActionID][r.topic] = true
	}
	missing, multi := 0, 0
	for i, a := range in.actions {
		if in.bad[i] {
			continue
		}
		switch len(byID[a.ActionID]) {
		case 0:
			missing++
		case 1:
		default:
			multi++
		}
	}
	if missing > 0 || multi > 0 {
		t.Errorf("by action_id: %d missing from every output topic, %d on more than one", missing, multi)
	}
	return o.dups
}

func describe(in *input, i int) string {
	if in.bad[i] {
		return fmt.Sprintf("malformed %q", in.recs[i].Value)
	}
	a := in.actions[i]
	return fmt.Sprintf("%s %s %s at %s", a.ActionID, a.RuleID, a.Action, a.OccurredAt.Format(time.RFC3339Nano))
}

// checkMalformed checks that every malformed input is on the dead-letter
// topic with a reason, and returns how many distinct inputs are there.
func checkMalformed(t *testing.T, in *input, o *outputs) int {
	t.Helper()
	seen := map[int]bool{}
	for _, r := range o.recs {
		if !in.bad[r.in] {
			if r.topic == testTopics.DeadLetter {
				t.Errorf("well-formed input %s is on the dead-letter topic", describe(in, r.in))
			}
			continue
		}
		if r.topic != testTopics.DeadLetter {
			t.Errorf("malformed input %q went to %s", in.recs[r.in].Value, r.topic)
			continue
		}
		if why, ok := header(r.rec, wire.HeaderReason); !ok || why == "" {
			t.Errorf("dead-letter record of %q has no %s header", in.recs[r.in].Value, wire.HeaderReason)
		}
		seen[r.in] = true
	}
	return len(seen)
}

// checkKeyOrder checks that each key's gated records are on one partition
// in the order their inputs were produced.
func checkKeyOrder(t *testing.T, in *input, o *outputs) {
	t.Helper()
	type pos struct {
		part int32
		last int64 // input offset of the last gated record of the key
	}
	seen := map[string]*pos{}
	firstSeen := map[int]bool{}
	errs := 0
	// o.recs of a topic are in partition, offset order (ReadAll).
	for _, r := range o.recs {
		if r.topic != testTopics.Gated || firstSeen[r.in] {
			continue
		}
		firstSeen[r.in] = true
		src := in.recs[r.in]
		k := string(r.rec.Key)
		p, ok := seen[k]
		switch {
		case !ok:
			seen[k] = &pos{part: r.rec.Partition, last: src.Offset}
			continue
		case p.part != r.rec.Partition:
			errs++
			t.Errorf("key %q gated on partitions %d and %d", k, p.part, r.rec.Partition)
		case src.Offset < p.last:
			errs++
			if errs <= 20 {
				t.Errorf("key %q: gated input p%d@%d after input p%d@%d", k, src.Partition, src.Offset, src.Partition, p.last)
			}
		}
		p.last = src.Offset
	}
	if errs > 0 {
		t.Errorf("%d per-key order violations on the gated topic", errs)
	}
}

// ---------------------------------------------------------------------------
// Breaker state.

func (b *bed) store(t *testing.T) *store.Redis {
	t.Helper()
	st, err := store.NewRedis(b.redis(t), store.RedisOptions{Prefix: keyPrefix, RecordTTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (b *bed) status(t *testing.T, scope breaker.Scope) breaker.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := b.store(t).Status(ctx, scope)
	if err != nil {
		t.Fatalf("status of %s: %v", scope, err)
	}
	return s
}

// notClosed lists the breakers Redis has that are not closed.
func (b *bed) notClosed(t *testing.T) map[breaker.Scope]breaker.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ss, err := b.store(t).List(ctx)
	if err != nil {
		t.Fatalf("list breakers: %v", err)
	}
	out := map[breaker.Scope]breaker.Status{}
	for _, s := range ss {
		if s.Status.State != breaker.Closed {
			out[s.Scope] = s.Status
		}
	}
	return out
}

// stateLog returns the newest entry of every scope in the state topic.
func (b *bed) stateLog(t *testing.T) map[breaker.Scope]statelog.Entry {
	t.Helper()
	out := map[breaker.Scope]statelog.Entry{}
	for _, r := range b.k.ReadAll(t, testTopics.State, 30*time.Second) {
		var e statelog.Entry
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatalf("state topic p%d@%d: %v: %q", r.Partition, r.Offset, err, r.Value)
		}
		if string(r.Key) != string(e.Scope) {
			t.Errorf("state topic p%d@%d: key %q for scope %q", r.Partition, r.Offset, r.Key, e.Scope)
		}
		if cur, ok := out[e.Scope]; !ok || e.To.Generation >= cur.To.Generation {
			out[e.Scope] = e
		}
	}
	return out
}

// ringSum returns the summed weights (Milli units) of the fine and coarse
// rings that Redis keeps for scope.
func (b *bed) ringSum(t *testing.T, scope breaker.Scope) (fine, coarse int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := b.redis(t).HGetAll(ctx, "{"+keyPrefix+"}:r:"+string(scope)).Result()
	if err != nil {
		t.Fatalf("read ring of %s: %v", scope, err)
	}
	for k, v := range m {
		if k == "first" || k == "top" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("ring of %s: field %s=%q", scope, k, v)
		}
		switch k[0] {
		case 'f':
			fine += n
		case 'c':
			coarse += n
		}
	}
	return fine, coarse
}

// ---------------------------------------------------------------------------
// The trip points, computed in the test with package breaker's ring.

// simulation is what the breakers would see processing events one by one
// in event-time order.
type simulation struct {
	maxWindow map[string]float64   // per rule: largest window count
	tripAt    map[string]time.Time // per rule: event time its count first passed the limit
}

func simulate(cfg config.Config, evs []event.Action) simulation {
	s := simulation{maxWindow: map[string]float64{}, tripAt: map[string]time.Time{}}
	wins := map[string]*breaker.Window{}
	for _, a := range evs {
		w, ok := wins[a.RuleID]
		pol := decide.Policy(cfg.RuleThresholds(a.RuleID))
		if !ok {
			w = breaker.NewWindow(pol.Grid())
			wins[a.RuleID] = w
		}
		at := a.OccurredAt.UnixMilli()
		w.Add(at, weightOf(cfg, a))
		c := w.Counts(at)
		s.maxWindow[a.RuleID] = max(s.maxWindow[a.RuleID], c.Window)
		if _, tripped := s.tripAt[a.RuleID]; !tripped {
			if _, ok := pol.Exceeded(c, false); ok {
				s.tripAt[a.RuleID] = a.OccurredAt
			}
		}
	}
	return s
}

func decodeAll(t *testing.T, evs []traffic.Event) []event.Action {
	t.Helper()
	out := make([]event.Action, len(evs))
	for i, e := range evs {
		a, err := event.Decode(e.Value)
		if err != nil {
			t.Fatalf("generated event %s does not decode: %v", e.ActionID, err)
		}
		out[i] = a
	}
	return out
}

package alert

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/metrics"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// request is one request a sink received.
type request struct {
	Header http.Header
	Body   []byte
}

// sink is a local HTTP receiver that records requests and answers with the
// next status of a script (200 once the script is used up).
type sink struct {
	srv *httptest.Server

	mu      sync.Mutex // guards the fields below
	reqs    []request
	answers []int
	header  http.Header // added to every non-2xx answer
}

func newSink(t *testing.T, answers ...int) *sink {
	s := &sink{answers: answers, header: http.Header{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, request{Header: r.Header.Clone(), Body: body})
		code := http.StatusOK
		if len(s.answers) > 0 {
			code, s.answers = s.answers[0], s.answers[1:]
		}
		if code >= 300 {
			for k, v := range s.header {
				w.Header()[k] = v
			}
		}
		s.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// decode unmarshals a request body into v.
func decode(t *testing.T, r request, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// rig is an outbox and a way to start dispatchers over one redis-server.
type rig struct {
	t      *testing.T
	redis  *testbed.Redis
	client *redis.Client
	prefix string
	window time.Duration
}

func newRig(t *testing.T, window time.Duration) *rig {
	r := testbed.StartRedis(t)
	r.WatchScripts(t)
	return &rig{t: t, redis: r, client: r.Client(t), prefix: "bw", window: window}
}

func (g *rig) outbox(m *metrics.Metrics) *Outbox {
	g.t.Helper()
	o, err := NewOutbox(OutboxOptions{Client: g.client, KeyPrefix: g.prefix, GroupWindow: g.window, Metrics: m})
	if err != nil {
		g.t.Fatal(err)
	}
	return o
}

// dispatcher builds a dispatcher with fast retries.
func (g *rig) dispatcher(consumer string, log *zap.Logger, m *metrics.Metrics, routes ...Route) *Dispatcher {
	g.t.Helper()
	if log == nil {
		log = zaptest.NewLogger(g.t)
	}
	d, err := NewDispatcher(DispatcherOptions{
		Client: g.client, KeyPrefix: g.prefix, Routes: routes, Consumer: consumer,
		ClaimIdle: 600 * time.Millisecond, AdminURL: "https://bw.example.com",
		Backoff: Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, GiveUpAfter: 20 * time.Second},
		Logger:  log, Metrics: m,
	})
	if err != nil {
		g.t.Fatal(err)
	}
	if err := d.Setup(context.Background()); err != nil {
		g.t.Fatal(err)
	}
	return d
}

// start runs d until the returned stop is called (or the test ends).
func start(t *testing.T, d *Dispatcher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// routes returns one route per receiver type, each to its own sink.
type sinks struct {
	webhook, slack, pagerduty, alertmanager *sink
}

const hookSecret = "whsec-0123456789abcdef"

func newSinks(t *testing.T) sinks {
	return sinks{webhook: newSink(t), slack: newSink(t), pagerduty: newSink(t), alertmanager: newSink(t)}
}

func (s sinks) routes(t *testing.T) []Route {
	c := &http.Client{Timeout: 2 * time.Second}
	wh, err := NewWebhook(s.webhook.srv.URL+"/hook", hookSecret, c)
	if err != nil {
		t.Fatal(err)
	}
	sl, err := NewSlack(s.slack.srv.URL+"/services/T000/B000/XXXX", c)
	if err != nil {
		t.Fatal(err)
	}
	pd, err := NewPagerDuty(s.pagerduty.srv.URL+"/v2/enqueue", "pd-routing-key-0123", c)
	if err != nil {
		t.Fatal(err)
	}
	am, err := NewAlertmanager("am", s.alertmanager.srv.URL+"/am", c)
	if err != nil {
		t.Fatal(err)
	}
	return []Route{
		{Name: "hook", Notifier: wh},
		{Name: "slack", Notifier: sl},
		{Name: "pd", Severities: []Severity{SeverityCritical}, Notifier: pd},
		{Name: "am", Notifier: am},
	}
}

func (s sinks) all() map[string]*sink {
	return map[string]*sink{"hook": s.webhook, "slack": s.slack, "pd": s.pagerduty, "am": s.alertmanager}
}

// tripOf returns the transition of scope tripping at generation gen.
func tripOf(scope breaker.Scope, gen uint64, at time.Time) breaker.Transition {
	from := breaker.Initial()
	from.Generation = gen - 1
	to := breaker.Status{State: breaker.Open, Auto: breaker.Open, Generation: gen, Since: at, TrippedAt: at, Reason: string(breaker.ReasonMaxActions)}
	return breaker.Transition{Scope: scope, From: from, To: to, Counts: breaker.Counts{Window: 1234.5, Baseline: 20.25, BaselineReady: true}}
}

// resetOf returns the transition of scope reset by a person after tr.
func resetOf(tr breaker.Transition, at time.Time) breaker.Transition {
	to := breaker.Status{State: breaker.Probation, Auto: breaker.Probation, Generation: tr.To.Generation + 1, Since: at, Actor: "alice", Reason: "false alarm"}
	return breaker.Transition{Scope: tr.Scope, From: tr.To, To: to}
}

var describer = Describer{
	AdminURL: "https://bw.example.com/",
	Policy: func(breaker.Scope) breaker.Policy {
		return breaker.Policy{Window: time.Minute, MaxActions: 1000, Factor: 5}
	},
	Held: func(string) (int64, []Count, []Count) {
		return 733, []Count{{"ban_account", 700}, {"remove_pin", 33}}, []Count{{"safety/2025.04.1", 733}}
	},
}

func event(t *testing.T, tr breaker.Transition) Event {
	t.Helper()
	e, ok := FromTransition(tr, describer)
	if !ok {
		t.Fatalf("FromTransition(%+v) = false; want an event", tr)
	}
	return e
}

func newMetrics() (*metrics.Metrics, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	return metrics.New(reg, 100), reg
}

// value reads a counter.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

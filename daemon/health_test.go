package daemon

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater/breakwater/consumer"
	"github.com/prometheus/client_golang/prometheus"
)

type fakeStore struct {
	initialised bool
	err         error
}

func (f fakeStore) Initialised(context.Context) (bool, error) { return f.initialised, f.err }

type fakePipeline consumer.Health

func (f fakePipeline) Health(time.Time) consumer.Health { return consumer.Health(f) }

func TestHealthEndpoints(t *testing.T) {
	pausedAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	stopped := make(chan struct{})
	close(stopped)
	tests := []struct {
		name     string
		ready    bool
		stopping <-chan struct{}
		store    fakeStore
		pipeline fakePipeline
		path     string
		code     int
		body     string
	}{
		{"live", true, nil, fakeStore{initialised: true}, fakePipeline{}, "/healthz", 200, `"status":"ok"`},
		{"live while paused", true, nil, fakeStore{err: errors.New("down")}, fakePipeline{PausedSince: pausedAt}, "/healthz", 200, `"status":"ok"`},
		{"wedged", true, nil, fakeStore{initialised: true}, fakePipeline{Stalled: 6 * time.Minute, StallReason: "a batch in flight made no progress for longer than kafka.stall_timeout"}, "/healthz", 503, `"status":"wedged","reason":"a batch in flight made no progress for longer than kafka.stall_timeout","stalled":"6m0s"`},
		{"ready", true, nil, fakeStore{initialised: true}, fakePipeline{Member: true}, "/readyz", 200, `"status":"ready"`},
		{"starting", false, nil, fakeStore{initialised: true}, fakePipeline{}, "/readyz", 503, `"status":"starting"`},
		{"stopping", true, stopped, fakeStore{initialised: true}, fakePipeline{}, "/readyz", 503, `"status":"stopping"`},
		{"paused", true, nil, fakeStore{err: errors.New("down")}, fakePipeline{Member: true, PausedSince: pausedAt}, "/readyz", 503, `"status":"paused","reason":"the rate store does not answer: consumption is paused, offsets kept; it resumes by itself","since":"2026-01-02T03:04:05Z"`},
		{"restoring", true, nil, fakeStore{initialised: false}, fakePipeline{Member: true}, "/readyz", 503, `"status":"restoring"`},
		{"store unreachable", true, nil, fakeStore{err: errors.New("down")}, fakePipeline{Member: true}, "/readyz", 503, `"status":"rate store unreachable"`},
		{"joining group", true, nil, fakeStore{initialised: true}, fakePipeline{}, "/readyz", 503, `"status":"joining group"`},
		{"waiting for a frontier", true, nil, fakeStore{initialised: true}, fakePipeline{Member: true, WaitingFor: "bw-1-ab12cd34"}, "/readyz", 200, `"status":"ready","reason":"waiting for replica bw-1-ab12cd34's frontier"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &health{}
			if tc.stopping != nil {
				h.setStopping(tc.stopping)
			}
			h.setPipeline(tc.pipeline)
			h.probe.Store(&probeResult{at: time.Now(), initialised: tc.store.initialised, err: tc.store.err})
			h.ready.Store(tc.ready)
			mux := newMux(prometheus.NewRegistry(), h, http.NotFoundHandler())
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("GET %s = %d %s; want %d with %s", tc.path, rec.Code, rec.Body.String(), tc.code, tc.body)
			}
		})
	}
}

// TestReadinessReasons: /readyz and breakwater_readiness say what a start
// waits for, then that the replica joins its group.
func TestReadinessReasons(t *testing.T) {
	h := &health{}
	h.setPipeline(fakePipeline{})
	h.probe.Store(&probeResult{at: time.Now(), initialised: true})
	reg := prometheus.NewRegistry()
	reg.MustRegister(h)
	mux := newMux(reg, h, http.NotFoundHandler())
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	steps := []struct {
		name   string
		set    func()
		code   int
		body   string
		metric string
	}{
		{"unreachable", func() { h.setStarting("restoring: rate store unreachable") }, 503,
			`"status":"starting","reason":"restoring: rate store unreachable"`,
			`breakwater_readiness{reason="restoring: rate store unreachable",status="starting"} 1`},
		{"joining", func() { h.ready.Store(true) }, 503, `"status":"joining group"`,
			`breakwater_readiness{reason="",status="joining group"} 1`},
		{"ready", func() { h.setPipeline(fakePipeline{Member: true}) }, 200, `"status":"ready"`,
			`breakwater_readiness{reason="",status="ready"} 1`},
	}
	for _, st := range steps {
		st.set()
		if code, body := get("/readyz"); code != st.code || !strings.Contains(body, st.body) {
			t.Errorf("%s: GET /readyz = %d %s; want %d with %s", st.name, code, body, st.code, st.body)
		}
		if _, body := get("/metrics"); !strings.Contains(body, st.metric) {
			t.Errorf("%s: /metrics has no %s:\n%s", st.name, st.metric, body)
		}
	}
}

// hangingStore answers Initialised at once until hang is set, then not
// before the call's context ends, like a Redis that stopped answering.
type hangingStore struct{ hang atomic.Bool }

func (s *hangingStore) Initialised(ctx context.Context) (bool, error) {
	if !s.hang.Load() {
		return true, nil
	}
	<-ctx.Done()
	return false, ctx.Err()
}

// TestReadinessDoesNotWaitForTheStore: /readyz answers from the store
// probe's last answer at once; once the store hangs, it answers 503 "rate
// store unreachable" as soon as that answer is older than the bound,
// naming how old it is, and never waits for the hung call.
func TestReadinessDoesNotWaitForTheStore(t *testing.T) {
	st := &hangingStore{}
	h := &health{staleAfter: 300 * time.Millisecond}
	h.setPipeline(fakePipeline{Member: true})
	h.ready.Store(true)
	mux := newMux(prometheus.NewRegistry(), h, http.NotFoundHandler())
	get := func() (int, string, time.Duration) {
		t0 := time.Now()
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String(), time.Since(t0)
	}
	if code, body, _ := get(); code != 503 || !strings.Contains(body, `"status":"rate store unreachable","reason":"the readiness probe of the rate store has no answer yet"`) {
		t.Fatalf("before any probe: GET /readyz = %d %s; want 503 naming no answer yet", code, body)
	}
	probe := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			// A probe timeout far beyond the test: only the staleness
			// bound can turn the answer to 503.
			h.runProbe(ctx, st, 20*time.Millisecond, time.Hour)
		}()
		return func() {
			cancel()
			<-done
		}
	}
	stop := probe()
	t.Cleanup(func() { stop() })
	waitUntil := func(what string, cond func(code int, body string) bool) {
		t.Helper()
		var code int
		var body string
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			var took time.Duration
			code, body, took = get()
			if took > 100*time.Millisecond {
				t.Fatalf("GET /readyz took %s; want an answer at once", took)
			}
			if cond(code, body) {
				return
			}
		}
		t.Fatalf("no %s within 10s; last %d %s", what, code, body)
	}
	waitUntil("200 ready", func(code int, body string) bool { return code == 200 && strings.Contains(body, `"status":"ready"`) })
	st.hang.Store(true)
	hungAt := time.Now()
	waitUntil("503 on a stale answer", func(code int, body string) bool {
		return code == 503 && strings.Contains(body, `"status":"rate store unreachable","reason":"the rate store has not answered the readiness probe for `)
	})
	if since := time.Since(hungAt); since < 250*time.Millisecond {
		t.Errorf("503 %s after the store hung; the last answer was younger than the 300ms bound", since)
	}
	// The store answers again: ready again.
	st.hang.Store(false)
	stop()
	stop = probe()
	waitUntil("200 ready again", func(code int, body string) bool { return code == 200 })
}

// TestFrontBeforeBuilt: while the daemon is built, the listener answers
// /healthz 200, /readyz 503 "starting" with the stage, and every other
// route 503 with the stage; once the routes are set, they answer.
func TestFrontBeforeBuilt(t *testing.T) {
	h := &health{}
	reg := prometheus.NewRegistry()
	reg.MustRegister(h)
	f := newFront(reg, h)
	h.setStarting("checking the Kafka permissions")
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		f.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	for _, c := range []struct {
		path string
		code int
		body string
	}{
		{"/healthz", 200, `"status":"ok"`},
		{"/readyz", 503, `"status":"starting","reason":"checking the Kafka permissions"`},
		{"/v1/breakers", 503, `{"error":"starting: checking the Kafka permissions"}`},
		{"/", 503, `{"error":"starting: checking the Kafka permissions"}`},
		{"/metrics", 200, `breakwater_readiness{reason="checking the Kafka permissions",status="starting"} 1`},
	} {
		if code, body := get(c.path); code != c.code || !strings.Contains(body, c.body) {
			t.Errorf("starting: GET %s = %d %s; want %d with %s", c.path, code, body, c.code, c.body)
		}
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("the admin API")) })
	f.full.Store(newMux(reg, h, api))
	if code, body := get("/v1/breakers"); code != 200 || body != "the admin API" {
		t.Errorf("built: GET /v1/breakers = %d %s; want the admin API", code, body)
	}
}

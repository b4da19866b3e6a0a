package daemon

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
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
			h := &health{stopping: tc.stopping, store: tc.store, pipeline: tc.pipeline}
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
	h := &health{store: fakeStore{initialised: true}, pipeline: fakePipeline{}}
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
		{"ready", func() { h.pipeline = fakePipeline{Member: true} }, 200, `"status":"ready"`,
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

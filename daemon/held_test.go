package daemon

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/alert"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/metrics"
	"github.com/breakwater/breakwater/review"
)

type fakeIncidents struct {
	mu   sync.Mutex
	list []review.Incident
}

func (f *fakeIncidents) Incidents(context.Context) ([]review.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]review.Incident(nil), f.list...), nil
}

func (f *fakeIncidents) set(l ...review.Incident) {
	f.mu.Lock()
	f.list = l
	f.mu.Unlock()
}

// TestWatchHeld sets the held backlog per scope from the pending actions of
// its incidents, and clears it once they are decided.
func TestWatchHeld(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry(), 10)
	now := time.Now()
	x := &fakeIncidents{}
	x.set(
		review.Incident{ID: "rule:a@1", Scope: "rule:a", Pending: 5, FirstHeldAt: now.Add(-time.Hour)},
		review.Incident{ID: "rule:a@3", Scope: "rule:a", Pending: 2, FirstHeldAt: now.Add(-time.Minute)},
		review.Incident{ID: "rule:b@1", Scope: "rule:b", Pending: 0, FirstHeldAt: now.Add(-2 * time.Hour)},
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); watchHeld(ctx, config.Default(), x, m, nil, 5*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	wait("the backlog of rule:a", func() bool { return testutil.ToFloat64(m.HeldBacklog.WithLabelValues("rule:a")) == 7 })
	if age := testutil.ToFloat64(m.HeldOldestAge.WithLabelValues("rule:a")); age < 3600 || age > 3700 {
		t.Errorf("oldest held age of rule:a = %vs; want about an hour", age)
	}
	if n := testutil.ToFloat64(m.HeldBacklog.WithLabelValues("rule:b")); n != 0 {
		t.Errorf("backlog of rule:b, all decided, = %v; want 0", n)
	}
	x.set(review.Incident{ID: "rule:a@1", Scope: "rule:a", Pending: 0, FirstHeldAt: now.Add(-time.Hour)})
	wait("the backlog of rule:a to clear", func() bool { return testutil.ToFloat64(m.HeldBacklog.WithLabelValues("rule:a")) == 0 })
}

// TestWatchHeldRemindsOnlyUnacknowledged: an incident past
// alerts.held_review_deadline raises held_overdue unless someone
// acknowledged it. The acknowledged incident comes first in the list, so
// had it been raised, it would be raised before the reminder the test
// waits for.
func TestWatchHeldRemindsOnlyUnacknowledged(t *testing.T) {
	rc := testbed.StartRedis(t).Client(t)
	m := metrics.New(prometheus.NewRegistry(), 10)
	out, err := alert.NewOutbox(alert.OutboxOptions{Client: rc, KeyPrefix: "bw-held", Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Alerts.HeldReviewDeadline = time.Minute
	now := time.Now()
	x := &fakeIncidents{}
	x.set(
		review.Incident{ID: "rule:a@1", Scope: "rule:a", Pending: 5, FirstHeldAt: now.Add(-time.Hour), AckBy: "alice", AckAt: now.Add(-50 * time.Minute)},
		review.Incident{ID: "rule:b@1", Scope: "rule:b", Pending: 3, FirstHeldAt: now.Add(-time.Hour)},
	)
	a := &alerting{outbox: out, log: zap.NewNop(), metrics: m}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); watchHeld(ctx, cfg, x, m, a, 5*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	seen := func(incident string) bool {
		return rc.Exists(context.Background(), out.Keys().AlertSeen("held_overdue/"+incident)).Val() == 1
	}
	for deadline := time.Now().Add(10 * time.Second); !seen("rule:b@1"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the reminder of rule:b@1, not acknowledged")
		}
	}
	if seen("rule:a@1") {
		t.Error("rule:a@1, acknowledged, raised held_overdue; want no reminder once someone acknowledged it")
	}
}

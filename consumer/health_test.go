package consumer

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/breakwater/breakwater/metrics"
)

func TestHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &Pipeline{m: metrics.New(prometheus.NewRegistry(), 10)}
		p.cfg.Kafka.StallTimeout = time.Minute
		check := func(what string, stalled time.Duration, paused bool) {
			t.Helper()
			h := p.Health(time.Now())
			if h.Stalled != stalled || h.PausedSince.IsZero() == paused {
				t.Errorf("%s: Health() = %+v; want stalled %v, paused %v", what, h, stalled, paused)
			}
			if got := testutil.ToFloat64(p.m.Paused); (got == 1) != paused {
				t.Errorf("%s: breakwater_paused = %v; want paused %v", what, got, paused)
			}
		}
		time.Sleep(time.Hour)
		check("idle, nothing in flight", 0, false)
		p.progress.start()
		time.Sleep(59 * time.Second)
		check("a batch in flight for 59s", 0, false)
		p.progress.beat()
		time.Sleep(59 * time.Second)
		check("59s after an attempt finished", 0, false)
		time.Sleep(2 * time.Second)
		check("61s after an attempt finished", 61*time.Second, false)
		p.setPaused(true)
		p.setPaused(true) // a second retry loop waiting on Redis
		check("paused on Redis", 0, true)
		p.setPaused(false)
		check("one loop still paused", 0, true)
		p.setPaused(false)
		p.progress.beat()
		check("resumed", 0, false)
		p.progress.done()
		time.Sleep(time.Hour)
		check("committed, nothing in flight", 0, false)
	})
}

// TestHealthInputWaits: a member that holds partitions with input waiting
// and decides nothing for longer than twice kafka.stall_timeout is
// stalled; one
// whose partitions had nothing to read, or that decided a batch since it
// got them, is not.
func TestHealthInputWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &Pipeline{m: metrics.New(prometheus.NewRegistry(), 10)}
		p.cfg.Kafka.StallTimeout = time.Minute
		src := &mergedSource{}
		p.membership.Store(src)
		join := func(lag int64) chan struct{} {
			ended := make(chan struct{})
			g := &generation{ended: ended, started: time.Now(), parts: []*owned{{}}}
			g.parts[0].lag.Store(lag)
			src.current.Store(g)
			return ended
		}
		check := func(what string, stalled bool) {
			t.Helper()
			h := p.Health(time.Now())
			if (h.Stalled > 0) != stalled || stalled && h.StallReason == "" {
				t.Errorf("%s: Health() = %+v; want stalled %v", what, h, stalled)
			}
		}
		join(0)
		time.Sleep(time.Hour)
		check("nothing to read for an hour", false)
		ended := join(500)
		time.Sleep(119 * time.Second)
		check("input waiting for 119s", false)
		time.Sleep(2 * time.Second)
		check("input waiting for 121s, nothing decided", true)
		p.setPaused(true)
		check("paused on Redis", false)
		p.setPaused(false)
		close(ended)
		check("in a rebalance", false)
		join(500)
		time.Sleep(30 * time.Second)
		p.progress.start()
		p.progress.done()
		time.Sleep(time.Hour)
		check("decided a batch since it joined", false)
	})
}

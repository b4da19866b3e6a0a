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

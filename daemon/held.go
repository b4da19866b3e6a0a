package daemon

import (
	"context"
	"time"

	"github.com/breakwater/breakwater/alert"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/metrics"
	"github.com/breakwater/breakwater/review"
)

// incidents lists the incidents of held actions (review.Index).
type incidents interface {
	Incidents(ctx context.Context) ([]review.Incident, error)
}

// watchHeld updates the held backlog metrics every period and, when alerts
// are on, raises held_overdue for an incident whose actions have waited
// longer than alerts.held_review_deadline, unless someone acknowledged it.
// The age of an incident's backlog is taken from its first held action
// while any of its actions is pending.
func watchHeld(ctx context.Context, cfg config.Config, x incidents, m *metrics.Metrics, a *alerting, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	seen := map[string]bool{} // scope labels set, to zero them when their backlog is gone
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		list, err := x.Incidents(lctx)
		cancel()
		if err != nil {
			continue
		}
		now := time.Now()
		pending := map[string]int64{}
		oldest := map[string]time.Time{}
		var overdue []alert.Event
		for _, inc := range list {
			if inc.Pending == 0 {
				continue
			}
			label := m.Scope(breaker.Scope(inc.Scope))
			pending[label] += inc.Pending
			if o, ok := oldest[label]; !ok || inc.FirstHeldAt.Before(o) {
				oldest[label] = inc.FirstHeldAt
			}
			// An acknowledged incident has someone on it: no reminder.
			if d := cfg.Alerts.HeldReviewDeadline; a != nil && d > 0 && now.Sub(inc.FirstHeldAt) > d && inc.AckBy == "" {
				overdue = append(overdue, alert.HeldOverdue(breaker.Scope(inc.Scope), inc.ID, inc.Pending, now.Sub(inc.FirstHeldAt), d, now, a.describer))
			}
		}
		for label := range seen {
			if _, ok := pending[label]; !ok {
				m.HeldBacklog.WithLabelValues(label).Set(0)
				m.HeldOldestAge.WithLabelValues(label).Set(0)
				delete(seen, label)
			}
		}
		for label, n := range pending {
			m.HeldBacklog.WithLabelValues(label).Set(float64(n))
			m.HeldOldestAge.WithLabelValues(label).Set(now.Sub(oldest[label]).Seconds())
			seen[label] = true
		}
		if len(overdue) > 0 {
			a.raiseQuiet(ctx, overdue...)
		}
	}
}

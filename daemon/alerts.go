package daemon

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/admin"
	"github.com/breakwater/breakwater/alert"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/consumer"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/metrics"
	"github.com/breakwater/breakwater/store"
)

// alerting is the outbox and the delivery workers of one replica.
type alerting struct {
	outbox     *alert.Outbox
	dispatcher *alert.Dispatcher
	describer  alert.Describer
	log        *zap.Logger
	metrics    *metrics.Metrics
}

// dispatchers counts the dispatchers built in this process.
var dispatchers atomic.Int64

// consumerName names this replica in the alert consumer groups: the host
// and process id, so that a restarted replica that gets the same (pid 1 in
// a container of a stateful set) takes up its own pending groups at once,
// and a count when one process runs several daemons, so that no two
// running dispatchers share a name (two consumers of one name would both
// read its pending groups and deliver them twice).
func consumerName() string {
	host, _ := os.Hostname()
	name := fmt.Sprintf("%s-%d", host, os.Getpid())
	if n := dispatchers.Add(1); n > 1 {
		name += fmt.Sprintf("-%d", n)
	}
	return name
}

// newAlerting builds the outbox and the dispatcher of cfg.Alerts, or returns
// nil when no receiver is configured.
func newAlerting(cfg config.Config, rc redis.UniversalClient, log *zap.Logger, m *metrics.Metrics) (*alerting, error) {
	a := cfg.Alerts
	if len(a.Receivers) == 0 {
		return nil, nil
	}
	routes, err := alert.RoutesFrom(a.Receivers)
	if err != nil {
		return nil, err
	}
	outbox, err := alert.NewOutbox(alert.OutboxOptions{
		Client: rc, KeyPrefix: cfg.Redis.KeyPrefix, GroupWindow: a.GroupWindow, Retention: a.Retention, Metrics: m,
	})
	if err != nil {
		return nil, err
	}
	d, err := alert.NewDispatcher(alert.DispatcherOptions{
		Client: rc, KeyPrefix: cfg.Redis.KeyPrefix, Routes: routes,
		Consumer:  consumerName(),
		ClaimIdle: a.ClaimIdle, AdminURL: a.AdminURL, Retention: a.Retention,
		Backoff: alert.Backoff{Initial: a.Retry.Initial, Max: a.Retry.Max, GiveUpAfter: a.Retry.GiveUpAfter},
		Logger:  log.Named("alert"), Metrics: m,
	})
	if err != nil {
		return nil, err
	}
	names := make([]string, len(routes))
	for i, r := range routes {
		names[i] = r.Name
	}
	log.Info("alert delivery enabled", zap.Strings("receivers", names), zap.Duration("group_window", a.GroupWindow))
	return &alerting{
		outbox: outbox, dispatcher: d, log: log, metrics: m,
		describer: alert.Describer{AdminURL: a.AdminURL, Policy: func(s breaker.Scope) breaker.Policy { return decide.ScopePolicy(cfg, s) }},
	}, nil
}

// Raise raises the alert events of a batch's transitions in the outbox.
// The pipeline calls it once the store decided the batch, before the batch
// is committed, and again for a redelivered batch: the outbox drops a
// second raise of the same transition, so an alert is raised once even if
// the process stops in between.
func (a *alerting) Raise(ctx context.Context, ts []breaker.Transition, held map[breaker.Scope]consumer.HeldCounts) error {
	var evs []alert.Event
	for _, t := range ts {
		d := a.describer
		if c, ok := held[t.Scope]; ok {
			// The figures of the batch that tripped: what the classifier
			// was doing when the breaker opened.
			d.Held = func(string) (int64, []alert.Count, []alert.Count) {
				n := 0
				for _, k := range c.Actions {
					n += k
				}
				return int64(n), alert.TopCounts(c.Actions, 5), alert.TopCounts(c.Models, 5)
			}
		}
		if e, ok := alert.FromTransition(t, d); ok {
			evs = append(evs, e)
		}
	}
	if len(evs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := a.outbox.Raise(ctx, evs...); err != nil {
		a.metrics.OutboxErrors.Inc()
		return fmt.Errorf("raise %d alert events: %w", len(evs), err)
	}
	return nil
}

// outageSource is what the condition alerts watch in the pipeline.
type outageSource interface {
	StoreOutage() (down bool, since time.Time, policy string)
	Lag() int64
}

// breakers lists the breakers that left their initial status.
type breakers interface {
	List(ctx context.Context) ([]store.ScopeStatus, error)
}

// watch raises the condition alerts every period until ctx is done: the
// rate store unreachable (sent directly, since the outbox lives in the
// same Redis) and reachable again (through the outbox), the
// consumer lag above alerts.consumer_lag, and manual overrides about to
// expire. The events' identities are the same in every replica, so the
// outbox raises each once.
func (a *alerting) watch(ctx context.Context, cfg config.Config, h outageSource, bs breakers, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	var sentDown time.Time // the outage whose alert was sent
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		down, since, policy := h.StoreOutage()
		switch {
		case down && !since.Equal(sentDown):
			// Not raised in the outbox as well: the direct delivery is
			// retried, and a second copy would page twice.
			if err := a.dispatcher.Direct(alert.StoreUnreachable(since, policy)); err != nil {
				a.log.Error("send the rate store alert", zap.Error(err))
			}
			sentDown = since
		case !down && !sentDown.IsZero():
			a.raiseQuiet(ctx, alert.StoreReachable(sentDown, now))
			sentDown = time.Time{}
		}
		if thr := cfg.Alerts.ConsumerLag; thr > 0 {
			if lag := h.Lag(); lag > thr {
				a.raiseQuiet(ctx, alert.ConsumerLag(lag, thr, now))
			}
		}
		if notice := cfg.Alerts.OverrideExpiryNotice; notice > 0 && !down {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			list, err := bs.List(lctx)
			cancel()
			if err != nil {
				continue
			}
			for _, s := range list {
				st := s.Status
				manual := st.State == breaker.ForcedOpen || st.State == breaker.ForcedClosed || st.State == breaker.Shadow
				if manual && !st.Until.IsZero() && st.Until.Sub(now) <= notice {
					a.raiseQuiet(ctx, alert.OverrideExpiring(s.Scope, st, a.describer))
				}
			}
		}
	}
}

// raiseQuiet raises events in the outbox, logging a failure.
func (a *alerting) raiseQuiet(ctx context.Context, evs ...alert.Event) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := a.outbox.Raise(ctx, evs...); err != nil {
		a.metrics.OutboxErrors.Inc()
		a.log.Error("raise alert events", zap.Int("events", len(evs)), zap.Error(err))
	}
}

// alertSink returns a as a sink of transitions, or nil (not a nil pointer
// in an interface) when alerting is off.
func alertSink(a *alerting) consumer.AlertSink {
	if a == nil {
		return nil
	}
	return a
}

// Page raises one event in the outbox, for a person's action that on-call
// must hear of (a break-glass change); its error is the caller's to answer.
func (a *alerting) Page(ctx context.Context, e alert.Event) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := a.outbox.Raise(ctx, e); err != nil {
		a.metrics.OutboxErrors.Inc()
		return fmt.Errorf("raise the %s alert: %w", e.Kind, err)
	}
	return nil
}

// pager returns a as the admin API's pager, or nil when alerting is off.
func pager(a *alerting) admin.Pager {
	if a == nil {
		return nil
	}
	return a
}

package alert

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/metrics"
	"github.com/breakwater/breakwater/wire"
)

// Route sends the groups of some severities to one receiver.
type Route struct {
	// Name names the receiver in logs, metrics and Redis keys; never its URL.
	Name string
	// Severities are the severities it receives; empty means all.
	Severities []Severity
	// Notifier sends to the receiver.
	Notifier Notifier
}

// accepts reports whether r receives severity s.
func (r Route) accepts(s Severity) bool {
	return len(r.Severities) == 0 || slices.Contains(r.Severities, s)
}

// Backoff is the retry schedule of a receiver.
type Backoff struct {
	// Initial is the first delay; default 1s.
	Initial time.Duration
	// Max caps the delay between attempts; default 5m. A Retry-After of the
	// receiver is honoured even when longer.
	Max time.Duration
	// GiveUpAfter is how long a notification is retried before it is
	// recorded as failed; default 24h.
	GiveUpAfter time.Duration
}

// DispatcherOptions configure a Dispatcher.
type DispatcherOptions struct {
	// Client is the Redis client; required.
	Client redis.UniversalClient
	// KeyPrefix is the hash tag of every key, without braces, as the Outbox's; required.
	KeyPrefix string
	// Routes are the receivers; at least one, with unique names.
	Routes []Route
	// Consumer names this replica in the consumer groups; required and
	// unique per replica (a restarted replica with the same name takes up its
	// own pending groups at once).
	Consumer string
	// ClaimIdle is how long a group may stay pending without progress
	// before another replica claims it; default 1m. A worker delivering a
	// group keeps claiming it, so a slow receiver is not delivered twice.
	ClaimIdle time.Duration
	// Backoff is the retry schedule.
	Backoff Backoff
	// AdminURL is the base URL of the admin API, for links; may be empty.
	AdminURL string
	// Retention is how long done markers are kept; default 7 days.
	Retention time.Duration
	// Logger logs; required.
	Logger *zap.Logger
	// Metrics, if set, counts notifications.
	Metrics *metrics.Metrics
}

func (o *DispatcherOptions) validate() error {
	switch {
	case o.Client == nil:
		return errors.New("alert: DispatcherOptions.Client is nil")
	case !validPrefix(o.KeyPrefix):
		return fmt.Errorf("alert: DispatcherOptions.KeyPrefix must be non-empty without braces or spaces, got %q", o.KeyPrefix)
	case len(o.Routes) == 0:
		return errors.New("alert: DispatcherOptions.Routes is empty")
	case o.Consumer == "":
		return errors.New("alert: DispatcherOptions.Consumer is empty")
	case o.Logger == nil:
		return errors.New("alert: DispatcherOptions.Logger is nil")
	}
	seen := map[string]bool{}
	for i, r := range o.Routes {
		if r.Name == "" || r.Notifier == nil {
			return fmt.Errorf("alert: DispatcherOptions.Routes[%d] needs a name and a notifier", i)
		}
		if seen[r.Name] {
			return fmt.Errorf("alert: DispatcherOptions.Routes[%d]: duplicate name %q", i, r.Name)
		}
		seen[r.Name] = true
	}
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = time.Minute
	}
	if o.Backoff.Initial <= 0 {
		o.Backoff.Initial = time.Second
	}
	if o.Backoff.Max <= 0 {
		o.Backoff.Max = 5 * time.Minute
	}
	if o.Backoff.GiveUpAfter <= 0 {
		o.Backoff.GiveUpAfter = 24 * time.Hour
	}
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	return nil
}

// Dispatcher delivers the groups of the outbox to every receiver. Run it in
// every replica: each receiver reads the stream through its own consumer
// group, so each group reaches each receiver through one replica.
type Dispatcher struct {
	opts DispatcherOptions
	keys wire.Keys
	log  *zap.Logger

	mu     sync.Mutex      // guards runCtx
	runCtx context.Context // the context of Run while it runs, else nil
	direct sync.WaitGroup  // direct deliveries, waited for by Run
}

// ErrNotRunning is returned by Direct when Run is not running.
var ErrNotRunning = errors.New("alert: the dispatcher is not running")

// Direct sends events now to every receiver that takes their severity,
// without the outbox, for conditions that keep the outbox from working
// (the rate store, and so the outbox's Redis, is unreachable). It returns
// at once; each delivery is retried until it succeeds, fails for good or
// Run stops. Nothing is shared between replicas here: every replica that
// calls Direct sends its own notification (PagerDuty merges them by
// dedup_key, which the event carries).
func (d *Dispatcher) Direct(events ...Event) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.runCtx == nil || d.runCtx.Err() != nil {
		return ErrNotRunning
	}
	for _, e := range events {
		if err := e.Validate(); err != nil {
			return err
		}
	}
	ctx := d.runCtx
	for _, e := range events {
		n := Notification{
			Key: "direct/" + d.opts.Consumer + "/" + e.ID, Kind: e.Kind, Severity: e.Severity,
			Events: []Event{e}, AdminURL: d.opts.AdminURL,
		}
		for _, r := range d.opts.Routes {
			if r.accepts(e.Severity) {
				d.direct.Go(func() { d.deliver(ctx, r, n) })
			}
		}
	}
	return nil
}

// NewDispatcher returns a dispatcher, or an error naming the bad option.
func NewDispatcher(o DispatcherOptions) (*Dispatcher, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	keys, _ := wire.NewKeys(o.KeyPrefix)
	return &Dispatcher{opts: o, keys: keys, log: o.Logger}, nil
}

// groupName is the consumer group of a receiver.
func groupName(receiver string) string { return "receiver:" + receiver }

// Setup creates the consumer group of every receiver that has none yet. A
// new receiver starts with the groups raised after its creation: call Setup
// before the pipeline raises anything (Run calls it too).
func (d *Dispatcher) Setup(ctx context.Context) error {
	for _, r := range d.opts.Routes {
		err := d.opts.Client.XGroupCreateMkStream(ctx, d.keys.AlertStream(), groupName(r.Name), "$").Err()
		if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return fmt.Errorf("create the alert consumer group of receiver %q: %w", r.Name, err)
		}
	}
	return nil
}

// Run delivers until ctx is cancelled. A group whose delivery is cut short
// stays pending and is delivered after a restart, by this replica or another.
func (d *Dispatcher) Run(ctx context.Context) error {
	for {
		err := d.Setup(ctx)
		if err == nil {
			break
		}
		d.redisError("setup", err)
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
	d.mu.Lock()
	d.runCtx = ctx
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.runCtx = nil
		d.mu.Unlock()
		d.direct.Wait()
	}()
	var wg sync.WaitGroup
	for _, r := range d.opts.Routes {
		wg.Go(func() { d.runRoute(ctx, r) })
	}
	wg.Wait()
	return nil
}

// sleep waits for d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (d *Dispatcher) redisError(op string, err error) {
	if d.opts.Metrics != nil {
		d.opts.Metrics.OutboxErrors.Inc()
	}
	d.log.Warn("alert outbox: redis call failed", zap.String("op", op), zap.Error(err))
}

// runRoute is the delivery loop of one receiver.
func (d *Dispatcher) runRoute(ctx context.Context, r Route) {
	rc, stream, group := d.opts.Client, d.keys.AlertStream(), groupName(r.Name)
	own := true // first take up this consumer's own pending groups
	var lastClaim time.Time
	for ctx.Err() == nil {
		var msgs []redis.XMessage
		var err error
		switch {
		case own:
			msgs, err = d.read(ctx, r, "0", -1)
			if err == nil && len(msgs) == 0 {
				own = false
			}
		case time.Since(lastClaim) >= d.opts.ClaimIdle/2:
			lastClaim = time.Now()
			msgs, _, err = rc.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream: stream, Group: group, Consumer: d.opts.Consumer,
				MinIdle: d.opts.ClaimIdle, Start: "0-0", Count: 16,
			}).Result()
			if err == nil && len(msgs) > 0 {
				d.log.Info("alert outbox: claimed groups left pending by another replica",
					zap.String("receiver", r.Name), zap.Int("groups", len(msgs)))
			}
		default:
			msgs, err = d.read(ctx, r, ">", min(time.Second, d.opts.ClaimIdle/2))
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				// Redis lost its data: the stream and groups are gone, and
				// whatever the stream holds now was raised since, so the
				// group starts from its beginning.
				err = rc.XGroupCreateMkStream(ctx, stream, group, "0").Err()
				if err == nil || strings.HasPrefix(err.Error(), "BUSYGROUP") {
					d.log.Warn("alert outbox: consumer group was lost with Redis's data; created it again", zap.String("receiver", r.Name))
					own = true
					continue
				}
			}
			d.redisError("read", err)
			sleep(ctx, time.Second)
			continue
		}
		for _, m := range msgs {
			if ctx.Err() != nil {
				return
			}
			if err := d.handle(ctx, r, m); err != nil && ctx.Err() == nil {
				d.redisError("deliver", err)
				sleep(ctx, time.Second)
			}
		}
	}
}

// read reads the groups after id ("0": this consumer's pending ones, ">":
// new ones), waiting up to block for new ones (-1: not at all).
func (d *Dispatcher) read(ctx context.Context, r Route, id string, block time.Duration) ([]redis.XMessage, error) {
	res, err := d.opts.Client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: groupName(r.Name), Consumer: d.opts.Consumer,
		Streams: []string{d.keys.AlertStream(), id}, Count: 16, Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []redis.XMessage
	for _, s := range res {
		out = append(out, s.Messages...)
	}
	return out, nil
}

// groupKey is the Key of group g: unique per deployment key prefix.
func (d *Dispatcher) groupKey(g string) string { return d.opts.KeyPrefix + "/" + g }

// handle delivers one stream entry to r, then records it as done and
// acknowledges it. It returns an error only for Redis failures; the entry
// then stays pending.
func (d *Dispatcher) handle(ctx context.Context, r Route, m redis.XMessage) error {
	rc, stream, cg := d.opts.Client, d.keys.AlertStream(), groupName(r.Name)
	g, _ := m.Values["group"].(string)
	if g == "" { // trimmed from the stream, or not ours: nothing to send
		return rc.XAck(ctx, stream, cg, m.ID).Err()
	}
	done := d.keys.AlertDone(g, r.Name)
	switch n, err := rc.Exists(ctx, done).Result(); {
	case err != nil:
		return err
	case n > 0:
		return rc.XAck(ctx, stream, cg, m.ID).Err()
	}
	due, _ := strconv.ParseInt(fmt.Sprint(m.Values["due"]), 10, 64)
	now, err := rc.Time(ctx).Result()
	if err != nil {
		return err
	}
	if wait := time.UnixMilli(due).Sub(now); wait > 0 {
		// The group window is still open: keep the entry claimed while waiting.
		if !d.keepClaimed(ctx, r, m.ID, done, func() bool { return sleep(ctx, wait) }) {
			return nil
		}
	}
	// Another replica may have claimed the entry while this one waited or
	// stalled, and may have delivered it already: deliver only while it is
	// still this consumer's and not done.
	switch own, err := d.own(ctx, r, m.ID, done); {
	case err != nil:
		return err
	case own == ownDone:
		return rc.XAck(ctx, stream, cg, m.ID).Err()
	case own == ownLost:
		d.log.Info("alert outbox: another replica took over a group", zap.String("receiver", r.Name), zap.String("group", g))
		return nil
	}
	n, err := d.load(ctx, g, m)
	if err != nil {
		return err
	}
	outcome := "skipped"
	if len(n.Events) == 0 {
		d.log.Warn("alert outbox: group expired before delivery", zap.String("receiver", r.Name), zap.String("key", n.Key))
	} else if r.accepts(n.Severity) {
		var ok bool
		d.keepClaimed(ctx, r, m.ID, done, func() bool {
			outcome, ok = d.deliver(ctx, r, n)
			return ok
		})
		if !ok {
			return nil // cancelled: stays pending
		}
	}
	_, err = rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, done, outcome, d.opts.Retention)
		p.XAck(ctx, stream, cg, m.ID)
		return nil
	})
	return err
}

// ownScript renews the claim of consumer ARGV[2] on the pending entry
// ARGV[3] of group ARGV[1] on stream KEYS[1], if the entry is still that
// consumer's and its done marker KEYS[2] is not set. It answers 1 when
// renewed, 0 when done, -1 when the entry is another consumer's (claimed
// as idle) or no longer pending. A renewal never takes an entry back from
// the replica that claimed it.
var ownScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then
  return -1
end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
`)

// The answers of ownScript.
const (
	ownHeld = 1
	ownDone = 0
	ownLost = -1
)

// own renews this consumer's claim on entry id of r's group, whose done
// marker is done, if it still holds it and the entry is not done (see
// ownScript).
func (d *Dispatcher) own(ctx context.Context, r Route, id, done string) (int, error) {
	n, err := ownScript.Run(ctx, d.opts.Client, []string{d.keys.AlertStream(), done}, groupName(r.Name), d.opts.Consumer, id).Int()
	if err != nil {
		return 0, fmt.Errorf("renew the claim on alert entry %s: %w", id, err)
	}
	return n, nil
}

// keepClaimed runs fn while renewing this consumer's claim on entry id
// (done marker done), so that no other replica claims it as idle
// meanwhile; it returns fn's result. Should the renewals come too late (a
// stalled replica) and another replica claim the entry, they stop: the
// claim is never taken back.
func (d *Dispatcher) keepClaimed(ctx context.Context, r Route, id, done string, fn func() bool) bool {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(d.opts.ClaimIdle / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				switch own, err := d.own(ctx, r, id, done); {
				case err != nil && ctx.Err() == nil:
					d.redisError("renew claim", err)
				case err == nil && own != ownHeld:
					return // claimed by another replica, or done: nothing to renew
				}
			}
		}
	})
	ok := fn()
	close(stop)
	wg.Wait()
	return ok
}

// sealScript closes group g to new events, if it is still open, and returns
// its events and what its resolves end. Sealing and reading in one call
// means an event raised at the moment the window closes either is in the
// list every receiver gets or opens the next group; it is never lost
// between the two.
//
// KEYS[1] the open-group key of the group's kind and severity, KEYS[2] its
// members, KEYS[3] its resolve records. ARGV[1] the group.
var sealScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return {redis.call('LRANGE', KEYS[2], 0, -1), redis.call('HGETALL', KEYS[3])}
`)

// load seals group g and reads its events and what the resolves among them end.
func (d *Dispatcher) load(ctx context.Context, g string, m redis.XMessage) (Notification, error) {
	kind, _ := m.Values["kind"].(string)
	sev, _ := m.Values["severity"].(string)
	n := Notification{Key: d.groupKey(g), Kind: Kind(kind), Severity: Severity(sev), AdminURL: d.opts.AdminURL}
	res, err := sealScript.Run(ctx, d.opts.Client, []string{d.keys.AlertOpen(kind, sev), d.keys.AlertMembers(g), d.keys.AlertFix(g)}, g).Slice()
	if err != nil {
		return n, err
	}
	var raw []string
	fix := map[string]string{}
	if len(res) == 2 {
		for _, v := range asSlice(res[0]) {
			s, _ := v.(string)
			raw = append(raw, s)
		}
		flat := asSlice(res[1])
		for i := 0; i+1 < len(flat); i += 2 {
			k, _ := flat[i].(string)
			v, _ := flat[i+1].(string)
			fix[k] = v
		}
	}
	for _, s := range raw {
		var e Event
		if err := jsonUnmarshal([]byte(s), &e); err != nil {
			d.log.Error("alert outbox: undecodable event dropped", zap.String("key", n.Key), zap.Error(err))
			continue
		}
		if f, ok := fix[e.ID]; ok {
			parts := strings.Split(f, "\t")
			if len(parts) == 3 {
				if parts[0] != e.Incident {
					e.Incident = parts[0]
					e.DedupKey = DedupKey(parts[0])
					e.Link = Describer{AdminURL: d.opts.AdminURL}.IncidentLink(parts[0])
				}
				n.Resolves = append(n.Resolves, Resolve{
					EventID: e.ID, Incident: parts[0], TripKey: d.groupKey(parts[1]), GroupClosed: parts[2] == "1",
				})
			}
		}
		n.Events = append(n.Events, e)
	}
	return n, nil
}

// asSlice returns v as a slice, or nil.
func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// deliver sends n to r with retries. It returns the outcome (sent or
// failed) and true, or false when ctx was cancelled first.
func (d *Dispatcher) deliver(ctx context.Context, r Route, n Notification) (string, bool) {
	b := d.opts.Backoff
	start := time.Now()
	wait := b.Initial
	log := d.log.With(zap.String("receiver", r.Name), zap.String("key", n.Key),
		zap.String("kind", string(n.Kind)), zap.Int("events", len(n.Events)))
	for attempt := 1; ; attempt++ {
		t0 := time.Now()
		err := r.Notifier.Notify(ctx, n)
		if d.opts.Metrics != nil {
			d.opts.Metrics.NotifySeconds.WithLabelValues(r.Name).Observe(time.Since(t0).Seconds())
		}
		if err == nil {
			d.count(r, "sent")
			log.Info("alert delivered", zap.Int("attempt", attempt))
			return "sent", true
		}
		if ctx.Err() != nil {
			return "", false
		}
		if permanent(err) {
			d.count(r, "failed")
			log.Error("alert delivery failed; not retried", zap.Int("attempt", attempt), zap.Error(err))
			return "failed", true
		}
		delay := wait + rand.N(wait/5+1)
		var de *DeliveryError
		if errors.As(err, &de) && de.RetryAfter > delay {
			delay = de.RetryAfter
		}
		if time.Since(start)+delay > b.GiveUpAfter {
			d.count(r, "failed")
			log.Error("alert delivery failed; gave up retrying", zap.Int("attempt", attempt),
				zap.Duration("retried_for", time.Since(start)), zap.Error(err))
			return "failed", true
		}
		d.count(r, "retried")
		log.Warn("alert delivery failed; retrying", zap.Int("attempt", attempt), zap.Duration("in", delay), zap.Error(err))
		if !sleep(ctx, delay) {
			return "", false
		}
		wait = min(2*wait, b.Max)
	}
}

func (d *Dispatcher) count(r Route, outcome string) {
	if d.opts.Metrics != nil {
		d.opts.Metrics.Notifications.WithLabelValues(r.Name, outcome).Inc()
	}
}

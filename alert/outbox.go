package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/breakwater/breakwater/metrics"
	"github.com/breakwater/breakwater/wire"
)

// raiseScript records one event unless its ID was raised before, and files
// it into the open group of its kind and severity, opening a new group (a
// stream entry due when the group window closes) when none is open.
//
// A trip records its incident and group under its scope; the resolve of the
// scope finds them there, removes the incident from the group's open set,
// and records which trip it resolves and whether that closed the group.
//
// Every key it touches is in KEYS, so the caller names the group the event
// goes to and the group a resolve ends before the call (see Outbox.raise);
// when either is not what the caller read, the script changes nothing and
// answers {'STALE', group, trip group} for the caller to call again.
//
// KEYS: 1 the seen key of the event, 2 the stream, 3 the open group of the
// kind and severity, 4 the group sequence, 5 the group's members, 6 its
// open incidents, 7 its resolve records, 8 the scope's trip record, 9 the
// open incidents of the group the trip went to.
// ARGV: 1 event JSON, 2 seen TTL ms, 3 group window ms, 4 retention ms,
// 5 kind, 6 scope, 7 incident, 8 severity, 9 event id, 10 stream max
// length, 11 the group, 12 the trip's group (” for none).
var raiseScript = redis.NewScript(`
local json, seen, window, keep = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local kind, scope, incident, sev, id, maxlen = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local g = redis.call('GET', KEYS[3])
local created = false
if not g then
  g = tostring(tonumber(redis.call('GET', KEYS[4]) or '0') + 1)
  created = true
end
local trip, inc, tg = nil, '', ''
if scope ~= '' and kind == 'resolved' then
  trip = redis.call('GET', KEYS[8])
  if trip then
    local tab = string.find(trip, '\t', 1, true)
    inc, tg = string.sub(trip, 1, tab - 1), string.sub(trip, tab + 1)
  end
end
if g ~= ARGV[11] or tg ~= ARGV[12] then
  return {'STALE', g, tg}
end
redis.call('SET', KEYS[1], '1', 'PX', seen)
if created then
  redis.call('SET', KEYS[4], g)
  if window > 0 then
    redis.call('SET', KEYS[3], g, 'PX', window)
  end
end
redis.call('RPUSH', KEYS[5], json)
redis.call('PEXPIRE', KEYS[5], keep)
if scope ~= '' then
  if kind == 'tripped' then
    redis.call('SET', KEYS[8], incident .. '\t' .. g, 'PX', keep)
    redis.call('SADD', KEYS[6], incident)
    redis.call('PEXPIRE', KEYS[6], keep)
  elseif kind == 'resolved' and trip then
    redis.call('DEL', KEYS[8])
    redis.call('SREM', KEYS[9], inc)
    local closed = '0'
    if redis.call('SCARD', KEYS[9]) == 0 then
      closed = '1'
    end
    redis.call('HSET', KEYS[7], id, inc .. '\t' .. tg .. '\t' .. closed)
    redis.call('PEXPIRE', KEYS[7], keep)
  end
end
if created then
  local t = redis.call('TIME')
  local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + window
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*',
    'group', g, 'kind', kind, 'severity', sev, 'due', string.format('%.0f', due))
end
return 1
`)

// OutboxOptions configure an Outbox.
type OutboxOptions struct {
	// Client is the Redis client; required.
	Client redis.UniversalClient
	// KeyPrefix is the hash tag of every key, without braces; required.
	KeyPrefix string
	// GroupWindow gathers the events of one kind and severity raised within
	// it into one notification; 0 sends each event on its own.
	GroupWindow time.Duration
	// Retention is how long event IDs are remembered (a second raise of the
	// same ID within it is dropped) and groups are kept; default 7 days.
	Retention time.Duration
	// MaxLen caps the stream length (approximately); default 10000.
	MaxLen int64
	// Metrics, if set, counts raised events.
	Metrics *metrics.Metrics
}

// Outbox raises events into the Redis stream that the delivery workers read.
type Outbox struct {
	rc   redis.UniversalClient
	keys wire.Keys
	opts OutboxOptions
}

// NewOutbox returns an outbox, or an error naming the bad option.
func NewOutbox(o OutboxOptions) (*Outbox, error) {
	switch {
	case o.Client == nil:
		return nil, errors.New("alert: OutboxOptions.Client is nil")
	case !validPrefix(o.KeyPrefix):
		return nil, fmt.Errorf("alert: OutboxOptions.KeyPrefix must be non-empty without braces or spaces, got %q", o.KeyPrefix)
	case o.GroupWindow < 0:
		return nil, fmt.Errorf("alert: OutboxOptions.GroupWindow must be >= 0, got %s", o.GroupWindow)
	case o.Retention < 0:
		return nil, fmt.Errorf("alert: OutboxOptions.Retention must be >= 0, got %s", o.Retention)
	}
	if o.Retention == 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	if o.MaxLen <= 0 {
		o.MaxLen = 10000
	}
	keys, _ := wire.NewKeys(o.KeyPrefix)
	return &Outbox{rc: o.Client, keys: keys, opts: o}, nil
}

// Keys returns the key layout the outbox writes under.
func (o *Outbox) Keys() wire.Keys { return o.keys }

func validPrefix(p string) bool { _, err := wire.NewKeys(p); return err == nil }

// Raise records events for delivery. It is one Redis call per event and
// never waits for a receiver. An event whose ID was raised within the
// retention is dropped, so raising the same transition from a redelivered
// batch or from two replicas notifies once. It returns how many events were
// new, and stops at the first error (the events before it are raised; a
// retry of the whole call raises the rest and drops the others).
func (o *Outbox) Raise(ctx context.Context, events ...Event) (int, error) {
	n := 0
	for _, e := range events {
		if err := e.Validate(); err != nil {
			return n, err
		}
		if e.Kind == KindAcknowledged && e.Scope != "" {
			// Acknowledge the page the trip was sent under: its group's key.
			trip, err := o.rc.Get(ctx, o.keys.AlertTrip(string(e.Scope))).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return n, fmt.Errorf("read the trip of %s: %w", e.Scope, err)
			}
			if inc, g, ok := strings.Cut(trip, "\t"); ok && inc == e.Incident {
				e.DedupKey = GroupDedupKey(o.opts.KeyPrefix + "/" + g)
			}
		}
		body, err := json.Marshal(e)
		if err != nil {
			return n, fmt.Errorf("encode alert event %q: %w", e.ID, err)
		}
		r, err := o.raise(ctx, e, body)
		if err != nil {
			return n, fmt.Errorf("raise alert event %q: %w", e.ID, err)
		}
		n += r
		if o.opts.Metrics != nil {
			result := "new"
			if r == 0 {
				result = "duplicate"
			}
			o.opts.Metrics.AlertsRaised.WithLabelValues(string(e.Kind), result).Inc()
		}
	}
	return n, nil
}

// raise runs raiseScript for one event: it reads the group the event would
// go to and the group its resolve ends, declares their keys, and calls
// again if another raise changed them in between.
func (o *Outbox) raise(ctx context.Context, e Event, body []byte) (int, error) {
	kind, sev, scope := string(e.Kind), string(e.Severity), string(e.Scope)
	var open, seq, trip *redis.StringCmd
	_, err := o.rc.Pipelined(ctx, func(p redis.Pipeliner) error {
		open = p.Get(ctx, o.keys.AlertOpen(kind, sev))
		seq = p.Get(ctx, o.keys.AlertSeq())
		trip = p.Get(ctx, o.keys.AlertTrip(scope))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	g := open.Val()
	if g == "" {
		n, _ := seq.Int64()
		g = strconv.FormatInt(n+1, 10)
	}
	tg := ""
	if _, t, ok := strings.Cut(trip.Val(), "\t"); ok && e.Kind == KindResolved && scope != "" {
		tg = t
	}
	for range 16 {
		keys := []string{
			o.keys.AlertSeen(e.ID), o.keys.AlertStream(), o.keys.AlertOpen(kind, sev), o.keys.AlertSeq(),
			o.keys.AlertMembers(g), o.keys.AlertGroupOpen(g), o.keys.AlertFix(g), o.keys.AlertTrip(scope), o.keys.AlertGroupOpen(tg),
		}
		v, err := raiseScript.Run(ctx, o.rc, keys,
			body, o.opts.Retention.Milliseconds(), o.opts.GroupWindow.Milliseconds(), o.opts.Retention.Milliseconds(),
			kind, scope, e.Incident, sev, e.ID, o.opts.MaxLen, g, tg).Result()
		if err != nil {
			return 0, err
		}
		if a, ok := v.([]any); ok && len(a) == 3 {
			g, _ = a[1].(string)
			tg, _ = a[2].(string)
			continue
		}
		n, ok := v.(int64)
		if !ok {
			return 0, fmt.Errorf("unexpected answer %v", v)
		}
		return int(n), nil
	}
	return 0, errors.New("the open alert group kept changing")
}

// jsonUnmarshal decodes a stored event.
func jsonUnmarshal(b []byte, e *Event) error { return json.Unmarshal(b, e) }

// Scripts returns the Lua scripts of the outbox and the dispatcher, for a
// check that they load on the configured Redis.
func Scripts() []*redis.Script { return []*redis.Script{raiseScript, sealScript} }

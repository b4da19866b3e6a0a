package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/breakwater/breakwater/metrics"
)

// raiseScript records one event unless its ID was raised before, and files
// it into the open group of its kind and severity, opening a new group (a
// stream entry due when the group window closes) when none is open.
//
// A trip records its incident and group under its scope; the resolve of the
// scope finds them there, removes the incident from the group's open set,
// and records which trip it resolves and whether that closed the group.
//
// KEYS[1] the seen key of the event, KEYS[2] the stream.
// ARGV: prefix, event JSON, seen TTL ms, group window ms, retention ms,
// kind, scope, incident, severity, event id, stream max length.
var raiseScript = redis.NewScript(`
local p, json, seen, window, keep = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local kind, scope, incident, sev, id, maxlen = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', seen) then
  return 0
end
local open = p .. 'open:' .. kind .. ':' .. sev
local g = redis.call('GET', open)
local created = false
if not g then
  g = tostring(redis.call('INCR', p .. 'seq'))
  created = true
  if window > 0 then
    redis.call('SET', open, g, 'PX', window)
  end
end
local members = p .. 'members:' .. g
redis.call('RPUSH', members, json)
redis.call('PEXPIRE', members, keep)
if scope ~= '' then
  local tk = p .. 'trip:' .. scope
  if kind == 'tripped' then
    redis.call('SET', tk, incident .. '\t' .. g, 'PX', keep)
    redis.call('SADD', p .. 'gopen:' .. g, incident)
    redis.call('PEXPIRE', p .. 'gopen:' .. g, keep)
  elseif kind == 'resolved' then
    local v = redis.call('GET', tk)
    if v then
      local tab = string.find(v, '\t', 1, true)
      local inc, tg = string.sub(v, 1, tab - 1), string.sub(v, tab + 1)
      redis.call('DEL', tk)
      redis.call('SREM', p .. 'gopen:' .. tg, inc)
      local closed = '0'
      if redis.call('SCARD', p .. 'gopen:' .. tg) == 0 then
        closed = '1'
      end
      redis.call('HSET', p .. 'fix:' .. g, id, inc .. '\t' .. tg .. '\t' .. closed)
      redis.call('PEXPIRE', p .. 'fix:' .. g, keep)
    end
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

// Keys names the Redis keys of the outbox. Every key starts with the
// hash-tagged prefix, so that a script touches one Redis Cluster slot.
type Keys struct {
	// Prefix is "{<key_prefix>}:alert:".
	Prefix string
}

// NewKeys returns the keys under the hash tag of keyPrefix (without braces).
func NewKeys(keyPrefix string) Keys { return Keys{Prefix: "{" + keyPrefix + "}:alert:"} }

// Stream is the outbox stream.
func (k Keys) Stream() string { return k.Prefix + "outbox" }

func (k Keys) seen(id string) string        { return k.Prefix + "seen:" + id }
func (k Keys) members(group string) string  { return k.Prefix + "members:" + group }
func (k Keys) fix(group string) string      { return k.Prefix + "fix:" + group }
func (k Keys) open(kind, sev string) string { return k.Prefix + "open:" + kind + ":" + sev }
func (k Keys) done(group, receiver string) string {
	return k.Prefix + "done:" + group + ":" + receiver
}

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
	keys Keys
	opts OutboxOptions
}

// NewOutbox returns an outbox, or an error naming the bad option.
func NewOutbox(o OutboxOptions) (*Outbox, error) {
	switch {
	case o.Client == nil:
		return nil, errors.New("alert: OutboxOptions.Client is nil")
	case o.KeyPrefix == "" || strings.ContainsAny(o.KeyPrefix, "{}"):
		return nil, fmt.Errorf("alert: OutboxOptions.KeyPrefix must be non-empty without braces, got %q", o.KeyPrefix)
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
	return &Outbox{rc: o.Client, keys: NewKeys(o.KeyPrefix), opts: o}, nil
}

// Keys returns the keys of the outbox.
func (o *Outbox) Keys() Keys { return o.keys }

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
		body, err := json.Marshal(e)
		if err != nil {
			return n, fmt.Errorf("encode alert event %q: %w", e.ID, err)
		}
		r, err := raiseScript.Run(ctx, o.rc, []string{o.keys.seen(e.ID), o.keys.Stream()},
			o.keys.Prefix, body, o.opts.Retention.Milliseconds(), o.opts.GroupWindow.Milliseconds(),
			o.opts.Retention.Milliseconds(), string(e.Kind), string(e.Scope), e.Incident, string(e.Severity),
			e.ID, o.opts.MaxLen).Int()
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

// jsonUnmarshal decodes a stored event.
func jsonUnmarshal(b []byte, e *Event) error { return json.Unmarshal(b, e) }

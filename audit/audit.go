// Package audit keeps the audit trail: every breaker transition, automatic
// or by an operator, and every review decision, with who, why, when and the
// state before and after.
//
// The audit topic is the durable record. Redis holds a capped index of the
// newest entries for queries; it is rebuilt from the topic when Redis lost
// its data, and every write to it is idempotent, so that a retried write or
// two replicas rebuilding at once never duplicate an entry.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/internal/partition"
	"github.com/breakwater/breakwater/wire"
)

// System is the actor of automatic transitions.
const System = "breakwater"

// The kinds of entries.
const (
	// KindTransition is an automatic breaker transition (trip, probation, close).
	KindTransition = "transition"
	// KindOverride is an operator setting a manual state.
	KindOverride = "override"
	// KindReset is an operator resetting a breaker into probation.
	KindReset = "reset"
	// KindApprove is a reviewer approving held actions.
	KindApprove = "approve"
	// KindReject is a reviewer rejecting held actions.
	KindReject = "reject"
	// KindRelease is approved or rejected actions written to their topic.
	KindRelease = "release"
	// KindApprovalRequest is a change that needs a second person asked for.
	KindApprovalRequest = "approval_request"
	// KindApprovalEdit is a request's payload replaced; it voids approvals.
	KindApprovalEdit = "approval_edit"
	// KindApprovalApprove is a request approved by a second person.
	KindApprovalApprove = "approval_approve"
	// KindApprovalRefuse is a request refused, or withdrawn by its requester.
	KindApprovalRefuse = "approval_refuse"
	// KindBreakGlass is a change that needs a second person applied by
	// its requester alone, with a reason; on-call is paged.
	KindBreakGlass = "break_glass"
	// KindAcknowledge is a person acknowledging an incident.
	KindAcknowledge = "acknowledge"
	// KindOwner is a person taking (or releasing) an incident.
	KindOwner = "owner"
	// KindNote is a note on an incident.
	KindNote = "note"
	// KindStanding is a standing decision set on an incident.
	KindStanding = "standing"
	// KindStandingRevoked is a standing decision revoked.
	KindStandingRevoked = "standing_revoked"
	// KindStandingEnded is a standing decision that stopped deciding:
	// its incident no longer holds and nothing of it is pending.
	KindStandingEnded = "standing_ended"
	// KindUndo is decisions put back to pending before their release.
	KindUndo = "undo"
	// KindReversalStart is a reversal started: its action ids, window and
	// people, the durable record it is rebuilt from.
	KindReversalStart = "reversal_start"
	// KindReversalDone is a reversal whose records are all written.
	KindReversalDone = "reversal_done"
)

// ViaStanding marks the decisions a standing decision made (Entry.Via).
const ViaStanding = "standing"

// ReleaseGroup is the Group of an incident's release entries: the trail
// shows them as one entry with its progress.
func ReleaseGroup(incident string) string { return "release/" + incident }

// step says how the index takes an entry: a row of its own (""), a step
// folded into its group's entry ("step": a decision of a standing
// decision), or a step that is also the row of its group when it is the
// group's first ("first": a batch of a release).
func step(e Entry) string {
	switch {
	case e.Group == "":
		return ""
	case e.Kind == KindApprove || e.Kind == KindReject:
		return "step"
	case e.Kind == KindRelease:
		return "first"
	}
	return ""
}

// groupOf returns the group an indexed entry shows the progress of.
func groupOf(e Entry) string {
	switch {
	case e.Kind == KindStanding:
		return e.ID
	case e.Kind == KindRelease:
		return e.Group
	}
	return ""
}

// Entry is one record of the audit trail: the entry as the admin API
// shows it, and the ids of the actions it covers.
type Entry struct {
	api.AuditEntry
	// IDs are the action ids of a review decision or a release: the
	// durable record the review index is rebuilt from. The API leaves
	// them out.
	IDs []string `json:"ids,omitempty"`
	// PayloadSHA256 is the hash of the payload an approval entry concerns.
	PayloadSHA256 string `json:"payload_sha256,omitempty"`
	// Since and Until bound the window of a reversal.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

// Query selects audit entries, newest first.
type Query struct {
	// Scope, if set, keeps only the entries of that breaker.
	Scope breaker.Scope
	// Since, if set, keeps only the entries at or after it.
	Since time.Time
	// Until, if set, keeps only the entries before it.
	Until time.Time
	// Actor and Kind, if set, keep only the entries of that actor and kind.
	Actor, Kind string
	// Incident, if set, keeps only the entries that name that incident.
	Incident string
	// Limit is the most entries returned; it must be positive.
	Limit int
}

// Options configure a Trail.
type Options struct {
	// Kafka and Topic locate the audit topic.
	Kafka *kafkaconn.Endpoint
	Topic string
	// WriteTimeout bounds one acknowledged write.
	WriteTimeout time.Duration
	// Redis holds the index.
	Redis redis.UniversalClient
	// Prefix is the hash tag of the index keys (the store's key prefix).
	Prefix string
	// IndexSize is how many of the newest entries the index keeps.
	IndexSize int
}

func (o Options) validate() error {
	switch {
	case o.Kafka == nil:
		return errors.New("audit: Options.Kafka is nil")
	case o.Topic == "":
		return errors.New("audit: Options.Topic is empty")
	case o.WriteTimeout <= 0:
		return errors.New("audit: Options.WriteTimeout must be positive")
	case o.Redis == nil:
		return errors.New("audit: Options.Redis is nil")
	case o.Prefix == "" || strings.ContainsAny(o.Prefix, "{} \t\n"):
		return fmt.Errorf("audit: Options.Prefix %q must be non-empty without braces or spaces", o.Prefix)
	case o.IndexSize < 1:
		return errors.New("audit: Options.IndexSize must be positive")
	}
	return nil
}

// Trail writes the audit topic and answers queries from the Redis index.
type Trail struct {
	opts    Options
	w       *kafka.Writer
	tr      *kafka.Transport
	keys    wire.Keys
	index   string
	built   string
	maxPage int64
}

// New returns a trail; Close releases its writer.
func New(opts Options) (*Trail, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	tr := opts.Kafka.Transport()
	keys, err := wire.NewKeys(opts.Prefix)
	if err != nil {
		return nil, fmt.Errorf("audit: Options.Prefix: %w", err)
	}
	return &Trail{
		opts: opts,
		tr:   tr,
		w: &kafka.Writer{
			Addr:         opts.Kafka.Addr(),
			Transport:    tr,
			Topic:        opts.Topic,
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 100 * time.Microsecond,
			WriteTimeout: opts.WriteTimeout,
			MaxAttempts:  5,
		},
		keys:    keys,
		index:   keys.Audit(),
		built:   keys.AuditBuilt(),
		maxPage: 500,
	}, nil
}

// Close flushes and closes the writer.
func (t *Trail) Close() error {
	err := t.w.Close()
	t.tr.CloseIdleConnections()
	return err
}

// NewID returns a random entry id.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// TransitionID is the entry id of a breaker transition: its scope and
// generation, so that writing the same transition twice indexes it once.
func TransitionID(scope breaker.Scope, gen uint64) string {
	return string(scope) + "#" + strconv.FormatUint(gen, 10)
}

// Write records entries on the audit topic, acknowledged by all in-sync
// replicas, then in the index. Entries without an ID get one.
func (t *Trail) Write(ctx context.Context, entries ...Entry) error {
	if len(entries) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(entries))
	for i := range entries {
		if entries[i].ID == "" {
			entries[i].ID = NewID()
		}
		v, err := json.Marshal(entries[i])
		if err != nil {
			return fmt.Errorf("encode audit entry: %w", err)
		}
		msgs[i] = kafka.Message{Key: []byte(entries[i].Scope), Value: v}
	}
	if err := t.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("write %d audit entries to %s: %w", len(msgs), t.opts.Topic, err)
	}
	if err := t.indexValues(ctx, msgs); err != nil {
		// The topic has them; the next rebuild puts them in the index.
		return fmt.Errorf("index %d audit entries: %w", len(msgs), err)
	}
	return nil
}

// Record writes the automatic transitions of a batch, actor System, at the
// time each one began.
func (t *Trail) Record(ctx context.Context, ts []breaker.Transition) error {
	entries := make([]Entry, len(ts))
	for i, tr := range ts {
		from, to := tr.From, tr.To
		entries[i] = Entry{AuditEntry: api.AuditEntry{
			ID: TransitionID(tr.Scope, tr.To.Generation), At: tr.To.Since, Actor: System, Kind: KindTransition,
			Scope: tr.Scope, Reason: tr.To.Reason, From: &from, To: &to, Window: tr.Counts.Window,
		}}
	}
	return t.Write(ctx, entries...)
}

// indexScript adds entries to the index and trims it. KEYS[1] is the
// index, then one group hash per entry that is a step (in order); ARGV[1]
// the index size, then five per entry: how it is taken (step), its score,
// the encoded entry, its id and count. A step is folded into its group's
// hash once (by id): count, steps, first and last; a "first" step is also
// the group's row if no other step is. ZADD of the same bytes and HSETNX
// of the same step are no-ops, which makes retries and rebuilds
// idempotent.
var indexScript = redis.NewScript(`
local k = 2
for i = 2, #ARGV, 5 do
  local how, score, member, id, count = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if how == '' then
    redis.call('ZADD', KEYS[1], score, member)
  else
    local g = KEYS[k]
    k = k + 1
    if redis.call('HSETNX', g, 's:' .. id, count) == 1 then
      redis.call('HINCRBY', g, 'count', count)
      redis.call('HINCRBY', g, 'steps', 1)
      local first, last = tonumber(redis.call('HGET', g, 'first')), tonumber(redis.call('HGET', g, 'last'))
      if not first or tonumber(score) < first then redis.call('HSET', g, 'first', score) end
      if not last or tonumber(score) > last then redis.call('HSET', g, 'last', score) end
    end
    if how == 'first' then
      local head = redis.call('HGET', g, 'head')
      if not head then
        redis.call('HSET', g, 'head', id)
        head = id
      end
      if head == id then redis.call('ZADD', KEYS[1], score, member) end
    end
  end
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[1]) - 1)
return 1
`)

// indexValues adds the encoded entries to the index and trims it; the
// steps of a group (Entry.Group) are folded into their group's entry.
func (t *Trail) indexValues(ctx context.Context, msgs []kafka.Message) error {
	keys := []string{t.index}
	args := []any{t.opts.IndexSize}
	for _, m := range msgs {
		var e Entry
		if err := json.Unmarshal(m.Value, &e); err != nil {
			continue // not an entry of ours; the topic keeps it
		}
		how := step(e)
		if how != "" {
			keys = append(keys, t.keys.AuditGroup(e.Group))
		}
		args = append(args, how, e.At.UnixMilli(), string(m.Value), e.ID, e.Count)
	}
	if len(args) == 1 {
		return nil
	}
	return indexScript.Run(ctx, t.opts.Redis, keys, args...).Err()
}

// progress fills in the Progress of the entries that show a group.
func (t *Trail) progress(ctx context.Context, es []Entry) error {
	var at []int
	var cmds []*redis.SliceCmd
	_, err := t.opts.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, e := range es {
			if g := groupOf(e); g != "" {
				at = append(at, i)
				cmds = append(cmds, p.HMGet(ctx, t.keys.AuditGroup(g), "count", "steps", "first", "last"))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the progress of %d audit entries: %w", len(at), err)
	}
	for k, i := range at {
		v := cmds[k].Val()
		num := func(j int) int64 {
			s, _ := v[j].(string)
			n, _ := strconv.ParseInt(s, 10, 64)
			return n
		}
		if num(1) == 0 {
			continue // no step yet
		}
		es[i].Progress = &api.AuditProgress{
			Count: int(num(0)), Steps: int(num(1)), First: time.UnixMilli(num(2)).UTC(), Last: time.UnixMilli(num(3)).UTC(),
		}
	}
	return nil
}

// Query returns the entries q selects, newest first. It rebuilds the index
// from the topic first if Redis lost it.
func (t *Trail) Query(ctx context.Context, q Query) ([]Entry, error) {
	if q.Limit < 1 {
		return nil, errors.New("audit: Query.Limit must be positive")
	}
	n, err := t.opts.Redis.Exists(ctx, t.built).Result()
	if err != nil {
		return nil, fmt.Errorf("read audit index: %w", err)
	}
	if n == 0 {
		if _, err := t.Rebuild(ctx); err != nil {
			return nil, err
		}
	}
	minScore := "-inf"
	if !q.Since.IsZero() {
		minScore = strconv.FormatInt(q.Since.UnixMilli(), 10)
	}
	maxScore := "+inf"
	if !q.Until.IsZero() {
		maxScore = "(" + strconv.FormatInt(q.Until.UnixMilli(), 10)
	}
	var out []Entry
	for offset := int64(0); len(out) < q.Limit; offset += t.maxPage {
		vals, err := t.opts.Redis.ZRevRangeByScore(ctx, t.index, &redis.ZRangeBy{
			Min: minScore, Max: maxScore, Offset: offset, Count: t.maxPage,
		}).Result()
		if err != nil {
			return nil, fmt.Errorf("read audit index: %w", err)
		}
		for _, v := range vals {
			var e Entry
			if err := json.Unmarshal([]byte(v), &e); err != nil {
				continue
			}
			if (q.Scope != "" && e.Scope != q.Scope) || (!q.Since.IsZero() && e.At.Before(q.Since)) ||
				(!q.Until.IsZero() && !e.At.Before(q.Until)) || (q.Actor != "" && e.Actor != q.Actor) || (q.Kind != "" && e.Kind != q.Kind) ||
				(q.Incident != "" && e.Incident != q.Incident) {
				continue
			}
			out = append(out, e)
			if len(out) == q.Limit {
				break
			}
		}
		if int64(len(vals)) < t.maxPage {
			break
		}
	}
	if err := t.progress(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Scan calls fn with every entry of the audit topic, partition by
// partition, in topic order; it stops at the first error fn returns.
func (t *Trail) Scan(ctx context.Context, fn func(Entry) error) error {
	return readTopic(ctx, t.opts.Kafka, t.opts.Topic, func(batch []kafka.Message) error {
		for _, m := range batch {
			var e Entry
			if err := json.Unmarshal(m.Value, &e); err != nil {
				continue
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// Rebuild reads the whole audit topic into the index and marks it built.
// It is safe to run from several replicas at once and beside writes.
func (t *Trail) Rebuild(ctx context.Context) (int, error) {
	n := 0
	err := readTopic(ctx, t.opts.Kafka, t.opts.Topic, func(batch []kafka.Message) error {
		n += len(batch)
		return t.indexValues(ctx, batch)
	})
	if err != nil {
		return 0, fmt.Errorf("rebuild the audit index from %s: %w", t.opts.Topic, err)
	}
	if err := t.opts.Redis.Set(ctx, t.built, "1", 0).Err(); err != nil {
		return 0, fmt.Errorf("mark the audit index built: %w", err)
	}
	return n, nil
}

// readTopic calls fn with the messages of every partition of topic, from
// the first offset to the end offset it had when the read began, in
// batches; tombstones are left out.
func readTopic(ctx context.Context, k *kafkaconn.Endpoint, topic string, fn func([]kafka.Message) error) error {
	parts, err := partition.List(ctx, k, topic)
	if err != nil {
		return err
	}
	for _, p := range parts {
		err := partition.Read(ctx, k, topic, p, 0, partition.End, func(msgs []kafka.Message, _, _ int64) error {
			batch := msgs[:0:0]
			for _, m := range msgs {
				if m.Value != nil {
					batch = append(batch, m)
				}
			}
			if len(batch) == 0 {
				return nil
			}
			return fn(batch)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Package review keeps the held actions reviewers work on: an index of the
// held topic in Redis, grouped into incidents (one per breaker trip), that
// reviewers list and filter.
//
// The held topic is the durable record. The index remembers, per partition,
// the next offset it has to read; when Redis loses its data those offsets go
// too and the index is rebuilt from the start of the topic. Indexing a batch
// is one script call that skips offsets already indexed, so replicas can
// index at once without duplicating anything, and an action held twice (a
// redelivery) is indexed once, under its action_id.
package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/event"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/internal/partition"
	"github.com/breakwater/breakwater/wire"
)

// Status is where a held action is in its review: the string of api.Held's
// status (an alias, so that the two are one type).
type Status = string

// The statuses.
const (
	// Pending waits for a reviewer.
	Pending Status = "pending"
	// Approved was approved for enforcement.
	Approved Status = "approved"
	// Rejected will never be enforced.
	Rejected Status = "rejected"
)

// Held is one held action as the index knows it: the admin API's held
// action (api.Held, the one definition of its fields; the index leaves the
// rule's description and the target's link to the API) and what only the
// index needs.
type Held struct {
	api.Held
	// key is the Kafka key (the target), for per-key order.
	key string
	// undoUntil is when a single decision's undo grace ends.
	undoUntil time.Time
	// seq numbers the action within its incident, from 1, in the order
	// the index took it in; 0 for actions indexed before it was kept.
	seq int64
}

// Incident is the held actions of one trip and their review progress, as
// the admin API shows it.
type Incident = api.Incident

// Filter selects held actions; empty fields match everything.
type Filter struct {
	Incident     string
	Scope        string
	Action       string
	ModelVersion string
	Region       string
}

// Page is one page of held actions in held order.
type Page struct {
	// Items are the held actions.
	Items []Held `json:"items"`
	// Next is the cursor of the next page, "" after the last.
	Next string `json:"next_cursor,omitempty"`
}

// Options configure an Index.
type Options struct {
	// Kafka and Topic locate the held topic.
	Kafka *kafkaconn.Endpoint
	Topic string
	// Redis holds the index; Prefix is the hash tag of its keys.
	Redis  redis.UniversalClient
	Prefix string
	// Poll is how often the held topic is read for new actions.
	Poll time.Duration
	// Logger logs indexing failures.
	Logger *zap.Logger
	// Journal is the durable record of decisions and releases (the audit
	// trail); the index is rebuilt from it and the held topic.
	Journal Journal
	// States reads the breakers' states, for the incidents' lifecycle: an
	// incident is active while its breaker holds under its generation.
	States StatusReader
	// UndoGrace keeps a decision on a single action from being released
	// for this long, so that the reviewer can undo it (a sample decision
	// made by mistake); bulk decisions are released at once. 0 is none.
	UndoGrace time.Duration
	// ContinueWithin links an incident to the previous incident of its
	// breaker when it began holding within this long of the last action
	// that one held (a re-trip soon after a reset); 0 never links.
	ContinueWithin time.Duration
}

// StatusReader reads a breaker's status (store.Redis and store.Memory).
type StatusReader interface {
	Status(ctx context.Context, scope breaker.Scope) (breaker.Status, error)
}

// Journal is the durable record of review decisions (audit.Trail).
type Journal interface {
	Write(ctx context.Context, entries ...audit.Entry) error
	Scan(ctx context.Context, fn func(audit.Entry) error) error
}

func (o Options) validate() error {
	switch {
	case o.Kafka == nil:
		return errors.New("review: Options.Kafka is nil")
	case o.Topic == "":
		return errors.New("review: Options.Topic is empty")
	case o.Redis == nil:
		return errors.New("review: Options.Redis is nil")
	case !validPrefix(o.Prefix):
		return fmt.Errorf("review: Options.Prefix %q must be non-empty without braces or spaces", o.Prefix)
	case o.Poll <= 0:
		return errors.New("review: Options.Poll must be positive")
	case o.Logger == nil:
		return errors.New("review: Options.Logger is nil")
	case o.Journal == nil:
		return errors.New("review: Options.Journal is nil")
	case o.States == nil:
		return errors.New("review: Options.States is nil")
	case o.ContinueWithin < 0:
		return errors.New("review: Options.ContinueWithin must not be negative")
	}
	return nil
}

// Index is the Redis index of the held topic.
type Index struct {
	opts   Options
	keys   wire.Keys
	tr     *kafka.Transport
	client *kafka.Client
}

// NewIndex returns an index; Run keeps it up to date.
func NewIndex(opts Options) (*Index, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	tr := opts.Kafka.Transport()
	keys, _ := wire.NewKeys(opts.Prefix)
	return &Index{
		opts: opts, keys: keys, tr: tr,
		client: opts.Kafka.Client(tr, 10*time.Second),
	}, nil
}

// Close releases the index's idle Kafka connections.
func (x *Index) Close() { x.tr.CloseIdleConnections() }

// ends returns the end offset of each partition, in one request per broker.
func (x *Index) ends(ctx context.Context, parts []int) (map[int]int64, error) {
	req := make([]kafka.OffsetRequest, len(parts))
	for i, p := range parts {
		req[i] = kafka.LastOffsetOf(p)
	}
	resp, err := x.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{x.opts.Topic: req}})
	if err != nil {
		return nil, fmt.Errorf("list the end offsets of %s: %w", x.opts.Topic, err)
	}
	out := map[int]int64{}
	for _, po := range resp.Topics[x.opts.Topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list the end offset of %s/%d: %w", x.opts.Topic, po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	return out, nil
}

func validPrefix(p string) bool { _, err := wire.NewKeys(p); return err == nil }

func (x *Index) offsetsKey() string             { return x.keys.HeldNext() }
func (x *Index) readyKey() string               { return x.keys.HeldReady() }
func (x *Index) actionKey(id string) string     { return x.keys.HeldAction(id) }
func (x *Index) allKey() string                 { return x.keys.HeldAll() }
func (x *Index) incidentsKey() string           { return x.keys.HeldIncidents() }
func (x *Index) incidentKey(id string) string   { return x.keys.HeldIncident(id) }
func (x *Index) incidentItems(id string) string { return x.keys.HeldIncidentItems(id) }

// position orders held actions: partition, then offset. Partitions below
// 4096 and offsets below 2^40 fit exactly in a float64 score.
func position(partition int, offset int64) float64 {
	return float64(int64(partition)<<40 | offset)
}

// Run indexes the held topic every Poll until ctx ends.
func (x *Index) Run(ctx context.Context) {
	t := time.NewTicker(x.opts.Poll)
	defer t.Stop()
	for {
		if _, err := x.Sync(ctx); err != nil && ctx.Err() == nil {
			x.opts.Logger.Warn("index the held topic", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ErrNotReady is returned for a decision while the index is rebuilt.
var ErrNotReady = errors.New("the review index is being rebuilt after Redis lost its data; retry shortly")

// Ready reports whether the index is complete: built from the held topic
// and the journal since Redis last lost its data.
func (x *Index) Ready(ctx context.Context) (bool, error) {
	n, err := x.opts.Redis.Exists(ctx, x.readyKey()).Result()
	if err != nil {
		return false, fmt.Errorf("read the review index marker: %w", err)
	}
	return n == 1, nil
}

// Sync indexes everything on the held topic up to its current end and
// returns how many messages it read. When Redis lost the index (or on the
// very first start) it rebuilds it: the whole held topic, then every
// decision and release of the journal, in order; decisions and releases
// wait until then.
func (x *Index) Sync(ctx context.Context) (int, error) {
	ready, err := x.Ready(ctx)
	if err != nil {
		return 0, err
	}
	if ready {
		return x.sync(ctx, false)
	}
	n, err := x.sync(ctx, true)
	if err != nil {
		return n, err
	}
	if err := x.replay(ctx); err != nil {
		return n, err
	}
	if err := x.opts.Redis.Set(ctx, x.readyKey(), "1", 0).Err(); err != nil {
		return n, fmt.Errorf("mark the review index ready: %w", err)
	}
	x.opts.Logger.Info("review index built from the held topic and the journal", zap.Int("held_records", n))
	return n, nil
}

// replay applies the journal's decisions and releases, oldest first. Both
// are idempotent, so a replay beside another replica's changes nothing twice.
func (x *Index) replay(ctx context.Context) error {
	var es []audit.Entry
	err := x.opts.Journal.Scan(ctx, func(e audit.Entry) error {
		switch {
		case len(e.IDs) > 0 && (e.Kind == audit.KindApprove || e.Kind == audit.KindReject || e.Kind == audit.KindRelease || e.Kind == audit.KindUndo):
			es = append(es, e)
		case e.Incident != "" && incidentKinds[e.Kind]:
			es = append(es, e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the review journal: %w", err)
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].At.Before(es[j].At) })
	for _, e := range es {
		switch e.Kind {
		case audit.KindApprove, audit.KindReject:
			to := Approved
			if e.Kind == audit.KindReject {
				to = Rejected
			}
			_, err = x.apply(ctx, e.IDs, to, e.Actor, e.Via == audit.ViaStanding, e.At)
		case audit.KindRelease:
			err = x.markReleased(ctx, e.IDs)
		case audit.KindUndo:
			_, err = x.undo(ctx, e.IDs)
		default:
			err = x.applyChange(ctx, e)
		}
		if err != nil {
			return fmt.Errorf("replay the review journal: %w", err)
		}
	}
	return nil
}

func (x *Index) sync(ctx context.Context, rebuild bool) (int, error) {
	parts, err := partition.List(ctx, x.opts.Kafka, x.opts.Topic)
	if err != nil {
		return 0, err
	}
	next, err := x.opts.Redis.HGetAll(ctx, x.offsetsKey()).Result()
	if err != nil {
		return 0, fmt.Errorf("read the held index offsets: %w", err)
	}
	var ends map[int]int64
	if !rebuild {
		// Only partitions with something new are read.
		if ends, err = x.ends(ctx, parts); err != nil {
			return 0, err
		}
	}
	n := 0
	for _, p := range parts {
		from := int64(0)
		if v, ok := next[strconv.Itoa(p)]; ok && !rebuild {
			from, _ = strconv.ParseInt(v, 10, 64)
		}
		if end, ok := ends[p]; ok && end <= from {
			continue
		}
		k, err := x.syncPartition(ctx, p, from, rebuild)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (x *Index) syncPartition(ctx context.Context, p int, from int64, rebuild bool) (int, error) {
	n := 0
	err := partition.Read(ctx, x.opts.Kafka, x.opts.Topic, p, from, partition.End, func(msgs []kafka.Message, start, next int64) error {
		if err := x.index(ctx, p, start, next, msgs, rebuild); err != nil {
			return err
		}
		n += len(msgs)
		return nil
	})
	return n, err
}

// indexScript indexes the held actions of one partition's offsets
// [ARGV[2], ARGV[3]) unless another replica already did: it skips offsets
// below the partition's next offset (all offsets in a rebuild, ARGV[5] =
// 1) and action ids already indexed, then moves the next offset forward.
// ARGV[4] is the number of arguments per action. KEYS[1..3] are the next
// offsets, every held action and the incidents; then per action (in the
// order of its arguments): its hash, its key's set, its incident's items,
// its incident and its target's actions.
var indexScript = redis.NewScript(`
local nextKey, allKey, incsKey = KEYS[1], KEYS[2], KEYS[3]
local p, from, to, width = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local next = tonumber(redis.call('HGET', nextKey, p) or '0')
if ARGV[5] == '1' then next = 0 end
if next >= to then return 0 end
local added = 0
local k = 4
for i = 6, #ARGV, width do
  local akey, kkey, iikey, ikey, tkey = KEYS[k], KEYS[k+1], KEYS[k+2], KEYS[k+3], KEYS[k+4]
  k = k + 5
  local off = tonumber(ARGV[i])
  local id, pos, heldAt = ARGV[i+1], ARGV[i+2], ARGV[i+3]
  if off >= next then
    if redis.call('EXISTS', akey) == 0 then
      local fields = {'status', 'pending', 'pos', pos}
      for j = i + 4, i + width - 1, 2 do
        fields[#fields+1] = ARGV[j]
        fields[#fields+1] = ARGV[j+1]
      end
      redis.call('HSET', akey, unpack(fields))
      redis.call('ZADD', allKey, pos, id)
      redis.call('ZADD', kkey, pos, id)
      redis.call('ZADD', iikey, pos, id)
      redis.call('ZADD', tkey, heldAt, id)
      if redis.call('EXISTS', ikey) == 0 then
        redis.call('HSET', ikey, 'first_held_at', heldAt)
        redis.call('ZADD', incsKey, heldAt, redis.call('HGET', akey, 'incident'))
      end
      redis.call('HSET', ikey, 'last_held_at', heldAt)
      redis.call('HSET', akey, 'seq', redis.call('HINCRBY', ikey, 'held', 1))
      redis.call('HINCRBY', ikey, 'pending', 1)
      added = added + 1
    end
  end
end
if tonumber(redis.call('HGET', nextKey, p) or '0') < to then
  redis.call('HSET', nextKey, p, to)
end
return added
`)

// heldFields are the fields of an action hash after its status, in order.
var heldFields = []string{
	"incident", "scope", "rule_id", "action", "target_type", "target_id", "model_version",
	"region", "occurred_at", "held_at", "partition", "offset", "source", "key", "model_name", "confidence", "hold_reason",
}

// index writes one read batch of partition p covering offsets [from, to).
func (x *Index) index(ctx context.Context, p int, from, to int64, batch []kafka.Message, rebuild bool) error {
	width := 4 + 2*len(heldFields)
	mode := "0"
	if rebuild {
		mode = "1"
	}
	args := []any{strconv.Itoa(p), from, to, width, mode}
	keys := []string{x.offsetsKey(), x.allKey(), x.incidentsKey()}
	for _, m := range batch {
		h, ok := heldOf(m)
		if !ok {
			continue // not a schema v1 action: the pipeline never holds those
		}
		heldAt := strconv.FormatInt(m.Time.UnixMilli(), 10)
		args = append(args, m.Offset, h.ActionID, position(p, m.Offset), heldAt)
		keys = append(keys, x.actionKey(h.ActionID), x.keys.HeldByKey(string(m.Key)), x.incidentItems(h.Incident), x.incidentKey(h.Incident),
			x.keys.HeldByTarget(h.TargetType, h.TargetID))
		conf := ""
		if h.Confidence != nil {
			conf = strconv.FormatFloat(*h.Confidence, 'g', -1, 64)
		}
		vals := []string{
			h.Incident, h.Scope, h.Rule, h.Action, h.TargetType, h.TargetID, h.ModelVersion, h.Region,
			h.OccurredAt.UTC().Format(time.RFC3339Nano), heldAt, strconv.Itoa(p), strconv.FormatInt(m.Offset, 10), h.Source, string(m.Key),
			h.ModelName, conf, h.HoldReason,
		}
		for i, f := range heldFields {
			args = append(args, f, vals[i])
		}
	}
	if err := indexScript.Run(ctx, x.opts.Redis, keys, args...).Err(); err != nil {
		return fmt.Errorf("index %s/%d offsets %d..%d: %w", x.opts.Topic, p, from, to-1, err)
	}
	return nil
}

// heldOf reads a held message.
func heldOf(m kafka.Message) (Held, bool) {
	a, err := event.Decode(m.Value)
	if err != nil {
		return Held{}, false
	}
	h := Held{Held: api.Held{
		ActionID: a.ActionID, Rule: a.RuleID, Action: a.Action, TargetType: a.TargetType, TargetID: a.TargetID,
		ModelName: a.ModelName, ModelVersion: a.ModelVersion, Region: a.Region, OccurredAt: a.OccurredAt, HeldAt: m.Time,
		Partition: m.Partition, Offset: m.Offset, Status: Pending, Confidence: confidenceOf(m.Value),
	}}
	for _, hd := range m.Headers {
		switch hd.Key {
		case wire.HeaderScope:
			h.Scope = string(hd.Value)
		case wire.HeaderIncident:
			h.Incident = string(hd.Value)
		case wire.HeaderSource:
			h.Source = string(hd.Value)
		case wire.HeaderReason:
			h.HoldReason = string(hd.Value)
		}
	}
	if h.Incident == "" {
		// Held without a trip (the outage policy hold): one group per scope.
		h.Incident = h.Scope + "@0"
	}
	return h, true
}

// confidenceOf reads the optional confidence of an event (a number from 0
// to 1 by convention; any finite number is kept), or nil. The pipeline's
// decoder does not read it: only the review index, for reviewers, does.
func confidenceOf(value []byte) *float64 {
	var v struct {
		Confidence *float64 `json:"confidence"`
	}
	if json.Unmarshal(value, &v) != nil || v.Confidence == nil || math.IsNaN(*v.Confidence) || math.IsInf(*v.Confidence, 0) {
		return nil
	}
	return v.Confidence
}

// ErrNotFound is returned for an incident or action the index does not know.
var ErrNotFound = errors.New("not found")

// pageSize is how many ids one Redis call reads while filtering.
const pageSize = 500

// List returns up to limit held actions that f selects, in held order,
// starting after cursor ("" for the first page).
func (x *Index) List(ctx context.Context, f Filter, cursor string, limit int) (Page, error) {
	if limit < 1 {
		return Page{}, errors.New("review: limit must be positive")
	}
	min := "-inf"
	if cursor != "" {
		c, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || c < 0 {
			return Page{}, fmt.Errorf("cursor: want the next_cursor of an earlier page, got %q", cursor)
		}
		min = "(" + strconv.FormatInt(c, 10)
	}
	key := x.allKey()
	if f.Incident != "" {
		key = x.incidentItems(f.Incident)
	}
	var page Page
	var lastPos float64 = -1
	for {
		zs, err := x.opts.Redis.ZRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Min: min, Max: "+inf", Count: pageSize}).Result()
		if err != nil {
			return Page{}, fmt.Errorf("list held actions: %w", err)
		}
		ids := make([]string, len(zs))
		for i, z := range zs {
			ids[i] = z.Member.(string)
		}
		hs, err := x.getMany(ctx, ids)
		if err != nil {
			return Page{}, err
		}
		for i, z := range zs {
			lastPos = z.Score
			h := hs[i]
			if !f.match(h) {
				continue
			}
			page.Items = append(page.Items, h)
			if len(page.Items) == limit {
				page.Next = strconv.FormatInt(int64(z.Score), 10)
				return page, nil
			}
		}
		if len(zs) < pageSize {
			return page, nil
		}
		min = "(" + strconv.FormatFloat(lastPos, 'f', 0, 64)
		if lastPos >= math.MaxInt64 {
			return page, nil
		}
	}
}

func (f Filter) match(h Held) bool {
	return (f.Incident == "" || h.Incident == f.Incident) && (f.Scope == "" || h.Scope == f.Scope) &&
		(f.Action == "" || h.Action == f.Action) && (f.ModelVersion == "" || h.ModelVersion == f.ModelVersion) &&
		(f.Region == "" || h.Region == f.Region)
}

// Get returns one held action.
func (x *Index) Get(ctx context.Context, actionID string) (Held, error) { return x.get(ctx, actionID) }

func (x *Index) get(ctx context.Context, id string) (Held, error) {
	m, err := x.opts.Redis.HGetAll(ctx, x.actionKey(id)).Result()
	if err != nil {
		return Held{}, fmt.Errorf("read held action %s: %w", id, err)
	}
	if len(m) == 0 {
		return Held{}, fmt.Errorf("held action %q: %w", id, ErrNotFound)
	}
	return heldFromFields(id, m), nil
}

// getMany reads the held actions ids in one round trip.
func (x *Index) getMany(ctx context.Context, ids []string) ([]Held, error) {
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err := x.opts.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, x.actionKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %d held actions: %w", len(ids), err)
	}
	out := make([]Held, len(ids))
	for i, c := range cmds {
		out[i] = heldFromFields(ids[i], c.Val())
	}
	return out, nil
}

// heldFromFields decodes an action hash.
func heldFromFields(id string, m map[string]string) Held {
	num := func(k string) int64 { v, _ := strconv.ParseInt(m[k], 10, 64); return v }
	occ, _ := time.Parse(time.RFC3339Nano, m["occurred_at"])
	h := Held{
		Held: api.Held{
			ActionID: id, Incident: m["incident"], Scope: m["scope"], Rule: m["rule_id"], Action: m["action"],
			TargetType: m["target_type"], TargetID: m["target_id"], ModelVersion: m["model_version"], Region: m["region"],
			OccurredAt: occ, HeldAt: time.UnixMilli(num("held_at")).UTC(), Partition: int(num("partition")), Offset: num("offset"),
			Source: m["source"], Status: m["status"], Reviewer: m["reviewer"], Released: m["released"] == "1",
			ModelName: m["model_name"], Confidence: parseConfidence(m["confidence"]), HoldReason: m["hold_reason"],
			Via: m["via"],
		},
		key: m["key"], seq: num("seq"), undoUntil: time.UnixMilli(num("undo_until")),
	}
	if m["decided_at"] != "" {
		h.DecidedAt = time.UnixMilli(num("decided_at")).UTC()
	}
	return h
}

// Scripts returns the Lua scripts of the review index and the releaser,
// for a check that they load on the configured Redis.
func Scripts() []*redis.Script {
	return []*redis.Script{indexScript, decideScript, leaseScript, markScript, releasedScript, setInflightScript, undoScript}
}

func parseConfidence(v string) *float64 {
	if v == "" {
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return nil
	}
	return &f
}

// Related returns up to limit other held actions on the target of the
// held action id, in any incident, newest first: what else the classifier
// did to that account or pin.
func (x *Index) Related(ctx context.Context, id string, limit int) ([]Held, error) {
	h, err := x.get(ctx, id)
	if err != nil {
		return nil, err
	}
	ids, err := x.opts.Redis.ZRevRange(ctx, x.keys.HeldByTarget(h.TargetType, h.TargetID), 0, int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("list the held actions of %s:%s: %w", h.TargetType, h.TargetID, err)
	}
	others := ids[:0]
	for _, o := range ids {
		if o != id {
			others = append(others, o)
		}
	}
	hs, err := x.getMany(ctx, others[:min(limit, len(others))])
	if err != nil {
		return nil, err
	}
	return hs, nil
}

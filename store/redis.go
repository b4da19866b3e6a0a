package store

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/wire"
)

//go:embed decide.lua
var decideLua string

var decideScript = redis.NewScript(decideLua)

// The argument layout of decide.lua, passed to it with every call (see the
// script's header), so that the script reads the layout Go writes.
const (
	// decideHead is the number of arguments before the partitions.
	decideHead = 14
	// decidePartition is the number of arguments per partition.
	decidePartition = 3
	// decideScope is the number of arguments per scope before its buckets.
	decideScope = 30
	// decideBucket is the number of arguments per bucket before its Via,
	// of which a call sends as many as its widest bucket needs.
	decideBucket = 3
	// decideReply is the number of reply fields per scope.
	decideReply = 22
)

// casScript writes a status only if the breaker's generation is still the
// one the caller read: operator changes are decided in Go, applied atomically.
var casScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[3]) == 0 then return -1 end
local g = redis.call('HGET', KEYS[1], 'g')
if (g or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('SADD', KEYS[2], ARGV[2])
return 1
`)

// restoreScript puts back statuses from the durable record where Redis has
// an older generation (or none), then marks the store as restored.
var restoreScript = redis.NewScript(`
local n = 0
local i = 2
for k = 3, #KEYS do
  local scope, gen = ARGV[i], tonumber(ARGV[i + 1])
  local g = tonumber(redis.call('HGET', KEYS[k], 'g') or '0')
  if g < gen then
    redis.call('HSET', KEYS[k], unpack(ARGV, i + 2, i + 25))
    redis.call('SADD', KEYS[2], scope)
    n = n + 1
  end
  i = i + 26
end
redis.call('SET', KEYS[1], ARGV[1])
return n
`)

// rebuildScript writes records rebuilt from the output topics into the
// records of one partition (KEYS[1]) and lowers the partition's floor to
// ARGV[1]. ARGV[2] is the records' TTL, then pairs of first offset and
// 'last|payload'. A record already there that starts at the same offset is
// kept unless the rebuilt one reaches further: both hold first decisions,
// so where they overlap they agree.
var rebuildScript = redis.NewScript(`
for i = 3, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  local last = tonumber(string.sub(ARGV[i + 1], 1, string.find(ARGV[i + 1], '|', 1, true) - 1))
  if not cur or tonumber(string.sub(cur, 1, string.find(cur, '|', 1, true) - 1)) < last then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
local fl = redis.call('HGET', KEYS[1], 'floor')
if not fl or tonumber(ARGV[1]) < tonumber(fl) then
  redis.call('HSET', KEYS[1], 'floor', ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// RedisOptions configures a Redis store.
type RedisOptions struct {
	// Prefix is the hash tag of every key; all keys share one cluster slot so
	// that one script can decide a whole batch.
	Prefix string
	// RecordTTL bounds how long the decisions of a batch are kept for
	// redeliveries; they are dropped earlier once their offsets are committed.
	RecordTTL time.Duration
	// MinReplicas, when above 0, is how many replicas must acknowledge a
	// write of the store (a batch's decision, an operator's change, a
	// restore, rebuilt records) before the caller acts on it: the write
	// and a WAIT go on one connection, and fewer acknowledgements within
	// ReplicaTimeout fail the call with ErrNotReplicated. 0 does not wait.
	MinReplicas int
	// ReplicaTimeout bounds the wait for the replicas; required when
	// MinReplicas is above 0. It must be shorter than the client's read
	// timeout, which bounds the whole round trip.
	ReplicaTimeout time.Duration
}

func (o RedisOptions) validate() error {
	if _, err := wire.NewKeys(o.Prefix); err != nil {
		return fmt.Errorf("store: Prefix: %w", err)
	}
	if o.RecordTTL < time.Minute {
		return fmt.Errorf("store: RecordTTL %s must be at least 1m", o.RecordTTL)
	}
	if o.MinReplicas < 0 {
		return fmt.Errorf("store: MinReplicas %d must be >= 0", o.MinReplicas)
	}
	if o.MinReplicas > 0 && o.ReplicaTimeout < time.Millisecond {
		return fmt.Errorf("store: ReplicaTimeout %s must be at least 1ms when MinReplicas is %d", o.ReplicaTimeout, o.MinReplicas)
	}
	return nil
}

// ErrNotReplicated reports a write that fewer replicas than
// RedisOptions.MinReplicas acknowledged in time. The write may have been
// applied on the primary, and a failover may lose it: the caller must not
// act on it (the pipeline treats it as a store outage and retries).
var ErrNotReplicated = errors.New("write not acknowledged by enough replicas")

// run runs script like Script.Run and, with MinReplicas set, waits until
// that many replicas acknowledged it: the script, an increment of the
// Replicated counter (so that the wait covers every earlier write of the
// primary even when the script wrote nothing) and WAIT go in one pipeline,
// on one connection to the primary that holds the hash tag's slot.
func (r *Redis) run(ctx context.Context, script *redis.Script, keys []string, args ...any) (*redis.Cmd, error) {
	if r.opts.MinReplicas == 0 {
		cmd := script.Run(ctx, r.client, keys, args...)
		return cmd, cmd.Err()
	}
	var c redis.Cmdable = r.client
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		// WAIT has no key: send it to the node of the slot the script ran on.
		node, err := cc.MasterForKey(ctx, r.epochKey())
		if err != nil {
			return nil, fmt.Errorf("find the primary of %s: %w", r.keys.Tag(), err)
		}
		c = node
	}
	for _, load := range []bool{false, true} {
		p := c.Pipeline()
		var cmd *redis.Cmd
		if load {
			cmd = script.Eval(ctx, p, keys, args...)
		} else {
			cmd = script.EvalSha(ctx, p, keys, args...)
		}
		p.Incr(ctx, r.keys.Replicated())
		wait := p.Do(ctx, "wait", r.opts.MinReplicas, r.opts.ReplicaTimeout.Milliseconds())
		_, _ = p.Exec(ctx)
		if err := cmd.Err(); err != nil {
			if !load && redis.HasErrorPrefix(err, "NOSCRIPT") {
				continue
			}
			return cmd, err
		}
		n, err := wait.Int64()
		if err != nil {
			return nil, fmt.Errorf("wait for %d replicas: %w", r.opts.MinReplicas, err)
		}
		if n < int64(r.opts.MinReplicas) {
			return nil, fmt.Errorf("%w: %d of %d acknowledged within %s", ErrNotReplicated, n, r.opts.MinReplicas, r.opts.ReplicaTimeout)
		}
		return cmd, nil
	}
	panic("unreachable")
}

// Redis is the shared store of the live daemon.
type Redis struct {
	client redis.UniversalClient
	opts   RedisOptions
	keys   wire.Keys
}

// NewRedis returns a store on client.
func NewRedis(client redis.UniversalClient, opts RedisOptions) (*Redis, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	keys, _ := wire.NewKeys(opts.Prefix)
	return &Redis{client: client, opts: opts, keys: keys}, nil
}

func (r *Redis) epochKey() string                 { return r.keys.Epoch() }
func (r *Redis) scopesKey() string                { return r.keys.Scopes() }
func (r *Redis) statusKey(s breaker.Scope) string { return r.keys.Status(string(s)) }
func (r *Redis) ringKey(s breaker.Scope) string   { return r.keys.Ring(string(s)) }
func (r *Redis) evidenceKey(s breaker.Scope) string {
	return r.keys.Evidence(string(s))
}
func (r *Redis) recordKey(topic string, p int) string {
	return r.keys.Records(topic, p)
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Decide counts a batch and decides its breakers in one script call.
func (r *Redis) Decide(ctx context.Context, b decide.Batch) (decide.Result, error) {
	if err := b.Validate(); err != nil {
		return decide.Result{}, err
	}
	keys := make([]string, 0, 2+len(b.Partitions)+3*len(b.Scopes))
	keys = append(keys, r.epochKey(), r.scopesKey())
	// via is how many of each bucket's Via the call sends: the most any
	// bucket uses (the nonzero ones come first).
	via := 0
	for _, s := range b.Scopes {
		for _, bk := range s.Buckets {
			for via < len(bk.Via) && bk.Via[via] != 0 {
				via++
			}
		}
	}
	nargs := decideHead + decidePartition*len(b.Partitions)
	for _, s := range b.Scopes {
		nargs += decideScope + (decideBucket+via)*len(s.Buckets)
	}
	args := make([]any, 0, nargs)
	ringTTL := int64(0)
	for _, s := range b.Scopes {
		g := s.Policy.Grid()
		ringTTL = max(ringTTL, 2*(g.CoarseRing()*g.Coarse+g.Window))
	}
	args = append(args, len(b.Partitions), len(b.Scopes), r.opts.RecordTTL.Milliseconds(), ringTTL+60_000,
		breaker.FineSlots, breaker.CoarseSlots, breaker.GraceSlots, breaker.FineRing,
		decideHead, decidePartition, decideScope, b.Reference, decideBucket+via, fmtFloat(breaker.ReleaseMargin))
	for _, p := range b.Partitions {
		keys = append(keys, r.recordKey(p.Topic, p.Partition))
		args = append(args, p.First, p.Last, p.Committed)
	}
	for _, s := range b.Scopes {
		keys = append(keys, r.statusKey(s.Scope), r.ringKey(s.Scope), r.evidenceKey(s.Scope))
		g := s.Policy.Grid()
		p := s.Policy
		args = append(args, string(s.Scope), g.Fine, g.Coarse, g.Window,
			fmtFloat(p.MaxActions), fmtFloat(p.Factor), fmtFloat(p.MinActions),
			p.AutoCloseAfter.Milliseconds(), p.Probation.Milliseconds(), fmtFloat(p.ProbationScale), flag(p.Disabled),
			len(s.Buckets), g.CoarseRing(),
			p.Learning.Milliseconds(), fmtFloat(p.LearningMax), flag(p.HoldContributors), fmtFloat(p.ContributorFactor),
			flag(p.EvidenceOn()), p.EvidenceBinMillis(), fmtFloat(p.EvidenceRatio), fmtFloat(math.Log(p.EvidenceRatio)),
			fmtFloat(p.EvidenceThreshold), fmtFloat(p.EvidenceMinExpected), int64(p.EvidenceDays)*p.BinsPerSlot(),
			p.BinsPerSlot(), p.MaxGapBins(), (int64(p.EvidenceDays)+1)*p.SeasonMillis()+ringTTL, p.SlotMillis(), s.Seed, flag(p.NewOnly))
		for _, bk := range s.Buckets {
			args = append(args, bk.At, bk.Weight, bk.Count)
			for _, v := range bk.Via[:via] {
				args = append(args, v)
			}
		}
	}
	cmd, err := r.run(ctx, decideScript, keys, args...)
	var v []string
	if err == nil {
		v, err = cmd.StringSlice()
	}
	if err != nil {
		return decide.Result{}, fmt.Errorf("decide batch of %d scopes: %w", len(b.Scopes), err)
	}
	return parseDecide(b, v)
}

func parseDecide(b decide.Batch, v []string) (decide.Result, error) {
	if len(v) == 0 {
		return decide.Result{}, errors.New("decide batch: empty reply")
	}
	switch v[0] {
	case "LOST":
		return decide.Result{}, ErrStateLost
	case "UNKNOWN":
		var res decide.Result
		for _, f := range v[1:] {
			pi, err := strconv.Atoi(f)
			if err != nil || pi < 1 || pi > len(b.Partitions) {
				return decide.Result{}, fmt.Errorf("decide batch: bad partition %q to rebuild", f)
			}
			res.Rebuild = append(res.Rebuild, b.Partitions[pi-1])
		}
		return res, nil
	case "REPLAY":
		var res decide.Result
		for i := 1; i+3 < len(v); i += 4 {
			pi, _ := strconv.Atoi(v[i])
			first, err1 := strconv.ParseInt(v[i+1], 10, 64)
			last, err2 := strconv.ParseInt(v[i+2], 10, 64)
			if pi < 1 || pi > len(b.Partitions) || err1 != nil || err2 != nil {
				return decide.Result{}, fmt.Errorf("decide batch: bad replay record %q", v[i:i+4])
			}
			p := b.Partitions[pi-1]
			holding, only := parseHolding(v[i+3])
			res.Replayed = append(res.Replayed, decide.Record{
				Topic: p.Topic, Partition: p.Partition, First: first, Last: last,
				Holding: holding, Only: only,
			})
		}
		return res, nil
	case "OK":
	default:
		return decide.Result{}, fmt.Errorf("decide batch: unexpected reply %q", v[0])
	}
	const per = decideReply
	if len(v) != 2+per*len(b.Scopes) {
		return decide.Result{}, fmt.Errorf("decide batch: reply of %d fields for %d scopes", len(v), len(b.Scopes))
	}
	now, _ := strconv.ParseInt(v[1], 10, 64)
	res := decide.Result{Now: fromMillis(now), Scopes: make([]decide.ScopeResult, len(b.Scopes))}
	for i := range b.Scopes {
		f := v[2+i*per : 2+(i+1)*per]
		st := statusFromFields(map[string]string{
			"st": f[1], "au": f[2], "g": f[3], "si": f[4], "ta": f[5], "re": f[6], "ac": f[7], "un": f[8], "pu": f[9], "hs": f[15],
			"on": f[16], "tc": f[17],
		})
		win, _ := strconv.ParseFloat(f[11], 64)
		base, _ := strconv.ParseFloat(f[12], 64)
		g := b.Scopes[i].Policy.Grid()
		c := countsOf(g, int64(win), int64(base), f[13] == "1")
		c.Learning = f[14] == "1"
		c.Evidence, _ = strconv.ParseFloat(f[18], 64)
		c.Expected, _ = strconv.ParseFloat(f[19], 64)
		c.Observed, _ = strconv.ParseFloat(f[20], 64)
		c.EvidenceReady = f[21] == "1"
		res.Scopes[i] = decide.ScopeResult{
			Scope:   breaker.Scope(f[0]),
			Status:  st,
			Changed: f[10] == "1",
			Counts:  c,
		}
	}
	return res, nil
}

func countsOf(g breaker.Grid, win, base int64, ready bool) breaker.Counts {
	return breaker.Counts{
		Window:        float64(win) / breaker.Milli,
		Baseline:      float64(base) * float64(g.Window) / float64(breaker.CoarseSlots*g.Coarse) / breaker.Milli,
		BaselineReady: ready,
	}
}

// parseHolding reads a record's payload: a line per holding scope,
// "generation<TAB>scope", followed by "<TAB>narrower scope" for each scope
// it holds alone, if any.
func parseHolding(s string) (map[breaker.Scope]uint64, map[breaker.Scope][]breaker.Scope) {
	m := map[breaker.Scope]uint64{}
	var only map[breaker.Scope][]breaker.Scope
	for line := range strings.SplitSeq(s, "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 2 {
			continue
		}
		g, _ := strconv.ParseUint(f[0], 10, 64)
		m[breaker.Scope(f[1])] = g
		if len(f) > 2 {
			if only == nil {
				only = map[breaker.Scope][]breaker.Scope{}
			}
			for _, c := range f[2:] {
				only[breaker.Scope(f[1])] = append(only[breaker.Scope(f[1])], breaker.Scope(c))
			}
		}
	}
	return m, only
}

// joinScopes and splitScopes keep a list of scopes in one hash field; scope
// names hold no control characters.
func joinScopes(ss []breaker.Scope) string {
	var b strings.Builder
	for i, s := range ss {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(string(s))
	}
	return b.String()
}

func splitScopes(s string) []breaker.Scope {
	if s == "" {
		return nil
	}
	var out []breaker.Scope
	for x := range strings.SplitSeq(s, "\n") {
		out = append(out, breaker.Scope(x))
	}
	return out
}

func statusFields(s breaker.Status) []any {
	return []any{
		"st", string(s.State), "au", string(s.Auto), "g", s.Generation,
		"si", millis(s.Since), "ta", millis(s.TrippedAt), "re", s.Reason, "ac", s.Actor,
		"un", millis(s.Until), "pu", millis(s.ProbationUntil), "hs", joinScopes(s.HeldScopes),
		"on", millis(s.Onset), "tc", tripField(s.Trip),
	}
}

// tripField encodes the figures of a trip in one status hash field, as
// decide.lua writes them: window, baseline, baseline ready, learning,
// evidence, expected, observed, evidence ready, probation, tab separated;
// "" for none.
func tripField(t breaker.Trip) string {
	if t == (breaker.Trip{}) {
		return ""
	}
	c := t.Counts
	f := []string{
		fmtFloat(c.Window), fmtFloat(c.Baseline), flag(c.BaselineReady), flag(c.Learning),
		fmtFloat(c.Evidence), fmtFloat(c.Expected), fmtFloat(c.Observed), flag(c.EvidenceReady), flag(t.Probation),
	}
	if a := t.Appeals; a != (breaker.AppealsTrip{}) {
		// The figures of an overturn_rate trip (package appeals), which
		// decide.lua never writes but keeps.
		f = append(f, strconv.Quote(a.Key), strconv.Itoa(a.Outcomes), strconv.Itoa(a.Overturned),
			fmtFloat(a.Below), fmtFloat(a.Floor), fmtFloat(a.Confidence))
	}
	return strings.Join(f, "\t")
}

// parseTrip reads a field written by tripField or decide.lua.
func parseTrip(s string) breaker.Trip {
	f := strings.Split(s, "\t")
	if len(f) != 9 && len(f) != 15 {
		return breaker.Trip{}
	}
	num := func(v string) float64 {
		x, _ := strconv.ParseFloat(v, 64)
		return x
	}
	t := breaker.Trip{Counts: breaker.Counts{
		Window: num(f[0]), Baseline: num(f[1]), BaselineReady: f[2] == "1", Learning: f[3] == "1",
		Evidence: num(f[4]), Expected: num(f[5]), Observed: num(f[6]), EvidenceReady: f[7] == "1",
	}, Probation: f[8] == "1"}
	if len(f) == 15 {
		key, _ := strconv.Unquote(f[9])
		outcomes, _ := strconv.Atoi(f[10])
		overturned, _ := strconv.Atoi(f[11])
		t.Appeals = breaker.AppealsTrip{Key: key, Outcomes: outcomes, Overturned: overturned, Below: num(f[12]), Floor: num(f[13]), Confidence: num(f[14])}
	}
	return t
}

func statusFromFields(m map[string]string) breaker.Status {
	ms := func(k string) time.Time {
		v, _ := strconv.ParseInt(m[k], 10, 64)
		return fromMillis(v)
	}
	g, _ := strconv.ParseUint(m["g"], 10, 64)
	s := breaker.Status{
		State: breaker.State(m["st"]), Auto: breaker.State(m["au"]), Generation: g,
		Since: ms("si"), TrippedAt: ms("ta"), Reason: m["re"], Actor: m["ac"],
		Until: ms("un"), ProbationUntil: ms("pu"), HeldScopes: splitScopes(m["hs"]),
		Onset: ms("on"), Trip: parseTrip(m["tc"]),
	}
	if s.State == "" {
		s.State = breaker.Closed
	}
	if s.Auto == "" {
		s.Auto = breaker.Closed
	}
	return s
}

// Rebuild writes the records of one input partition read back from the
// output topics, and declares the partition's records complete from floor
// on: every offset at or above floor that reached an output topic is in
// recs or in a record already kept.
func (r *Redis) Rebuild(ctx context.Context, topic string, partition int, floor int64, recs []decide.Record) error {
	args := make([]any, 0, 2+2*len(recs))
	args = append(args, floor, r.opts.RecordTTL.Milliseconds())
	for _, rec := range recs {
		args = append(args, rec.First, strconv.FormatInt(rec.Last, 10)+"|"+holdingPayload(rec.Holding))
	}
	if _, err := r.run(ctx, rebuildScript, []string{r.recordKey(topic, partition)}, args...); err != nil {
		return fmt.Errorf("rebuild the records of %s/%d: %w", topic, partition, err)
	}
	return nil
}

// holdingPayload encodes the holding scopes of a record as the decision
// script does: one "generation<TAB>scope" line each.
func holdingPayload(h map[breaker.Scope]uint64) string {
	lines := make([]string, 0, len(h))
	for s, g := range h {
		lines = append(lines, strconv.FormatUint(g, 10)+"\t"+string(s))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// Now returns the store's wall clock, the time every replica decides on.
func (r *Redis) Now(ctx context.Context) (time.Time, error) {
	t, err := r.client.Time(ctx).Result()
	if err != nil {
		return time.Time{}, fmt.Errorf("read redis time: %w", err)
	}
	return t.Truncate(time.Millisecond).UTC(), nil
}

// Status returns one breaker's status; an override that has expired is shown
// as the state it falls back to. It reads the status together with the
// store's initialisation marker, in one transaction: after Redis lost its
// data it returns ErrStateLost until the states are restored, never the
// initial (closed) status of a breaker that had tripped.
func (r *Redis) Status(ctx context.Context, scope breaker.Scope) (breaker.Status, error) {
	var ready *redis.IntCmd
	var fields *redis.MapStringStringCmd
	var now *redis.TimeCmd
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ready = p.Exists(ctx, r.epochKey())
		fields = p.HGetAll(ctx, r.statusKey(scope))
		now = p.Time(ctx)
		return nil
	})
	if err != nil {
		return breaker.Status{}, fmt.Errorf("read breaker %s: %w", scope, err)
	}
	if ready.Val() == 0 {
		return breaker.Status{}, fmt.Errorf("read breaker %s: %w", scope, ErrStateLost)
	}
	s, _ := breaker.Expire(statusFromFields(fields.Val()), now.Val().Truncate(time.Millisecond).UTC())
	return s, nil
}

// Initialised reports whether the store holds the breaker states: false
// after Redis lost its data, until Restore ran.
func (r *Redis) Initialised(ctx context.Context) (bool, error) {
	n, err := r.client.Exists(ctx, r.epochKey()).Result()
	if err != nil {
		return false, fmt.Errorf("read the store's marker: %w", err)
	}
	return n == 1, nil
}

// List returns every breaker that has ever left its initial status, or
// ErrStateLost after Redis lost its data, until the states are restored.
func (r *Redis) List(ctx context.Context) ([]ScopeStatus, error) {
	var ready *redis.IntCmd
	var members *redis.StringSliceCmd
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ready = p.Exists(ctx, r.epochKey())
		members = p.SMembers(ctx, r.scopesKey())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list breakers: %w", err)
	}
	if ready.Val() == 0 {
		return nil, fmt.Errorf("list breakers: %w", ErrStateLost)
	}
	names := members.Val()
	out := make([]ScopeStatus, 0, len(names))
	for _, n := range names {
		s, err := r.Status(ctx, breaker.Scope(n))
		if err != nil {
			return nil, err
		}
		out = append(out, ScopeStatus{Scope: breaker.Scope(n), Status: s})
	}
	return out, nil
}

// Update applies an operator's change to one breaker atomically: fn gets the
// current status and the store's clock and returns the new status.
func (r *Redis) Update(ctx context.Context, scope breaker.Scope, fn func(breaker.Status, time.Time) (breaker.Status, error)) (breaker.Transition, error) {
	for range 16 {
		m, err := r.client.HGetAll(ctx, r.statusKey(scope)).Result()
		if err != nil {
			return breaker.Transition{}, fmt.Errorf("read breaker %s: %w", scope, err)
		}
		now, err := r.Now(ctx)
		if err != nil {
			return breaker.Transition{}, err
		}
		stored := statusFromFields(m)
		from, _ := breaker.Expire(stored, now)
		to, err := fn(from, now)
		if err != nil {
			return breaker.Transition{}, err
		}
		args := append([]any{strconv.FormatUint(stored.Generation, 10), string(scope)}, statusFields(to)...)
		cmd, err := r.run(ctx, casScript, []string{r.statusKey(scope), r.scopesKey(), r.epochKey()}, args...)
		var ok int
		if err == nil {
			ok, err = cmd.Int()
		}
		if err != nil {
			return breaker.Transition{}, fmt.Errorf("write breaker %s: %w", scope, err)
		}
		if ok == -1 {
			// Writing now would be undone by the restore of older but
			// higher generations: the caller restores first, then retries.
			return breaker.Transition{}, fmt.Errorf("write breaker %s: %w", scope, ErrStateLost)
		}
		if ok == 1 {
			return breaker.Transition{Scope: scope, From: from, To: to}, nil
		}
	}
	return breaker.Transition{}, fmt.Errorf("write breaker %s: too much contention", scope)
}

// Restore puts back the statuses of the durable record wherever Redis holds
// an older generation, then marks the store as ready to decide. It is safe
// to run from several replicas at once.
func (r *Redis) Restore(ctx context.Context, statuses []ScopeStatus) (int, error) {
	keys := []string{r.epochKey(), r.scopesKey()}
	args := []any{strconv.FormatInt(time.Now().UnixNano(), 36)}
	for _, s := range statuses {
		keys = append(keys, r.statusKey(s.Scope))
		args = append(args, string(s.Scope), s.Status.Generation)
		args = append(args, statusFields(s.Status)...)
	}
	cmd, err := r.run(ctx, restoreScript, keys, args...)
	var n int
	if err == nil {
		n, err = cmd.Int()
	}
	if err != nil {
		return 0, fmt.Errorf("restore %d breakers: %w", len(statuses), err)
	}
	return n, nil
}

// Ping checks that Redis answers.
func (r *Redis) Ping(ctx context.Context) error { return r.client.Ping(ctx).Err() }

// Scripts returns the Lua scripts of the store, for a check that they
// load on the configured Redis.
func Scripts() []*redis.Script { return []*redis.Script{decideScript, casScript, restoreScript} }

package review

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/internal/partition"
	"github.com/breakwater/breakwater/internal/produce"
	"github.com/breakwater/breakwater/wire"
)

// ReleaseOptions configure a Releaser.
type ReleaseOptions struct {
	// Kafka locates the cluster.
	Kafka *kafkaconn.Endpoint
	// Gated and Rejected are the topics approved and rejected actions go to.
	Gated, Rejected string
	// WriteTimeout bounds one acknowledged write.
	WriteTimeout time.Duration
	// Lease is how long the release lock lasts without renewal; one
	// replica releases at a time.
	Lease time.Duration
	// Batch is the most actions written at once.
	Batch int
	// Poll is how often the queue is looked at.
	Poll time.Duration
}

func (o ReleaseOptions) validate() error {
	switch {
	case o.Kafka == nil:
		return errors.New("review: ReleaseOptions.Kafka is nil")
	case o.Gated == "" || o.Rejected == "":
		return errors.New("review: ReleaseOptions.Gated and Rejected must be set")
	case o.WriteTimeout <= 0 || o.Lease <= 2*o.WriteTimeout:
		return errors.New("review: ReleaseOptions.Lease must be more than twice WriteTimeout, which must be positive")
	case o.Batch < 1:
		return errors.New("review: ReleaseOptions.Batch must be positive")
	case o.Poll <= 0:
		return errors.New("review: ReleaseOptions.Poll must be positive")
	}
	return nil
}

// Releaser writes decided actions to the gated and rejected topics, in
// held order, exactly once.
//
// The release log: before a batch is written, the end offsets of both
// topics are recorded with the batch's ids (the in-flight record); after
// the write is acknowledged the actions are marked released and the record
// is deleted. A releaser that finds an in-flight record (the previous one
// crashed) reads both topics from the recorded offsets, marks the ids it
// finds there as released and writes only the others. One replica releases
// at a time, under a lease in Redis; every mark checks the lease.
//
// An approved action waits while an earlier held action of the same key is
// still pending, so that approved actions reach the gated topic in their
// original per-key order even when a sample is approved first.
type Releaser struct {
	x     *Index
	opts  ReleaseOptions
	log   *zap.Logger
	owner string
	w     *kafka.Writer
	tr    *kafka.Transport
	wake  chan struct{}
	// crashAfterWrite, in tests, stops a batch after its write and before
	// its mark, as a crash there would.
	crashAfterWrite func() bool
	// afterPage, in tests, runs between two reads of the queue, as a
	// reviewer's decision would.
	afterPage func()
}

// NewReleaser returns a releaser of x's decisions; Close releases its writer.
func NewReleaser(x *Index, opts ReleaseOptions, log *zap.Logger) (*Releaser, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	tr := opts.Kafka.Transport()
	return &Releaser{
		x: x, opts: opts, log: log, owner: hex.EncodeToString(b[:]), tr: tr, wake: make(chan struct{}, 1),
		w: &kafka.Writer{
			Addr: opts.Kafka.Addr(), Transport: tr, Balancer: &kafka.Hash{},
			RequiredAcks: kafka.RequireAll, BatchTimeout: 100 * time.Microsecond, WriteTimeout: opts.WriteTimeout,
			// One attempt: kafka-go retries a batch whose acknowledgement
			// was lost (a timeout under load) by writing it again, and a
			// write that reached the broker twice releases its actions
			// twice. A failed write is retried by the next step instead,
			// which first finds what reached the topics from the release log.
			MaxAttempts: 1, BatchSize: opts.Batch,
			// Stated, not left to kafka-go's default, so that
			// produce.Runs cuts the runs at the bound the Writer uses.
			BatchBytes: 1 << 20,
		},
	}, nil
}

// Close closes the writer.
func (r *Releaser) Close() error {
	err := r.w.Close()
	r.tr.CloseIdleConnections()
	return err
}

// Poke asks the releaser to look at the queue now.
func (r *Releaser) Poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Releaser) lockKey() string     { return r.x.keys.ReleaseLock() }
func (r *Releaser) inflightKey() string { return r.x.keys.ReleaseInflight() }

// leaseScript takes or renews the lease for ARGV[1].
var leaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// Run releases until ctx ends.
func (r *Releaser) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Poll)
	defer t.Stop()
	for {
		if _, err := r.Step(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("release decided held actions", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.wake:
		}
	}
}

// Step takes the lease, finishes an interrupted batch, applies the
// standing decisions, then releases batches until the queue holds nothing
// releasable. It returns how many
// actions it released.
func (r *Releaser) Step(ctx context.Context) (int, error) {
	if ready, err := r.x.Ready(ctx); err != nil || !ready {
		return 0, err // the index is rebuilt first
	}
	n := 0
	for {
		ok, err := leaseScript.Run(ctx, r.x.opts.Redis, []string{r.lockKey()}, r.owner, r.opts.Lease.Milliseconds()).Int()
		if err != nil {
			return n, fmt.Errorf("take the release lease: %w", err)
		}
		if ok != 1 {
			return n, nil // another replica releases
		}
		if err := r.recover(ctx); err != nil {
			return n, err
		}
		// Standing decisions are applied by the lease holder alone, so
		// that each action they cover is decided and journaled once.
		if _, err := r.x.ApplyStanding(ctx); err != nil {
			return n, err
		}
		k, err := r.releaseBatch(ctx)
		if errors.Is(err, errUndone) {
			continue // read the queue again, without the undone action
		}
		n += k
		if err != nil || k == 0 {
			return n, err
		}
	}
}

// inflight is the release log's record of a batch being written.
type inflight struct {
	IDs      []string      `json:"ids"`
	Gated    map[int]int64 `json:"gated"`
	Rejected map[int]int64 `json:"rejected"`
	Owner    string        `json:"owner"`
	At       time.Time     `json:"at"`
}

// recover finishes the batch an earlier releaser was writing: the ids that
// reached their topic are marked released; the others stay queued.
func (r *Releaser) recover(ctx context.Context) error {
	v, err := r.x.opts.Redis.Get(ctx, r.inflightKey()).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the release log: %w", err)
	}
	var in inflight
	if err := json.Unmarshal([]byte(v), &in); err != nil {
		return fmt.Errorf("decode the release log: %w", err)
	}
	want := map[string]bool{}
	for _, id := range in.IDs {
		want[id] = true
	}
	var found []string
	for topic, from := range map[string]map[int]int64{r.opts.Gated: in.Gated, r.opts.Rejected: in.Rejected} {
		for p, off := range from {
			err := readRange(ctx, r.opts.Kafka, topic, p, off, -1, func(m kafka.Message) bool {
				for _, h := range m.Headers {
					if h.Key == wire.HeaderActionID && want[string(h.Value)] {
						found = append(found, string(h.Value))
						delete(want, string(h.Value))
					}
				}
				return len(want) > 0
			})
			if err != nil {
				return fmt.Errorf("recover the release log from %s/%d: %w", topic, p, err)
			}
		}
	}
	if err := r.markReleased(ctx, found); err != nil {
		return err
	}
	r.log.Info("finished an interrupted release", zap.Int("batch", len(in.IDs)), zap.Int("already_written", len(found)))
	return nil
}

// markReleasedLua marks the actions whose keys start after KEYS[k0] and
// arguments after ARGV[a0] released (see refsCheckLua), and drops them from
// the queue KEYS[q].
const markReleasedLua = `
local function mark(k0, a0, q)
  local n = 0
  for i = 1, (#ARGV - a0) / 3 do
    local id = ARGV[a0 + (i - 1) * 3 + 1]
    local akey, ikey, kkey = KEYS[k0 + (i - 1) * 3 + 1], KEYS[k0 + (i - 1) * 3 + 2], KEYS[k0 + (i - 1) * 3 + 3]
    if redis.call('EXISTS', akey) == 1 then
      if redis.call('HGET', akey, 'released') ~= '1' then
        redis.call('HSET', akey, 'released', '1')
        redis.call('HINCRBY', ikey, 'released', 1)
        -- Approved actions are released to enforcement, rejected ones
        -- only recorded: counted apart, so that neither reads as the other.
        redis.call('HINCRBY', ikey, 'released_' .. (redis.call('HGET', akey, 'status') or 'unknown'), 1)
        n = n + 1
      end
      redis.call('ZREM', kkey, id)
    end
    redis.call('ZREM', KEYS[q], id)
  end
  return n
end
`

// markScript marks ids released and clears the release log, if ARGV[1]
// still holds the lease. KEYS: the lease, the queue, the release log, then
// three per action (see refsCheckLua); ARGV: the owner, then three per
// action. It answers -1 when the lease is lost, -2 when an action changed
// since its refs were read.
var markScript = redis.NewScript(refsCheckLua + markReleasedLua + `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if stale(3, 1) then return -2 end
local n = mark(3, 1, 2)
redis.call('DEL', KEYS[3])
return n
`)

// releasedScript marks ids released, as the journal records them. KEYS:
// the queue, then three per action; ARGV: three per action. It answers -2
// when an action changed since its refs were read.
var releasedScript = redis.NewScript(refsCheckLua + markReleasedLua + `
if stale(1, 0) then return -2 end
mark(1, 0, 1)
return 1
`)

// markReleased marks ids released while the index is rebuilt from the journal.
func (x *Index) markReleased(ctx context.Context, ids []string) error {
	_, err := x.runMarking(ctx, ids, releasedScript, []string{x.queueKey()}, nil)
	return err
}

// runMarking runs a script that marks ids released, declaring the keys it
// touches for each (read first), and repeats it if an action changed in
// between.
func (x *Index) runMarking(ctx context.Context, ids []string, s *redis.Script, keys []string, args []any) (int, error) {
	for range staleRetries {
		rs, err := x.refs(ctx, ids)
		if err != nil {
			return 0, err
		}
		k, a := x.refArgs(ids, rs, slices.Clone(keys), slices.Clone(args))
		n, err := s.Run(ctx, x.opts.Redis, k, a...).Int()
		if err != nil {
			return 0, fmt.Errorf("mark %d actions released: %w", len(ids), err)
		}
		if n != -2 {
			return n, nil
		}
	}
	return 0, fmt.Errorf("mark %d actions released: %w", len(ids), errStale)
}

// errUndone means an action of the batch was undone after the batch was
// read; the next step reads the queue again.
var errUndone = errors.New("a decision of the batch was undone; reading the queue again")

// errLeaseLost means another replica took over releasing.
var errLeaseLost = errors.New("the release lease was lost")

func (r *Releaser) markReleased(ctx context.Context, ids []string) error {
	n, err := r.x.runMarking(ctx, ids, markScript, []string{r.lockKey(), r.x.queueKey(), r.inflightKey()}, []any{r.owner})
	if err != nil {
		return err
	}
	if n < 0 {
		return errLeaseLost
	}
	if len(ids) == 0 {
		return nil
	}
	// The journal lets a rebuilt index know what was released. Should this
	// write fail, a rebuild after Redis lost its data would release these
	// again (the enforcement service dedupes on action_id).
	var entries []audit.Entry
	now := time.Now().UTC()
	groups, err := r.x.byIncident(ctx, ids, "")
	if err != nil {
		r.log.Warn("group released actions by incident", zap.Int("actions", len(ids)), zap.Error(err))
		groups = []incidentIDs{{ids: ids}}
	}
	// One entry per incident and batch, naming its scope and incident;
	// the audit trail folds an incident's release entries into one, with
	// its progress (their Group).
	for _, g := range groups {
		scope, _ := splitIncident(g.incident)
		group := ""
		if g.incident != "" {
			group = audit.ReleaseGroup(g.incident)
		}
		for start := 0; start < len(g.ids); start += journalChunk {
			chunk := g.ids[start:min(start+journalChunk, len(g.ids))]
			entries = append(entries, audit.Entry{AuditEntry: api.AuditEntry{
				At: now, Actor: audit.System, Kind: audit.KindRelease, Scope: breaker.Scope(scope), Incident: g.incident, Count: len(chunk),
				Group: group,
			}, IDs: chunk})
		}
	}
	if err := r.x.opts.Journal.Write(ctx, entries...); err != nil {
		r.log.Warn("journal released actions", zap.Int("actions", len(ids)), zap.Error(err))
	}
	return nil
}

// setInflightScript records a batch if ARGV[1] holds the lease.
// Every id of the batch (ARGV[3...]) must still be in the queue KEYS[3]:
// an undo after the batch was read took it out, and the batch is read
// again (-2). An undo after this call finds the id in the log and refuses.
var setInflightScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
for i = 3, #ARGV do
  if not redis.call('ZSCORE', KEYS[3], ARGV[i]) then return -2 end
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
`)

// scanPages bounds how much of the queue one batch looks at for actions
// that are not waiting for an earlier action of their key.
const scanPages = 10

// releaseBatch writes the next batch of releasable actions.
func (r *Releaser) releaseBatch(ctx context.Context) (int, error) {
	var batch []Held
	inBatch := map[string]bool{}
	var done []string // released before (a retried mark): drop from the queue
	// Pages follow the queue by score (held position), not by rank: a
	// decision made while the queue is read inserts actions ahead of the
	// ones already read, and a page by rank would then read one of them
	// again and write it twice.
	from := "-inf"
	for page := 0; page < scanPages && len(batch) < r.opts.Batch; page++ {
		if page > 0 && r.afterPage != nil {
			r.afterPage()
		}
		zs, err := r.x.opts.Redis.ZRangeByScoreWithScores(ctx, r.x.queueKey(), &redis.ZRangeBy{Min: from, Max: "+inf", Count: int64(r.opts.Batch)}).Result()
		if err != nil {
			return 0, fmt.Errorf("read the release queue: %w", err)
		}
		if len(zs) == 0 {
			break
		}
		ids := make([]string, len(zs))
		for i, z := range zs {
			ids[i], _ = z.Member.(string)
		}
		from = exclusive(zs[len(zs)-1].Score)
		hs, err := r.x.getMany(ctx, ids)
		if err != nil {
			return 0, err
		}
		for _, h := range hs {
			if inBatch[h.ActionID] {
				continue // never twice in one write
			}
			if h.Released {
				done = append(done, h.ActionID)
				continue
			}
			if h.undoUntil.After(time.Now()) {
				continue // its reviewer may still undo it; a later poll releases it
			}
			if h.Status == Approved {
				blocked, err := r.blocked(ctx, h, inBatch)
				if err != nil {
					return 0, err
				}
				if blocked {
					continue
				}
			}
			batch = append(batch, h)
			inBatch[h.ActionID] = true
			if len(batch) == r.opts.Batch {
				break
			}
		}
	}
	if len(batch) == 0 {
		if len(done) > 0 {
			return 0, r.markReleased(ctx, done)
		}
		return 0, nil
	}
	msgs, err := r.messages(ctx, batch)
	if err != nil {
		return 0, err
	}
	in := inflight{Owner: r.owner, At: time.Now().UTC(), Gated: map[int]int64{}, Rejected: map[int]int64{}}
	for _, h := range batch {
		in.IDs = append(in.IDs, h.ActionID)
	}
	if in.Gated, err = endOffsets(ctx, r.opts.Kafka, r.opts.Gated); err != nil {
		return 0, err
	}
	if in.Rejected, err = endOffsets(ctx, r.opts.Kafka, r.opts.Rejected); err != nil {
		return 0, err
	}
	rec, _ := json.Marshal(in)
	args := []any{r.owner, string(rec)}
	for _, id := range in.IDs {
		args = append(args, id)
	}
	ok, err := setInflightScript.Run(ctx, r.x.opts.Redis, []string{r.lockKey(), r.inflightKey(), r.x.queueKey()}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("write the release log: %w", err)
	}
	if ok == -2 {
		return 0, errUndone
	}
	if ok != 1 {
		return 0, errLeaseLost
	}
	wctx, release, err := r.holdLease(ctx)
	if err != nil {
		return 0, err // nothing written
	}
	err = r.write(wctx, msgs)
	if lost := release(); lost != nil {
		// Another replica may take over: it finds what was written from
		// the release log.
		return 0, lost
	}
	if err != nil {
		// The release log lets the next step find what was written.
		return 0, fmt.Errorf("write %d released actions: %w", len(msgs), err)
	}
	if r.crashAfterWrite != nil && r.crashAfterWrite() {
		return 0, errors.New("crashed after the write (test)")
	}
	if err := r.markReleased(ctx, append(in.IDs, done...)); err != nil {
		return 0, err
	}
	return len(batch), nil
}

// write writes msgs in runs that go in one produce request per partition
// (produce.Runs), each after the one before has been acknowledged, and
// stops at the first that fails. Written in one call, a partition's
// records past kafka-go's bound of one request (1 MiB, or Batch records)
// go in several requests, and the later ones are written even when an
// earlier one fails: the release log would then mark the later actions
// released, and the failed ones, released by a later step, would land
// after them on their key's partition.
func (r *Releaser) write(ctx context.Context, msgs []kafka.Message) error {
	for run := range produce.Runs(msgs, r.w.BatchSize, r.w.BatchBytes) {
		if err := r.w.WriteMessages(ctx, run...); err != nil {
			return err
		}
	}
	return nil
}

// holdLease renews the release lease before a write, then every third of
// its length while the write runs on the returned context, so that a write
// that takes longer than the lease (a slow broker) keeps it. When the lease is lost, or could not be renewed before
// it would expire, the context is cancelled and the write abandoned. The
// returned function ends the renewals; it returns an error wrapping
// errLeaseLost if the lease was lost during the write.
func (r *Releaser) holdLease(ctx context.Context) (context.Context, func() error, error) {
	t0 := time.Now()
	ok, err := leaseScript.Run(ctx, r.x.opts.Redis, []string{r.lockKey()}, r.owner, r.opts.Lease.Milliseconds()).Int()
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("renew the release lease: %w", err)
	case ok != 1:
		return nil, nil, errLeaseLost
	}
	expires := t0.Add(r.opts.Lease)
	wctx, cancel := context.WithCancelCause(ctx)
	done, finished := make(chan struct{}), make(chan struct{})
	every := r.opts.Lease / 3
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-wctx.Done():
				return
			case <-t.C:
			}
			t0 := time.Now()
			ok, err := leaseScript.Run(wctx, r.x.opts.Redis, []string{r.lockKey()}, r.owner, r.opts.Lease.Milliseconds()).Int()
			switch {
			case err == nil && ok == 1:
				expires = t0.Add(r.opts.Lease)
			case err == nil:
				cancel(errLeaseLost)
				return
			case time.Until(expires) <= every:
				cancel(fmt.Errorf("%w: not renewed: %w", errLeaseLost, err))
				return
			default:
				r.log.Warn("renew the release lease", zap.Error(err))
			}
		}
	}()
	return wctx, func() error {
		close(done)
		<-finished
		err := context.Cause(wctx)
		cancel(nil)
		if errors.Is(err, errLeaseLost) {
			return err
		}
		return nil
	}, nil
}

// exclusive is the exclusive bound of a sorted-set range at score: the
// scores strictly beyond it (as a Min) or strictly before it (as a Max).
func exclusive(score float64) string {
	return "(" + strconv.FormatFloat(score, 'f', -1, 64)
}

// blocked reports whether an earlier held action of h's key is neither
// released nor ahead of h in this batch: still pending, or approved but
// not yet released. The key's set holds exactly those (a rejected action
// leaves it when decided, an approved one when released), so an action
// approved after the queue was read still holds back the later ones.
func (r *Releaser) blocked(ctx context.Context, h Held, inBatch map[string]bool) (bool, error) {
	upper := exclusive(position(h.Partition, h.Offset))
	ids, err := r.x.opts.Redis.ZRangeByScore(ctx, r.x.keys.HeldByKey(h.key), &redis.ZRangeBy{Min: "-inf", Max: upper}).Result()
	if err != nil {
		return false, fmt.Errorf("read the unreleased actions of a key: %w", err)
	}
	for _, id := range ids {
		if !inBatch[id] {
			return true, nil
		}
	}
	return false, nil
}

// messages reads the held messages of batch and builds what is released.
func (r *Releaser) messages(ctx context.Context, batch []Held) ([]kafka.Message, error) {
	type loc struct {
		p   int
		off int64
	}
	byPart := map[int][]int64{}
	for _, h := range batch {
		byPart[h.Partition] = append(byPart[h.Partition], h.Offset)
	}
	got := map[loc]kafka.Message{}
	for p, offs := range byPart {
		first, last := slices.Min(offs), slices.Max(offs)
		want := map[int64]bool{}
		for _, o := range offs {
			want[o] = true
		}
		err := readRange(ctx, r.opts.Kafka, r.x.opts.Topic, p, first, last+1, func(m kafka.Message) bool {
			if want[m.Offset] {
				got[loc{p, m.Offset}] = m
			}
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("read held actions of %s/%d: %w", r.x.opts.Topic, p, err)
		}
	}
	out := make([]kafka.Message, 0, len(batch))
	for _, h := range batch {
		m, ok := got[loc{h.Partition, h.Offset}]
		if !ok {
			return nil, fmt.Errorf("held action %s is no longer on %s/%d at %d (retention?)", h.ActionID, r.x.opts.Topic, h.Partition, h.Offset)
		}
		topic := r.opts.Gated
		if h.Status == Rejected {
			topic = r.opts.Rejected
		}
		hs := make([]kafka.Header, 0, len(m.Headers)+6)
		for _, x := range m.Headers {
			if !strings.HasPrefix(x.Key, wire.HeaderPrefix) {
				hs = append(hs, x)
			}
		}
		hs = append(hs,
			kafka.Header{Key: wire.HeaderDecision, Value: []byte(h.Status)},
			kafka.Header{Key: wire.HeaderReviewer, Value: []byte(h.Reviewer)},
			kafka.Header{Key: wire.HeaderIncident, Value: []byte(h.Incident)},
			kafka.Header{Key: wire.HeaderScope, Value: []byte(h.Scope)},
			kafka.Header{Key: wire.HeaderActionID, Value: []byte(h.ActionID)},
			kafka.Header{Key: wire.HeaderSource, Value: []byte(r.x.opts.Topic + "/" + strconv.Itoa(h.Partition) + "/" + strconv.FormatInt(h.Offset, 10))},
		)
		out = append(out, kafka.Message{Topic: topic, Key: m.Key, Value: m.Value, Headers: hs})
	}
	return out, nil
}

// endOffsets returns the end offset of every partition of topic.
func endOffsets(ctx context.Context, brokers *kafkaconn.Endpoint, topic string) (map[int]int64, error) {
	parts, err := partition.List(ctx, brokers, topic)
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	for _, p := range parts {
		if out[p], err = partition.Last(ctx, brokers, topic, p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readRange calls fn for the messages of topic/p from offset from to end
// (exclusive; -1 means the end offset when the read begins), until fn
// returns false.
func readRange(ctx context.Context, brokers *kafkaconn.Endpoint, topic string, p int, from, end int64, fn func(kafka.Message) bool) error {
	return partition.Read(ctx, brokers, topic, p, from, end, func(msgs []kafka.Message, _, _ int64) error {
		for _, m := range msgs {
			if !fn(m) {
				return partition.ErrStop
			}
		}
		return nil
	})
}

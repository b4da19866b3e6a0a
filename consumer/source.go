package consumer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/metrics"
)

// source is where the pipeline's batches come from: the input partitions
// this member owns, merged in event time.
type source interface {
	// Fetch waits for the next message, then gathers up to max messages
	// for at most wait, and returns them classified.
	Fetch(ctx context.Context, max int, wait time.Duration) (*fetched, error)
	// Commit commits the offsets of a batch Fetch returned, once every
	// message of it was written; it is called once per batch. It returns
	// errRevoked when the batch's partitions were taken away before the
	// commit.
	Commit(ctx context.Context, f *fetched) error
	// Recycle hands back a batch nothing refers to any more, whose
	// buffers a later batch may reuse.
	Recycle(f *fetched)
	// Close leaves the group.
	Close() error
}

// errRevoked reports that a batch's generation of the consumer group ended
// before its offsets were committed: its partitions are redelivered to
// their next owner, which gets each action's recorded first decision.
var errRevoked = errors.New("partitions revoked before the commit")

// fetched is one batch: its messages in the order they are decided, and
// their classified actions.
type fetched struct {
	msgs  []kafka.Message
	items []decide.Item
	enc   encoder // the output records, encoded once decided
	gen   *generation
}

// stallTimeout bounds how long, in wall time, a partition that has
// messages on the broker but delivers none holds the other partitions
// back (one whose leader is down must not stop the others for good), and
// how long the other replicas' frontier may hold this one back without
// moving.
const stallTimeout = 30 * time.Second

// Frontiers is shared by the replicas of the group: how far in event time
// each has decided the backlog of its partitions.
type Frontiers interface {
	// Advance records member's frontier (zero when it has nothing to
	// decide) for ttl, and returns the earliest frontier of the other
	// members and the member it is of (zero and "" when they have nothing
	// to decide).
	Advance(ctx context.Context, member string, at time.Time, ttl time.Duration) (time.Time, string, error)
}

// How often a replica publishes its frontier and reads the others', and
// how long a frontier counts without being published again (a replica
// that died stops holding the others back after that).
const (
	frontierEvery = 250 * time.Millisecond
	frontierTTL   = 15 * time.Second
)

// sourceOptions are what a mergedSource needs.
type sourceOptions struct {
	kafka          *kafkaconn.Endpoint
	group, topic   string
	sessionTimeout time.Duration
	queue          int // messages buffered per partition
	classify       func(it *decide.Item, pos decide.Position, value []byte)
	frontiers      Frontiers     // nil: no coordination between replicas
	lead           time.Duration // how far ahead of the other replicas' frontier a replica may decide
	log            *zap.Logger
	m              *metrics.Metrics
}

// mergedSource is a consumer group member that reads each partition it is
// assigned with a reader of its own and merges the partitions by event
// time: it hands out the message with the earliest event time among the
// partitions' next messages, and waits for a partition that has messages
// on the broker but none fetched yet, so that a backlog is decided in
// event-time order across the partitions however fast each one is
// fetched. A partition that has caught up with the broker holds nothing
// back. When the group rebalances, the batches already handed out are
// committed before the member rejoins.
type mergedSource struct {
	opts sourceOptions
	cg   *kafka.ConsumerGroup

	gens    chan *generation // from the group loop to Fetch
	fatal   chan error       // an error waiting cannot cure, for Fetch to return
	closing chan struct{}
	done    chan struct{} // closed when the group loop returned

	closeOnce sync.Once
	cur       *generation                // owned by the caller of Fetch
	current   atomic.Pointer[generation] // the latest generation the group loop started

	spare chan *fetched // buffers of batches done with, for newBatch

	mu   sync.Mutex             // guards open: Fetch adds, Commit removes
	open map[*fetched]time.Time // batches handed out and not committed, by their earliest event time

	// member names this replica's frontier among the others': one per
	// source, published from its start, before it joins the group.
	member string
	fr     frontierState
	kaDone chan struct{} // closed when the keep-alive returned; nil without frontiers
}

var _ source = (*mergedSource)(nil)

func groupConfig(o sourceOptions) kafka.ConsumerGroupConfig {
	return kafka.ConsumerGroupConfig{
		ID:                     o.group,
		Brokers:                o.kafka.Brokers(),
		Dialer:                 o.kafka.Dialer(),
		Topics:                 []string{o.topic},
		HeartbeatInterval:      max(o.sessionTimeout/4, 100*time.Millisecond),
		SessionTimeout:         o.sessionTimeout,
		RebalanceTimeout:       2 * o.sessionTimeout,
		JoinGroupBackoff:       500 * time.Millisecond,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 5 * time.Second,
		StartOffset:            kafka.FirstOffset,
		ErrorLogger:            kafkaLogger(o.log),
	}
}

// kafkaLogger logs kafka-go's errors as warnings, and its read timeouts
// (a fetch that found no data, retried by kafka-go) at debug level.
func kafkaLogger(log *zap.Logger) kafka.Logger {
	if log == nil {
		return nil
	}
	s := log.Named("kafka").Sugar()
	return kafka.LoggerFunc(func(msg string, args ...any) {
		if line := fmt.Sprintf(msg, args...); strings.Contains(line, "i/o timeout") {
			s.Debug(line)
		} else {
			s.Warn(line)
		}
	})
}

func (o sourceOptions) partitionReader(partition int) kafka.ReaderConfig {
	return o.kafka.Reader(kafka.ReaderConfig{
		Topic:           o.topic,
		Partition:       partition,
		MinBytes:        1,
		MaxBytes:        4 << 20,
		MaxWait:         100 * time.Millisecond,
		QueueCapacity:   max(o.queue/4, 100),
		ReadBackoffMin:  10 * time.Millisecond,
		ReadBackoffMax:  500 * time.Millisecond,
		ReadLagInterval: -1,
		ErrorLogger:     kafkaLogger(o.log),
	})
}

// newMergedSource joins the group in the background.
func newMergedSource(o sourceOptions) (*mergedSource, error) {
	cg, err := kafka.NewConsumerGroup(groupConfig(o))
	if err != nil {
		return nil, fmt.Errorf("consumer group %q: %w", o.group, err)
	}
	s := &mergedSource{
		opts:    o,
		cg:      cg,
		gens:    make(chan *generation),
		fatal:   make(chan error, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		open:    map[*fetched]time.Time{},
		member:  memberName(),
		spare:   make(chan *fetched, 2),
	}
	if o.frontiers != nil {
		s.kaDone = make(chan struct{})
		go s.keepAlive()
	}
	go s.loop()
	return s, nil
}

// loop takes each generation of the group, starts its partition readers,
// and hands it to Fetch.
func (s *mergedSource) loop() {
	defer close(s.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		g, err := s.cg.Next(ctx)
		switch {
		case err == nil:
		case ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed):
			return
		default:
			s.opts.m.KafkaErrors.WithLabelValues("join").Inc()
			if !Transient(err) {
				s.fail(fmt.Errorf("join consumer group %q: %w", s.opts.group, err))
				return
			}
			// Joining is retried by the group itself, with its backoff.
			s.opts.log.Warn("join consumer group; retrying", zap.String("group", s.opts.group), zap.Error(err))
			continue
		}
		gen := s.start(g)
		select {
		case s.gens <- gen:
		case <-ctx.Done():
			return
		}
	}
}

// generation is one assignment of partitions to this member.
type generation struct {
	g       *kafka.Generation
	ended   <-chan struct{}
	parts   []*owned
	started time.Time     // when this member got it
	wake    chan struct{} // a partition delivered a message

	inflight atomic.Int64 // batches handed out and not yet committed
	idle     chan struct{}
}

// owned is one assigned partition: its reader's goroutine sends
// classified messages on ch; the merge state is owned by Fetch.
type owned struct {
	id  int
	q   queue
	lag atomic.Int64 // messages on the broker past the assigned offset when assigned; -1 until known

	local     []entry // taken from q; local[pos] is the next message
	pos       int
	taken     bool      // a message of this generation was handed out
	last      time.Time // event time of the last message handed out
	caughtUp  bool      // the last message handed out was the last on the broker
	waitSince time.Time // when it started holding the others back
	stalled   bool      // waited for past stallTimeout; holds nothing back until it delivers
}

// has reports whether p's next message is at hand.
func (p *owned) has() bool { return p.pos < len(p.local) }

// head is p's next message; valid when has.
func (p *owned) head() *entry { return &p.local[p.pos] }

// queue is a partition's fetched messages, handed from its reader's
// goroutine to the merge in slices, so that neither side wakes the other
// for every message.
type queue struct {
	mu    sync.Mutex
	buf   []entry // guarded by mu
	limit int
	space chan struct{} // the merge took the messages of a full queue
}

func newQueue(limit int) queue {
	return queue{limit: max(limit, 1), space: make(chan struct{}, 1)}
}

// add appends m, filled in by fill while the queue's lock is held, waiting
// while the queue is full; first reports whether the queue was empty. The
// entry is filled where it stays until the merge takes it, instead of
// being built apart and copied in (an entry is about 500 bytes with
// pointers, so each copy also runs the garbage collector's write
// barriers); take swaps the buffer out only under the same lock.
func (q *queue) add(ctx context.Context, m *kafka.Message, fill func(e *entry)) (first, ok bool) {
	q.mu.Lock()
	for len(q.buf) >= q.limit {
		q.mu.Unlock()
		select {
		case <-q.space:
		case <-ctx.Done():
			return false, false
		}
		q.mu.Lock()
	}
	n := len(q.buf)
	if n < cap(q.buf) {
		q.buf = q.buf[:n+1]
	} else {
		q.buf = append(q.buf, entry{})
	}
	e := &q.buf[n]
	e.msg, e.at = *m, time.Time{}
	fill(e)
	first = n == 0
	q.mu.Unlock()
	return first, true
}

// take returns the queued messages and leaves spare, emptied, in their
// place.
func (q *queue) take(spare []entry) []entry {
	q.mu.Lock()
	out := q.buf
	full := len(out) >= q.limit
	q.buf = spare[:0]
	q.mu.Unlock()
	if full {
		notify(q.space)
	}
	return out
}

type entry struct {
	msg  kafka.Message
	item decide.Item
	at   time.Time // event time; zero for a dead letter
}

func (s *mergedSource) start(g *kafka.Generation) *generation {
	gen := &generation{g: g, wake: make(chan struct{}, 1), idle: make(chan struct{}, 1), started: time.Now()}
	ended := make(chan struct{})
	gen.ended = ended
	s.current.Store(gen)
	var ids []int
	for _, a := range g.Assignments[s.opts.topic] {
		ids = append(ids, a.ID)
		p := &owned{id: a.ID, q: newQueue(s.opts.queue / 4)}
		p.lag.Store(-1)
		gen.parts = append(gen.parts, p)
		offset := a.Offset
		g.Start(func(ctx context.Context) { s.read(ctx, gen, p, offset) })
	}
	s.opts.log.Info("partitions assigned", zap.String("group", s.opts.group), zap.Int32("generation", g.ID), zap.Ints("partitions", ids))
	// When the generation ends, wait (bounded) for the batches handed out
	// to be committed before the member rejoins, so that the partitions'
	// next owners start after them.
	g.Start(func(ctx context.Context) {
		<-ctx.Done()
		close(ended)
		t := time.NewTimer(s.opts.sessionTimeout)
		defer t.Stop()
		for gen.inflight.Load() > 0 {
			select {
			case <-gen.idle:
			case <-t.C:
				return
			case <-s.closing:
				return
			}
		}
	})
	return gen
}

// read fetches one partition into its channel until the generation ends.
func (s *mergedSource) read(ctx context.Context, gen *generation, p *owned, offset int64) {
	r := kafka.NewReader(s.opts.partitionReader(p.id))
	defer func() { _ = r.Close() }()
	if err := r.SetOffset(offset); err != nil {
		s.opts.log.Error("position partition reader", zap.Int("partition", p.id), zap.Error(err))
		return
	}
	// How far behind the broker the partition starts: a partition with
	// nothing to read holds nothing back.
	for {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := r.ReadLag(lctx)
		cancel()
		if err == nil {
			p.lag.Store(max(n, 0))
			notify(gen.wake)
			break
		}
		if ctx.Err() != nil {
			return
		}
		s.opts.m.KafkaErrors.WithLabelValues("fetch").Inc()
		if !Transient(err) {
			s.fail(fmt.Errorf("read the lag of partition %d: %w", p.id, err))
			return
		}
		s.opts.log.Warn("read partition lag; retrying", zap.Int("partition", p.id), zap.Error(err))
		if !sleep(ctx, time.Second) {
			return
		}
	}
	var decoding time.Duration // not charged to the decode stage yet
	read := 0
	defer func() { s.decode(decoding) }()
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.opts.m.KafkaErrors.WithLabelValues("fetch").Inc()
			if !Transient(err) {
				s.fail(fmt.Errorf("fetch partition %d: %w", p.id, err))
				return
			}
			s.opts.log.Warn("fetch partition; retrying", zap.Int("partition", p.id), zap.Error(err))
			if !sleep(ctx, 500*time.Millisecond) {
				return
			}
			continue
		}
		first, ok := p.q.add(ctx, &m, func(e *entry) {
			pos := decide.Position{Topic: e.msg.Topic, Partition: e.msg.Partition, Offset: e.msg.Offset}
			if read++; read%decodeSample == 0 {
				t0 := time.Now()
				s.opts.classify(&e.item, pos, e.msg.Value)
				decoding += decodeSample * time.Since(t0)
			} else {
				s.opts.classify(&e.item, pos, e.msg.Value)
			}
			if e.item.Bad == nil {
				e.at = e.item.Act.OccurredAt
			}
		})
		if !ok {
			return
		}
		if first {
			notify(gen.wake)
		}
		if decoding >= time.Millisecond || first {
			s.decode(decoding)
			decoding = 0
		}
	}
}

// decodeSample is how often the decoding of a message is timed: the
// decode stage is estimated from every decodeSample-th message, so that
// the clock is not read twice for each.
const decodeSample = 8

// decode charges d to the read lane's decode stage.
func (s *mergedSource) decode(d time.Duration) {
	if s.opts.m != nil {
		s.opts.m.StageSeconds.WithLabelValues("read", stageDecode).Add(d.Seconds())
	}
}

// fail hands Fetch an error that waiting cannot cure; the first one wins.
func (s *mergedSource) fail(err error) {
	select {
	case s.fatal <- err:
	default:
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Fetch returns the next batch of the current generation, taking the next
// generation when the current one ended with nothing handed out.
func (s *mergedSource) Fetch(ctx context.Context, maxMsgs int, wait time.Duration) (*fetched, error) {
	for {
		if s.cur == nil {
			select {
			case s.cur = <-s.gens:
				s.track(s.cur, s.partsFrontier(s.cur))
			case err := <-s.fatal:
				return nil, err
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-s.done:
				select {
				case err := <-s.fatal:
					return nil, err
				default:
					return nil, errors.New("consumer group closed")
				}
			}
		}
		gen := s.cur
		gen.inflight.Add(1)
		f, err := s.merge(ctx, gen, maxMsgs, wait)
		if f == nil {
			s.release(gen)
		} else {
			// The batch is part of the frontier as an open batch before
			// the partitions' frontier moves past it.
			s.opened(f)
			s.track(gen, s.partsFrontier(gen))
		}
		if err != nil || f != nil {
			return f, err
		}
		// The generation ended: what its channels still hold is read again
		// by the partitions' next owners, from the committed offsets.
		s.cur = nil
		s.track(nil, time.Time{})
	}
}

// opened records a batch handed out: until it is committed, it is part of
// this replica's frontier.
func (s *mergedSource) opened(f *fetched) {
	var first time.Time
	for i := range f.items {
		it := &f.items[i]
		if it.Bad == nil && (first.IsZero() || it.Act.OccurredAt.Before(first)) {
			first = it.Act.OccurredAt
		}
	}
	s.mu.Lock()
	s.open[f] = first
	s.mu.Unlock()
}

func (s *mergedSource) closed(f *fetched) {
	s.mu.Lock()
	delete(s.open, f)
	s.mu.Unlock()
	s.release(f.gen)
}

func (s *mergedSource) release(gen *generation) {
	if gen.inflight.Add(-1) == 0 {
		notify(gen.idle)
	}
}

// merge gathers a batch in event-time order; it returns nil and no error
// when the generation ended before the first message.
func (s *mergedSource) merge(ctx context.Context, gen *generation, maxMsgs int, wait time.Duration) (*fetched, error) {
	var f *fetched
	var first time.Time // the earliest event time of f
	var deadline <-chan time.Time
	var stall *time.Timer
	defer func() {
		if stall != nil {
			stall.Stop()
		}
	}()
	for f == nil || len(f.msgs) < maxMsgs {
		select {
		case <-gen.ended:
			return f, nil
		default:
		}
		p, holdUntil := s.next(gen)
		if p != nil {
			if f == nil {
				f = s.newBatch(gen, maxMsgs)
				t := time.NewTimer(wait)
				defer t.Stop()
				deadline = t.C
			}
			e := p.head()
			p.pos++
			p.taken = true
			if !e.at.IsZero() {
				p.last = e.at
			}
			p.caughtUp = e.msg.HighWaterMark > 0 && e.msg.Offset+1 >= e.msg.HighWaterMark
			f.msgs = append(f.msgs, e.msg)
			f.items = append(f.items, e.item)
			if !e.at.IsZero() && (first.IsZero() || e.at.Before(first)) {
				first = e.at
			}
			continue
		}
		// Before waiting, tell the keep-alive where this replica is: the
		// batch in hand is not an open batch yet.
		s.track(gen, earliest(s.partsFrontier(gen), first))
		var stallC <-chan time.Time
		if !holdUntil.IsZero() {
			d := time.Until(holdUntil)
			if stall == nil {
				stall = time.NewTimer(d)
			} else {
				stall.Reset(d)
			}
			stallC = stall.C
		}
		select {
		case <-gen.wake:
		case <-stallC:
		case <-deadline:
			return f, nil
		case <-gen.ended:
			return f, nil
		case err := <-s.fatal:
			// The batch in hand, if any, is redelivered.
			return nil, err
		case <-ctx.Done():
			if f != nil {
				return f, nil
			}
			return nil, ctx.Err()
		}
	}
	return f, nil
}

// next returns the partition whose head goes next, or nil when none may
// go yet; then holdUntil, if not zero, is when a partition holding the
// others back is given up on.
func (s *mergedSource) next(gen *generation) (best *owned, holdUntil time.Time) {
	// One pass refills the partitions that ran out from their queues and
	// finds the earliest head; the partitions still without messages, if
	// any, are looked at after.
	empty := false
	for _, p := range gen.parts {
		if !p.has() {
			p.local, p.pos = p.q.take(p.local), 0
			if !p.has() {
				empty = true
				continue
			}
			p.waitSince = time.Time{}
			if p.stalled {
				p.stalled = false
				s.opts.log.Info("partition delivers again", zap.Int("partition", p.id))
			}
		}
		if best == nil || p.head().at.Before(best.head().at) {
			best = p
		}
	}
	if best == nil {
		return nil, time.Time{}
	}
	behind := gen.parts
	if !empty {
		behind = nil // every partition has messages: none holds the others back
	}
	now := time.Time{}
	for _, p := range behind {
		if p.has() || p.stalled || !p.behind() {
			continue
		}
		if p.taken && !best.head().at.After(p.last) {
			continue
		}
		// p has messages on the broker and none fetched: the head may be
		// later in event time than p's next message.
		if now.IsZero() {
			now = time.Now()
		}
		if p.waitSince.IsZero() {
			p.waitSince = now
		}
		until := p.waitSince.Add(stallTimeout)
		if !now.Before(until) {
			p.stalled = true
			s.opts.log.Warn("partition delivers nothing although the broker has messages; merging without it until it does",
				zap.Int("partition", p.id), zap.Duration("waited", now.Sub(p.waitSince)))
			continue
		}
		if holdUntil.IsZero() || until.Before(holdUntil) {
			holdUntil = until
		}
	}
	if !holdUntil.IsZero() {
		return nil, holdUntil
	}
	if s.mayGo(best.head().at) {
		return best, time.Time{}
	}
	return nil, time.Now().Add(frontierEvery)
}

// unknownFrontier is the frontier of a replica that owns a partition with
// messages on the broker (or not known yet to have none) of which it has
// fetched nothing yet: its next message may be of any event time, so the
// others wait for it (at most stallTimeout, as for one that does not move).
// Published as zero, "nothing to decide", a replica that had just joined
// let the others run ahead by many windows before its first fetch.
var unknownFrontier = time.UnixMilli(1).UTC()

// frontier is the earliest event time this replica has yet to decide: of
// the batches handed out and not committed, and of the partitions' next
// messages; unknownFrontier while a partition that is behind has delivered
// nothing yet; zero when it has nothing to decide.
func (s *mergedSource) frontier(gen *generation) time.Time {
	return earliest(s.openFrontier(), s.partsFrontier(gen))
}

// openFrontier is the earliest event time of the batches handed out and
// not committed; zero when there is none.
func (s *mergedSource) openFrontier() time.Time {
	var f time.Time
	s.mu.Lock()
	for _, t := range s.open {
		f = earliest(f, t)
	}
	s.mu.Unlock()
	return f
}

// partsFrontier is the frontier of gen's partitions: the earliest event
// time of their next messages, unknownFrontier while one that is behind
// has delivered nothing yet, zero when none has anything to decide. Only
// the caller of Fetch calls it.
func (s *mergedSource) partsFrontier(gen *generation) time.Time {
	var f time.Time
	for _, p := range gen.parts {
		switch {
		case p.has():
			f = earliest(f, p.head().at)
		case p.taken && p.behind():
			f = earliest(f, p.last)
		case !p.taken && !p.stalled && p.behind():
			return unknownFrontier
		}
	}
	return f
}

// earliest returns the earlier of two frontiers, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// behind reports whether the broker has messages of p that were not
// fetched yet (unknown counts as behind).
func (p *owned) behind() bool {
	if p.taken {
		return !p.caughtUp
	}
	return p.lag.Load() != 0
}

// Commit commits, per partition, the offset after the batch's last message.
// Batches are committed in the order they were fetched, so this is the
// highest contiguous offset completed.
func (s *mergedSource) Commit(_ context.Context, f *fetched) error {
	next := map[int]int64{}
	for i := range f.msgs {
		m := &f.msgs[i]
		next[m.Partition] = max(next[m.Partition], m.Offset+1)
	}
	// A generation that ended still takes commits until the member
	// rejoins: the batches handed out are committed before it does.
	err := f.gen.g.CommitOffsets(map[string]map[int]int64{s.opts.topic: next})
	s.closed(f)
	if err != nil {
		select {
		case <-f.gen.ended:
			return fmt.Errorf("%w: %w", errRevoked, err)
		default:
		}
		return fmt.Errorf("commit offsets: %w", err)
	}
	return nil
}

// Member reports whether this member holds a generation of the group now:
// false before it first joined and while a rebalance it takes part in
// has not ended.
func (s *mergedSource) Member() bool {
	g := s.current.Load()
	if g == nil {
		return false
	}
	select {
	case <-g.ended:
		return false
	default:
		return true
	}
}

// newBatch returns an empty batch of gen, on the buffers of a recycled
// one when there is one.
func (s *mergedSource) newBatch(gen *generation, maxMsgs int) *fetched {
	select {
	case f := <-s.spare:
		if cap(f.msgs) >= maxMsgs && cap(f.items) >= maxMsgs {
			return &fetched{gen: gen, msgs: f.msgs[:0], items: f.items[:0], enc: f.enc}
		}
	default:
	}
	return &fetched{gen: gen, msgs: make([]kafka.Message, 0, maxMsgs), items: make([]decide.Item, 0, maxMsgs)}
}

// Recycle keeps f's buffers for a later batch, up to a few batches'.
func (s *mergedSource) Recycle(f *fetched) {
	select {
	case s.spare <- &fetched{msgs: f.msgs, items: f.items, enc: f.enc}:
	default:
	}
}

// waiting reports, while this member holds a generation, when it got it
// and whether one of its partitions had messages on the broker past its
// assigned offset: input that waits for this member.
func (s *mergedSource) waiting() (since time.Time, input bool) {
	g := s.current.Load()
	if g == nil {
		return time.Time{}, false
	}
	select {
	case <-g.ended:
		return time.Time{}, false
	default:
	}
	for _, p := range g.parts {
		if p.lag.Load() > 0 {
			return g.started, true
		}
	}
	return g.started, false
}

// Close leaves the group and stops every partition reader.
func (s *mergedSource) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	if s.kaDone != nil {
		<-s.kaDone
		// Hold the other replicas back no longer.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _, _ = s.opts.frontiers.Advance(ctx, s.member, time.Time{}, frontierTTL)
		cancel()
	}
	err := s.cg.Close()
	<-s.done
	return err
}

// Package replay runs recorded action events through the decision code of
// the live pipeline (package decide) with an in-process rate store driven in
// event time, to show what a configuration would have done: which breakers
// would have tripped, when, and how many actions they would have held.
//
// The store's clock is the watermark, the latest occurred_at seen so far, so
// that trip times are event times and a replay of the same input in the same
// batches decides exactly like the live daemon.
package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/breakwater/breakwater/appeals"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/store"
)

// Store counts batches and decides breakers; store.Memory and store.Redis
// are both one.
type Store interface {
	// Decide counts a batch and decides its breakers.
	Decide(ctx context.Context, b decide.Batch) (decide.Result, error)
	// Update applies a change to one breaker (used for assumed resets).
	Update(ctx context.Context, scope breaker.Scope, fn func(breaker.Status, time.Time) (breaker.Status, error)) (breaker.Transition, error)
	// Rebuild declares the records of a partition complete from floor on.
	Rebuild(ctx context.Context, topic string, partition int, floor int64, recs []decide.Record) error
}

var (
	_ Store = (*store.Memory)(nil)
	_ Store = (*store.Redis)(nil)
)

// Options configure a replay.
type Options struct {
	// Config is the validated configuration, the same the daemon uses.
	Config config.Config
	// BatchSize is how many events are decided together; 0 means
	// Config.Kafka.BatchSize.
	BatchSize int
	// Batches, when set, gives the size of each batch in turn (n counts
	// from 0), overriding BatchSize, so that the batches of a live run can
	// be replayed exactly. Sizes are kept between 1 and 100000.
	Batches func(n int) int
	// Store decides the batches; nil means a store.Memory on the watermark.
	Store Store
	// AssumeResetAfter, when positive, resets a tripped breaker this long
	// (in event time) after its trip, as a person would; replays otherwise
	// keep tripped breakers open, like the daemon.
	AssumeResetAfter time.Duration
	// OnDecision, when set, is called for every event in input order once
	// its batch is decided. seq counts events from 1; actionID is the
	// event's action_id, or the one readable from a dead letter, or "".
	OnDecision func(seq int64, actionID string, it *decide.Item) error
	// Progress, when set, is called about every ProgressEvery of wall time.
	Progress func(Progress)
	// ProgressEvery defaults to one second.
	ProgressEvery time.Duration
	// OnCounts, when set, is called for every scope and fine bucket of
	// every batch with the scope's window count and baseline after the
	// bucket was added, the figures the breaker decides on.
	OnCounts func(scope breaker.Scope, p breaker.Policy, atMillis int64, c breaker.Counts)
	// OnBucket, when set, is called for every scope and fine bucket of
	// every batch with the bucket's number of actions, as the store
	// counted them (what the evidence detector counts), and their summed
	// weight in breaker.Milli units (what the window counts).
	OnBucket func(scope breaker.Scope, p breaker.Policy, atMillis, count, weight int64)
	// Appeals, when set, feeds appeal outcomes in event time: before each
	// batch, the outcomes decided up to its watermark are joined to the
	// actions the replay gated and judged (package appeals), and a rule
	// whose precision fell below the floor trips (overturn_rate), as the
	// live daemon's appeals consumer does.
	Appeals AppealSource
	// AppealsPolicy judges the outcomes; zero means appeals.DefaultPolicy.
	AppealsPolicy appeals.Policy
	// AppealsJoinMax is the most gated actions kept joinable; 0 means
	// DefaultJoinMax.
	AppealsJoinMax int
	// ChartSlots is the number of time slots of each scope's series; 0
	// means 480. The slots widen as the input goes on, so memory does not
	// grow with the input.
	ChartSlots int
}

// maxBatch bounds a batch, ten times the daemon's largest.
const maxBatch = 100000

func (o *Options) validate() error {
	if err := o.Config.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if o.BatchSize < 0 || o.BatchSize > maxBatch {
		return fmt.Errorf("replay: BatchSize must be between 1 and %d, got %d", maxBatch, o.BatchSize)
	}
	if o.AssumeResetAfter < 0 {
		return fmt.Errorf("replay: AssumeResetAfter must not be negative, got %v", o.AssumeResetAfter)
	}
	if o.ChartSlots < 0 {
		return fmt.Errorf("replay: ChartSlots must not be negative, got %d", o.ChartSlots)
	}
	if o.Appeals != nil && o.AppealsPolicy != (appeals.Policy{}) {
		if err := o.AppealsPolicy.Validate(); err != nil {
			return fmt.Errorf("replay: AppealsPolicy: %w", err)
		}
	}
	return nil
}

// Progress is how far a replay has got.
type Progress struct {
	// Events counts the events decided so far.
	Events int64
	// Elapsed is the wall time since the replay began.
	Elapsed time.Duration
	// Watermark is the latest event time seen.
	Watermark time.Time
}

// Replay runs recorded events through the breakers.
type Replay struct {
	opts  Options
	gate  *decide.Gate
	store Store

	watermark time.Time
	committed map[partKey]int64
	scopes    map[breaker.Scope]*scopeTrack
	policies  map[breaker.Scope]breaker.Policy
	windows   map[breaker.Scope]*window
	chart     *chart
	sum       Summary
	appeal    *appealState
}

type partKey struct {
	topic     string
	partition int
}

// New returns a replay for opts.
func New(opts Options) (*Replay, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = opts.Config.Kafka.BatchSize
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = time.Second
	}
	if opts.ChartSlots == 0 {
		opts.ChartSlots = 480
	}
	r := &Replay{
		opts: opts, gate: decide.New(opts.Config),
		committed: map[partKey]int64{},
		scopes:    map[breaker.Scope]*scopeTrack{},
		policies:  map[breaker.Scope]breaker.Policy{},
		windows:   map[breaker.Scope]*window{},
		chart:     newChart(opts.ChartSlots),
		appeal:    newAppealState(opts),
	}
	r.store = opts.Store
	if r.store == nil {
		r.store = store.NewMemory(r.Now)
	}
	return r, nil
}

// Now returns the watermark: the latest event time seen so far. It is the
// clock of the default store.
func (r *Replay) Now() time.Time { return r.watermark }

// Summary is what a replay found.
type Summary struct {
	// Actions counts every input event, dead letters included.
	Actions    int64 `json:"actions"`
	Gated      int64 `json:"gated"`
	Held       int64 `json:"held"`
	DeadLetter int64 `json:"dead_letter"`
	// Batches counts the store calls.
	Batches int64 `json:"batches"`
	// From and To are the earliest and latest event times of the input.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// Seconds is the wall time of the replay and EventsPerSecond its speed.
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
	// AssumeResetAfter is the simulated human reset delay, if any.
	AssumeResetAfter string `json:"assume_reset_after,omitempty"`
	// Scopes lists every breaker scope seen, those that tripped first.
	Scopes []ScopeSummary `json:"scopes"`
	// Labels is the score against labelled input, when labels were given.
	Labels *LabelSummary `json:"labels,omitempty"`
	// Appeals is what the appeals signal did, when outcomes were given.
	Appeals *AppealsSummary `json:"appeals,omitempty"`
	// SlotWidth is the width of one chart slot and Origin the start of the
	// first.
	SlotWidth time.Duration `json:"-"`
	Origin    time.Time     `json:"-"`
}

// ScopeSummary is what one breaker did.
type ScopeSummary struct {
	// Scope is the breaker.
	Scope breaker.Scope `json:"scope"`
	// Actions counts the actions that count towards the scope, Gated those
	// of them that were gated, and Held those held while this scope's
	// breaker was holding (a wider or narrower scope may hold the rest).
	Actions int64 `json:"actions"`
	Gated   int64 `json:"gated"`
	Held    int64 `json:"held"`
	// Trips are the moments the breaker opened.
	Trips []Trip `json:"trips"`
	// Resets are the assumed human resets (see Options.AssumeResetAfter).
	Resets []time.Time `json:"resets,omitempty"`
	// State is the breaker's state at the end.
	State breaker.State `json:"state"`
	// PeakWindow is the highest weighted window count seen.
	PeakWindow float64 `json:"peak_window"`
	// Closeness is the highest ratio of the window count to the nearest
	// trip threshold seen (1 or more means it passed one).
	Closeness float64 `json:"closeness"`
	// Policy is the scope's thresholds.
	Policy breaker.Policy `json:"-"`
	// Series is the scope's chart data.
	Series []Slot `json:"-"`
}

// Trip is one opening of a breaker.
type Trip struct {
	// At is the event time (the watermark) of the trip.
	At time.Time `json:"at"`
	// Reason is the threshold that tripped (max_actions or baseline_factor).
	Reason string `json:"reason"`
	// Generation is the breaker's generation after the trip; with the
	// scope it names the incident.
	Generation uint64 `json:"generation"`
	// Window and Baseline are the counts the trip was decided on.
	Window   float64 `json:"window_count"`
	Baseline float64 `json:"baseline"`
	// Onset is the trip's estimated onset (breaker.Status.Onset).
	Onset time.Time `json:"onset,omitzero"`
}

type scopeTrack struct {
	sum    ScopeSummary
	status breaker.Status
	series []Slot
}

// Run replays every event of src and returns the summary. Classifying
// (decoding) the next batch overlaps with deciding the current one, on a
// goroutine of its own that cuts the batch in parts decoded side by side,
// one per processor; src is read, and the batches are decided, on the
// caller's goroutine one after the other in the order of src, so a replay
// gives the same answer as before. src is read one batch ahead of the
// decisions.
func (r *Replay) Run(ctx context.Context, src Source) (Summary, error) {
	start := time.Now()
	nextProgress := start.Add(r.opts.ProgressEvery)
	toClassify := make(chan *classified, 1)
	classifiedc := make(chan *classified, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range toClassify {
			r.classify(b)
			classifiedc <- b
		}
	}()
	defer func() {
		close(toClassify)
		wg.Wait()
	}()
	bufs := [2]classified{}
	r.read(src, &bufs[0], 0)
	toClassify <- &bufs[0]
	var (
		pending []int
		seq     int64
	)
	for n := 1; ; n++ {
		b := <-classifiedc
		if b.err == nil && !b.eof {
			// The next batch is read and classified while this one is
			// decided.
			next := &bufs[n%2]
			r.read(src, next, n)
			toClassify <- next
		}
		if err := ctx.Err(); err != nil {
			r.drain(b, classifiedc)
			return r.sum, err
		}
		if b.err != nil {
			return r.sum, b.err
		}
		items := b.items
		for i := range items {
			// The store's clock: the latest event time of the batch
			// and those before it.
			if it := &items[i]; it.Bad == nil && it.Act.OccurredAt.After(r.watermark) {
				r.watermark = it.Act.OccurredAt
			}
		}
		if len(items) > 0 {
			if err := r.appeals(ctx, r.watermark); err != nil {
				r.drain(b, classifiedc)
				return r.sum, err
			}
			pending = decide.Pending(items, pending)
			if err := r.decide(ctx, items, pending); err != nil {
				r.drain(b, classifiedc)
				return r.sum, err
			}
			r.appeal.forwarded(items)
			for i := range items {
				seq++
				r.account(&items[i])
				if r.opts.OnDecision != nil {
					if err := r.opts.OnDecision(seq, b.ids[i], &items[i]); err != nil {
						r.drain(b, classifiedc)
						return r.sum, err
					}
				}
			}
		}
		if r.opts.Progress != nil {
			if now := time.Now(); now.After(nextProgress) {
				nextProgress = now.Add(r.opts.ProgressEvery)
				r.opts.Progress(Progress{Events: r.sum.Actions, Elapsed: now.Sub(start), Watermark: r.watermark})
			}
		}
		if b.eof {
			break
		}
	}
	// The outcomes decided after the last action are judged at its time.
	if err := r.appeals(ctx, time.Time{}); err != nil {
		return r.sum, err
	}
	return r.finish(time.Since(start)), nil
}

// drain waits for the batch being classified after b, if one is, so that
// the classifying goroutine is idle when Run returns.
func (r *Replay) drain(b *classified, c <-chan *classified) {
	if b.err == nil && !b.eof {
		<-c
	}
}

// classified is one batch read from the source, then classified.
type classified struct {
	vals  [][]byte // the values, copies in arena
	pos   []decide.Position
	arena []byte
	items []decide.Item
	ids   []string // the dead letters' ids, "" for the others
	eof   bool     // the source ended after this batch
	err   error    // reading the source failed after this batch
}

// read reads batch n from src into b, copying the values (a source may
// reuse its buffer on the next read).
func (r *Replay) read(src Source, b *classified, n int) {
	size := r.opts.BatchSize
	if r.opts.Batches != nil {
		size = min(max(r.opts.Batches(n), 1), maxBatch)
	}
	b.vals, b.pos, b.arena = b.vals[:0], b.pos[:0], b.arena[:0]
	b.eof, b.err = false, nil
	for len(b.vals) < size {
		v, pos, err := src.Next()
		if errors.Is(err, io.EOF) {
			b.eof = true
			return
		}
		if err != nil {
			b.err = err
			return
		}
		from := len(b.arena)
		b.arena = append(b.arena, v...)
		b.vals = append(b.vals, b.arena[from:len(b.arena):len(b.arena)])
		b.pos = append(b.pos, pos)
	}
}

// classify decodes and classifies the values of b.
func (r *Replay) classify(b *classified) {
	k := len(b.vals)
	if cap(b.items) < k {
		b.items = make([]decide.Item, k)
		b.ids = make([]string, k)
	}
	b.items, b.ids = b.items[:k], b.ids[:k]
	// Decoding is most of a replay's work: the batch is cut in parts
	// decoded side by side, one per processor, each item in its own slot.
	parts := min(runtime.GOMAXPROCS(0), k/minClassifyPart)
	if parts <= 1 {
		r.classifyRange(b, 0, k)
		return
	}
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() { r.classifyRange(b, p*k/parts, (p+1)*k/parts) })
	}
	wg.Wait()
}

// minClassifyPart is the fewest values a part of a batch classified on a
// goroutine of its own has.
const minClassifyPart = 256

// classifyRange decodes and classifies the values from..to-1 of b.
func (r *Replay) classifyRange(b *classified, from, to int) {
	for i := from; i < to; i++ {
		it := &b.items[i]
		v := b.vals[i]
		r.gate.Classify(it, b.pos[i], v)
		b.ids[i] = ""
		if it.Bad != nil {
			b.ids[i] = deadLetterID(v)
		}
	}
}

// decide asks the store for the pending items' decisions, as the live
// pipeline does: answers from records of an earlier delivery (which a
// replay in increasing offsets never meets) are applied the same way.
func (r *Replay) decide(ctx context.Context, items []decide.Item, pending []int) error {
	if err := r.resets(ctx); err != nil {
		return err
	}
	var known []decide.Record
	for len(pending) > 0 {
		chunk, rest := decide.Chunk(items, pending, known)
		b := r.gate.Batch(items, chunk, r.committedOffset)
		for _, sc := range b.Scopes {
			if _, ok := r.policies[sc.Scope]; !ok {
				r.policies[sc.Scope] = sc.Policy
			}
		}
		res, err := r.store.Decide(ctx, b)
		if err != nil {
			return fmt.Errorf("decide batch %d: %w", r.sum.Batches+1, err)
		}
		if len(res.Rebuild) > 0 {
			// A store that has never seen a partition asks for the records of
			// its earlier deliveries. A replay reads its input once, in
			// increasing offsets, and wrote nothing before: there are none.
			for _, p := range res.Rebuild {
				if err := r.store.Rebuild(ctx, p.Topic, p.Partition, p.First, nil); err != nil {
					return fmt.Errorf("decide batch %d: %w", r.sum.Batches+1, err)
				}
			}
			continue
		}
		r.sum.Batches++
		if len(res.Replayed) > 0 {
			known = append(known, res.Replayed...)
			pending = decide.ApplyRecords(items, pending, known)
			continue
		}
		decide.Apply(items, chunk, res)
		for i := range b.Scopes {
			r.count(b, &b.Scopes[i], res)
		}
		for i := range res.Scopes {
			r.observe(&res.Scopes[i], &b.Scopes[i])
		}
		pending = rest
	}
	for i := range items {
		p := partKey{items[i].Pos.Topic, items[i].Pos.Partition}
		if c, ok := r.committed[p]; !ok || items[i].Pos.Offset+1 > c {
			r.committed[p] = items[i].Pos.Offset + 1
		}
	}
	return nil
}

func (r *Replay) committedOffset(topic string, partition int) int64 {
	if c, ok := r.committed[partKey{topic, partition}]; ok {
		return c
	}
	return -1
}

func (r *Replay) track(s breaker.Scope) *scopeTrack {
	t := r.scopes[s]
	if t == nil {
		t = &scopeTrack{sum: ScopeSummary{Scope: s, Trips: []Trip{}}, status: breaker.Initial(), series: make([]Slot, r.chart.slots)}
		r.scopes[s] = t
		r.chart.series = append(r.chart.series, &t.series)
	}
	return t
}

// window is the replay's own ring of one scope's counts, fed the same
// buckets as the store, for the charts and the suggestions: the store
// reports counts only at the end of a batch.
type window struct {
	w    *breaker.Window
	grid breaker.Grid
}

// count adds a batch's buckets of one scope that the store counted to its
// window and samples the counts after each.
func (r *Replay) count(b decide.Batch, sc *decide.ScopeCounts, res decide.Result) {
	g := sc.Policy.Grid()
	w := r.windows[sc.Scope]
	if w == nil || w.grid != g {
		w = &window{w: breaker.NewWindow(g), grid: g}
		r.windows[sc.Scope] = w
	}
	t := r.track(sc.Scope)
	t.sum.Policy = sc.Policy
	all := breaker.CountsHeld(t.status)
	for _, bk := range sc.Buckets {
		if !all && !b.Counted(bk, res) {
			continue
		}
		w.w.Add(bk.At, bk.Weight)
		if r.opts.OnBucket != nil {
			r.opts.OnBucket(sc.Scope, sc.Policy, bk.At, bk.Count, bk.Weight)
		}
		c := w.w.Counts(bk.At)
		if r.opts.OnCounts != nil {
			r.opts.OnCounts(sc.Scope, sc.Policy, bk.At, c)
		}
		t.sum.PeakWindow = max(t.sum.PeakWindow, c.Window)
		t.sum.Closeness = max(t.sum.Closeness, closeness(sc.Policy, c))
		if s, ok := r.chart.slot(time.UnixMilli(bk.At)); ok {
			sl := &t.series[s]
			sl.Samples++
			sl.Window = max(sl.Window, c.Window)
			sl.Baseline = c.Baseline
			sl.BaselineReady = c.BaselineReady
		}
	}
}

// observe records one scope's status after a batch, and its trips.
func (r *Replay) observe(sr *decide.ScopeResult, sc *decide.ScopeCounts) {
	t := r.track(sr.Scope)
	t.sum.Policy = sc.Policy
	prev := t.status
	t.status = sr.Status
	if sr.Changed && sr.Status.Auto == breaker.Open && (prev.Auto != breaker.Open || sr.Status.TrippedAt != prev.TrippedAt) {
		t.sum.Trips = append(t.sum.Trips, Trip{
			At: r.watermark, Reason: sr.Status.Reason, Generation: sr.Status.Generation,
			Window: sr.Counts.Window, Baseline: sr.Counts.Baseline, Onset: sr.Status.Onset,
		})
	}
}

// closeness is the ratio of the window count to the nearest threshold that
// could trip on it.
func closeness(p breaker.Policy, c breaker.Counts) float64 {
	if p.Disabled {
		return 0
	}
	limit := 0.0
	if p.MaxActions > 0 {
		limit = p.MaxActions
	}
	if p.Factor > 0 && c.BaselineReady {
		if f := max(p.Factor*c.Baseline, p.MinActions); limit == 0 || f < limit {
			limit = f
		}
	}
	if limit <= 0 {
		return 0
	}
	return c.Window / limit
}

// account adds one decided item to the totals and its scopes.
func (r *Replay) account(it *decide.Item) {
	r.sum.Actions++
	switch it.Decision {
	case decide.Gated:
		r.sum.Gated++
	case decide.Held:
		r.sum.Held++
	default:
		r.sum.DeadLetter++
		return
	}
	at := it.Act.OccurredAt
	if r.sum.From.IsZero() || at.Before(r.sum.From) {
		r.sum.From = at
	}
	if at.After(r.sum.To) {
		r.sum.To = at
	}
	slot, ok := r.chart.slot(at)
	for _, s := range it.Scopes[:it.NScopes] {
		t := r.track(s)
		t.sum.Actions++
		var sl *Slot
		if ok {
			sl = &t.series[slot]
			sl.Actions++
		}
		if it.Decision == decide.Held && t.status.Holds() {
			t.sum.Held++
			if sl != nil {
				sl.Held++
			}
		} else if it.Decision == decide.Gated {
			t.sum.Gated++
		}
	}
}

// resets applies the assumed human resets that are due at the watermark.
func (r *Replay) resets(ctx context.Context) error {
	d := r.opts.AssumeResetAfter
	if d <= 0 {
		return nil
	}
	for s, t := range r.scopes {
		if t.status.State != breaker.Open || len(t.sum.Trips) == 0 {
			continue
		}
		trip := t.sum.Trips[len(t.sum.Trips)-1]
		if r.watermark.Sub(trip.At) < d {
			continue
		}
		p := r.policies[s]
		tr, err := r.store.Update(ctx, s, func(st breaker.Status, now time.Time) (breaker.Status, error) {
			return breaker.Reset(p, st, "replay", "assume-reset-after", now), nil
		})
		if err != nil {
			return fmt.Errorf("reset %s: %w", s, err)
		}
		t.status = tr.To
		t.sum.Resets = append(t.sum.Resets, r.watermark)
	}
	return nil
}

func (r *Replay) finish(elapsed time.Duration) Summary {
	s := r.sum
	s.Seconds = elapsed.Seconds()
	if s.Seconds > 0 {
		s.EventsPerSecond = float64(s.Actions) / s.Seconds
	}
	if r.opts.AssumeResetAfter > 0 {
		s.AssumeResetAfter = r.opts.AssumeResetAfter.String()
	}
	s.SlotWidth, s.Origin = r.chart.width, r.chart.origin
	if a := r.appeal; a != nil {
		as := a.sum
		if m, ok := a.src.(interface{ Malformed() (int64, []string) }); ok {
			as.Malformed, _ = m.Malformed()
		}
		s.Appeals = &as
	}
	s.Scopes = make([]ScopeSummary, 0, len(r.scopes))
	for _, t := range r.scopes {
		ss := t.sum
		ss.State = t.status.State
		ss.Series = r.chart.trim(t.series)
		s.Scopes = append(s.Scopes, ss)
	}
	sort.Slice(s.Scopes, func(i, j int) bool {
		a, b := s.Scopes[i], s.Scopes[j]
		if (len(a.Trips) > 0) != (len(b.Trips) > 0) {
			return len(a.Trips) > 0
		}
		if a.Closeness != b.Closeness {
			return a.Closeness > b.Closeness
		}
		return a.Scope < b.Scope
	})
	return s
}

// deadLetterID returns the action_id of a dead-lettered value when one can
// be read, or "".
func deadLetterID(v []byte) string {
	var a struct {
		ActionID json.RawMessage `json:"action_id"`
	}
	if json.Unmarshal(v, &a) != nil {
		return ""
	}
	var id string
	if json.Unmarshal(a.ActionID, &id) != nil {
		return ""
	}
	return id
}

// Tripped returns the scopes that tripped, in the order of s.Scopes.
func (s Summary) Tripped() []ScopeSummary {
	return slices.DeleteFunc(slices.Clone(s.Scopes), func(x ScopeSummary) bool { return len(x.Trips) == 0 })
}

// Sizes returns an Options.Batches that replays the given batch sizes in
// turn (for example the sizes of a live run's batches, from the daemon's
// batch reports), then batches of the last size.
func Sizes(sizes []int) func(n int) int {
	return func(n int) int {
		if len(sizes) == 0 {
			return 1
		}
		return sizes[min(n, len(sizes)-1)]
	}
}

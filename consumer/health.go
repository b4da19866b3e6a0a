// Health and outage state: batches in flight and their last sign of
// life, pauses on the rate store, store outages and the input lag.

package consumer

import (
	"sync"
	"time"
)

// progress tracks the batches in flight and the last sign of life of any
// of them: a finished store call, write, commit or retry attempt.
type progress struct {
	mu       sync.Mutex // guards the fields below
	inflight int
	last     time.Time
	lastDone time.Time // when a batch last finished
}

func (g *progress) start() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inflight == 0 {
		g.last = time.Now()
	}
	g.inflight++
}

func (g *progress) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight--
	g.last = time.Now()
	g.lastDone = g.last
}

// finished returns when a batch last finished; zero if none did.
func (g *progress) finished() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastDone
}

func (g *progress) beat() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.last = time.Now()
}

// idle returns how long the batches in flight went without a sign of
// life, zero when none is in flight.
func (g *progress) idle(now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inflight == 0 {
		return 0
	}
	return max(now.Sub(g.last), 0)
}

// setPaused counts a retry loop that began or stopped waiting for the rate
// store, and keeps breakwater_paused in step.
func (p *Pipeline) setPaused(on bool) {
	p.pause.Lock()
	defer p.pause.Unlock()
	switch {
	case on:
		if p.pause.n == 0 {
			p.pause.since = time.Now()
			p.m.Paused.Set(1)
		}
		p.pause.n++
	case p.pause.n > 0:
		p.pause.n--
		if p.pause.n == 0 {
			p.pause.since = time.Time{}
			p.m.Paused.Set(0)
		}
	}
}

// Health is what the pipeline tells the health endpoints.
type Health struct {
	// PausedSince is when the pipeline paused because the rate store does
	// not answer; zero while it is not paused. A paused pipeline keeps its
	// offsets and resumes by itself.
	PausedSince time.Time
	// Member is whether the pipeline holds a generation of the consumer
	// group now: false before it first joined and during a rebalance.
	Member bool
	// Stalled is how long the batches in flight went without any attempt
	// finishing when that is longer than kafka.stall_timeout, or how long
	// a member whose partitions had input waiting decided nothing since it
	// got them when that is longer than twice kafka.stall_timeout: the
	// pipeline is wedged and needs a restart. Zero otherwise.
	Stalled time.Duration
	// StallReason says which of the two it is.
	StallReason string
	// WaitingFor names the replica whose frontier this one waits for now
	// before it decides more of a backlog (it is more than the shortest
	// window ahead of it in event time); "" when it does not wait.
	WaitingFor string
}

// Health returns the pipeline's health at now.
func (p *Pipeline) Health(now time.Time) Health {
	var h Health
	p.pause.Lock()
	h.PausedSince = p.pause.since
	p.pause.Unlock()
	if s := p.membership.Load(); s != nil {
		h.Member = s.Member()
		h.WaitingFor = s.waitingFor()
	}
	if !h.PausedSince.IsZero() {
		return h // a pause is not a wedge: it resumes by itself
	}
	if idle := p.progress.idle(now); idle > p.cfg.Kafka.StallTimeout {
		h.Stalled, h.StallReason = idle, "a batch in flight made no progress for longer than kafka.stall_timeout"
		return h
	}
	if s := p.membership.Load(); s != nil {
		since, input := s.waiting()
		// Twice the timeout: a member may wait up to kafka.stall_timeout
		// for the other replicas' frontier before it decides.
		if idle := now.Sub(since); input && idle > 2*p.cfg.Kafka.StallTimeout && p.progress.finished().Before(since) {
			h.Stalled, h.StallReason = idle, "the input waits and this member decided nothing since it got its partitions, for longer than twice kafka.stall_timeout"
		}
	}
	return h
}

func (p *Pipeline) storeDownSince(at time.Time, policy string) {
	p.health.Lock()
	defer p.health.Unlock()
	if p.health.storeDown.IsZero() {
		p.health.storeDown, p.health.storeSince = at, at
	}
	p.health.policy = policy
}

func (p *Pipeline) storeUp() {
	p.health.Lock()
	p.health.storeDown = time.Time{}
	p.health.Unlock()
}

// StoreOutage reports whether the rate store is unreachable now, since
// when, and what the pipeline does meanwhile (pause or hold); once it
// answers again, down is false and since is the start of the last outage.
func (p *Pipeline) StoreOutage() (down bool, since time.Time, policy string) {
	p.health.Lock()
	defer p.health.Unlock()
	return !p.health.storeDown.IsZero(), p.health.storeSince, p.health.policy
}

// Lag returns the input messages beyond the last committed batch, summed
// over the partitions this member consumed, as the broker reported them
// when the batches were fetched.
func (p *Pipeline) Lag() int64 {
	p.health.Lock()
	defer p.health.Unlock()
	var n int64
	for _, l := range p.health.lag {
		n += l
	}
	return n
}

// The batch loop: Run starts the writer stage and feeds it batches fetched
// and decided in order; fetch takes the next batch from the source.

package consumer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Run consumes until ctx is cancelled or the pipeline cannot go on. The
// batches in flight when ctx is cancelled are finished and committed within
// kafka.drain_timeout, counted from the cancellation, before Run returns
// and the member leaves the group; a batch that cannot finish by then (a
// paused store, a broker that does not answer) is left uncommitted and
// redelivered. Run returns nil after a shutdown, and an error only when it
// stopped by itself.
//
// Three stages overlap: while one batch is committed, the next is written
// and the one after it fetched, decided and encoded. Writes and commits
// each stay in batch order, and a batch is committed only after its write
// was acknowledged, so the order per key on the output topics is the
// input's and a committed offset never covers an unwritten action; a batch
// decided but not yet written when the process stops is redelivered and
// answered from the store's records.
func (p *Pipeline) Run(ctx context.Context) error {
	so := sourceOptionsFor(p.opts)
	so.classify = p.gate.Classify
	src, err := newMergedSource(so)
	if err != nil {
		return err
	}
	p.src = src
	p.membership.Store(src)
	defer func() {
		p.transport.CloseIdleConnections()
		if err := p.src.Close(); err != nil {
			p.log.Warn("leave consumer group", zap.Error(err))
		}
	}()
	// The batches run on work, which outlives ctx by the drain timeout:
	// a batch decided when shutdown begins is still written and committed.
	// Retry loops see stop instead and give up at once.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var drain *time.Timer
	var drainMu sync.Mutex // guards drain
	stopDrain := context.AfterFunc(ctx, func() {
		drainMu.Lock()
		drain = time.AfterFunc(p.drainTimeout, cancelWork)
		drainMu.Unlock()
	})
	defer func() {
		stopDrain()
		drainMu.Lock()
		if drain != nil {
			drain.Stop()
		}
		drainMu.Unlock()
	}()
	b := batchRun{ctx: work, stop: ctx.Done()}
	// One decided batch waits while the one before it is written, and one
	// written batch while the one before it is committed.
	jobs := make(chan *job, 1)
	toCommit := make(chan *job, 1)
	failed := make(chan error, 1) // the first failure of the write or commit stage
	var stopped atomic.Bool       // a stage failed: write and commit nothing more
	fail := func(err error) {
		stopped.Store(true)
		select {
		case failed <- err:
		default:
		}
	}
	wrote, committed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(wrote)
		defer close(toCommit)
		wl := newLane(p.m, "write", stageWait, stageWrite, stageHandoff)
		for j := range jobs {
			if stopped.Load() {
				// Batches decided after a failure are redelivered.
				p.progress.done()
				continue
			}
			wl.start(j.inHand)
			wl.charge(stageWait)
			if err := p.write(b, j); err != nil {
				p.progress.done()
				fail(err)
				continue
			}
			wl.charge(stageWrite)
			toCommit <- j
			wl.charge(stageHandoff)
		}
	}()
	go func() {
		defer close(committed)
		cl := newLane(p.m, "commit", stageWait, stageCommit, stageAccount)
		for j := range toCommit {
			if stopped.Load() {
				// Written, not committed: redelivered, and answered
				// from the records.
				p.progress.done()
				continue
			}
			cl.start(j.inHand)
			cl.charge(stageWait)
			if err := p.finish(b, j, cl); err != nil {
				p.progress.done()
				fail(err)
			}
		}
	}()
	err = p.consume(ctx, b, jobs, failed)
	close(jobs)
	<-wrote
	<-committed
	select {
	case werr := <-failed:
		if err == nil {
			err = werr
		}
	default:
	}
	if err != nil && ctx.Err() != nil {
		p.log.Warn("stopped before a batch was committed; it will be redelivered", zap.Error(err))
		return nil
	}
	return err
}

// batchRun is what a batch runs with: ctx, which survives the start of a
// shutdown until the drain timeout, and stop, closed when shutdown begins,
// on which retry loops (a paused store) give up and leave the offsets
// uncommitted.
type batchRun struct {
	ctx  context.Context
	stop <-chan struct{}
}

// stopping reports whether shutdown began or the batch's time is up.
func (b batchRun) stopping() bool {
	select {
	case <-b.stop:
		return true
	default:
		return b.ctx.Err() != nil
	}
}

// consume fetches and decides batches and hands them to the writer stage
// until ctx is cancelled or a stage fails.
func (p *Pipeline) consume(ctx context.Context, b batchRun, jobs chan<- *job, written <-chan error) error {
	dl := newLane(p.m, "decide", stageFetch, stageStore, stageDecide, stageEncode, stageHandoff)
	for {
		select {
		case err := <-written:
			return err
		default:
		}
		f, err := p.fetch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if f == nil || len(f.msgs) == 0 {
			continue
		}
		inHand := time.Now()
		dl.start(inHand)
		dl.chargeUntil(stageFetch, inHand)
		p.progress.start()
		j, err := p.prepare(b, f)
		if err != nil {
			p.progress.done()
			return err
		}
		j.inHand = inHand
		dl.split(stageStore, j.res.storeTime, stageDecide)
		j.out = p.encode(&j.f.enc, j.msgs, j.items, j.batch)
		dl.charge(stageEncode)
		select {
		case jobs <- j:
		case err := <-written:
			p.progress.done()
			return err
		}
		dl.charge(stageHandoff)
	}
}

// fetch returns the next batch of the partitions this member owns, merged
// by event time: it waits for a first message, then up to
// kafka.batch_wait for more. The source retries what a retry can cure (a
// broker restart, a rebalance, a coordinator move); fetch returns an error
// only for what waiting cannot cure (a denied authorisation, a
// misconfigured topic or group) or when ctx ends.
func (p *Pipeline) fetch(ctx context.Context) (*fetched, error) {
	t0 := time.Now()
	f, err := p.src.Fetch(ctx, p.cfg.Kafka.BatchSize, p.cfg.Kafka.BatchWait)
	if err != nil {
		return nil, fmt.Errorf("fetch from %s: %w", p.cfg.Kafka.Topics.Input, err)
	}
	p.m.KafkaSeconds.WithLabelValues("fetch").Observe(time.Since(t0).Seconds())
	return f, nil
}

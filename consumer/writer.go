// The write and commit stages: a decided batch's records are written to
// their topics with acks from all in-sync replicas; then, in a stage of its
// own and in batch order, its offsets are committed while the next batch is
// written.

package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/wire"
)

// write writes a decided batch's records, which the decide lane encoded,
// each acknowledged by all in-sync replicas.
//
// The producer sends a partition's records of one call as one produce
// request, which the broker takes or refuses whole, so a retry of the
// failed records cannot put one after a later record of its key. A request
// must stay within the broker's bound on a record batch (1 MiB by
// default), so a batch with a partition whose records could exceed it is
// written in runs in which none can (producer.Runs), one after the other:
// a run is written, or retried until it is, before the next one starts.
// The bound is per partition: a batch spread over the partitions is one
// run, one produce request per partition.
func (p *Pipeline) write(b batchRun, j *job) error {
	t0 := time.Now()
	for run := range p.producer.Runs(b.ctx, j.out, p.runRecords, maxRunBytes) {
		if err := p.writeRun(b, run); err != nil {
			return err
		}
	}
	p.m.KafkaSeconds.WithLabelValues("write").Observe(time.Since(t0).Seconds())
	return nil
}

// writeRun writes one run of records, retrying what failed.
//
// The producer makes one attempt; the retries are these. A produce
// request whose answer was lost (a connection that broke, a timeout) may
// have been written all the same, and a retry inside the producer (as
// kafka-go's Writer makes) would write a second copy that does not say it
// may be one. Here a record retried after such a failure goes to gated
// marked breakwater-reason: redelivered, as a copy answered from a first
// decision is, so that every copy on gated beyond the first says so.
func (p *Pipeline) writeRun(b batchRun, run []kafka.Message) error {
	pending := run
	return p.retry(b, "write", func(ctx context.Context) error {
		err := p.producer.Write(ctx, pending)
		if err == nil {
			return nil
		}
		// A retry writes only what failed: writing the whole run again
		// would add a second copy of every record that reached its topic.
		// A partition's records of a run go in one request (producer.Runs
		// keeps them within the writer's bounds), so they fail or succeed
		// together and the order per key holds.
		if we := (kafka.WriteErrors)(nil); errors.As(err, &we) && len(we) == len(pending) {
			failed := make([]kafka.Message, 0, we.Count())
			for i, e := range we {
				if e != nil {
					failed = append(failed, p.retried(pending[i], e))
				}
			}
			pending = failed
			return err
		}
		// Not a failure per record: the run may have reached the broker
		// or not.
		retried := make([]kafka.Message, len(pending))
		for i := range pending {
			retried[i] = p.retried(pending[i], err)
		}
		pending = retried
		return err
	})
}

// maxRunBytes bounds a partition's records of one run, as
// produce.RecordSize counts them: the broker's default bound of a record
// batch.
const maxRunBytes = 1 << 20

// retried returns m as it is written again after err: marked redelivered
// when it goes to gated and err leaves open whether it was written.
func (p *Pipeline) retried(m kafka.Message, err error) kafka.Message {
	if m.Topic != p.cfg.Kafka.Topics.Gated || notWritten(err) {
		return m
	}
	// A header slice of its own: m's is a slice of its batch's buffer.
	hs := make([]kafka.Header, 0, len(m.Headers)+1)
	marked := false
	for _, h := range m.Headers {
		if h.Key == wire.HeaderReason {
			h.Value, marked = headerValue(decide.ReasonRedelivered), true
		}
		hs = append(hs, h)
	}
	if !marked {
		hs = append(hs, kafka.Header{Key: wire.HeaderReason, Value: headerValue(decide.ReasonRedelivered)})
	}
	m.Headers = hs
	return m
}

// notWritten reports whether err, from a write, means the broker refused
// the records before appending them: an answer that says so. A lost or
// late answer, or NotEnoughReplicasAfterAppend and RequestTimedOut (the
// leader appended them, then did not hear from enough replicas in time),
// leave it open.
func notWritten(err error) bool {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke {
	case kafka.NotEnoughReplicasAfterAppend, kafka.RequestTimedOut:
		return false
	}
	return true
}

// finish commits a written batch's offsets and accounts for it; the time
// goes to the stages of cl.
func (p *Pipeline) finish(b batchRun, j *job, cl *lane) error {
	t0 := time.Now()
	if err := p.commit(b, j.f); err != nil {
		return err
	}
	t1 := cl.charge(stageCommit)
	p.progress.done()
	p.m.KafkaSeconds.WithLabelValues("commit").Observe(t1.Sub(t0).Seconds())
	p.m.LastBatch.SetToCurrentTime()
	// The lag after this batch, per partition: what the broker held beyond
	// the batch's last message when it was fetched.
	lag := map[int]int64{}
	for i := range j.msgs {
		m := &j.msgs[i]
		if m.HighWaterMark > 0 {
			lag[m.Partition] = max(m.HighWaterMark-m.Offset-1, 0)
		}
	}
	p.health.Lock()
	if p.health.lag == nil {
		p.health.lag = map[int]int64{}
	}
	for part, n := range lag {
		p.m.ConsumerLag.WithLabelValues(strconv.Itoa(part)).Set(float64(n))
		p.health.lag[part] = n
	}
	p.health.Unlock()
	p.countActions(j.items)
	p.m.BatchSize.Observe(float64(len(j.msgs)))
	p.m.BatchSeconds.Observe(time.Since(j.start).Seconds())
	if p.opts.OnBatch != nil {
		report := BatchReport{Actions: map[decide.Decision]int{}, PerRule: map[string]int{}, Transitions: j.res.transitions, Scopes: j.res.scopes}
		for i := range j.items {
			it := &j.items[i]
			report.Actions[it.Decision]++
			if it.Bad == nil {
				report.PerRule[it.Act.RuleID]++
			}
		}
		p.opts.OnBatch(report)
	}
	// Nothing refers to the batch any more: its records were written,
	// its offsets committed.
	p.src.Recycle(j.f)
	cl.charge(stageAccount)
	return nil
}

// commit commits the batch's offsets, once, in the consumer group
// generation the batch was fetched in. An error that reaches here means
// the generation ended (a rebalance) or the coordinator is gone; a retry
// could not do better. So a failed commit is left to the next batch's
// commit, which covers its offsets, or to a redelivery, answered from the
// records: they are kept, since only a confirmed commit lets the store
// drop them. A batch whose partitions were revoked before its commit is
// read again by their next owner.
func (p *Pipeline) commit(b batchRun, f *fetched) error {
	if err := p.src.Commit(b.ctx, f); err != nil {
		if errors.Is(err, errRevoked) {
			p.log.Info("partitions revoked before a batch was committed; it is redelivered to their next owner", zap.Int("actions", len(f.msgs)))
			return nil
		}
		if b.stopping() {
			return fmt.Errorf("commit: %w", err)
		}
		p.m.KafkaErrors.WithLabelValues("commit").Inc()
		p.log.Warn("commit failed; the next batch's commit covers its offsets", zap.Error(err))
		return nil
	}
	p.mu.Lock()
	for i := range f.msgs {
		m := &f.msgs[i]
		p.committed[m.Partition] = m.Offset + 1
	}
	p.mu.Unlock()
	return nil
}

func (p *Pipeline) committedOffset(_ string, partition int) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.committed[partition]; ok {
		return c
	}
	return -1
}

// countActions adds a batch's actions to breakwater_actions_total, per
// decision and scope, counted in counts (cleared after; only the commit
// stage calls it).
func (p *Pipeline) countActions(items []decide.Item) {
	for i := range items {
		p.counts[countKey{items[i].Decision, items[i].Scope}]++
	}
	for k, n := range p.counts {
		p.m.Actions.WithLabelValues(string(k.d), p.m.Scope(k.scope)).Add(float64(n))
	}
	clear(p.counts)
}

// countKey is what breakwater_actions_total counts by.
type countKey struct {
	d     decide.Decision
	scope breaker.Scope
}

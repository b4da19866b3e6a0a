// The producer: a batch's records go to their partitions in one produce
// request per partition, all partitions at once, each acknowledged by all
// in-sync replicas.

package consumer

import (
	"bytes"
	"context"
	"iter"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"

	"github.com/breakwater/breakwater/internal/produce"
)

// producer writes records as kafka-go's Writer does (the same Hash
// balancer over the same partitions, one produce request per partition of
// a call, the same acks and timeout), in one attempt (the pipeline retries
// what failed, marking what may be a copy), without the Writer's per-call
// batching: the Writer copies every record into a per-partition batch it
// allocates at its full BatchSize, looks the topic's partitions up once
// per record, and runs a goroutine and a timer per batch; and its encoder
// writes a record in many small writes. Here a call looks each topic up
// once, groups the records by partition, and encodes each partition's
// records in one pass (appendRecordSet) into a buffer kept from call to
// call.
//
// A partition's records of one call are one request: they are written or
// fail together, so a retry of the failed records cannot put one after a
// later record of its key. The caller keeps a call within the broker's
// bound on a partition's record batch (Runs). Only one call runs at a
// time (the write lane).
type producer struct {
	client *kafka.Client
	acks   kafka.RequiredAcks

	balancer kafka.Hash
	// parts lists partition numbers 0..n-1 for the balancer.
	parts []int
	// groups are the records of the current call per topic and partition,
	// as indexes into its slice; reused across calls.
	groups  map[topicPartition]*partGroup
	pending []*partGroup
	// runSize is what the current run of Runs holds per partition.
	runSize map[topicPartition]runAcc
}

// topicPartition names one partition of a topic.
type topicPartition struct {
	topic     string
	partition int
}

// partGroup is one partition's records of a call, encoded, and its
// outcome.
type partGroup struct {
	tp  topicPartition
	idx []int32
	set []byte // the record set, as the request carries it
	err error
}

func newProducer(client *kafka.Client, acks kafka.RequiredAcks) *producer {
	return &producer{client: client, acks: acks, groups: map[topicPartition]*partGroup{}, runSize: map[topicPartition]runAcc{}}
}

// Write writes msgs, each to its Topic. It returns nil when every record
// was acknowledged; kafka.WriteErrors, one entry per record (nil for the
// written ones), when some partitions failed; or another error when
// nothing was sent (a topic's metadata could not be read).
func (w *producer) Write(ctx context.Context, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	for _, g := range w.pending {
		g.idx, g.err = g.idx[:0], nil
	}
	w.pending = w.pending[:0]
	topic, n := "", 0
	for i := range msgs {
		m := &msgs[i]
		if m.Topic != topic || n == 0 {
			var err error
			if n, err = w.partitions(ctx, m.Topic); err != nil {
				return err
			}
			topic = m.Topic
		}
		w.partNumbers(n)
		tp := topicPartition{m.Topic, w.balancer.Balance(*m, w.parts[:n]...)}
		g := w.groups[tp]
		if g == nil {
			if len(w.groups) > 4096 {
				clear(w.groups)
			}
			g = &partGroup{tp: tp}
			w.groups[tp] = g
		}
		if len(g.idx) == 0 {
			w.pending = append(w.pending, g)
		}
		g.idx = append(g.idx, int32(i))
	}
	var wg sync.WaitGroup
	for _, g := range w.pending[1:] {
		wg.Go(func() { g.err = w.produce(ctx, g, msgs) })
	}
	first := w.pending[0]
	first.err = w.produce(ctx, first, msgs)
	wg.Wait()
	var werr kafka.WriteErrors
	for _, g := range w.pending {
		if g.err == nil {
			continue
		}
		if werr == nil {
			werr = make(kafka.WriteErrors, len(msgs))
		}
		for _, i := range g.idx {
			werr[i] = g.err
		}
	}
	if werr != nil {
		return werr
	}
	return nil
}

// Runs yields msgs in consecutive runs within which each partition's
// records stay under maxCount records and maxBytes (as
// produce.RecordSize counts them): the broker's bound applies to a
// partition's record batch, and Write sends a partition's records of a
// call as one batch. A batch of records spread over many partitions is one
// run, where a bound on the run's total would cut it into several, written
// one after the other. A record without a key may go to any partition (the
// balancer takes turns), so it counts against every partition. A record
// alone past a bound is a run of its own. When a topic's partitions cannot
// be looked up, the rest is cut by the run's total instead (produce.Runs),
// which holds whatever the partitions. It uses the producer's buffers:
// only the write lane calls it, between calls of Write.
func (w *producer) Runs(ctx context.Context, msgs []kafka.Message, maxCount int, maxBytes int64) iter.Seq[[]kafka.Message] {
	return func(yield func([]kafka.Message) bool) {
		maxCount = max(maxCount, 1)
		clear(w.runSize)
		// unkeyed is what the run holds of records without a key, which
		// may be on any partition; mostKeyed, the most any partition holds
		// of records with one.
		var unkeyed, mostKeyed runAcc
		start := 0
		topic, n := "", 0
		for i := range msgs {
			m := &msgs[i]
			if m.Topic != topic || n == 0 {
				var err error
				if n, err = w.partitions(ctx, m.Topic); err != nil {
					for run := range produce.Runs(msgs[start:], maxCount, maxBytes) {
						if !yield(run) {
							return
						}
					}
					return
				}
				topic = m.Topic
				w.partNumbers(n)
			}
			size := produce.RecordSize(m)
			var tp topicPartition
			have := mostKeyed // what the record's partition may hold already
			if m.Key != nil {
				tp = topicPartition{m.Topic, w.balancer.Balance(*m, w.parts[:n]...)}
				have = w.runSize[tp]
			}
			have = runAcc{have.count + unkeyed.count, have.bytes + unkeyed.bytes}
			if i > start && have.count > 0 && (have.count >= maxCount || have.bytes+size >= maxBytes) {
				if !yield(msgs[start:i]) {
					return
				}
				start = i
				clear(w.runSize)
				unkeyed, mostKeyed = runAcc{}, runAcc{}
			}
			if m.Key == nil {
				unkeyed = runAcc{unkeyed.count + 1, unkeyed.bytes + size}
				continue
			}
			acc := w.runSize[tp]
			acc = runAcc{acc.count + 1, acc.bytes + size}
			w.runSize[tp] = acc
			mostKeyed = runAcc{max(mostKeyed.count, acc.count), max(mostKeyed.bytes, acc.bytes)}
		}
		if start < len(msgs) {
			yield(msgs[start:])
		}
	}
}

// runAcc is what a run holds of one partition.
type runAcc struct {
	count int
	bytes int64
}

// partNumbers makes w.parts list at least partitions 0..n-1.
func (w *producer) partNumbers(n int) {
	if len(w.parts) < n {
		w.parts = make([]int, n)
		for p := range w.parts {
			w.parts[p] = p
		}
	}
}

// partitions returns the number of partitions of topic, from the
// transport's metadata cache (it refreshes it in the background and when a
// broker says it no longer leads a partition), as the Writer does.
func (w *producer) partitions(ctx context.Context, topic string) (int, error) {
	r, err := w.client.Transport.RoundTrip(ctx, w.client.Addr, &metadataAPI.Request{TopicNames: []string{topic}})
	if err != nil {
		return 0, err
	}
	for _, t := range r.(*metadataAPI.Response).Topics {
		if t.Name == topic {
			if t.ErrorCode != 0 {
				return 0, kafka.Error(t.ErrorCode)
			}
			if len(t.Partitions) == 0 {
				return 0, kafka.UnknownTopicOrPartition
			}
			return len(t.Partitions), nil
		}
	}
	return 0, kafka.UnknownTopicOrPartition
}

// produce encodes g's records and sends them in one request.
func (w *producer) produce(ctx context.Context, g *partGroup, msgs []kafka.Message) error {
	g.set = appendRecordSet(g.set[:0], msgs, g.idx, time.Now())
	res, err := w.client.RawProduce(ctx, &kafka.RawProduceRequest{
		Topic:        g.tp.topic,
		Partition:    g.tp.partition,
		RequiredAcks: w.acks,
		RawRecords:   protocol.RawRecordSet{Reader: bytes.NewReader(g.set)},
	})
	if err == nil && res != nil {
		err = res.Error
	}
	if err != nil {
		// A request that failed may still be read by the transport (a
		// timeout returns before the connection sent it): the next call
		// encodes into a buffer of its own.
		g.set = nil
	}
	return err
}

// Package partition reads a range of offsets of one Kafka partition from its
// leader, one fetched batch at a time, without joining a consumer group: how
// the state topic, the audit trail and the held actions are read back.
package partition

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/breakwater/breakwater/internal/kafkaconn"
)

// End reads up to the partition's end offset when the read begins.
const End = -1

// ErrStop ends a read early without an error when a Read callback
// returns it.
var ErrStop = errors.New("stop reading")

// maxBatchBytes bounds one fetch.
const maxBatchBytes = 10 << 20

// Read calls fn with the messages of topic's partition p from offset from
// (raised to the partition's first offset) up to end, exclusive, or to the
// end offset when the read begins if end is End. fn gets each fetched
// batch in offset order, tombstones included, with start and next, the
// offsets the batch covers: [start, next). The leader is found through the
// first broker that answers. Read fails if a fetch makes no progress.
func Read(ctx context.Context, k *kafkaconn.Endpoint, topic string, p int, from, end int64, fn func(msgs []kafka.Message, start, next int64) error) error {
	conn, err := dialLeader(ctx, k, topic, p)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return fmt.Errorf("read offsets of %s/%d: %w", topic, p, err)
	}
	if end < 0 || end > last {
		end = last
	}
	from = max(from, first)
	if from >= end {
		return nil
	}
	if _, err := conn.Seek(from, kafka.SeekAbsolute); err != nil {
		return fmt.Errorf("seek %s/%d: %w", topic, p, err)
	}
	var batch []kafka.Message
	for off := from; off < end; {
		start := off
		if d, ok := ctx.Deadline(); ok {
			_ = conn.SetReadDeadline(d)
		} else {
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		}
		b := conn.ReadBatch(1, maxBatchBytes)
		batch = nil
		for {
			m, err := b.ReadMessage()
			if err != nil || m.Offset >= end {
				break
			}
			off = m.Offset + 1
			batch = append(batch, m)
		}
		cerr := b.Close()
		if off > start {
			if err := fn(batch, start, off); err != nil {
				if errors.Is(err, ErrStop) {
					return nil
				}
				return err
			}
		}
		if cerr != nil && !errors.Is(cerr, kafka.ErrGenerationEnded) && off < end {
			return fmt.Errorf("read %s/%d at %d: %w", topic, p, off, cerr)
		}
		if off == start {
			return fmt.Errorf("read %s/%d at %d: no progress", topic, p, off)
		}
	}
	return nil
}

func dialLeader(ctx context.Context, k *kafkaconn.Endpoint, topic string, p int) (*kafka.Conn, error) {
	var errs []error
	for _, b := range k.Brokers() {
		conn, err := k.DialLeader(ctx, b, topic, p)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, fmt.Errorf("dial leader of %s/%d through %s: %w", topic, p, b, err))
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("dial leader of %s/%d: no broker", topic, p)
	}
	return nil, errors.Join(errs...)
}

// List returns the partition ids of topic, asking the first broker that
// answers.
func List(ctx context.Context, k *kafkaconn.Endpoint, topic string) ([]int, error) {
	var errs []error
	for _, b := range k.Brokers() {
		conn, err := k.Dial(ctx, b)
		if err != nil {
			errs = append(errs, fmt.Errorf("dial %s: %w", b, err))
			continue
		}
		parts, err := conn.ReadPartitions(topic)
		_ = conn.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("read partitions of %s from %s: %w", topic, b, err))
			continue
		}
		ids := make([]int, len(parts))
		for i, p := range parts {
			ids[i] = p.ID
		}
		return ids, nil
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("read partitions of %s: no broker", topic)
	}
	return nil, errors.Join(errs...)
}

// Last returns the end offset of topic's partition p: the offset the next
// message will get.
func Last(ctx context.Context, k *kafkaconn.Endpoint, topic string, p int) (int64, error) {
	conn, err := dialLeader(ctx, k, topic, p)
	if err != nil {
		return 0, err
	}
	defer func() { _ = conn.Close() }()
	last, err := conn.ReadLastOffset()
	if err != nil {
		return 0, fmt.Errorf("read the end of %s/%d: %w", topic, p, err)
	}
	return last, nil
}

// At returns the offset of the first message of topic's partition p at or
// after t.
func At(ctx context.Context, k *kafkaconn.Endpoint, topic string, p int, t time.Time) (int64, error) {
	conn, err := dialLeader(ctx, k, topic, p)
	if err != nil {
		return 0, err
	}
	defer func() { _ = conn.Close() }()
	off, err := conn.ReadOffset(t)
	if err != nil {
		return 0, fmt.Errorf("find %s/%d at %s: %w", topic, p, t.Format(time.RFC3339), err)
	}
	return off, nil
}

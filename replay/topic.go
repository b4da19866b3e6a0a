package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/internal/kafkaconn"
)

// TopicOptions say which part of a Kafka topic to replay.
type TopicOptions struct {
	// Kafka is the cluster, with its TLS and SASL settings.
	Kafka *kafkaconn.Endpoint
	// Topic is the input topic.
	Topic string
	// StartOffset is the first offset of every partition; -2 (or 0 with
	// StartTime set) means the earliest.
	StartOffset int64
	// StartTime, when set, starts every partition at its first message at
	// or after it, and EndTime stops each partition after it.
	StartTime, EndTime time.Time
}

func (o TopicOptions) validate() error {
	switch {
	case o.Kafka == nil || len(o.Kafka.Brokers()) == 0 || o.Kafka.Brokers()[0] == "":
		return errors.New("from topic: brokers are required")
	case o.Topic == "":
		return errors.New("from topic: topic is required")
	case o.StartOffset < -2:
		return fmt.Errorf("from topic: start offset must be -2 (earliest) or at least 0, got %d", o.StartOffset)
	case !o.EndTime.IsZero() && o.EndTime.Before(o.StartTime):
		return errors.New("from topic: end time is before start time")
	}
	return nil
}

// Topic reads a Kafka topic without joining a consumer group, from a start
// offset or time to the end each partition had when it was opened (or an
// end time), merging the partitions in the order of their message
// timestamps.
type Topic struct {
	ctx   context.Context
	opts  TopicOptions
	parts []*topicPart
}

type topicPart struct {
	r    *kafka.Reader
	end  int64 // offset after the last message to read
	head *kafka.Message
	done bool
}

// OpenTopic connects to the brokers and positions a reader on every
// partition of the topic. ctx bounds every read.
func OpenTopic(ctx context.Context, opts TopicOptions) (*Topic, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	first := opts.Kafka.Brokers()[0]
	conn, err := opts.Kafka.Dial(ctx, first)
	if err != nil {
		return nil, fmt.Errorf("from topic: connect to %s: %w", first, opts.Kafka.Explain(err))
	}
	ps, err := conn.ReadPartitions(opts.Topic)
	_ = conn.Close()
	if err != nil {
		return nil, fmt.Errorf("from topic %q: read partitions: %w", opts.Topic, err)
	}
	t := &Topic{ctx: ctx, opts: opts}
	for _, p := range ps {
		tp, err := openPart(ctx, opts, p)
		if err != nil {
			_ = t.Close()
			return nil, err
		}
		t.parts = append(t.parts, tp)
	}
	return t, nil
}

func openPart(ctx context.Context, opts TopicOptions, p kafka.Partition) (*topicPart, error) {
	leader := net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port))
	conn, err := opts.Kafka.DialLeader(ctx, leader, opts.Topic, p.ID)
	if err != nil {
		return nil, fmt.Errorf("from topic %q partition %d: %w", opts.Topic, p.ID, err)
	}
	defer func() { _ = conn.Close() }()
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return nil, fmt.Errorf("from topic %q partition %d: read offsets: %w", opts.Topic, p.ID, err)
	}
	start := max(opts.StartOffset, first)
	if !opts.StartTime.IsZero() {
		if start, err = conn.ReadOffset(opts.StartTime); err != nil {
			return nil, fmt.Errorf("from topic %q partition %d: offset at %s: %w", opts.Topic, p.ID, opts.StartTime, err)
		}
		if start < 0 {
			start = last
		}
	}
	r := kafka.NewReader(opts.Kafka.Reader(kafka.ReaderConfig{
		Topic: opts.Topic, Partition: p.ID,
		MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 200 * time.Millisecond,
	}))
	if err := r.SetOffset(start); err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("from topic %q partition %d: %w", opts.Topic, p.ID, err)
	}
	return &topicPart{r: r, end: last, done: start >= last}, nil
}

// Next returns the pending message with the earliest timestamp.
func (t *Topic) Next() ([]byte, decide.Position, error) {
	var best *topicPart
	for _, p := range t.parts {
		if p.done {
			continue
		}
		if p.head == nil {
			m, err := p.r.ReadMessage(t.ctx)
			if err != nil {
				return nil, decide.Position{}, fmt.Errorf("from topic %q: read partition %d: %w", t.opts.Topic, p.r.Config().Partition, err)
			}
			if !t.opts.EndTime.IsZero() && m.Time.After(t.opts.EndTime) {
				p.done = true
				continue
			}
			p.head = &m
		}
		if best == nil || p.head.Time.Before(best.head.Time) {
			best = p
		}
	}
	if best == nil {
		return nil, decide.Position{}, io.EOF
	}
	m := best.head
	best.head = nil
	if m.Offset+1 >= best.end {
		best.done = true
	}
	return m.Value, decide.Position{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}, nil
}

// Close closes the partition readers.
func (t *Topic) Close() error {
	var errs []error
	for _, p := range t.parts {
		errs = append(errs, p.r.Close())
	}
	return errors.Join(errs...)
}

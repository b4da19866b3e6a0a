// The output records: the input's key, value and headers, plus
// Breakwater's own headers.

package consumer

import (
	"slices"

	"github.com/segmentio/kafka-go"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/wire"
)

// headerValues are the bytes of the fixed header values, shared by every
// message: the writer only reads them.
var headerValues = func() map[string][]byte {
	m := map[string][]byte{}
	for _, d := range []decide.Decision{decide.Gated, decide.Held, decide.DeadLetter} {
		m[string(d)] = []byte(d)
	}
	for _, st := range breaker.States {
		m[string(st)] = []byte(st)
	}
	m[decide.ReasonRedelivered] = []byte(decide.ReasonRedelivered)
	m[decide.ReasonStoreUnavailable] = []byte(decide.ReasonStoreUnavailable)
	return m
}()

// The values almost every record carries, found without the map.
var (
	gatedValue  = headerValues[string(decide.Gated)]
	closedValue = headerValues[string(breaker.Closed)]
)

func headerValue(v string) []byte {
	switch v {
	case string(decide.Gated):
		return gatedValue
	case string(breaker.Closed):
		return closedValue
	}
	if b, ok := headerValues[v]; ok {
		return b
	}
	return []byte(v)
}

// encoder builds the output records of a batch. It belongs to the batch,
// and its buffers go with the batch's to a later one once the batch was
// written and committed (a write given up on, which may still be in
// flight inside the writer, ends the pipeline before that).
type encoder struct {
	out     []kafka.Message
	headers []kafka.Header
	bytes   []byte
}

// encode returns the output records of a batch, which stay valid until
// the next call.
func (p *Pipeline) encode(e *encoder, msgs []kafka.Message, items []decide.Item, batch []byte) []kafka.Message {
	nh := 0
	for i := range msgs {
		nh += len(msgs[i].Headers) + maxHeaders
	}
	e.out = slices.Grow(e.out[:0], len(msgs))[:len(msgs)]
	e.headers = slices.Grow(e.headers[:0], nh)
	if len(msgs) > 0 {
		// The source values: the topic, two slashes and two numbers.
		e.bytes = slices.Grow(e.bytes[:0], len(msgs)*(len(msgs[0].Topic)+24))
	}
	for i := range msgs {
		e.out[i] = p.output(e, &msgs[i], &items[i], batch)
	}
	return e.out
}

// maxHeaders is the most headers output adds to a record.
const maxHeaders = 7

func (p *Pipeline) output(e *encoder, m *kafka.Message, it *decide.Item, batch []byte) kafka.Message {
	// The record's headers are a slice of e.headers, which encode sized
	// for all of them: appending never moves it.
	start := len(e.headers)
	h := append(e.headers, m.Headers...)
	h = append(h, kafka.Header{Key: wire.HeaderDecision, Value: headerValue(string(it.Decision))})
	topic := p.cfg.Kafka.Topics.Gated
	switch it.Decision {
	case decide.Held:
		topic = p.cfg.Kafka.Topics.Held
		if inc := it.Incident(); inc != "" {
			h = append(h, kafka.Header{Key: wire.HeaderIncident, Value: []byte(inc)})
		}
	case decide.DeadLetter:
		topic = p.cfg.Kafka.Topics.DeadLetter
	}
	if it.Scope != "" {
		h = append(h, kafka.Header{Key: wire.HeaderScope, Value: p.scopeBytes(it.Scope)})
	}
	if it.State != "" {
		h = append(h, kafka.Header{Key: wire.HeaderState, Value: headerValue(string(it.State))})
	}
	if it.Reason != "" {
		h = append(h, kafka.Header{Key: wire.HeaderReason, Value: headerValue(it.Reason)})
	}
	// Every output carries its input position: the first decisions of
	// uncommitted input are read back from it when Redis lost them. The
	// value is a slice of e.bytes; a value appended after it may move
	// e.bytes, but never changes the bytes this one points to.
	from := len(e.bytes)
	e.bytes = wire.AppendSource(e.bytes, m.Topic, m.Partition, m.Offset)
	h = append(h, kafka.Header{Key: wire.HeaderSource, Value: e.bytes[from:len(e.bytes):len(e.bytes)]},
		kafka.Header{Key: wire.HeaderBatch, Value: batch})
	e.headers = h
	return kafka.Message{Topic: topic, Key: m.Key, Value: m.Value, Headers: h[start:len(h):len(h)], Time: m.Time}
}

// scopeBytes returns the header bytes of a scope, shared between messages
// of a batch; only the decide lane calls it.
func (p *Pipeline) scopeBytes(s breaker.Scope) []byte {
	if b, ok := p.scopeHeader[s]; ok {
		return b
	}
	if len(p.scopeHeader) > 4096 {
		clear(p.scopeHeader)
	}
	b := []byte(s)
	p.scopeHeader[s] = b
	return b
}

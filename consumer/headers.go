// The output records: the input's key, value and headers, plus
// Breakwater's own headers.

package consumer

import (
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

func headerValue(v string) []byte {
	if b, ok := headerValues[v]; ok {
		return b
	}
	return []byte(v)
}

func (p *Pipeline) output(m *kafka.Message, it *decide.Item, batch []byte) kafka.Message {
	h := make([]kafka.Header, 0, len(m.Headers)+7)
	h = append(h, m.Headers...)
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
	// uncommitted input are read back from it when Redis lost them.
	h = append(h, kafka.Header{Key: wire.HeaderSource, Value: []byte(wire.Source(m.Topic, m.Partition, m.Offset))},
		kafka.Header{Key: wire.HeaderBatch, Value: batch})
	return kafka.Message{Topic: topic, Key: m.Key, Value: m.Value, Headers: h, Time: m.Time}
}

// scopeBytes returns the header bytes of a scope, shared between messages
// of a batch; only the writer stage calls it.
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

package testbed

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AckLoss loses the answers of produce requests, as a network that fails
// between the broker and the client would: the broker writes the records,
// then the connection is closed instead of answering, so the client cannot
// tell whether they were written. Pass it to StartKafka with LoseAcks and
// arm it with Drop.
type AckLoss struct {
	topic   string
	armed   atomic.Int64
	dropped atomic.Int64
}

// NewAckLoss returns an AckLoss of the produce requests that write to
// topic; it loses nothing until Drop.
func NewAckLoss(topic string) *AckLoss { return &AckLoss{topic: topic} }

// Drop loses the answers of the next n produce requests to the topic.
func (a *AckLoss) Drop(n int) { a.armed.Add(int64(n)) }

// Dropped returns how many answers were lost so far.
func (a *AckLoss) Dropped() int { return int(a.dropped.Load()) }

// LoseAcks makes the in-process cluster's listeners (kfake.ListenFn) lose
// answers as a says. It needs plain listeners (no TLS) and does not
// apply with OwnProcess.
func LoseAcks(a *AckLoss) KafkaOption {
	return func(c *kafkaConfig) {
		c.listen = func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err != nil {
				return nil, err
			}
			return &ackLossListener{Listener: ln, a: a}, nil
		}
	}
}

type ackLossListener struct {
	net.Listener
	a *AckLoss
}

func (l *ackLossListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &ackLossConn{Conn: c, a: l.a, drop: map[int32]bool{}}, nil
}

// ackLossConn is the broker's side of a client connection. It follows the
// requests it reads (a size, then the request) and, for an armed produce
// request to the topic, closes the connection when the broker writes its
// answer (kfake writes each answer, size and correlation id first, in one
// Write).
type ackLossConn struct {
	net.Conn
	a    *AckLoss
	mu   sync.Mutex
	in   []byte         // read and not yet a whole request
	drop map[int32]bool // correlation ids whose answers are lost
}

func (c *ackLossConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.mu.Lock()
		c.in = append(c.in, b[:n]...)
		for len(c.in) >= 4 {
			size := int(binary.BigEndian.Uint32(c.in))
			if len(c.in) < 4+size {
				break
			}
			c.request(c.in[4 : 4+size])
			c.in = c.in[4+size:]
		}
		if len(c.in) == 0 {
			c.in = nil
		}
		c.mu.Unlock()
	}
	return n, err
}

// request arms the loss of req's answer if it is a produce request to the
// topic and a loss is armed; c.mu is held.
func (c *ackLossConn) request(req []byte) {
	if len(req) < 10 || int16(binary.BigEndian.Uint16(req)) != kmsg.Produce.Int16() {
		return
	}
	version := int16(binary.BigEndian.Uint16(req[2:]))
	corr := int32(binary.BigEndian.Uint32(req[4:]))
	body := req[10:]
	if n := int(int16(binary.BigEndian.Uint16(req[8:]))); n > 0 {
		if n > len(body) {
			return
		}
		body = body[n:]
	}
	p := kmsg.NewPtrProduceRequest()
	p.SetVersion(version)
	if p.IsFlexible() {
		// The request header's tagged fields.
		tags, m := binary.Uvarint(body)
		if m <= 0 {
			return
		}
		body = body[m:]
		for range tags {
			if _, m = binary.Uvarint(body); m <= 0 {
				return
			}
			body = body[m:]
			size, m := binary.Uvarint(body)
			if m <= 0 || uint64(len(body)-m) < size {
				return
			}
			body = body[m+int(size):]
		}
	}
	if p.ReadFrom(body) != nil {
		return
	}
	for _, t := range p.Topics {
		if t.Topic != c.a.topic {
			continue
		}
		for {
			n := c.a.armed.Load()
			if n <= 0 {
				return
			}
			if c.a.armed.CompareAndSwap(n, n-1) {
				c.drop[corr] = true
				return
			}
		}
	}
}

func (c *ackLossConn) Write(b []byte) (int, error) {
	if len(b) >= 8 {
		corr := int32(binary.BigEndian.Uint32(b[4:]))
		c.mu.Lock()
		lost := c.drop[corr]
		delete(c.drop, corr)
		c.mu.Unlock()
		if lost {
			c.a.dropped.Add(1)
			_ = c.Conn.Close()
			return 0, errors.New("testbed: produce answer lost")
		}
	}
	return c.Conn.Write(b)
}

// Package embedded starts the in-process Kafka-protocol broker and Redis of
// the embedded default, so that a newcomer can run the daemon with nothing
// installed. Production runs against real Apache Kafka and Redis; nothing
// outside this package and the tests depends on these stand-ins.
package embedded

import (
	_ "embed"
	"fmt"
	"net"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"
)

// DemoConfig is the configuration of the embedded demo: short windows so
// that the incident trips its rule's breaker within seconds.
//
//go:embed demo.yaml
var DemoConfig []byte

// Retention is how long the embedded broker keeps the records of every
// topic but the compacted state topic, when the daemon creates them with
// it (at least twice demo.review_after, so that the demo's own review
// finds the held records it releases): the in-process broker holds
// everything in memory.
const Retention = 10 * time.Minute

// Kafka is an in-process Kafka-protocol broker on a real TCP port.
type Kafka struct {
	cluster *kfake.Cluster
}

// StartKafka starts the broker on 127.0.0.1:port, or on a free port when
// port is taken or 0.
func StartKafka(port int) (*Kafka, error) {
	listen := func(network, address string) (net.Listener, error) {
		l, err := net.Listen(network, fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return net.Listen(network, "127.0.0.1:0")
		}
		return l, nil
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(listen), kfake.AllowAutoTopicCreation(),
		// Apply the topics' retention (see Retention) every 30 seconds, in
		// segments of 1 MiB: the broker frees a segment only once
		// retention dropped all of it, and rolls segments by size only.
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "30000", "log.segment.bytes": "1048576"}))
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka: %w", err)
	}
	return &Kafka{cluster: c}, nil
}

// Addrs returns the broker addresses.
func (k *Kafka) Addrs() []string { return k.cluster.ListenAddrs() }

// Close stops the broker.
func (k *Kafka) Close() { k.cluster.Close() }

// Redis is an in-process Redis on a real TCP port.
type Redis struct {
	m    *miniredis.Miniredis
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the clock stopped
}

// StartRedis starts it on a free port. Its keys expire in wall-clock
// time: miniredis expires keys only when its clock is moved, so a ticker
// moves it every second.
func StartRedis() (*Redis, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start embedded redis: %w", err)
	}
	r := &Redis{m: m, stop: make(chan struct{}), done: make(chan struct{})}
	go r.clock(time.Second)
	return r, nil
}

// clock moves the server's clock for its TTLs by every, every every, until
// Close.
func (r *Redis) clock(every time.Duration) {
	defer close(r.done)
	t := time.NewTicker(every)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			r.m.FastForward(now.Sub(last))
			last = now
		}
	}
}

// Addr returns host:port.
func (r *Redis) Addr() string { return r.m.Addr() }

// Close stops it.
func (r *Redis) Close() {
	close(r.stop)
	<-r.done
	r.m.Close()
}

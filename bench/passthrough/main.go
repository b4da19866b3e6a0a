// Command passthrough is the reference BenchmarkThroughput measures
// Breakwater against: a raw batched kafka-go consumer that fetches batches
// like Breakwater's pipeline (one blocking fetch, then more within the
// batch wait), writes them unchanged to one topic with a writer configured
// like the pipeline's (RequiredAcks all, Hash balancer, BatchTimeout 50µs,
// BatchBytes 1 MiB) and commits each batch synchronously: no decoding, no
// store. It stops once it has committed -n messages and prints its figures
// as one JSON object on stdout. It is not part of the product.
//
// Usage:
//
//	passthrough -brokers HOST:PORT,... -group G -topic IN -out OUT -n N [-batch 2000] [-wait 10ms]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/breakwater/breakwater/internal/kafkaconn"
)

func main() { os.Exit(run()) }

// figures are what a run prints. The stages add up to span: the time from
// the first batch in hand to the last commit.
type figures struct {
	Actions int           `json:"actions"`
	Batches int           `json:"batches"`
	Span    time.Duration `json:"span_ns"`
	Total   time.Duration `json:"total_ns"` // from the start, the group join included
	Fetch   time.Duration `json:"fetch_ns"`
	Encode  time.Duration `json:"encode_ns"`
	Write   time.Duration `json:"write_ns"`
	Commit  time.Duration `json:"commit_ns"`
}

func run() int {
	fs := flag.NewFlagSet("passthrough", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "comma-separated broker addresses")
	group := fs.String("group", "", "consumer group")
	topic := fs.String("topic", "", "input topic")
	out := fs.String("out", "", "output topic")
	n := fs.Int("n", 0, "messages to pass through before stopping")
	batch := fs.Int("batch", 2000, "batch size (kafka.batch_size)")
	wait := fs.Duration("wait", 10*time.Millisecond, "batch wait (kafka.batch_wait)")
	session := fs.Duration("session-timeout", 10*time.Second, "consumer group session timeout (kafka.session_timeout)")
	writeTimeout := fs.Duration("write-timeout", 10*time.Second, "write timeout (kafka.write_timeout)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if *brokers == "" || *group == "" || *topic == "" || *out == "" || *n < 1 {
		fmt.Fprintln(os.Stderr, "passthrough: -brokers, -group, -topic, -out and -n are required")
		return 2
	}
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(pf)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "passthrough: cpu profile: %v\n", err)
			return 1
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = pf.Close()
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// The same endpoint builder as the daemon's: the same dialer and
	// transport settings, so only the work between fetch and write differs.
	ep := kafkaconn.Plain(strings.Split(*brokers, ",")...)
	r := kafka.NewReader(ep.Reader(kafka.ReaderConfig{
		GroupID:           *group,
		Topic:             *topic,
		MinBytes:          1,
		MaxBytes:          10 << 20,
		MaxWait:           100 * time.Millisecond,
		QueueCapacity:     max(2**batch, 100),
		CommitInterval:    0,
		StartOffset:       kafka.FirstOffset,
		SessionTimeout:    *session,
		HeartbeatInterval: max(*session/4, 100*time.Millisecond),
		RebalanceTimeout:  2 * *session,
		JoinGroupBackoff:  500 * time.Millisecond,
		ReadBackoffMin:    10 * time.Millisecond,
		ReadBackoffMax:    500 * time.Millisecond,
	}))
	defer r.Close()
	tr := ep.Transport()
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr:         ep.Addr(),
		Transport:    tr,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    max(*batch, 100),
		BatchBytes:   1 << 20,
		BatchTimeout: 50 * time.Microsecond,
		WriteTimeout: *writeTimeout,
		MaxAttempts:  5,
	}
	defer w.Close()
	f, err := pass(ctx, r, w, *out, *n, *batch, *wait)
	if err != nil {
		fmt.Fprintf(os.Stderr, "passthrough: after %d messages: %v\n", f.Actions, err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(f); err != nil {
		return 1
	}
	return 0
}

// pass moves n messages from r to topic out through w, a batch at a time.
func pass(ctx context.Context, r *kafka.Reader, w *kafka.Writer, out string, n, size int, wait time.Duration) (figures, error) {
	var f figures
	start := time.Now()
	var first, last time.Time
	for f.Actions < n {
		msgs, err := fetchBatch(ctx, r, size, wait)
		if err != nil {
			return f, fmt.Errorf("fetch: %w", err)
		}
		now := time.Now()
		if first.IsZero() {
			first, last = now, now
		}
		f.Fetch += now.Sub(last)
		outs := make([]kafka.Message, len(msgs))
		for i := range msgs {
			m := &msgs[i]
			outs[i] = kafka.Message{Topic: out, Key: m.Key, Value: m.Value, Headers: m.Headers, Time: m.Time}
		}
		t := time.Now()
		f.Encode += t.Sub(now)
		if err := w.WriteMessages(ctx, outs...); err != nil {
			return f, fmt.Errorf("write: %w", err)
		}
		tc := time.Now()
		f.Write += tc.Sub(t)
		if err := r.CommitMessages(ctx, msgs...); err != nil {
			return f, fmt.Errorf("commit: %w", err)
		}
		last = time.Now()
		f.Commit += last.Sub(tc)
		f.Actions += len(msgs)
		f.Batches++
	}
	f.Span, f.Total = last.Sub(first), last.Sub(start)
	return f, nil
}

// fetchBatch collects a batch like the pipeline's fetch: one blocking
// fetch, then up to size-1 more within wait.
func fetchBatch(ctx context.Context, r *kafka.Reader, size int, wait time.Duration) ([]kafka.Message, error) {
	first, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	msgs := make([]kafka.Message, 1, size)
	msgs[0] = first
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for len(msgs) < size {
		m, err := r.FetchMessage(wctx)
		if err != nil {
			break
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

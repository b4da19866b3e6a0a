package testbed_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/breakwater/breakwater/internal/testbed"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbed.RemoveBuiltBinaries()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// ctxT returns a context that ends after d or when the test ends.
func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// checkPerKeyOrder checks that, for every key, the values appear in the
// order of want, and that every key stays on one partition.
func checkPerKeyOrder(t *testing.T, got []testbed.Record, want map[string][]string) {
	t.Helper()
	seen := make(map[string][]string)
	part := make(map[string]int32)
	for _, r := range got {
		k := string(r.Key)
		if p, ok := part[k]; ok && p != r.Partition {
			t.Fatalf("key %q on partitions %d and %d", k, p, r.Partition)
		}
		part[k] = r.Partition
		seen[k] = append(seen[k], string(r.Value))
	}
	for k, w := range want {
		if !slices.Equal(seen[k], w) {
			t.Fatalf("key %q: got values %v, want %v", k, seen[k], w)
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("got %d keys, want %d", len(seen), len(want))
	}
}

func TestKafkaProduceReadAll(t *testing.T) {
	k := testbed.StartKafka(t)
	for _, a := range k.Addrs() {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Fatalf("address %q is not on 127.0.0.1", a)
		}
	}
	const topic = "orders"
	k.CreateTopic(t, topic, 3)

	var recs []testbed.Record
	want := make(map[string][]string)
	for i := 0; i < 1000; i++ {
		key := fmt.Sprintf("key-%d", i%37)
		val := fmt.Sprintf("v%04d", i)
		r := testbed.KV(key, val)
		r.Headers = []testbed.Header{{Key: "seq", Value: []byte(val)}}
		recs = append(recs, r)
		want[key] = append(want[key], val)
	}
	written := k.Produce(t, topic, recs...)
	for i, w := range written {
		if wp := testbed.KeyPartition(w.Key, 3); w.Partition != wp {
			t.Fatalf("record %d with key %q went to partition %d, KeyPartition says %d", i, w.Key, w.Partition, wp)
		}
	}

	got := k.ReadAll(t, topic, 10*time.Second)
	if len(got) != 1000 {
		t.Fatalf("ReadAll returned %d records, want 1000", len(got))
	}
	checkPerKeyOrder(t, got, want)
	for i, r := range got {
		if len(r.Headers) != 1 || r.Headers[0].Key != "seq" || !bytes.Equal(r.Headers[0].Value, r.Value) {
			t.Fatalf("record %d: headers %+v, value %q", i, r.Headers, r.Value)
		}
		if i > 0 {
			prev := got[i-1]
			if r.Partition < prev.Partition || r.Partition == prev.Partition && r.Offset != prev.Offset+1 {
				t.Fatalf("record %d (p%d@%d) out of order after p%d@%d", i, r.Partition, r.Offset, prev.Partition, prev.Offset)
			}
		}
	}

	ends := k.EndOffsets(t, topic)
	var total int64
	perPart := make(map[int32]int64)
	for _, r := range got {
		perPart[r.Partition]++
	}
	for p, e := range ends {
		total += e
		if e != perPart[p] {
			t.Fatalf("partition %d: end offset %d, read %d records", p, e, perPart[p])
		}
	}
	if len(ends) != 3 || total != 1000 {
		t.Fatalf("end offsets %v, want 3 partitions summing to 1000", ends)
	}

	// Explicit partitions are honoured.
	w := k.Produce(t, topic, testbed.Record{Partition: 2, Key: []byte("pinned"), Value: []byte("x")})
	if w[0].Partition != 2 || w[0].Offset != ends[2] {
		t.Fatalf("pinned record went to p%d@%d, want p2@%d", w[0].Partition, w[0].Offset, ends[2])
	}
}

func TestKafkaProduceMany(t *testing.T) {
	k := testbed.StartKafka(t)
	k.CreateTopic(t, "bulk", 4)
	recs := make([]testbed.Record, 20000)
	for i := range recs {
		recs[i] = testbed.KV(fmt.Sprintf("k%d", i%500), fmt.Sprintf("value-%06d-%s", i, strings.Repeat("x", 100)))
	}
	start := time.Now()
	k.Produce(t, "bulk", recs...)
	produced := time.Since(start)
	got := k.ReadAll(t, "bulk", 20*time.Second)
	t.Logf("produced 20000 records in %v, read them back in %v", produced, time.Since(start)-produced)
	if len(got) != len(recs) {
		t.Fatalf("ReadAll returned %d records, want %d", len(got), len(recs))
	}
}

func TestKafkaMultiBrokerAndRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []testbed.KafkaOption
	}{
		{name: "in process"},
		{name: "own process", opts: []testbed.KafkaOption{testbed.OwnProcess()}},
	} {
		t.Run(tc.name, func(t *testing.T) { kafkaMultiBrokerAndRestart(t, tc.opts...) })
	}
}

func kafkaMultiBrokerAndRestart(t *testing.T, opts ...testbed.KafkaOption) {
	dir := t.TempDir()
	k := testbed.StartKafka(t, append([]testbed.KafkaOption{testbed.Brokers(3), testbed.DataDir(dir)}, opts...)...)
	addrs := k.Addrs()
	if len(addrs) != 3 {
		t.Fatalf("Addrs() = %v, want 3 brokers", addrs)
	}
	k.CreateTopic(t, "spread", 6)
	var recs []testbed.Record
	for i := 0; i < 300; i++ {
		recs = append(recs, testbed.KV(fmt.Sprintf("k%d", i%20), fmt.Sprint(i)))
	}
	k.Produce(t, "spread", recs...)
	before := k.ReadAll(t, "spread", 10*time.Second)
	if len(before) != 300 {
		t.Fatalf("ReadAll returned %d records, want 300", len(before))
	}

	k.Restart(t)
	if got := k.Addrs(); !slices.Equal(got, addrs) {
		t.Fatalf("addresses changed across restart: %v -> %v", addrs, got)
	}
	after := k.ReadAll(t, "spread", 10*time.Second)
	if len(after) != len(before) {
		t.Fatalf("after restart ReadAll returned %d records, want %d", len(after), len(before))
	}
	for i := range after {
		a, b := after[i], before[i]
		if a.Partition != b.Partition || a.Offset != b.Offset || !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Value, b.Value) {
			t.Fatalf("record %d changed across restart: %+v -> %+v", i, b, a)
		}
	}
	// Producing after the restart continues the log.
	w := k.Produce(t, "spread", testbed.Record{Partition: 0, Value: []byte("again")})
	if w[0].Offset != k.EndOffsets(t, "spread")[0]-1 {
		t.Fatalf("produce after restart wrote offset %d", w[0].Offset)
	}
}

func TestKafkaRestartWithoutDataDirIsEmpty(t *testing.T) {
	k := testbed.StartKafka(t)
	k.CreateTopic(t, "gone", 1)
	k.Produce(t, "gone", testbed.KV("a", "b"))
	k.Restart(t)
	k.CreateTopic(t, "gone", 1) // would fail if the topic had survived
	if got := k.ReadAll(t, "gone", 5*time.Second); len(got) != 0 {
		t.Fatalf("ReadAll after restart returned %d records, want 0", len(got))
	}
}

func TestKafkaCompactedTopic(t *testing.T) {
	k := testbed.StartKafka(t)
	k.CreateCompactedTopic(t, "state", 1)
	k.Produce(t, "state",
		testbed.KV("a", "1"), testbed.KV("b", "1"), testbed.KV("a", "2"),
		testbed.Record{Partition: testbed.AnyPartition, Key: []byte("b")}, // tombstone
	)
	got := k.ReadAll(t, "state", 5*time.Second)
	if len(got) != 4 || got[3].Value != nil {
		t.Fatalf("ReadAll = %+v, want 4 records ending with a tombstone", got)
	}

	// Like real Kafka, kfake only compacts closed segments: tiny segments
	// and no tombstone retention make Compact remove everything it can,
	// and ReadAll must step over the offset gaps.
	k.CreateTopicWithConfigs(t, "state2", 1, map[string]string{
		"cleanup.policy":      "compact",
		"segment.bytes":       "1",
		"delete.retention.ms": "0",
	})
	for i := 0; i < 3; i++ {
		k.Produce(t, "state2", testbed.KV("a", fmt.Sprint(i)))
		k.Produce(t, "state2", testbed.KV("b", fmt.Sprint(i)))
	}
	k.Produce(t, "state2", testbed.Record{Partition: testbed.AnyPartition, Key: []byte("b")})
	k.Produce(t, "state2", testbed.KV("c", "x"))
	k.Compact(t)
	var kv []string
	for _, r := range k.ReadAll(t, "state2", 5*time.Second) {
		kv = append(kv, fmt.Sprintf("%s@%d=%s", r.Key, r.Offset, r.Value))
	}
	if want := []string{"a@4=2", "c@7=x"}; !slices.Equal(kv, want) {
		t.Fatalf("after Compact ReadAll = %v, want %v", kv, want)
	}
}

// TestKafkaGoInterop proves that segmentio/kafka-go talks to the cluster over
// the wire: a Writer with the Hash balancer and acks=all, and a consumer
// group Reader that commits.
func TestKafkaGoInterop(t *testing.T) {
	k := testbed.StartKafka(t)
	const topic, group = "interop", "interop-group"
	k.CreateTopic(t, topic, 3)

	transport := &kafka.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	w := &kafka.Writer{
		Addr:         kafka.TCP(k.Addrs()...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 50 * time.Microsecond,
		Transport:    transport,
	}
	const n = 200
	var msgs []kafka.Message
	want := make(map[string][]string)
	for i := 0; i < n; i++ {
		key, val := fmt.Sprintf("user-%d", i%11), fmt.Sprintf("event-%03d", i)
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: []byte(val), Headers: []kafka.Header{{Key: "h", Value: []byte("v")}}})
		want[key] = append(want[key], val)
	}
	// One call per message keeps per-key order regardless of batching.
	for _, m := range msgs {
		if err := w.WriteMessages(ctxT(t, 10*time.Second), m); err != nil {
			t.Fatalf("kafka-go WriteMessages: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("kafka-go Writer.Close: %v", err)
	}

	got := k.ReadAll(t, topic, 10*time.Second)
	if len(got) != n {
		t.Fatalf("ReadAll returned %d records, want %d", len(got), n)
	}
	checkPerKeyOrder(t, got, want)

	// The kafka-go Hash balancer and testbed.Produce agree on partitions.
	kgPart := make(map[string]int32)
	for _, r := range got {
		kgPart[string(r.Key)] = r.Partition
		if wp := testbed.KeyPartition(r.Key, 3); r.Partition != wp {
			t.Fatalf("kafka-go put key %q on partition %d, KeyPartition says %d", r.Key, r.Partition, wp)
		}
		if len(r.Headers) != 1 || r.Headers[0].Key != "h" || string(r.Headers[0].Value) != "v" {
			t.Fatalf("headers %+v", r.Headers)
		}
	}
	var again []testbed.Record
	for key := range kgPart {
		again = append(again, testbed.KV(key, "from-testbed"))
	}
	for _, r := range k.Produce(t, topic, again...) {
		if r.Partition != kgPart[string(r.Key)] {
			t.Fatalf("key %q: kafka-go chose partition %d, testbed.Produce chose %d", r.Key, kgPart[string(r.Key)], r.Partition)
		}
	}
	total := n + len(again)

	// A consumer group reader reads everything and commits.
	if c := k.CommittedOffsets(t, group, topic); len(c) != 0 {
		t.Fatalf("committed offsets before reading: %v", c)
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:  k.Addrs(),
		GroupID:  group,
		Topic:    topic,
		MaxWait:  100 * time.Millisecond,
		MinBytes: 1,
		MaxBytes: 1 << 20,
	})
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("kafka-go Reader.Close: %v", err)
		}
	}()
	readCtx := ctxT(t, 30*time.Second)
	lastOffset := make(map[int32]int64)
	start := time.Now()
	for i := 0; i < total; i++ {
		m, err := r.FetchMessage(readCtx)
		if err != nil {
			t.Fatalf("kafka-go FetchMessage after %d messages: %v", i, err)
		}
		if i == 0 {
			t.Logf("first message after %v (group join)", time.Since(start))
		}
		if err := r.CommitMessages(readCtx, m); err != nil {
			t.Fatalf("kafka-go CommitMessages: %v", err)
		}
		lastOffset[int32(m.Partition)] = m.Offset
	}
	ends := k.EndOffsets(t, topic)
	committed := k.CommittedOffsets(t, group, topic)
	for p, end := range ends {
		if end == 0 {
			continue
		}
		if committed[p] != end || lastOffset[p] != end-1 {
			t.Fatalf("partition %d: end %d, committed %d, last fetched %d; all committed %v", p, end, committed[p], lastOffset[p], committed)
		}
	}
	t.Logf("committed %v", committed)
}

// TestKafkaGoSurvivesRestart shows that kafka-go clients outside the helper
// reconnect after Restart because the ports stay the same, and that with
// DataDir the group's commits survive. kafka-go's consumer group does not
// recover its coordinator connection at once: commits fail until the next
// heartbeat ends the generation (about 3 s), then the group rejoins and
// redelivers everything after the last successful commit.
func TestKafkaGoSurvivesRestart(t *testing.T) {
	k := testbed.StartKafka(t, testbed.DataDir(t.TempDir()))
	const topic, group = "restart", "restart-group"
	k.CreateTopic(t, topic, 2)
	transport := &kafka.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	w := &kafka.Writer{
		Addr:         kafka.TCP(k.Addrs()...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 50 * time.Microsecond,
		Transport:    transport,
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: k.Addrs(), GroupID: group, Topic: topic, MaxWait: 100 * time.Millisecond})
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("kafka-go Reader.Close: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Errorf("kafka-go Writer.Close: %v", err)
		}
	}()
	ctx := ctxT(t, 60*time.Second)

	write := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte("v")}); err != nil {
				t.Fatalf("kafka-go WriteMessages %d: %v", i, err)
			}
		}
	}
	// consume fetches and commits until the group's commits reach the
	// end offsets, tolerating the failed commits and redeliveries.
	consume := func() (commitErrs int) {
		t.Helper()
		ends := k.EndOffsets(t, topic)
		done := func() bool {
			c := k.CommittedOffsets(t, group, topic)
			for p, e := range ends {
				if c[p] != e {
					return false
				}
			}
			return true
		}
		for !done() {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("kafka-go FetchMessage: %v", err)
			}
			if err := r.CommitMessages(ctx, m); err != nil {
				commitErrs++
			}
		}
		return commitErrs
	}

	write(0, 10)
	consume()
	before := k.CommittedOffsets(t, group, topic)
	addrs := k.Addrs()

	k.Restart(t)
	if got := k.CommittedOffsets(t, group, topic); !maps.Equal(got, before) {
		t.Fatalf("commits changed across restart: %v -> %v", before, got)
	}
	if !slices.Equal(k.Addrs(), addrs) {
		t.Fatalf("addresses changed across restart")
	}
	start := time.Now()
	write(10, 20)
	errs := consume()
	t.Logf("kafka-go recovered %v after the restart (%d failed commits)", time.Since(start), errs)
	if n := len(k.ReadAll(t, topic, 10*time.Second)); n != 20 {
		t.Fatalf("ReadAll returned %d records, want 20", n)
	}
}

func TestKcat(t *testing.T) {
	kcat := testbed.Kcat(t)
	k := testbed.StartKafka(t)
	const topic = "kcat"
	k.CreateTopic(t, topic, 3)
	addr := strings.Join(k.Addrs(), ",")

	var in strings.Builder
	var want []string
	for i := 0; i < 10; i++ {
		line := fmt.Sprintf("k%d:value %d", i%4, i)
		in.WriteString(line + "\n")
		want = append(want, line)
	}
	ctx := ctxT(t, 30*time.Second)
	prod := exec.CommandContext(ctx, kcat, "-b", addr, "-t", topic, "-P", "-K:")
	prod.Stdin = strings.NewReader(in.String())
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}

	cons := exec.CommandContext(ctx, kcat, "-b", addr, "-t", topic, "-C", "-e", "-o", "beginning", "-f", "%k:%s\n")
	var stderr bytes.Buffer
	cons.Stderr = &stderr
	out, err := cons.Output()
	if err != nil {
		t.Fatalf("kcat -C: %v\n%s", err, stderr.String())
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("kcat consumed %q, want %q", got, want)
	}

	// kcat's default partitioner (consistent_random, CRC32) differs from
	// kafka-go's Hash; librdkafka's fnv1a partitioner matches it.
	in.Reset()
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&in, "fnv-%d:fnv\n", i)
	}
	prod = exec.CommandContext(ctx, kcat, "-b", addr, "-t", topic, "-P", "-K:", "-X", "partitioner=fnv1a")
	prod.Stdin = strings.NewReader(in.String())
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P -X partitioner=fnv1a: %v\n%s", err, out)
	}

	var fromReadAll []string
	for _, r := range k.ReadAll(t, topic, 10*time.Second) {
		if string(r.Value) == "fnv" {
			if wp := testbed.KeyPartition(r.Key, 3); r.Partition != wp {
				t.Fatalf("kcat fnv1a put key %q on partition %d, KeyPartition says %d", r.Key, r.Partition, wp)
			}
			continue
		}
		fromReadAll = append(fromReadAll, string(r.Key)+":"+string(r.Value))
	}
	sort.Strings(fromReadAll)
	if !slices.Equal(fromReadAll, want) {
		t.Fatalf("ReadAll returned %q, want %q", fromReadAll, want)
	}
}

func TestRedis(t *testing.T) {
	r := testbed.StartRedis(t)
	if !strings.HasPrefix(r.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q", r.Addr())
	}
	c := r.Client(t)
	if err := c.Set(ctxT(t, 5*time.Second), "greeting", "hello", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if v, err := c.Get(ctxT(t, 5*time.Second), "greeting").Result(); err != nil || v != "hello" {
		t.Fatalf("GET = %q, %v", v, err)
	}

	r.Kill(t)
	if err := c.Ping(ctxT(t, 5*time.Second)).Err(); err == nil {
		t.Fatalf("PING after Kill succeeded")
	}

	r.Restart(t)
	if err := c.Ping(ctxT(t, 5*time.Second)).Err(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if err := c.Get(ctxT(t, 5*time.Second), "greeting").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET after Restart: err = %v, want redis.Nil", err)
	}
	// A second client on the restarted server works too.
	if err := r.Client(t).Ping(ctxT(t, 5*time.Second)).Err(); err != nil {
		t.Fatalf("PING from a new client: %v", err)
	}

	// A frozen server answers nothing but keeps its data.
	if err := c.Set(ctxT(t, 5*time.Second), "kept", "yes", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	r.Freeze(t)
	if err := c.Ping(ctxT(t, 500*time.Millisecond)).Err(); err == nil {
		t.Fatalf("PING of a frozen server succeeded")
	}
	r.Thaw(t)
	if v, err := c.Get(ctxT(t, 5*time.Second), "kept").Result(); err != nil || v != "yes" {
		t.Fatalf("GET after Thaw = %q, %v; want yes", v, err)
	}
}

func TestFreePort(t *testing.T) {
	a, b := testbed.FreePort(t), testbed.FreePort(t)
	if a <= 0 || b <= 0 {
		t.Fatalf("FreePort returned %d and %d", a, b)
	}
}

func TestBinaryAndProcess(t *testing.T) {
	bin := testbed.BuildBinary(t, "./testdata/sigterm")
	if again := testbed.BuildBinary(t, "./testdata/sigterm"); again != bin {
		t.Fatalf("second BuildBinary returned %q, first %q", again, bin)
	}
	if filepath.Base(bin) != "sigterm" {
		t.Fatalf("binary %q is not named sigterm", bin)
	}

	waitLog := func(p *testbed.Process, s string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(p.Log(), s) {
			if time.Now().After(deadline) || p.Exited() {
				t.Fatalf("no %q in output (exited: %v, %v):\n%s", s, p.Exited(), p.ExitErr(), p.Log())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// SIGTERM leads to a clean exit.
	p := testbed.StartProcess(t, bin, nil, []string{"SIGTERM_GREETING=hi"})
	waitLog(p, "ready hi")
	waitLog(p, "stderr works")
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatalf("Stop: %v\n%s", err, p.Log())
	}
	if !strings.Contains(p.Log(), "bye") {
		t.Fatalf("no bye in output:\n%s", p.Log())
	}

	// A process that ignores SIGTERM is killed after the timeout.
	p = testbed.StartProcess(t, bin, []string{"-ignore"}, nil)
	waitLog(p, "ready")
	start := time.Now()
	if err := p.Stop(300 * time.Millisecond); err == nil {
		t.Fatalf("Stop of a process ignoring SIGTERM returned nil")
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 10*time.Second {
		t.Fatalf("Stop took %v", d)
	}
	waitLog(p, "ignoring SIGTERM")

	// Kill is immediate.
	p = testbed.StartProcess(t, bin, []string{"-ignore"}, nil)
	waitLog(p, "ready")
	p.Kill()
	if !p.Exited() || p.ExitErr() == nil {
		t.Fatalf("after Kill: exited %v, err %v", p.Exited(), p.ExitErr())
	}
}

// TestScriptWatchCatchesUndeclaredKeys: the script watch reports a key a
// script touches without declaring it, and keys declared under two hash
// tags, and stays quiet for a script that keeps the contract.
func TestScriptWatchCatchesUndeclaredKeys(t *testing.T) {
	r := testbed.StartRedis(t)
	c := r.Client(t)
	ctx := context.Background()
	w, err := testbed.StartScriptWatch(r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	good := `redis.call('SET', KEYS[1], ARGV[1]); redis.call('HSET', KEYS[2], 'f', 'v'); redis.call('DEL', KEYS[1], KEYS[2]); return redis.call('TIME')`
	if err := c.Eval(ctx, good, []string{"{t}:a", "{t}:b\n\"q\""}, "x").Err(); err != nil {
		t.Fatal(err)
	}
	bad := `redis.call('SET', KEYS[1], '1'); redis.call('HSET', '{t}:undeclared', 'f', 'v'); return 1`
	if err := c.Eval(ctx, bad, []string{"{t}:a"}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Eval(ctx, `return 1`, []string{"{t}:a", "{u}:b"}).Err(); err != nil {
		t.Fatal(err)
	}
	v := w.Stop()
	if scripts, calls := w.Scripts(); scripts != 3 || calls != 6 {
		t.Errorf("Scripts() = %d, %d; want 3 scripts, 6 commands", scripts, calls)
	}
	if len(v) != 2 || !strings.Contains(v[0], `"{t}:undeclared"`) || !strings.Contains(v[1], "2 hash tags") {
		t.Errorf("violations = %q; want the undeclared {t}:undeclared and two hash tags", v)
	}
}

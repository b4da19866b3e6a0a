package testbed

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// AnyPartition is the Record.Partition value that asks Produce to choose the
// partition itself: by key hash like kafka-go's kafka.Hash balancer when the
// key is not nil, and round-robin when the key is nil.
const AnyPartition int32 = -1

// kafkaOpTimeout bounds every blocking helper that has no timeout argument.
const kafkaOpTimeout = 30 * time.Second

// Header is one Kafka record header.
type Header struct {
	// Key is the header key.
	Key string
	// Value is the header value.
	Value []byte
}

// Record is a Kafka record as produced by Produce and returned by ReadAll.
//
// The zero value has Partition 0, which Produce honours literally; use
// AnyPartition (or KV) to have the partition chosen by key hash.
type Record struct {
	// Partition is the partition the record is written to or was read
	// from. For Produce, AnyPartition (-1) means "hash the key like
	// kafka-go's kafka.Hash balancer" and any other value is used as is.
	Partition int32
	// Offset is the record's offset; Produce ignores it on input.
	Offset int64
	// Key is the record key; nil is a null key.
	Key []byte
	// Value is the record value; nil is a null value (a tombstone).
	Value []byte
	// Headers are the record headers, in order.
	Headers []Header
	// Timestamp is the record timestamp; Produce uses the current time
	// when it is zero.
	Timestamp time.Time
}

// KV returns a Record with the given key and value and Partition set to
// AnyPartition, so that Produce places it by key hash.
func KV(key, value string) Record {
	return Record{Partition: AnyPartition, Key: []byte(key), Value: []byte(value)}
}

// KeyPartition returns the partition that kafka-go's kafka.Hash balancer (and
// Sarama's default hash partitioner, and Produce with AnyPartition) picks for
// a non-nil key in a topic with the given number of partitions: FNV-1a 32 of
// the key, taken as int32, modulo partitions, negated when negative.
func KeyPartition(key []byte, partitions int) int32 {
	return int32(saramaHasher(key, partitions))
}

// saramaHasher is the kgo form of kafka-go's kafka.Hash balancer.
var saramaHasher = kgo.SaramaCompatHasher(fnv32a)

func fnv32a(b []byte) uint32 {
	h := fnv.New32a()
	_, _ = h.Write(b)
	return h.Sum32()
}

// newPartitioner returns the partitioner of the helper client: an explicit
// Record.Partition wins, a non-nil key is hashed like kafka-go's kafka.Hash,
// and a nil key goes round-robin. kgo calls it under a per-topic lock, so the
// round-robin counter needs no synchronisation of its own. An out of range
// explicit partition makes kgo fail that record.
func newPartitioner() kgo.Partitioner {
	return kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
		var next int
		return func(r *kgo.Record, n int) int {
			switch {
			case r.Partition >= 0:
				return int(r.Partition)
			case r.Key != nil:
				return saramaHasher(r.Key, n)
			default:
				next++
				return next % n
			}
		}
	})
}

// KafkaOption configures StartKafka.
type KafkaOption func(*kafkaConfig)

type kafkaConfig struct {
	security          *KafkaSecurity
	brokers           int
	dataDir           string
	autoCreateParts   int
	minSessionTimeout time.Duration
	ownProcess        bool
	countRequests     bool
	listen            func(network, address string) (net.Listener, error)
}

// Brokers sets the number of brokers of the cluster; the default is 1.
func Brokers(n int) KafkaOption {
	return func(c *kafkaConfig) { c.brokers = n }
}

// DataDir makes the cluster persist its state (topics, records, committed
// offsets) in dir, so that it survives Kafka.Restart or a later StartKafka
// with the same directory in the same test. Without it the cluster lives in
// memory and a restart comes back empty.
func DataDir(dir string) KafkaOption {
	return func(c *kafkaConfig) { c.dataDir = dir }
}

// AutoCreateTopics lets the cluster create unknown topics with the given
// number of partitions when a client asks for them in a metadata or produce
// request, like a broker with auto.create.topics.enable=true. By default
// topics must be created with CreateTopic.
func AutoCreateTopics(partitions int) KafkaOption {
	return func(c *kafkaConfig) { c.autoCreateParts = partitions }
}

// MinSessionTimeout lowers the smallest consumer group session timeout the
// cluster accepts (group.min.session.timeout.ms, 6 s by default as in real
// Kafka), so that tests can use short session timeouts to make a killed
// consumer's partitions move quickly.
func MinSessionTimeout(d time.Duration) KafkaOption {
	return func(c *kafkaConfig) { c.minSessionTimeout = d }
}

// OwnProcess runs the cluster in a process of its own (the kafkad program
// of this module, built on first use) instead of inside the test process:
// its brokers' work does not compete with the test's own goroutines, and
// Stop and Restart stop and start that process (SIGTERM, which saves the
// DataDir state first). Cluster returns nil in this mode, so the methods
// that need the in-process cluster (Compact) fail the test.
func OwnProcess() KafkaOption {
	return func(c *kafkaConfig) { c.ownProcess = true }
}

// CountRequests makes the kafkad process (OwnProcess) count the requests
// its brokers receive, by API, with their bytes and their responses'; read
// them with Requests.
func CountRequests() KafkaOption {
	return func(c *kafkaConfig) { c.countRequests = true }
}

// RequestCount is the count of one API's requests a broker received, and
// the bytes of the requests and of their responses.
type RequestCount struct {
	Requests      int64 `json:"requests"`
	RequestBytes  int64 `json:"request_bytes"`
	ResponseBytes int64 `json:"response_bytes"`
}

// Requests returns the requests the brokers received since the kafkad
// process started, by API name (Produce, Fetch, OffsetCommit, ...), with
// CountRequests; the connections its brokers accepted count as requests
// of "connections".
func (k *Kafka) Requests(t testing.TB) map[string]RequestCount {
	t.Helper()
	k.mu.Lock()
	addr := k.statsAddr
	k.mu.Unlock()
	if addr == "" {
		t.Fatal("testbed: Requests needs OwnProcess and CountRequests")
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("testbed: read the broker's request counts: %v", err)
	}
	defer resp.Body.Close()
	var raw map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatalf("testbed: read the broker's request counts: %v", err)
	}
	out := map[string]RequestCount{}
	for name, v := range raw {
		if name == "connections" {
			var n int64
			if json.Unmarshal(v, &n) == nil && n > 0 {
				out[name] = RequestCount{Requests: n}
			}
			continue
		}
		var c RequestCount
		if json.Unmarshal(v, &c) == nil && c.Requests > 0 {
			out[name] = c
		}
	}
	return out
}

// KafkaSecurity turns on TLS and SASL on the cluster's listeners.
type KafkaSecurity struct {
	// Server is the listeners' TLS configuration; nil leaves them plain.
	Server *tls.Config
	// Client is the TLS configuration of the helper client and NewClient.
	Client *tls.Config
	// Users are the SASL superusers; the first one is the helper's. Empty
	// leaves SASL off.
	Users []SASLUser
	// Restricted are SASL users subject to ACLs, each allowed only what
	// its ACLs allow; any turns the cluster's ACL checks on (superusers
	// bypass them).
	Restricted []RestrictedUser
}

// RestrictedUser is a SASL user that may do only what its ACLs allow.
type RestrictedUser struct {
	SASLUser
	// ACLs are its permissions (the principal is the user's).
	ACLs []kfake.ACL
}

// SASLUser is a SASL user of the cluster.
type SASLUser struct {
	// Method is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Method string
	// User and Password are the credentials.
	User, Password string
}

// Secured turns on TLS and SASL on the cluster (kfake.TLS, kfake.EnableSASL
// and kfake.Superuser); the helper client and NewClient use them too.
func Secured(s KafkaSecurity) KafkaOption {
	return func(c *kafkaConfig) { c.security = &s }
}

// clientSecurity returns the kgo options of the helper client.
func (c kafkaConfig) clientSecurity() []kgo.Opt {
	s := c.security
	if s == nil {
		return nil
	}
	var opts []kgo.Opt
	if s.Client != nil {
		opts = append(opts, kgo.DialTLSConfig(s.Client.Clone()))
	}
	if len(s.Users) > 0 {
		u := s.Users[0]
		switch u.Method {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: u.User, Pass: u.Password}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: u.User, Pass: u.Password}.AsSha256Mechanism()))
		default:
			opts = append(opts, kgo.SASL(scram.Auth{User: u.User, Pass: u.Password}.AsSha512Mechanism()))
		}
	}
	return opts
}

// advertiseHandshakeV0 makes c advertise SASLHandshake from version 0, as
// a real broker does. kfake implements only version 1, and librdkafka (kcat)
// refuses SCRAM unless the advertised range starts at 0, even though it
// then sends version 1, which kfake answers.
func advertiseHandshakeV0(c *kfake.Cluster, cfg kafkaConfig) error {
	cl, err := kgo.NewClient(append(cfg.clientSecurity(), kgo.SeedBrokers(c.ListenAddrs()...))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), kafkaOpTimeout)
	defer cancel()
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "testbed", "1"
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("api versions: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("api versions: %w", err)
	}
	for i := range resp.ApiKeys {
		if resp.ApiKeys[i].ApiKey == 17 {
			resp.ApiKeys[i].MinVersion = 0
		}
	}
	c.ControlKey(18, func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.ApiVersionsRequest)
		if req.Version > resp.Version {
			return nil, nil, false // kfake's own answer downgrades the client
		}
		out := *resp
		out.ApiKeys = slices.Clone(resp.ApiKeys)
		out.Version = req.Version
		return &out, nil, true
	})
	return nil
}

// Kafka is a running kfake cluster whose brokers listen on, and
// advertise, 127.0.0.1 TCP ports, so clients in other processes can use it
// too. Its methods are safe for concurrent use.
type Kafka struct {
	cfg kafkaConfig

	bin     string // the kafkad binary, with OwnProcess
	procDir string // its addresses file and logs, with OwnProcess

	mu      sync.Mutex
	cluster *kfake.Cluster // nil while stopped, and always with OwnProcess
	proc    *Process       // the kafkad process, with OwnProcess; nil while stopped
	runs    int            // process starts, naming their log files
	addrs   []string
	ports   []int
	client  *kgo.Client // helper client, created lazily, closed on Stop

	statsAddr string // where kafkad serves its request counts, with CountRequests
}

// StartKafka starts a kfake cluster (one broker unless Brokers says
// otherwise) on free ports of 127.0.0.1 and stops it when the test ends.
func StartKafka(t testing.TB, opts ...KafkaOption) *Kafka {
	t.Helper()
	cfg := kafkaConfig{brokers: 1}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.brokers < 1 {
		t.Fatalf("testbed: Brokers(%d): need at least one broker", cfg.brokers)
	}
	k := &Kafka{cfg: cfg}
	if cfg.ownProcess {
		k.bin = BuildBinary(t, "github.com/breakwater/breakwater/internal/testbed/kafkad")
		k.procDir = t.TempDir()
	}
	if err := k.start(make([]int, cfg.brokers)); err != nil {
		t.Fatalf("testbed: starting kfake: %v", err)
	}
	t.Cleanup(k.Stop)
	return k
}

// start starts the cluster on ports (0 means a kernel-chosen port). The
// kernel picks the first ports, which cannot race with other processes; a
// restart binds the same ports again.
func (k *Kafka) start(ports []int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cluster != nil || k.proc != nil {
		return errors.New("cluster is already running")
	}
	if k.cfg.ownProcess {
		return k.startProcess(ports)
	}
	opts := []kfake.Opt{
		kfake.Ports(ports...),
		kfake.ClusterID("testbed"),
	}
	if k.cfg.dataDir != "" {
		opts = append(opts, kfake.DataDir(k.cfg.dataDir))
	}
	if k.cfg.autoCreateParts > 0 {
		opts = append(opts, kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(k.cfg.autoCreateParts))
	}
	if k.cfg.minSessionTimeout > 0 {
		opts = append(opts, kfake.GroupMinSessionTimeout(k.cfg.minSessionTimeout))
	}
	if k.cfg.listen != nil {
		opts = append(opts, kfake.ListenFn(k.cfg.listen))
	}
	if s := k.cfg.security; s != nil {
		if s.Server != nil {
			opts = append(opts, kfake.TLS(s.Server))
		}
		if len(s.Users) > 0 {
			opts = append(opts, kfake.EnableSASL())
			for _, u := range s.Users {
				opts = append(opts, kfake.Superuser(u.Method, u.User, u.Password))
			}
		}
		if len(s.Restricted) > 0 {
			opts = append(opts, kfake.EnableACLs())
			for _, u := range s.Restricted {
				opts = append(opts, kfake.User(u.Method, u.User, u.Password, u.ACLs...))
			}
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return err
	}
	if s := k.cfg.security; s != nil && len(s.Users) > 0 {
		if err := advertiseHandshakeV0(c, k.cfg); err != nil {
			c.Close()
			return err
		}
	}
	addrs := c.ListenAddrs()
	got := make([]int, 0, len(addrs))
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err == nil && host != "127.0.0.1" {
			err = fmt.Errorf("listening on %s, want 127.0.0.1", a)
		}
		p, perr := strconv.Atoi(port)
		if err == nil {
			err = perr
		}
		if err != nil {
			c.Close()
			return fmt.Errorf("unexpected listen address %q: %w", a, err)
		}
		got = append(got, p)
	}
	k.cluster, k.addrs, k.ports = c, addrs, got
	return nil
}

// startProcess runs kafkad on ports and waits until it wrote the brokers'
// addresses; k.mu is held.
func (k *Kafka) startProcess(ports []int) error {
	k.runs++
	addrsFile := filepath.Join(k.procDir, fmt.Sprintf("addrs-%d", k.runs))
	strs := make([]string, len(ports))
	for i, p := range ports {
		strs[i] = strconv.Itoa(p)
	}
	args := []string{"-ports", strings.Join(strs, ","), "-addrs", addrsFile}
	if k.cfg.dataDir != "" {
		args = append(args, "-data", k.cfg.dataDir)
	}
	if k.cfg.minSessionTimeout > 0 {
		args = append(args, "-min-session-timeout", k.cfg.minSessionTimeout.String())
	}
	if k.cfg.autoCreateParts > 0 {
		args = append(args, "-auto-create", strconv.Itoa(k.cfg.autoCreateParts))
	}
	if k.cfg.countRequests {
		if k.statsAddr == "" {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			k.statsAddr = ln.Addr().String()
			_ = ln.Close()
		}
		args = append(args, "-stats", k.statsAddr)
	}
	p, err := startProcess(k.bin, args, nil, filepath.Join(k.procDir, fmt.Sprintf("kafkad-%d.log", k.runs)))
	if err != nil {
		return err
	}
	// Loading a large data directory takes a while.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, err := os.ReadFile(addrsFile)
		if err == nil {
			addrs := strings.Fields(string(b))
			got := make([]int, 0, len(addrs))
			for _, a := range addrs {
				_, port, err := net.SplitHostPort(a)
				n, perr := strconv.Atoi(port)
				if err != nil || perr != nil {
					p.Kill()
					return fmt.Errorf("kafkad wrote a bad address %q", a)
				}
				got = append(got, n)
			}
			k.proc, k.addrs, k.ports = p, addrs, got
			return nil
		}
		if p.Exited() || time.Now().After(deadline) {
			p.Kill()
			return fmt.Errorf("kafkad did not start (%v):\n%s", p.ExitErr(), p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pid returns the process id of the kafkad process with OwnProcess, and 0
// when the cluster runs in the test process or is stopped.
func (k *Kafka) Pid() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proc == nil {
		return 0
	}
	return k.proc.Pid()
}

// Addrs returns the host:port addresses of the brokers, in broker order.
// They stay the same across Restart.
func (k *Kafka) Addrs() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.addrs...)
}

// Cluster returns the underlying kfake cluster, for fault injection
// (Control, MoveTopicPartition, ...). It is nil while the cluster is stopped
// and changes on Start and Restart.
func (k *Kafka) Cluster() *kfake.Cluster {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cluster
}

// Stop shuts the cluster down: the listeners close and every client
// connection drops. With DataDir the state is saved first. Stop is
// idempotent and is called automatically when the test ends.
func (k *Kafka) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.client != nil {
		k.client.Close()
		k.client = nil
	}
	if k.cluster != nil {
		k.cluster.Close()
		k.cluster = nil
	}
	if k.proc != nil {
		// SIGTERM lets kafkad save its data directory; saving a large
		// log takes a while on a loaded machine.
		_ = k.proc.Stop(2 * time.Minute)
		k.proc = nil
	}
}

// Start starts a stopped cluster again on the same ports. With DataDir it
// comes back with its persisted state; without it, it comes back empty.
func (k *Kafka) Start(t testing.TB) {
	t.Helper()
	k.mu.Lock()
	ports := append([]int(nil), k.ports...)
	k.mu.Unlock()
	// Our own listeners released the ports a moment ago; retry briefly
	// in case one is not bindable yet.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = k.start(ports); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("testbed: restarting kfake on ports %v: %v", ports, err)
}

// Restart stops the cluster and starts it again on the same ports, which
// drops every client connection; see Start for what survives.
func (k *Kafka) Restart(t testing.TB) {
	t.Helper()
	k.Stop()
	k.Start(t)
}

// Compact runs log compaction on every compacted topic now, instead of
// waiting for the cluster's periodic cleaner. As in real Kafka only closed
// segments are compacted and tombstones are kept for delete.retention.ms, so
// a test that wants to see records disappear should create the topic with
// CreateTopicWithConfigs and "segment.bytes": "1", "delete.retention.ms": "0".
func (k *Kafka) Compact(t testing.TB) {
	t.Helper()
	k.running(t).Compact()
}

func (k *Kafka) running(t testing.TB) *kfake.Cluster {
	t.Helper()
	c := k.Cluster()
	if c == nil {
		t.Fatalf("testbed: the Kafka cluster is stopped or runs in its own process")
	}
	return c
}

// NewClient returns a new franz-go client seeded with the cluster's brokers
// and closed when the test ends. Extra options are appended to the seed
// option.
func (k *Kafka) NewClient(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := append([]kgo.Opt{kgo.SeedBrokers(k.Addrs()...)}, k.cfg.clientSecurity()...)
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("testbed: new kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// helper returns the shared helper client used by Produce, ReadAll and the
// admin methods, creating it on first use after a (re)start.
func (k *Kafka) helper(t testing.TB) *kgo.Client {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cluster == nil && k.proc == nil {
		t.Fatalf("testbed: the Kafka cluster is stopped")
	}
	if k.client != nil {
		return k.client
	}
	cl, err := kgo.NewClient(append(k.cfg.clientSecurity(),
		kgo.SeedBrokers(k.addrs...),
		kgo.ClientID("testbed"),
		kgo.RecordPartitioner(newPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxBufferedRecords(1<<20),
		kgo.ProducerLinger(0),
		kgo.MetadataMinAge(10*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
	)...)
	if err != nil {
		t.Fatalf("testbed: new kgo client: %v", err)
	}
	k.client = cl
	return cl
}

// CreateTopic creates topic with the given number of partitions and the
// broker's default configuration.
func (k *Kafka) CreateTopic(t testing.TB, name string, partitions int) {
	t.Helper()
	k.CreateTopicWithConfigs(t, name, partitions, nil)
}

// CreateCompactedTopic creates topic with the given number of partitions and
// cleanup.policy=compact.
func (k *Kafka) CreateCompactedTopic(t testing.TB, name string, partitions int) {
	t.Helper()
	k.CreateTopicWithConfigs(t, name, partitions, map[string]string{"cleanup.policy": "compact"})
}

// CreateTopicWithConfigs creates topic with the given number of partitions and
// topic configs (for example "retention.ms"). It fails the test if the topic
// already exists.
func (k *Kafka) CreateTopicWithConfigs(t testing.TB, name string, partitions int, configs map[string]string) {
	t.Helper()
	cl := k.helper(t)
	ctx, cancel := context.WithTimeout(context.Background(), kafkaOpTimeout)
	defer cancel()

	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = name
	rt.NumPartitions = int32(partitions)
	rt.ReplicationFactor = -1
	keys := make([]string, 0, len(configs))
	for key := range configs {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name = key
		c.Value = kmsg.StringPtr(configs[key])
		rt.Configs = append(rt.Configs, c)
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(kafkaOpTimeout / time.Millisecond)
	req.Topics = append(req.Topics, rt)

	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("testbed: create topic %q: %v", name, err)
	}
	if len(resp.Topics) != 1 {
		t.Fatalf("testbed: create topic %q: %d topics in response", name, len(resp.Topics))
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		msg := ""
		if m := resp.Topics[0].ErrorMessage; m != nil {
			msg = ": " + *m
		}
		t.Fatalf("testbed: create topic %q: %v%s", name, err, msg)
	}
	// Make the helper client see the topic at once, so an immediate
	// Produce does not wait for a metadata refresh.
	cl.ForceMetadataRefresh()
}

// Produce writes recs to topic synchronously with acks=all through one
// franz-go produce call, so tens of thousands of records are fast, and fails
// the test on any error. Records with Partition AnyPartition are placed by
// key hash exactly like kafka-go's kafka.Hash balancer (round-robin for a nil
// key); any other Partition is used as is. It returns the records as written,
// with Partition and Offset filled in, in the order of recs.
func (k *Kafka) Produce(t testing.TB, topic string, recs ...Record) []Record {
	t.Helper()
	if len(recs) == 0 {
		return nil
	}
	cl := k.helper(t)
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		kr := &kgo.Record{
			Topic:     topic,
			Partition: r.Partition,
			Key:       r.Key,
			Value:     r.Value,
			Timestamp: r.Timestamp,
		}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		krs[i] = kr
	}
	ctx, cancel := context.WithTimeout(context.Background(), kafkaOpTimeout)
	defer cancel()
	res := cl.ProduceSync(ctx, krs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("testbed: produce %d records to %q: %v", len(recs), topic, err)
	}
	out := make([]Record, len(res))
	for i, pr := range res {
		out[i] = fromKgo(pr.Record)
	}
	return out
}

func fromKgo(kr *kgo.Record) Record {
	r := Record{
		Partition: kr.Partition,
		Offset:    kr.Offset,
		Key:       kr.Key,
		Value:     kr.Value,
		Timestamp: kr.Timestamp,
	}
	for _, h := range kr.Headers {
		r.Headers = append(r.Headers, Header{Key: h.Key, Value: h.Value})
	}
	return r
}

// withLastErr adds the last error of a retry loop, if any, to err.
func withLastErr(err, last error) error {
	if last == nil {
		return err
	}
	return fmt.Errorf("%w (last error: %w)", err, last)
}

// topicInfo is what ReadAll needs to know about a topic.
type topicInfo struct {
	id      [16]byte
	leaders map[int32]int32 // partition -> leader broker
}

func (ti topicInfo) partitions() []int32 {
	ps := make([]int32, 0, len(ti.leaders))
	for p := range ti.leaders {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

// describeTopic asks for topic's metadata, retrying while leaders are
// missing.
func describeTopic(ctx context.Context, cl *kgo.Client, topic string) (topicInfo, error) {
	for {
		ti, err := describeTopicOnce(ctx, cl, topic)
		if err == nil || !kerr.IsRetriable(err) {
			return ti, err
		}
		select {
		case <-ctx.Done():
			return ti, withLastErr(ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func describeTopicOnce(ctx context.Context, cl *kgo.Client, topic string) (topicInfo, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return topicInfo{}, err
	}
	for _, mt := range resp.Topics {
		if mt.Topic == nil || *mt.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(mt.ErrorCode); err != nil {
			return topicInfo{}, err
		}
		ti := topicInfo{id: mt.TopicID, leaders: make(map[int32]int32, len(mt.Partitions))}
		for _, mp := range mt.Partitions {
			if err := kerr.ErrorForCode(mp.ErrorCode); err != nil {
				return topicInfo{}, err
			}
			ti.leaders[mp.Partition] = mp.Leader
		}
		return ti, nil
	}
	return topicInfo{}, kerr.UnknownTopicOrPartition
}

// listOffsets returns the earliest (ts -2) or latest (ts -1) offset of every
// partition of topic; kgo routes the request to the partition leaders.
func listOffsets(ctx context.Context, cl *kgo.Client, topic string, parts []int32, ts int64) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = ts
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64, len(parts))
	for _, t := range resp.Topics {
		if t.Topic != topic {
			continue
		}
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("partition %d: %w", p.Partition, err)
			}
			out[p.Partition] = p.Offset
		}
	}
	for _, p := range parts {
		if _, ok := out[p]; !ok {
			return nil, fmt.Errorf("partition %d missing from ListOffsets response", p)
		}
	}
	return out, nil
}

// EndOffsets returns the end offset (high watermark: the offset the next
// record will get) of every partition of topic.
func (k *Kafka) EndOffsets(t testing.TB, topic string) map[int32]int64 {
	t.Helper()
	cl := k.helper(t)
	ctx, cancel := context.WithTimeout(context.Background(), kafkaOpTimeout)
	defer cancel()
	ti, err := describeTopic(ctx, cl, topic)
	if err != nil {
		t.Fatalf("testbed: end offsets of %q: metadata: %v", topic, err)
	}
	ends, err := listOffsets(ctx, cl, topic, ti.partitions(), -1)
	if err != nil {
		t.Fatalf("testbed: end offsets of %q: %v", topic, err)
	}
	return ends
}

// CommittedOffsets returns the offsets group has committed for topic, by
// partition; partitions without a commit are absent. A group that never
// committed yields an empty map.
func (k *Kafka) CommittedOffsets(t testing.TB, group, topic string) map[int32]int64 {
	t.Helper()
	cl := k.helper(t)
	ctx, cancel := context.WithTimeout(context.Background(), kafkaOpTimeout)
	defer cancel()
	ti, err := describeTopic(ctx, cl, topic)
	if err != nil {
		t.Fatalf("testbed: committed offsets of %q for %q: metadata: %v", group, topic, err)
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	rt.Partitions = ti.partitions()
	req.Topics = append(req.Topics, rt)

	var (
		resp *kmsg.OffsetFetchResponse
		errs []error
	)
	for {
		resp, err = req.RequestWith(ctx, cl)
		if err == nil {
			err = offsetFetchError(resp)
		}
		// kfake answers GROUP_ID_NOT_FOUND for a group it has never
		// seen, where real Kafka answers offset -1 for every
		// partition; both mean "nothing committed".
		if errors.Is(err, kerr.GroupIDNotFound) {
			return map[int32]int64{}
		}
		// The coordinator answers COORDINATOR_LOAD_IN_PROGRESS and the
		// like while it settles; retry those.
		if err == nil || !kerr.IsRetriable(err) || ctx.Err() != nil {
			break
		}
		errs = append(errs, err)
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("testbed: committed offsets of %q for %q: %v", group, topic, withLastErr(err, errors.Join(errs...)))
	}

	out := make(map[int32]int64)
	add := func(name string, id [16]byte, p int32, off int64, code int16) {
		if name != topic && id != ti.id {
			return
		}
		if err := kerr.ErrorForCode(code); err != nil {
			t.Fatalf("testbed: committed offsets of %q for %q partition %d: %v", group, topic, p, err)
		}
		if off >= 0 {
			out[p] = off
		}
	}
	for _, g := range resp.Groups {
		if g.Group != group {
			continue
		}
		for _, rt := range g.Topics {
			for _, rp := range rt.Partitions {
				add(rt.Topic, rt.TopicID, rp.Partition, rp.Offset, rp.ErrorCode)
			}
		}
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			add(rt.Topic, [16]byte{}, rp.Partition, rp.Offset, rp.ErrorCode)
		}
	}
	return out
}

// offsetFetchError returns the group level error of an OffsetFetch response
// in either its batched (v8+) or legacy form.
func offsetFetchError(resp *kmsg.OffsetFetchResponse) error {
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	for _, g := range resp.Groups {
		if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
			return err
		}
	}
	return nil
}

// ReadAll reads every partition of topic from its log start offset to the
// end offset it had when ReadAll began, and returns the records sorted by
// partition, then offset. Records produced after the call started are not
// included, transaction control records are skipped, and records of aborted
// transactions are included (read_uncommitted). The test fails if this takes
// longer than timeout.
//
// ReadAll uses raw fetch requests, not a consumer group, so it commits
// nothing and is exact about where each partition ends even across
// compaction gaps and transaction markers.
func (k *Kafka) ReadAll(t testing.TB, topic string, timeout time.Duration) []Record {
	t.Helper()
	cl := k.helper(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	recs, err := readAll(ctx, cl, topic)
	if err != nil {
		t.Fatalf("testbed: ReadAll(%q): %v", topic, err)
	}
	return recs
}

func readAll(ctx context.Context, cl *kgo.Client, topic string) ([]Record, error) {
	ti, err := describeTopic(ctx, cl, topic)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	parts := ti.partitions()
	starts, err := listOffsets(ctx, cl, topic, parts, -2)
	if err != nil {
		return nil, fmt.Errorf("start offsets: %w", err)
	}
	ends, err := listOffsets(ctx, cl, topic, parts, -1)
	if err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	var out []Record
	for _, p := range parts {
		recs, err := readPartition(ctx, cl, topic, &ti, p, starts[p], ends[p])
		if err != nil {
			return nil, fmt.Errorf("partition %d (offsets %d..%d): %w", p, starts[p], ends[p], err)
		}
		out = append(out, recs...)
	}
	return out, nil
}

// readPartition fetches [start, end) of one partition from its leader.
func readPartition(ctx context.Context, cl *kgo.Client, topic string, ti *topicInfo, p int32, start, end int64) ([]Record, error) {
	var (
		out     []Record
		off     = start
		lastErr error
		decomp  = kgo.DefaultDecompressor()
	)
	for off < end {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("stuck at offset %d: %w", off, withLastErr(err, lastErr))
		}
		fp, next, err := fetchOnce(ctx, cl, topic, ti, p, off, decomp)
		if err != nil {
			lastErr = err
			var kErr *kerr.Error
			if errors.As(err, &kErr) && !kerr.IsRetriable(err) {
				return nil, err
			}
			// Leadership may have moved or the broker may be
			// restarting: refresh and retry.
			if nti, merr := describeTopicOnce(ctx, cl, topic); merr == nil {
				*ti = nti
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		for _, kr := range fp.Records {
			if kr.Offset >= off && kr.Offset < end {
				out = append(out, fromKgo(kr))
			}
		}
		if next > off {
			off = next
		}
	}
	return out, nil
}

func fetchOnce(ctx context.Context, cl *kgo.Client, topic string, ti *topicInfo, p int32, off int64, decomp kgo.Decompressor) (kgo.FetchPartition, int64, error) {
	leader, ok := ti.leaders[p]
	if !ok {
		return kgo.FetchPartition{}, off, fmt.Errorf("no leader known for partition %d", p)
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 100
	req.MinBytes = 1
	req.MaxBytes = 64 << 20
	req.IsolationLevel = 0
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rt.TopicID = ti.id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = p
	rp.FetchOffset = off
	rp.PartitionMaxBytes = 16 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	kresp, err := cl.Broker(int(leader)).Request(ctx, req)
	if err != nil {
		return kgo.FetchPartition{}, off, err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return kgo.FetchPartition{}, off, err
	}
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		if rt.Topic != topic && rt.TopicID != ti.id {
			continue
		}
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			if rp.Partition != p {
				continue
			}
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return kgo.FetchPartition{}, off, err
			}
			fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
				Offset:    off,
				Topic:     topic,
				Partition: p,
			}, rp, decomp, nil)
			if fp.Err != nil {
				return fp, off, fp.Err
			}
			return fp, next, nil
		}
	}
	return kgo.FetchPartition{}, off, fmt.Errorf("partition %d missing from fetch response", p)
}

// AllowAll returns ACLs that allow every operation on every topic and
// every group, then extra: a deny among extra wins over the allows.
func AllowAll(extra ...kfake.ACL) []kfake.ACL {
	acls := []kfake.ACL{
		{Resource: kmsg.ACLResourceTypeTopic, Name: "*", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationAll, Allow: true},
		{Resource: kmsg.ACLResourceTypeGroup, Name: "*", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationAll, Allow: true},
	}
	return append(acls, extra...)
}

// DenyTopic returns the ACL that denies op on topic.
func DenyTopic(topic string, op kmsg.ACLOperation) kfake.ACL {
	return kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op}
}

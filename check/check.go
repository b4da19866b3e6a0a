// Package check tells an operator, before the first message, whether
// Breakwater can run with a configuration: it connects to Kafka and Redis
// as the daemon would and checks the topics, the permissions, the Redis
// settings the guarantees depend on, and that on-call people and
// reviewers are configured. It reads and changes nothing else: no message
// is written, no offset committed, no alert sent.
package check

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/internal/redisconn"
	"github.com/breakwater/breakwater/wire"
)

// Status is the outcome of one check.
type Status string

// The outcomes.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "FAIL"
	Skip Status = "skipped"
)

// Result is one row of the report.
type Result struct {
	// Check names what was checked ("kafka connect", "topic input", ...).
	Check string
	// Status is the outcome.
	Status Status
	// Detail is what was found.
	Detail string
	// Fix says what to do when Status is Fail or Warn.
	Fix string
	// Denied marks a failure caused by a permission the configured user
	// lacks.
	Denied bool
}

// Report is the results in the order they were checked.
type Report []Result

// Failed reports whether any check failed.
func (r Report) Failed() bool {
	return slices.ContainsFunc(r, func(x Result) bool { return x.Status == Fail })
}

// Print writes r as a table, then what to do for every failure and
// warning.
func (r Report) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tDETAIL")
	for _, x := range r {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", x.Check, x.Status, oneLine(x.Detail))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var todo []string
	for _, x := range r {
		if (x.Status == Fail || x.Status == Warn) && x.Fix != "" {
			todo = append(todo, fmt.Sprintf("- %s (%s): %s", x.Check, x.Status, x.Fix))
		}
	}
	if len(todo) > 0 {
		fmt.Fprintf(w, "\nWhat to do:\n%s\n", strings.Join(todo, "\n"))
	}
	fails := 0
	for _, x := range r {
		if x.Status == Fail {
			fails++
		}
	}
	if fails > 0 {
		_, err := fmt.Fprintf(w, "\n%d check(s) failed: Breakwater would not run correctly with this configuration.\n", fails)
		return err
	}
	_, err := fmt.Fprintln(w, "\nAll checks passed.")
	return err
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}

// Options configure Run.
type Options struct {
	// Config is the validated configuration to check.
	Config config.Config
	// Logger gets the connection warnings (such as an insecure TLS option);
	// nil discards them.
	Logger *zap.Logger
	// Timeout bounds each network check; 0 means 10 seconds.
	Timeout time.Duration
}

// Run checks the configuration and returns the report. Kafka and Redis
// must be configured (not the embedded mode).
func Run(ctx context.Context, opts Options) Report {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	c := &checker{opts: opts, cfg: opts.Config}
	c.kafka(ctx)
	c.redis(ctx)
	c.people()
	return c.report
}

type checker struct {
	opts   Options
	cfg    config.Config
	report Report
}

func (c *checker) add(check string, s Status, detail, fix string) {
	c.report = append(c.report, Result{Check: check, Status: s, Detail: detail, Fix: fix})
}

// within runs fn with the per-check timeout.
func (c *checker) within(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	return fn(ctx)
}

// outputs are the topics the daemon writes.
func (c *checker) outputs() []string {
	var out []string
	for _, t := range c.cfg.TopicUses() {
		if t.Writes {
			out = append(out, t.Name)
		}
	}
	return out
}

func (c *checker) kafka(ctx context.Context) {
	if c.cfg.EmbeddedKafka() {
		c.add("kafka connect", Fail, "no brokers configured (the embedded demo mode)", "set kafka.brokers or "+config.EnvKafkaBrokers)
		return
	}
	kc, err := kafkaconn.New(c.cfg.Kafka, c.opts.Logger)
	if err != nil {
		c.add("kafka connect", Fail, err.Error(), "fix the kafka.tls / kafka.sasl files named above")
		return
	}
	if err := c.within(ctx, kc.Probe); err != nil {
		fix := "check that the brokers are reachable from here (kafka.brokers) and the listener's protocol"
		if errors.Is(err, kafkaconn.ErrRejected) {
			fix = "fix the TLS or SASL setting the error names"
		}
		c.add("kafka connect", Fail, err.Error(), fix)
		c.skip("kafka topics", "Kafka is not reachable")
		return
	}
	auth := "plaintext"
	switch {
	case kc.Secure() && c.cfg.Kafka.SASL.On():
		auth = "SASL_SSL, " + c.cfg.Kafka.SASL.Mechanism + " as " + c.cfg.Kafka.SASL.Username
	case kc.Secure():
		auth = "SSL"
	case c.cfg.Kafka.SASL.On():
		auth = "SASL_PLAINTEXT, " + c.cfg.Kafka.SASL.Mechanism + " as " + c.cfg.Kafka.SASL.Username
	}
	c.add("kafka connect", OK, strings.Join(kc.Brokers(), ",")+" ("+auth+")", "")
	c.kafkaAccess(ctx, kc)
}

// kafkaAccess checks the topics and every operation the daemon runs on
// them: describe, write, fetch, and the consumer group's offsets.
func (c *checker) kafkaAccess(ctx context.Context, kc *kafkaconn.Endpoint) {
	tr := kc.Transport()
	defer tr.CloseIdleConnections()
	client := kc.Client(tr, c.opts.Timeout)
	names := make([]string, 0, 7)
	for _, t := range c.cfg.TopicUses() {
		names = append(names, t.Name)
	}
	var meta *kafka.MetadataResponse
	err := c.within(ctx, func(ctx context.Context) error {
		var err error
		meta, err = client.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
		return err
	})
	if err != nil {
		c.add("kafka topics", Fail, "metadata: "+err.Error(), "check the brokers and the user's Describe permission on the topics")
		return
	}
	parts := map[string]int{}
	for _, t := range meta.Topics {
		key := "topic " + t.Name
		switch {
		case errors.Is(t.Error, kafka.UnknownTopicOrPartition) || t.Error == nil && len(t.Partitions) == 0:
			c.add(key, Fail, "missing", fmt.Sprintf("create topic %s (kafka-topics.sh --create --topic %s --partitions N --replication-factor 3%s), or set kafka.create_topics: true in development",
				t.Name, t.Name, compactFlag(t.Name == c.cfg.Kafka.Topics.State)))
		case errors.Is(t.Error, kafka.TopicAuthorizationFailed):
			c.deny(key, "not authorised to describe it", c.kafkaACL("Describe", "topic", t.Name))
		case t.Error != nil:
			c.add(key, Fail, t.Error.Error(), "check the topic on the cluster")
		default:
			parts[t.Name] = len(t.Partitions)
			c.add(key, OK, fmt.Sprintf("%d partitions", len(t.Partitions)), "")
		}
	}
	c.compacted(ctx, client, parts)
	c.group(ctx, client, parts)
	for _, name := range c.inputs() {
		c.canRead(ctx, client, name, parts)
	}
	for _, name := range c.outputs() {
		c.canWrite(ctx, client, name, parts)
	}
}

// inputs are the topics the daemon reads: the input through the consumer
// group, the others by partition (the review index, the breaker states,
// the audit index, the reversals done and the suppressions, and the gated
// topic for rebuilt decisions and reversal candidates).
func (c *checker) inputs() []string {
	var out []string
	for _, t := range c.cfg.TopicUses() {
		if t.Reads {
			out = append(out, t.Name)
		}
	}
	return out
}

func compactFlag(state bool) string {
	if state {
		return " --config cleanup.policy=compact"
	}
	return ""
}

func (c *checker) skip(check, why string) { c.add(check, Skip, why, "") }

// compacted checks that the state topic is compacted.
func (c *checker) compacted(ctx context.Context, client *kafka.Client, parts map[string]int) {
	name := c.cfg.Kafka.Topics.State
	key := "state topic compacted"
	if _, ok := parts[name]; !ok {
		c.skip(key, "the state topic is not available")
		return
	}
	var resp *kafka.DescribeConfigsResponse
	err := c.within(ctx, func(ctx context.Context) error {
		var err error
		resp, err = client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: name, ConfigNames: []string{"cleanup.policy"},
		}}})
		return err
	})
	if err == nil && len(resp.Resources) == 1 && resp.Resources[0].Error != nil {
		err = resp.Resources[0].Error
	}
	if err != nil {
		c.add(key, Warn, "could not read cleanup.policy of "+name+": "+err.Error(), "make sure "+name+" has cleanup.policy=compact (grant DescribeConfigs to check it here)")
		return
	}
	policy := ""
	for _, e := range resp.Resources[0].ConfigEntries {
		if e.ConfigName == "cleanup.policy" {
			policy = e.ConfigValue
		}
	}
	if !slices.Contains(strings.Split(policy, ","), "compact") {
		c.add(key, Fail, fmt.Sprintf("%s has cleanup.policy=%s", name, policy),
			fmt.Sprintf("kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config cleanup.policy=compact (with delete, old breaker states would be lost)", name))
		return
	}
	c.add(key, OK, name+": cleanup.policy="+policy, "")
}

// group checks that the consumer group may read its offsets (Describe on
// the group) and commit them (Read on the group), without joining the
// group or committing: the commit names a member the group does not know,
// which the broker refuses after the permission check.
func (c *checker) group(ctx context.Context, client *kafka.Client, parts map[string]int) {
	in, group := c.cfg.Kafka.Topics.Input, c.cfg.Kafka.GroupID
	key := "group " + group
	n, ok := parts[in]
	if !ok {
		c.skip(key, "the input topic is not available")
		return
	}
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	var committed int
	op := "Describe"
	err := c.within(ctx, func(ctx context.Context) error {
		resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{in: ids}})
		if err != nil {
			return err
		}
		if errors.Is(resp.Error, kafka.GroupIdNotFound) {
			resp.Error = nil // a group that never committed
		}
		if resp.Error != nil {
			return resp.Error
		}
		for _, p := range resp.Topics[in] {
			if p.Error != nil {
				return p.Error
			}
			if p.CommittedOffset >= 0 {
				committed++
			}
		}
		op = "Read"
		cr, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
			GroupID: group, GenerationID: math.MaxInt32, MemberID: "breakwater-check-not-a-member",
			Topics: map[string][]kafka.OffsetCommit{in: {{Partition: 0, Offset: 0}}},
		})
		if err != nil {
			return err
		}
		for _, p := range cr.Topics[in] {
			switch {
			case p.Error == nil:
				return errors.New("the broker accepted a commit of a member the group does not have")
			case errors.Is(p.Error, kafka.UnknownMemberId), errors.Is(p.Error, kafka.IllegalGeneration),
				errors.Is(p.Error, kafka.RebalanceInProgress), errors.Is(p.Error, kafka.FencedInstanceID):
				// Past the permission checks.
			default:
				return p.Error
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, kafka.GroupAuthorizationFailed):
		c.deny(key, "not authorised to "+strings.ToLower(op)+" the consumer group", c.kafkaACL(op, "group", group))
	case errors.Is(err, kafka.TopicAuthorizationFailed):
		c.deny(key, "not authorised to commit offsets of "+in, c.kafkaACL("Read", "topic", in))
	case err != nil:
		c.add(key, Fail, err.Error(), "check the connection and the group coordinator")
	default:
		c.add(key, OK, fmt.Sprintf("offsets readable and committable, %d of %d partitions with committed offsets", committed, n), "")
	}
}

// canRead checks the Read permission on topic with one fetch at the end of
// partition 0, which reads nothing.
func (c *checker) canRead(ctx context.Context, client *kafka.Client, topic string, parts map[string]int) {
	key := "read " + topic
	if _, ok := parts[topic]; !ok {
		c.skip(key, "the topic is not available")
		return
	}
	err := c.within(ctx, func(ctx context.Context) error {
		lo, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0)}}})
		if err != nil {
			return err
		}
		end := int64(0)
		for _, p := range lo.Topics[topic] {
			if p.Error != nil {
				return p.Error
			}
			end = p.LastOffset
		}
		f, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: 0, Offset: end, MinBytes: 1, MaxBytes: 1, MaxWait: 10 * time.Millisecond})
		if err != nil {
			return err
		}
		return f.Error
	})
	switch {
	case err == nil:
		c.add(key, OK, "authorised", "")
	case errors.Is(err, kafka.TopicAuthorizationFailed):
		c.deny(key, "not authorised to read", c.kafkaACL("Read", "topic", topic))
	default:
		c.add(key, Fail, err.Error(), "check the connection")
	}
}

// canWrite checks the Write permission on topic with a produce request
// whose one record batch has a wrong checksum: the broker checks the
// permission first, then refuses the batch as corrupt and appends nothing.
// (A request without records is never sent by the client, so it would
// prove nothing.)
func (c *checker) canWrite(ctx context.Context, client *kafka.Client, topic string, parts map[string]int) {
	key := "write " + topic
	if _, ok := parts[topic]; !ok {
		c.skip(key, "the topic is not available")
		return
	}
	batch, err := corruptBatch()
	if err != nil {
		c.add(key, Warn, "could not build the probe: "+err.Error(), "make sure the Kafka user may write "+topic)
		return
	}
	err = c.within(ctx, func(ctx context.Context) error {
		resp, err := client.RawProduce(ctx, &kafka.RawProduceRequest{
			Topic: topic, Partition: 0, RequiredAcks: kafka.RequireAll,
			RawRecords: protocol.RawRecordSet{Reader: bytes.NewReader(batch)},
		})
		if err != nil {
			return err
		}
		return resp.Error
	})
	switch {
	case errors.Is(err, kafka.InvalidMessage):
		// Past the permission check: the broker refused the corrupt batch.
		c.add(key, OK, "authorised", "")
	case errors.Is(err, kafka.TopicAuthorizationFailed):
		c.deny(key, "not authorised to write", c.kafkaACL("Write", "topic", topic))
	case err == nil:
		c.add(key, Warn, "the broker accepted a record batch with a wrong checksum", "make sure the Kafka user may write "+topic)
	default:
		c.add(key, Warn, "could not test the Write permission: "+err.Error(), "make sure the Kafka user may write "+topic)
	}
}

// corruptBatch returns a record set (its size, then one version 2 batch of
// one record) whose CRC is wrong, so that no broker appends it.
func corruptBatch() ([]byte, error) {
	var buf bytes.Buffer
	rs := protocol.RecordSet{Version: 2, Records: protocol.NewRecordReader(protocol.Record{
		Value: protocol.NewBytes([]byte("breakwater check: a corrupt batch that no broker appends")),
	})}
	if _, err := rs.WriteTo(&buf); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	// The size (4 bytes), then baseOffset (8), batchLength (4),
	// partitionLeaderEpoch (4), magic (1), then the CRC.
	const crc = 4 + 8 + 4 + 4 + 1
	if len(b) < crc+4 || b[crc-1] != 2 {
		return nil, fmt.Errorf("unexpected record batch layout (%d bytes)", len(b))
	}
	b[crc] ^= 0xff
	return b, nil
}

func (c *checker) redis(ctx context.Context) {
	r := c.cfg.Redis
	if c.cfg.EmbeddedRedis() {
		c.add("redis connect", Fail, "no Redis configured (the embedded demo mode)", "set redis.addr, redis.addrs or redis.master_name with redis.sentinel_addrs")
		return
	}
	rc, err := redisconn.New(r, c.opts.Logger)
	if err != nil {
		c.add("redis connect", Fail, err.Error(), "fix the redis.tls files named above")
		return
	}
	defer func() { _ = rc.Close() }()
	topo := string(r.Topology())
	if err := c.within(ctx, func(ctx context.Context) error { return redisconn.Probe(ctx, rc) }); err != nil {
		fix := "check that Redis is reachable from here (the redis addresses), and redis.tls"
		if errors.Is(err, redisconn.ErrRejected) {
			fix = "fix the setting the error names"
			if strings.Contains(err.Error(), "NOPERM") {
				keys, _ := wire.NewKeys(r.KeyPrefix)
				fix = "grant the Redis ACL user the commands Breakwater runs: ACL SETUSER " + cmp.Or(r.Username, "default") + " " + keys.ACLRules(r.MinReplicasAcked > 0)
			}
		}
		c.add("redis connect", Fail, topo+": "+err.Error(), fix)
		c.skip("redis settings", "Redis is not reachable")
		return
	}
	c.add("redis connect", OK, topo+c.userNote(), "")

	var infos []string
	err = c.within(ctx, func(ctx context.Context) error {
		return eachPrimary(ctx, rc, func(ctx context.Context, node redis.UniversalClient) error {
			s, err := node.Info(ctx, "server").Result()
			infos = append(infos, s)
			return err
		})
	})
	if err != nil {
		c.add("redis version", Warn, "INFO server: "+err.Error(), "make sure Redis is 6.2 or newer")
	} else {
		c.version(infos)
	}
	c.evictionPolicy(ctx, rc)
	c.replicas(ctx, rc)
	if r.Topology() == config.RedisCluster {
		c.slot(ctx, rc)
	}
	c.permissions(ctx, rc)
}

func (c *checker) userNote() string {
	if c.cfg.Redis.Username != "" {
		return ", ACL user " + c.cfg.Redis.Username
	}
	return ""
}

// eachPrimary runs fn on every primary of a Cluster, or on rc itself.
func eachPrimary(ctx context.Context, rc redis.UniversalClient, fn func(ctx context.Context, node redis.UniversalClient) error) error {
	if cc, ok := rc.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return fn(ctx, node) })
	}
	return fn(ctx, rc)
}

// minRedis is the oldest Redis version Breakwater needs (XAUTOCLAIM).
var minRedis = [2]int{6, 2}

func (c *checker) version(infos []string) {
	var versions []string
	old := false
	for _, info := range infos {
		for _, line := range strings.Split(info, "\n") {
			v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
			if !ok {
				continue
			}
			versions = append(versions, v)
			f := strings.Split(v, ".")
			if len(f) >= 2 {
				ma, _ := strconv.Atoi(f[0])
				mi, _ := strconv.Atoi(f[1])
				old = old || ma < minRedis[0] || ma == minRedis[0] && mi < minRedis[1]
			}
		}
	}
	slices.Sort(versions)
	versions = slices.Compact(versions)
	if old {
		c.add("redis version", Fail, strings.Join(versions, ", "), "upgrade Redis to 6.2 or newer")
		return
	}
	c.add("redis version", OK, strings.Join(versions, ", "), "")
}

// evictionPolicy checks maxmemory-policy on every primary.
func (c *checker) evictionPolicy(ctx context.Context, rc redis.UniversalClient) {
	key := "redis maxmemory-policy"
	var policies []string
	err := c.within(ctx, func(ctx context.Context) error {
		return eachPrimary(ctx, rc, func(ctx context.Context, node redis.UniversalClient) error {
			m, err := node.ConfigGet(ctx, "maxmemory-policy").Result()
			if err != nil {
				return err
			}
			policies = append(policies, m["maxmemory-policy"])
			return nil
		})
	})
	if err != nil {
		c.add(key, Warn, "could not read it (CONFIG GET: "+err.Error()+")", "make sure maxmemory-policy is noeviction: an evicted key would look like lost state")
		return
	}
	slices.Sort(policies)
	policies = slices.Compact(policies)
	if len(policies) != 1 || policies[0] != "noeviction" {
		c.add(key, Fail, strings.Join(policies, ", "), "set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, and in redis.conf): an evicted key would look like lost state")
		return
	}
	c.add(key, OK, "noeviction", "")
}

// replicas compares the replicas of every primary with
// redis.min_replicas_acked: fewer would pause the pipeline on every batch,
// none asked for under Sentinel lets a failover lose a trip.
func (c *checker) replicas(ctx context.Context, rc redis.UniversalClient) {
	key := "redis replicas acked"
	want := c.cfg.Redis.MinReplicasAcked
	fewest := -1
	err := c.within(ctx, func(ctx context.Context) error {
		return eachPrimary(ctx, rc, func(ctx context.Context, node redis.UniversalClient) error {
			info, err := node.Info(ctx, "replication").Result()
			if err != nil {
				return err
			}
			for _, line := range strings.Split(info, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
					n, _ := strconv.Atoi(v)
					if fewest < 0 || n < fewest {
						fewest = n
					}
				}
			}
			return nil
		})
	})
	switch {
	case err != nil:
		c.add(key, Warn, "could not read it (INFO replication: "+err.Error()+")", "make sure every primary has at least redis.min_replicas_acked replicas")
	case want > 0 && fewest < want:
		c.add(key, Fail, fmt.Sprintf("redis.min_replicas_acked is %d, a primary has %d connected replicas", want, fewest),
			"add replicas, or lower redis.min_replicas_acked: every batch waits for that many and pauses without them")
	case want == 0 && c.cfg.Redis.Topology() == config.RedisSentinel:
		c.add(key, Warn, fmt.Sprintf("redis.min_replicas_acked is 0 (%d connected replicas)", fewest),
			"set redis.min_replicas_acked: 1, or a failover can lose a trip decided just before it")
	default:
		c.add(key, OK, fmt.Sprintf("%d of %d connected replicas", want, fewest), "")
	}
}

// slot reports the Cluster slot of the hash tag and the node serving it.
func (c *checker) slot(ctx context.Context, rc redis.UniversalClient) {
	key := "redis cluster slot"
	tag := "{" + c.cfg.Redis.KeyPrefix + "}"
	var slot int64
	var node string
	err := c.within(ctx, func(ctx context.Context) error {
		var err error
		if slot, err = rc.ClusterKeySlot(ctx, tag).Result(); err != nil {
			return err
		}
		slots, err := rc.ClusterSlots(ctx).Result()
		if err != nil {
			return err
		}
		for _, s := range slots {
			if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
				node = s.Nodes[0].Addr
			}
		}
		if node == "" {
			return fmt.Errorf("slot %d is not served by any node", slot)
		}
		return nil
	})
	if err != nil {
		c.add(key, Fail, err.Error(), "check CLUSTER INFO: every slot must be covered")
		return
	}
	c.add(key, OK, fmt.Sprintf("every key is under %s: slot %d, served by %s", tag, slot, node), "")
}

// permissions runs every command the daemon runs, as the configured user,
// on scratch keys under the hash tag (see RedisAccess).
func (c *checker) permissions(ctx context.Context, rc redis.UniversalClient) {
	key := "redis permissions"
	err := c.within(ctx, func(ctx context.Context) error { return RedisAccess(ctx, rc, c.cfg.Redis) })
	var denied *RedisAccessError
	switch {
	case errors.As(err, &denied):
		c.deny(key, denied.refused()+": "+denied.Denied[0].Reply, denied.Grant+" (every permission Breakwater needs and no other: "+denied.All+")")
	case err != nil:
		c.add(key, Fail, err.Error(), "check the connection and the Redis version (6.2 or newer)")
	default:
		n := 0
		for _, cmd := range wire.RedisCommands {
			if !cmd.Replicated || c.cfg.Redis.MinReplicasAcked > 0 {
				n++
			}
		}
		keys, _ := wire.NewKeys(c.cfg.Redis.KeyPrefix)
		c.add(key, OK, fmt.Sprintf("%d commands allowed on %s%s", n, keys.Pattern(), c.userNote()), "")
	}
}

// people checks that someone is paged and someone can review.
func (c *checker) people() {
	rs := c.cfg.Alerts.Receivers
	if len(rs) == 0 {
		// Receivers are optional: a trip still holds, and shows on the
		// console and in the metrics (Alertmanager rules can page from
		// those), but nobody is told of it by Breakwater itself.
		c.add("alert receivers", Warn, "none configured: a trip holds its actions, but Breakwater pages no one",
			"add alerts.receivers (Slack, PagerDuty, webhook or Alertmanager), or page from the metrics (deploy/prometheus/rules.yml)")
	} else {
		names := make([]string, len(rs))
		for i, r := range rs {
			names[i] = fmt.Sprintf("%s (%s)", r.Name, r.Type)
		}
		c.add("alert receivers", OK, strings.Join(names, ", ")+"; no message sent", "")
	}
	if si := c.cfg.SignIn; si.Enabled() {
		var via []string
		if si.OIDC.Enabled() {
			via = append(via, "OIDC ("+si.OIDC.IssuerURL+")")
		}
		if si.TrustedProxy.Enabled() {
			via = append(via, "a trusted proxy ("+strings.Join(si.TrustedProxy.CIDRs, ", ")+")")
		}
		c.add("sign-in", OK, fmt.Sprintf("people sign in through %s; %d groups have a role", strings.Join(via, " and "), len(si.Groups)), "")
	}
	ts := c.cfg.Admin.Tokens
	if len(ts) == 0 {
		if c.cfg.SignIn.Enabled() {
			c.add("admin tokens", OK, "none: people sign in; breakwaterctl and machines need a token", "")
			return
		}
		c.add("admin tokens", Fail, "none configured, and no sign-in: no one can review held actions or reset a breaker",
			"add admin.tokens or "+config.EnvAdminTokens+", or configure signin")
		return
	}
	roles := map[config.Role]int{}
	for _, t := range ts {
		roles[t.Role]++
	}
	var parts []string
	for _, r := range []config.Role{config.RoleAdmin, config.RoleOperator, config.RoleReviewer, config.RoleViewer} {
		if roles[r] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", roles[r], r))
		}
	}
	c.add("admin tokens", OK, strings.Join(parts, ", "), "")
}

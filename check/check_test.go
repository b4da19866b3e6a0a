package check_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/breakwater/breakwater/check"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/testbed"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	kafkaPW = "kafka-pw-do-not-print"
	redisPW = "redis-pw-do-not-print"
)

// setup is a Kafka cluster with SASL and TLS, a Redis with a password, and
// a configuration for them; broken lets a case damage them first.
type setup struct {
	k   *testbed.Kafka
	r   *testbed.Redis
	pki *testbed.PKI
	cfg config.Config
}

func newSetup(t *testing.T, skipTopic string, compactState bool) *setup {
	t.Helper()
	pki := testbed.NewPKI(t)
	k := testbed.StartKafka(t, testbed.Secured(testbed.KafkaSecurity{
		Server: pki.ServerTLS(t, false), Client: pki.ClientTLS(t),
		Users: []testbed.SASLUser{{Method: "SCRAM-SHA-512", User: "bw", Password: kafkaPW}},
		Restricted: []testbed.RestrictedUser{
			{SASLUser: testbed.SASLUser{Method: "SCRAM-SHA-512", User: "bw-app", Password: kafkaPW},
				ACLs: testbed.AllowAll(testbed.DenyTopic("moderation.actions.held", kmsg.ACLOperationWrite))},
			{SASLUser: testbed.SASLUser{Method: "SCRAM-SHA-512", User: "bw-no-group", Password: kafkaPW},
				ACLs: testbed.AllowAll(kfake.ACL{Resource: kmsg.ACLResourceTypeGroup, Name: "breakwater", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationRead})},
		},
	}))
	cfg := config.Default()
	for _, u := range cfg.TopicUses() {
		switch {
		case u.Name == skipTopic:
		case u.Compacted && compactState:
			k.CreateCompactedTopic(t, u.Name, 1)
		case u.Compacted:
			k.CreateTopic(t, u.Name, 1)
		default:
			k.CreateTopic(t, u.Name, 3)
		}
	}
	r := testbed.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Client(t).ConfigSet(ctx, "requirepass", redisPW).Err(); err != nil {
		t.Fatal(err)
	}
	cfg.Kafka.Brokers = k.Addrs()
	cfg.Kafka.TLS = config.TLS{CAFile: pki.CAFile()}
	cfg.Kafka.SASL = config.SASL{Mechanism: config.SASLScramSHA512, Username: "bw", Password: kafkaPW}
	cfg.Redis.Addr = r.Addr()
	cfg.Redis.Password = redisPW
	cfg.Alerts.Receivers = []config.Receiver{{Name: "oncall", Type: "webhook", URL: "https://hooks.example.com/secret-path", Severities: []string{"critical"}, Timeout: time.Second}}
	cfg.Admin.Tokens = []config.Token{{Name: "alice", Role: config.RoleOperator, SHA256: strings.Repeat("a", 64)}}
	return &setup{k: k, r: r, pki: pki, cfg: cfg}
}

func run(t *testing.T, cfg config.Config) (check.Report, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := check.Run(ctx, check.Options{Config: cfg, Timeout: 10 * time.Second})
	var out bytes.Buffer
	if err := r.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{kafkaPW, redisPW, "secret-path"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("the report shows a secret:\n%s", out.String())
		}
	}
	return r, out.String()
}

func status(r check.Report, name string) check.Status {
	for _, x := range r {
		if x.Check == name {
			return x.Status
		}
	}
	return ""
}

// TestGood: a complete setup passes every check.
func TestGood(t *testing.T) {
	s := newSetup(t, "", true)
	r, out := run(t, s.cfg)
	if r.Failed() {
		t.Fatalf("a complete setup failed:\n%s", out)
	}
	for _, name := range []string{"kafka connect", "topic moderation.actions", "state topic compacted", "group breakwater",
		"read moderation.actions", "read moderation.actions.held", "read breakwater.state", "read moderation.audit",
		"write moderation.actions.gated", "redis connect", "redis version", "redis maxmemory-policy", "redis permissions", "alert receivers", "admin tokens"} {
		if st := status(r, name); st != check.OK {
			t.Errorf("%s: %q; want ok\n%s", name, st, out)
		}
	}
	// The check writes nothing: every output is still empty, no offset is
	// committed, and its scratch keys are gone.
	for _, topic := range []string{"moderation.actions.gated", "moderation.actions.held", "breakwater.state", "moderation.audit"} {
		for p, end := range s.k.EndOffsets(t, topic) {
			if end != 0 {
				t.Errorf("%s/%d has end offset %d after the check; want 0", topic, p, end)
			}
		}
	}
	if g := s.k.CommittedOffsets(t, s.cfg.Kafka.GroupID, s.cfg.Kafka.Topics.Input); len(g) != 0 {
		t.Errorf("committed offsets after the check: %v; want none", g)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: s.r.Addr(), Password: redisPW})
	defer func() { _ = c.Close() }()
	if left, err := c.Keys(ctx, "*").Result(); err != nil || len(left) != 0 {
		t.Errorf("Redis keys after the check: %v (%v); want none", left, err)
	}
	t.Logf("\n%s", out)

	// Receivers are optional: without them the check warns and passes.
	// Without tokens it passes when people sign in, and fails otherwise.
	s.cfg.Alerts.Receivers = nil
	s.cfg.Admin.Tokens = nil
	r, out = run(t, s.cfg)
	if !r.Failed() || status(r, "alert receivers") != check.Warn || status(r, "admin tokens") != check.Fail {
		t.Errorf("without receivers and tokens: failed %v, receivers %q, tokens %q; want failed (no one can review), warn, fail\n%s",
			r.Failed(), status(r, "alert receivers"), status(r, "admin tokens"), out)
	}
	s.cfg.SignIn.Groups = map[string]config.Role{"moderation-oncall": config.RoleOperator}
	s.cfg.SignIn.TrustedProxy.CIDRs = []string{"10.0.0.0/8"}
	r, out = run(t, s.cfg)
	if r.Failed() || status(r, "alert receivers") != check.Warn || status(r, "sign-in") != check.OK || status(r, "admin tokens") != check.OK {
		t.Errorf("without receivers, people signing in: failed %v, receivers %q, sign-in %q, tokens %q; want passed, warn, ok, ok\n%s",
			r.Failed(), status(r, "alert receivers"), status(r, "sign-in"), status(r, "admin tokens"), out)
	}
}

// aclUser makes an ACL user with rules on the setup's Redis and configures
// it.
func aclUser(t *testing.T, s *setup, name string, rules ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: s.r.Addr(), Password: redisPW})
	defer func() { _ = c.Close() }()
	args := []any{"acl", "setuser", name, "on", ">" + redisPW}
	for _, r := range rules {
		args = append(args, r)
	}
	if err := c.Do(ctx, args...).Err(); err != nil {
		t.Fatal(err)
	}
	s.cfg.Redis.Username = name
}

// TestBroken: each broken setup fails, naming its check and what to do.
func TestBroken(t *testing.T) {
	tests := []struct {
		name    string
		skip    string
		compact bool
		damage  func(t *testing.T, s *setup)
		check   string
		want    string
	}{
		{name: "missing topic", skip: "moderation.actions.rejected", compact: true, check: "topic moderation.actions.rejected", want: "create topic moderation.actions.rejected"},
		{name: "state topic not compacted", compact: false, check: "state topic compacted", want: "cleanup.policy=compact"},
		{name: "allkeys-lru", compact: true, damage: func(t *testing.T, s *setup) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c := redis.NewClient(&redis.Options{Addr: s.r.Addr(), Password: redisPW})
			defer func() { _ = c.Close() }()
			if err := c.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err(); err != nil {
				t.Fatal(err)
			}
		}, check: "redis maxmemory-policy", want: "set maxmemory-policy noeviction"},
		{name: "fewer replicas than acknowledgements", compact: true, damage: func(_ *testing.T, s *setup) { s.cfg.Redis.MinReplicasAcked = 1 },
			check: "redis replicas acked", want: "add replicas, or lower redis.min_replicas_acked"},
		{name: "wrong kafka password", compact: true, damage: func(_ *testing.T, s *setup) { s.cfg.Kafka.SASL.Password = "wrong-" + kafkaPW }, check: "kafka connect", want: "kafka.sasl.username"},
		{name: "wrong redis password", compact: true, damage: func(_ *testing.T, s *setup) { s.cfg.Redis.Password = "wrong-" + redisPW }, check: "redis connect", want: "redis.username and the password"},
		{name: "untrusted kafka certificate", compact: true, damage: func(t *testing.T, s *setup) { s.cfg.Kafka.TLS.CAFile = testbed.NewPKI(t).CAFile() }, check: "kafka connect", want: "kafka.tls"},
		{name: "redis user without key access", compact: true, damage: func(t *testing.T, s *setup) {
			aclUser(t, s, "bw-other-keys", "~{other}*", "+@all")
		}, check: "redis permissions", want: "ACL SETUSER bw-other-keys ~{breakwater}*"},
		{name: "redis user without evalsha", compact: true, damage: func(t *testing.T, s *setup) {
			aclUser(t, s, "bw-no-evalsha", "~{breakwater}*", "+@all", "-evalsha")
		}, check: "redis permissions", want: "ACL SETUSER bw-no-evalsha +evalsha"},
		{name: "redis user without wait", compact: true, damage: func(t *testing.T, s *setup) {
			aclUser(t, s, "bw-no-wait", "~{breakwater}*", "+@all", "-wait")
			s.cfg.Redis.MinReplicasAcked = 1
		}, check: "redis permissions", want: "ACL SETUSER bw-no-wait +wait"},
		{name: "kafka user without write on held", compact: true, damage: func(t *testing.T, s *setup) {
			s.cfg.Kafka.SASL.Username, s.cfg.Kafka.SASL.Password = "bw-app", kafkaPW
		}, check: "write moderation.actions.held", want: "--allow-principal User:bw-app --operation Write --topic moderation.actions.held"},
		{name: "kafka user without read on the group", compact: true, damage: func(t *testing.T, s *setup) {
			s.cfg.Kafka.SASL.Username, s.cfg.Kafka.SASL.Password = "bw-no-group", kafkaPW
		}, check: "group breakwater", want: "--operation Read --group breakwater"},
		{name: "no receivers or tokens", compact: true, damage: func(_ *testing.T, s *setup) { s.cfg.Alerts.Receivers, s.cfg.Admin.Tokens = nil, nil }, check: "admin tokens", want: "BREAKWATER_ADMIN_TOKENS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t, tt.skip, tt.compact)
			if tt.damage != nil {
				tt.damage(t, s)
			}
			r, out := run(t, s.cfg)
			if !r.Failed() {
				t.Fatalf("Failed() = false; want true\n%s", out)
			}
			if st := status(r, tt.check); st != check.Fail {
				t.Errorf("%s: %q; want FAIL\n%s", tt.check, st, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("the report does not say %q:\n%s", tt.want, out)
			}
		})
	}
}

// TestCluster: on a Redis Cluster the check names the hash tag's slot and
// the node serving it, and checks every primary's eviction policy.
func TestCluster(t *testing.T) {
	s := newSetup(t, "", true)
	rc := testbed.StartRedisCluster(t)
	s.cfg.Redis = config.Default().Redis
	s.cfg.Redis.Addrs = rc.Addrs()
	r, out := run(t, s.cfg)
	if r.Failed() {
		t.Fatalf("a complete setup on a Cluster failed:\n%s", out)
	}
	if st := status(r, "redis cluster slot"); st != check.OK || !strings.Contains(out, "{breakwater}: slot ") {
		t.Errorf("redis cluster slot: %q; want ok naming the slot\n%s", st, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	one := redis.NewClient(&redis.Options{Addr: rc.Addrs()[2]})
	defer func() { _ = one.Close() }()
	if err := one.ConfigSet(ctx, "maxmemory-policy", "volatile-lru").Err(); err != nil {
		t.Fatal(err)
	}
	r, out = run(t, s.cfg)
	if st := status(r, "redis maxmemory-policy"); st != check.Fail || !strings.Contains(out, "volatile-lru") {
		t.Errorf("one primary with volatile-lru: %q; want FAIL naming it\n%s", st, out)
	}
}

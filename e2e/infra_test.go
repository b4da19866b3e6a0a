package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/daemon"
	"github.com/breakwater/breakwater/event"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/review"
	"github.com/breakwater/breakwater/statelog"
	"github.com/breakwater/breakwater/wire"
)

// The credentials of the secured beds.
const (
	saslUser     = "breakwater"
	saslPassword = "e2e-sasl-password"
	redisUser    = "bw-acl"
	redisPass    = "e2e-redis-acl-password"
)

// securedBed is a bed whose Kafka listens with TLS (a CA the test makes)
// and SCRAM-SHA-512; the daemon reads the password from a file.
func securedBed(t *testing.T, partitions int, extra ...bedOption) (*bed, *testbed.PKI) {
	t.Helper()
	pki := testbed.NewPKI(t)
	pwFile := filepath.Join(t.TempDir(), "sasl-password")
	if err := os.WriteFile(pwFile, []byte(saslPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf("  tls:\n    ca_file: %s\n  sasl:\n    mechanism: scram-sha-512\n    username: %s\n    password_file: %s\n",
		pki.CAFile(), saslUser, pwFile)
	opts := append([]bedOption{withKafka(yaml, testbed.Secured(testbed.KafkaSecurity{
		Server: pki.ServerTLS(t, false),
		Client: pki.ClientTLS(t),
		Users:  []testbed.SASLUser{{Method: "SCRAM-SHA-512", User: saslUser, Password: saslPassword}},
	}))}, extra...)
	return newBed(t, partitions, opts...), pki
}

// TestSASLSSLEndToEnd runs the end-to-end test over SASL_SSL: the consumer
// group, every producer, the state, audit and held topic readers all
// connect with TLS and SCRAM-SHA-512.
func TestSASLSSLEndToEnd(t *testing.T) {
	b, _ := securedBed(t, 6)
	endToEnd(t, b)
}

// TestKcatSASLSSL: librdkafka's kcat produces to and consumes from the
// daemon over SASL_SSL.
func TestKcatSASLSSL(t *testing.T) {
	b, pki := securedBed(t, 3)
	kcatInterop(t, b, "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
		"-X", "sasl.username="+saslUser, "-X", "sasl.password="+saslPassword, "-X", "ssl.ca.location="+pki.CAFile())
}

// TestKafkaRejectedAtStart: a wrong password or an untrusted broker
// certificate stops the daemon at start with an error naming the cause,
// instead of retrying for ever; the password is in neither the error nor
// the logs.
func TestKafkaRejectedAtStart(t *testing.T) {
	b, _ := securedBed(t, 1)
	other := testbed.NewPKI(t)
	tests := []struct {
		name   string
		damage func(cfg *config.Config)
		want   string
	}{
		{"wrong password", func(cfg *config.Config) {
			cfg.Kafka.SASL.PasswordFile, cfg.Kafka.SASL.Password = "", "wrong-"+saslPassword
		}, "SASL authentication failed"},
		{"untrusted certificate", func(cfg *config.Config) { cfg.Kafka.TLS.CAFile = other.CAFile() }, "kafka.tls.ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := b.config(t, spikeSettings)
			tt.damage(&cfg)
			var logs logBuffer
			log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), &logs, zap.DebugLevel))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			start := time.Now()
			err := daemon.Run(ctx, daemon.Options{Config: cfg, Logger: log})
			if err == nil || ctx.Err() != nil {
				t.Fatalf("daemon.Run = %v after %v; want an error before the deadline", err, time.Since(start))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("daemon.Run = %v; want it to say %q", err, tt.want)
			}
			if strings.Contains(err.Error()+logs.String(), saslPassword) {
				t.Errorf("the password appears in the error or the logs:\n%v\n%s", err, logs.String())
			}
			t.Logf("stopped after %v: %v", time.Since(start).Round(time.Millisecond), err)
		})
	}
}

// clusterBed is a bed on a real three-primary Redis Cluster.
func clusterBed(t *testing.T, partitions int) *bed {
	t.Helper()
	rc := testbed.StartRedisCluster(t)
	yaml := fmt.Sprintf("  addrs: [%s]\n", strings.Join(rc.Addrs(), ", "))
	return newBed(t, partitions, withRedis(yaml, func(t testing.TB) redis.UniversalClient { return rc.Client(t) }))
}

// TestRedisClusterEndToEnd runs the end-to-end test on a Redis Cluster.
func TestRedisClusterEndToEnd(t *testing.T) { endToEnd(t, clusterBed(t, 6)) }

// TestRedisClusterTwoReplicas: two replicas trip a breaker on the counts
// they share in a Redis Cluster.
func TestRedisClusterTwoReplicas(t *testing.T) { twoReplicasShareCounts(t, clusterBed(t, 4)) }

// reviewerToken is the admin token of the review tests.
const reviewerToken = "e2e-operator-token-0123456789"

// approverToken is the second person of the review tests, a reviewer.
const approverToken = "e2e-approver-token-0123456789"

// adminYAML is an admin section with reviewerToken as an operator and
// approverToken as a second reviewer.
func adminYAML() string {
	h := sha256.Sum256([]byte(reviewerToken))
	h2 := sha256.Sum256([]byte(approverToken))
	return fmt.Sprintf("admin:\n  tokens:\n    - {name: e2e-operator, role: operator, token_sha256: %s}\n    - {name: e2e-approver, role: reviewer, token_sha256: %s}\n",
		hex.EncodeToString(h[:]), hex.EncodeToString(h2[:]))
}

// api calls the admin API of r as reviewerToken and decodes the answer into out.
func api(t *testing.T, r *replica, method, path, body string, out any) int {
	t.Helper()
	return apiAs(t, r, reviewerToken, method, path, body, out)
}

// apiAs calls the admin API of r with token and decodes the answer into out.
func apiAs(t *testing.T, r *replica, token, method, path, body string, out any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+r.addrs.HTTP+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

// TestRedisClusterReview: on a Redis Cluster, the trip's alert goes
// through the outbox to the receiver once, the held actions are indexed
// into their incident, and approving the incident releases every one of
// them to the gated topic.
func TestRedisClusterReview(t *testing.T) { reviewFlow(t, clusterBed(t, 4)) }

// reviewFlow runs the spike through two replicas on b with a webhook
// receiver and an operator token, then approves the incident.
func reviewFlow(t *testing.T, b *bed) {
	w := newWebhook(t)
	recs, _ := spikeInput(t, b)
	s := spikeSettings
	s.extra = w.config() + adminYAML()
	cfg := b.config(t, s)
	ra := startReplica(t, "a", cfg)
	rb := startReplica(t, "b", cfg)
	alive := replicasAlive(ra, rb)
	b.k.Produce(t, testTopics.Input, recs...)
	b.waitCommitted(t, 90*time.Second, alive)
	checkOnePage(t, w, alive)

	scope := breaker.RuleScope(spikeRule)
	st := b.status(t, scope)
	inc := breaker.Incident(scope, st.Generation)
	// A rebalance as the second replica joins can redeliver a batch, so an
	// action can be on the held topic twice (at least once); the index
	// counts actions.
	heldIDs := map[string]bool{}
	for _, r := range b.k.ReadAll(t, testTopics.Held, 10*time.Second) {
		if v, _ := header(r, wire.HeaderIncident); v == inc {
			a, err := event.Decode(r.Value)
			if err != nil {
				t.Fatalf("held record %s: %v", r.Value, err)
			}
			heldIDs[a.ActionID] = true
		}
	}
	heldOnTopic := len(heldIDs)
	var got review.Incident
	waitFor(t, 120*time.Second, func() string { return fmt.Sprintf("incident %s indexed with %d held (got %+v)", inc, heldOnTopic, got) }, alive, func() bool {
		got = review.Incident{}
		return api(t, ra, "GET", "/v1/incidents/"+url.PathEscape(inc), "", &got) == http.StatusOK && got.Held == int64(heldOnTopic) && heldOnTopic > 0
	})
	// Thousands of held actions: approving them all needs a second
	// reviewer, who approves the request on the other replica.
	var req struct {
		ID     string `json:"id"`
		Sum    string `json:"payload_sha256"`
		Count  int    `json:"count"`
		Status string `json:"status"`
	}
	if code := api(t, rb, "POST", "/v1/incidents/"+url.PathEscape(inc)+"/approve", `{"reason":"checked on the cluster"}`, &req); code != http.StatusAccepted || req.Count != heldOnTopic {
		t.Fatalf("approve %s: status %d %+v; want 202 and a request for the %d held", inc, code, req, heldOnTopic)
	}
	if code := apiAs(t, ra, approverToken, "POST", "/v1/approvals/"+req.ID+"/approve", `{"payload_sha256":"`+req.Sum+`"}`, &req); code != http.StatusOK || req.Status != "applied" {
		t.Fatalf("approve the request %s: status %d %+v", req.ID, code, req)
	}
	waitFor(t, 180*time.Second, func() string { return fmt.Sprintf("incident %s released (got %+v)", inc, got) }, alive, func() bool {
		got = review.Incident{}
		return api(t, ra, "GET", "/v1/incidents/"+url.PathEscape(inc), "", &got) == http.StatusOK && got.Written == int64(heldOnTopic)
	})
	approved := map[string]int{}
	for _, r := range b.k.ReadAll(t, testTopics.Gated, 10*time.Second) {
		if d, _ := header(r, wire.HeaderDecision); d == string(review.Approved) {
			id, _ := header(r, wire.HeaderActionID)
			approved[id]++
		}
	}
	if len(approved) != heldOnTopic {
		t.Errorf("%d distinct approved actions on the gated topic; want the %d held", len(approved), heldOnTopic)
	}
	for id := range approved {
		if !heldIDs[id] {
			t.Errorf("approved action %s was not held in %s", id, inc)
		}
	}
	for id, n := range approved {
		if n != 1 {
			t.Errorf("approved action %s released %d times", id, n)
		}
	}
}

// TestRedisTLSACL runs the end-to-end test on a redis-server that accepts
// only TLS, with the default user off and an ACL user that may touch only
// the keys under Breakwater's hash tag.
func TestRedisTLSACL(t *testing.T) {
	pki := testbed.NewPKI(t)
	srv := testbed.StartRedisTLS(t, pki, redisUser, redisPass, "{"+keyPrefix+"}*", false)
	yaml := fmt.Sprintf("  addr: %s\n  username: %s\n  password: %s\n  tls:\n    ca_file: %s\n", srv.Addr, redisUser, redisPass, pki.CAFile())
	client := func(t testing.TB) redis.UniversalClient {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: redisUser, Password: redisPass, TLSConfig: pki.ClientTLS(t)})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	endToEnd(t, newBed(t, 6, withRedis(yaml, client)))
}

// sentinelPassword is the password of the servers sentinelBed starts.
const sentinelPassword = "e2e-sentinel-data-password"

// sentinelBed starts a primary, a replica and a Sentinel, a bed on them,
// the spike input and one daemon that finds the primary through the
// Sentinel, in small batches (many Redis calls, so that a failover falls
// among them); extra holds more indented keys of the redis section.
func sentinelBed(t *testing.T, extra string) (*testbed.RedisSentinel, *bed, []testbed.Record, simulation, *replica) {
	t.Helper()
	sen := testbed.StartRedisSentinel(t, sentinelPassword)
	yaml := fmt.Sprintf("  master_name: %s\n  sentinel_addrs: [%s]\n  password: %s\n", testbed.SentinelMaster, sen.Sentinel, sentinelPassword) + extra
	client := func(t testing.TB) redis.UniversalClient {
		c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: testbed.SentinelMaster, SentinelAddrs: []string{sen.Sentinel}, Password: sentinelPassword})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	b := newBed(t, 6, withRedis(yaml, client))
	recs, sim := spikeInput(t, b)
	s := spikeSettings
	s.batchSize = 100
	return sen, b, recs, sim, startReplica(t, "solo", b.config(t, s))
}

// TestRedisSentinelFailover: the Sentinel fails the primary over while the
// daemon consumes; the daemon follows the Sentinel to the new primary and
// every action ends on exactly one output topic, none lost, none both
// gated and held.
func TestRedisSentinelFailover(t *testing.T) {
	const pw = sentinelPassword
	sen, b, recs, _, rep := sentinelBed(t, "")
	alive := replicasAlive(rep)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	half := len(recs) / 2
	written := b.k.Produce(t, testTopics.Input, recs[:half]...)
	before, err := sen.Master(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: sen.Sentinel})
	defer func() { _ = sc.Close() }()
	if err := sc.Failover(ctx, testbed.SentinelMaster).Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	written = append(written, b.k.Produce(t, testTopics.Input, recs[half:]...)...)
	waitFor(t, 60*time.Second, func() string { return "the Sentinel to name a new primary" }, alive, func() bool {
		a, err := sen.Master(ctx)
		return err == nil && a != before
	})
	after, _ := sen.Master(ctx)
	t.Logf("failover from %s to %s", before, after)
	b.waitCommitted(t, 90*time.Second, alive)

	in := newInput(t, written)
	o := b.readOutputs(t, in)
	dups := checkExactlyOne(t, in, o)
	t.Logf("distinct inputs per topic %v; duplicates per topic %v", o.decided, dups)
	checkKeyOrder(t, in, o)
	if n := checkMalformed(t, in, o); n != spikeMalforms {
		t.Errorf("%d malformed inputs on the dead-letter topic, want %d", n, spikeMalforms)
	}
	if o.decided[testTopics.Held] == 0 {
		t.Errorf("nothing held: the spike of %s did not trip across the failover", spikeRule)
	}
	// Without redis.min_replicas_acked (as here) Redis replicates
	// asynchronously: a trip the old primary acknowledged just before the
	// failover can be missing on the new one, and the breaker then trips
	// again (same generation). TestRedisSentinelFailoverKeepsTrip shows
	// that and what the setting prevents. Log what happened in this run.
	trips := 0
	for _, line := range strings.Split(rep.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"breaker transition"`) && strings.Contains(line, `"state":"open"`) {
			trips++
		}
	}
	t.Logf("%d trip transitions logged (1 unless the failover lost one)", trips)
	if strings.Contains(rep.logs.String(), pw) {
		t.Error("the Redis password appears in the daemon's logs")
	}
}

// TestHTTPS: with http.tls_cert_file and http.tls_key_file the admin,
// metrics and health endpoints answer over HTTPS only.
func TestHTTPS(t *testing.T) {
	b := newBed(t, 1)
	pki := testbed.NewPKI(t)
	cert := pki.Issue(t, "breakwater-http")
	keys := fmt.Sprintf("  tls_cert_file: %s\n  tls_key_file: %s\n", cert.CertFile, cert.KeyFile)
	y := strings.Replace(b.yaml(spikeSettings), "http:\n  listen: 127.0.0.1:0\n", "http:\n  listen: 127.0.0.1:0\n"+keys, 1)
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatalf("config.Parse:\n%s\n%v", y, err)
	}
	rep := startReplica(t, "https", cfg)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.ClientTLS(t)}, Timeout: 10 * time.Second}
	resp, err := client.Get("https://" + rep.addrs.HTTP + "/healthz")
	if err != nil {
		t.Fatalf("GET https://.../healthz: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET https://.../healthz = %d; want 200", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + rep.addrs.HTTP + "/healthz"); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP on the HTTPS listener answered 200")
		}
	}
}

// TestRedisRejectedAtStart: a wrong Redis password stops the daemon at
// start with an error naming the keys to check, rather than pausing for
// ever; the password is in neither the error nor the logs.
func TestRedisRejectedAtStart(t *testing.T) {
	pki := testbed.NewPKI(t)
	srv := testbed.StartRedisTLS(t, pki, redisUser, redisPass, "{"+keyPrefix+"}*", false)
	wrong := "wrong-" + redisPass
	yaml := fmt.Sprintf("  addr: %s\n  username: %s\n  password: %s\n  tls:\n    ca_file: %s\n", srv.Addr, redisUser, wrong, pki.CAFile())
	b := newBed(t, 1, withRedis(yaml, func(t testing.TB) redis.UniversalClient {
		t.Fatal("no client of a Redis that refuses the password")
		return nil
	}))
	var logs logBuffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), &logs, zap.DebugLevel))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := daemon.Run(ctx, daemon.Options{Config: b.config(t, spikeSettings), Logger: log})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("daemon.Run = %v; want an error before the deadline", err)
	}
	if !strings.Contains(err.Error(), "redis.username and the password") {
		t.Errorf("daemon.Run = %v; want it to name redis.username and the password", err)
	}
	if strings.Contains(err.Error()+logs.String(), wrong) {
		t.Errorf("the password appears in the error or the logs:\n%v\n%s", err, logs.String())
	}
}

// TestRedisSentinelFailoverKeepsTrip: the replica is cut off the primary
// while the rule spikes, then the primary dies and the Sentinel promotes
// the replica, which never received the last writes. With
// redis.min_replicas_acked: 1 no decision the replica lacked was acted
// on: after the rule's first held action no later action of it reaches
// gated, and the breaker's generation never goes back (the state topic
// never records the same trip twice).
func TestRedisSentinelFailoverKeepsTrip(t *testing.T) {
	const pw = sentinelPassword
	sen, b, recs, sim, rep := sentinelBed(t, "  min_replicas_acked: 1\n")
	alive := replicasAlive(rep)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Before the incident: everything decided and replicated.
	half := len(recs) / 2
	written := b.k.Produce(t, testTopics.Input, recs[:half]...)
	b.waitCommitted(t, 90*time.Second, alive)

	// The replica is cut off; the spike goes on on the primary alone
	// until it trips there (or, acknowledged writes on, the pipeline
	// pauses).
	primary := redis.NewClient(&redis.Options{Addr: sen.Primary, Password: pw})
	defer func() { _ = primary.Close() }()
	keys, _ := wire.NewKeys(keyPrefix)
	status := keys.Status(string(breaker.RuleScope(spikeRule)))
	sen.CutReplica(t)
	next, chunk, stop := half, len(recs)/40, 3*len(recs)/4
	tripped, paused := false, false
	for next < stop && !tripped && !paused {
		end := min(next+chunk, stop)
		written = append(written, b.k.Produce(t, testTopics.Input, recs[next:end]...)...)
		next = end
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && !tripped && !paused {
			st, _ := primary.HGet(ctx, status, "st").Result()
			tripped = st == string(breaker.Open)
			paused = strings.Contains(rep.logs.String(), "pausing consumption")
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("replica cut off at input %d of %d; produced up to %d; tripped on the primary alone %v, paused %v", half, len(recs), next, tripped, paused)
	if !tripped && !paused {
		t.Fatalf("the spike neither tripped on the primary nor paused the pipeline")
	}
	time.Sleep(time.Second) // whatever the pipeline does on the primary alone, it does now
	before, err := sen.Master(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sen.KillPrimary()
	sen.MendReplica(t)
	written = append(written, b.k.Produce(t, testTopics.Input, recs[next:]...)...)
	waitFor(t, 90*time.Second, func() string { return "the Sentinel to promote the replica" }, alive, func() bool {
		a, err := sen.Master(ctx)
		return err == nil && a != before
	})
	// The new primary has no replica to acknowledge its writes: the
	// pipeline stays paused until one replaces the lost node.
	after, _ := sen.Master(ctx)
	sen.AddReplica(t, after)
	b.waitCommitted(t, 120*time.Second, alive)

	in := newInput(t, written)
	o := b.readOutputs(t, in)
	checkExactlyOne(t, in, o)
	checkKeyOrder(t, in, o)
	// Per input partition, nothing of the rule gated after its first
	// held action, one incident.
	checkSpike(t, in, o, sim)
	// The generation never goes back: every trip recorded on the state
	// topic opens a new generation.
	scope := breaker.RuleScope(spikeRule)
	var gens []uint64
	for _, r := range b.k.ReadAll(t, testTopics.State, 30*time.Second) {
		var e statelog.Entry
		if err := json.Unmarshal(r.Value, &e); err != nil || e.Scope != scope {
			continue
		}
		if len(gens) > 0 && e.To.Generation < gens[len(gens)-1] {
			t.Errorf("state topic: %s went back from generation %d to %d", scope, gens[len(gens)-1], e.To.Generation)
		}
		if e.To.State == breaker.Open && slices.Contains(gens, e.To.Generation) && e.From.State != breaker.Open {
			t.Errorf("state topic: %s tripped twice at generation %d (a trip lost in the failover)", scope, e.To.Generation)
		}
		gens = append(gens, e.To.Generation)
	}
	if len(gens) == 0 {
		t.Errorf("state topic: no entry of %s", scope)
	}
	trips := strings.Count(rep.logs.String(), `"state":"open"`)
	t.Logf("state topic generations of %s: %v; %d log lines with an open state", scope, gens, trips)
}

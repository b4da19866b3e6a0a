// Package admintest runs Breakwater daemons on a kfake cluster and a real
// redis-server for the tests of the admin API and the CLI.
package admintest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/daemon"
	"github.com/breakwater/breakwater/internal/testbed"
)

// Tokens are the test tokens, one per role; Name gives the names they act under.
var Tokens = map[config.Role]string{
	config.RoleViewer:   "tok-viewer-0123456789",
	config.RoleReviewer: "tok-reviewer-0123456789",
	config.RoleOperator: "tok-operator-0123456789",
	config.RoleAdmin:    "tok-admin-0123456789",
}

// Name returns the actor name of the token of role r.
func Name(r config.Role) string { return "test-" + string(r) }

// Topics are the topic names of the tests.
var Topics = config.Topics{
	Input:      "moderation.actions",
	Gated:      "moderation.actions.gated",
	Held:       "moderation.actions.held",
	DeadLetter: "moderation.actions.dead-letter",
	State:      "breakwater.state",
}

// The admin topics of the tests.
const (
	AuditTopic    = "moderation.audit"
	RejectedTopic = "moderation.actions.rejected"
	// ReversalsTopic is reversals.topic (its default).
	ReversalsTopic = "moderation.actions.reversals"
)

// Bed is a Kafka cluster and a Redis server with Breakwater's topics.
type Bed struct {
	// Kafka is the cluster.
	Kafka *testbed.Kafka
	// Redis is the server.
	Redis *testbed.Redis
	// Partitions is the partition count of the action topics.
	Partitions int
}

// NewBed starts the cluster and the server and creates the topics.
func NewBed(t *testing.T, partitions int) *Bed {
	t.Helper()
	k := testbed.StartKafka(t, testbed.MinSessionTimeout(time.Second))
	r := testbed.StartRedis(t)
	r.WatchScripts(t)
	for _, name := range []string{Topics.Input, Topics.Gated, Topics.Held, Topics.DeadLetter, AuditTopic, RejectedTopic, ReversalsTopic} {
		k.CreateTopic(t, name, partitions)
	}
	k.CreateCompactedTopic(t, Topics.State, 1)
	return &Bed{Kafka: k, Redis: r, Partitions: partitions}
}

// YAML returns a daemon configuration on the bed: rule max_actions
// maxActions in a 1m window, no baseline factor, the global breaker
// disabled, one token per role, and the HTTP listener on a free port.
func (b *Bed) YAML(maxActions float64) string {
	return b.YAMLWith(maxActions, "127.0.0.1:0", 500)
}

// YAMLWith is YAML with the HTTP listen address and admin.release_batch
// given.
func (b *Bed) YAMLWith(maxActions float64, listen string, releaseBatch int) string {
	var w strings.Builder
	fmt.Fprintf(&w, "kafka:\n  brokers: [%s]\n  group_id: bw-admin-test\n", strings.Join(b.Kafka.Addrs(), ", "))
	fmt.Fprintf(&w, "  topics:\n    input: %s\n    gated: %s\n    held: %s\n    dead_letter: %s\n    state: %s\n",
		Topics.Input, Topics.Gated, Topics.Held, Topics.DeadLetter, Topics.State)
	fmt.Fprintf(&w, "  batch_size: 200\n  batch_wait: 5ms\n  write_timeout: 10s\n  session_timeout: 5s\n")
	fmt.Fprintf(&w, "redis:\n  addr: %s\n  key_prefix: bw-admin\n  timeout: 1s\n", b.Redis.Addr())
	fmt.Fprintf(&w, "http:\n  listen: %s\n", listen)
	fmt.Fprintf(&w, "breakers:\n  defaults:\n    window: 1m\n    max_actions: %v\n    factor: 0\n", maxActions)
	fmt.Fprintf(&w, "  global:\n    window: 1m\n    disabled: true\n")
	fmt.Fprintf(&w, "  rules:\n    rule-a:\n      max_actions: %v\n      actions:\n        ban_account:\n          max_actions: %v\n", maxActions, maxActions)
	fmt.Fprintf(&w, "log:\n  level: info\n  format: json\n")
	fmt.Fprintf(&w, "admin:\n  audit_topic: %s\n  rejected_topic: %s\n  max_body_bytes: 2048\n  release_batch: %d\n  tokens:\n", AuditTopic, RejectedTopic, releaseBatch)
	for _, r := range config.Roles {
		fmt.Fprintf(&w, "    - {name: %s, role: %s, token_sha256: %s}\n", Name(r), r, config.HashToken(Tokens[r]))
	}
	return w.String()
}

// Config parses YAML(maxActions).
func (b *Bed) Config(t *testing.T, maxActions float64) config.Config {
	t.Helper()
	y := b.YAML(maxActions)
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatalf("config.Parse:\n%s\n%v", y, err)
	}
	return cfg
}

// Daemon is one daemon.Run in the test process.
type Daemon struct {
	// URL is the base URL of its HTTP endpoints.
	URL    string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// Stop stops the daemon and waits for it, as the test's cleanup would.
func (d *Daemon) Stop(t *testing.T) {
	t.Helper()
	d.once.Do(func() {
		d.cancel()
		select {
		case <-d.done:
		case <-time.After(60 * time.Second):
			t.Error("the daemon did not stop within 60s")
		}
	})
}

// StartDaemon runs a daemon on cfg until the test ends and returns once it
// consumes.
func StartDaemon(t *testing.T, cfg config.Config) *Daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan daemon.Addrs, 1)
	d := &Daemon{cancel: cancel, done: make(chan error, 1)}
	go func() {
		d.done <- daemon.Run(ctx, daemon.Options{Config: cfg, Logger: zap.NewNop(), Ready: func(a daemon.Addrs) { ready <- a }})
	}()
	select {
	case a := <-ready:
		d.URL = "http://" + a.HTTP
	case err := <-d.done:
		cancel()
		t.Fatalf("daemon.Run = %v before it was ready", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("the daemon was not ready within 60s")
	}
	t.Cleanup(func() { d.Stop(t) })
	return d
}

// Event returns a schema v1 action of rule on target.
func Event(id, rule, action, target string, at time.Time) testbed.Record {
	return testbed.KV(target, fmt.Sprintf(`{"action_id":%q,"rule_id":%q,"action":%q,"target":{"type":"account","id":%q},"occurred_at":%q}`,
		id, rule, action, target, at.UTC().Format(time.RFC3339Nano)))
}

// WaitFor waits up to timeout for cond, checking every 100ms, and fails
// the test with what (the state it saw) if cond never held.
func WaitFor(t *testing.T, timeout time.Duration, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitRecords waits up to 30s until topic has at least n records and
// returns them.
func (b *Bed) WaitRecords(t *testing.T, topic string, n int) []testbed.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		recs := b.Kafka.ReadAll(t, topic, 10*time.Second)
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d records after 30s; want %d", topic, len(recs), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LateTrip produces forwarded actions of rule-a (n, at most max_actions,
// so they pass; every fourth a warn, the others remove_pin), 5 actions of
// rule-b, waits until they are on gated, then trips rule-a with more; it
// returns the forwarded rule-a ids (to their targets) and the incident,
// read from the daemon at base.
func (b *Bed) LateTrip(t *testing.T, base string, n, more int) (map[string]string, api.Incident) {
	t.Helper()
	now := time.Now()
	var early []testbed.Record
	forwarded := map[string]string{}
	for i := range n {
		id, target := fmt.Sprintf("early-%04d", i), fmt.Sprintf("u-%d", i%37)
		action := "remove_pin"
		if i%4 == 0 {
			action = "warn"
		}
		early = append(early, Event(id, "rule-a", action, target, now))
		forwarded[id] = target
		if i < 5 {
			early = append(early, Event(fmt.Sprintf("other-%04d", i), "rule-b", "warn", target, now))
		}
	}
	b.Kafka.Produce(t, Topics.Input, early...)
	b.WaitRecords(t, Topics.Gated, len(early))
	var late []testbed.Record
	for i := range more {
		late = append(late, Event(fmt.Sprintf("late-%04d", i), "rule-a", "remove_pin", fmt.Sprintf("u-%d", i), now))
	}
	b.Kafka.Produce(t, Topics.Input, late...)
	var l struct{ Incidents []api.Incident }
	WaitFor(t, 60*time.Second, func() string {
		return fmt.Sprintf("incidents = %+v; want one holding the %d late actions", l.Incidents, more)
	},
		func() bool {
			l.Incidents = nil
			getJSON(base+"/v1/incidents", Tokens[config.RoleViewer], &l)
			return len(l.Incidents) == 1 && l.Incidents[0].Held == int64(more)
		})
	return forwarded, l.Incidents[0]
}

// getJSON decodes the answer of GET url into out; errors leave out as it was.
func getJSON(url, token string, out any) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(out)
}

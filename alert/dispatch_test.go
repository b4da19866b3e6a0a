package alert

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/wire"
)

// TestSeverityRouting sends a warning group: only the receivers that take
// warnings get it, and the others acknowledge it without sending.
func TestSeverityRouting(t *testing.T) {
	g := newRig(t, 0)
	s := newSinks(t)
	start(t, g.dispatcher("r1", nil, nil, s.routes(t)...))
	shadow := tripOf("global", 2, time.Now())
	shadow.To.State = breaker.Shadow
	e := event(t, shadow)
	if e.Severity != SeverityWarning {
		t.Fatalf("shadow trip severity = %s; want warning", e.Severity)
	}
	if _, err := g.outbox(nil).Raise(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the warning", 10*time.Second, func() bool {
		return len(s.webhook.requests()) == 1 && len(s.slack.requests()) == 1 && len(s.alertmanager.requests()) == 1
	})
	waitFor(t, "PagerDuty's acknowledgement", 10*time.Second, func() bool {
		p, err := g.client.XPending(context.Background(), testKeys(g.prefix).AlertStream(), groupName("pd")).Result()
		return err == nil && p.Count == 0
	})
	if n := len(s.pagerduty.requests()); n != 0 {
		t.Errorf("PagerDuty (critical only) got %d requests for a warning; want 0", n)
	}
}

func TestOptionsValidate(t *testing.T) {
	g := newRig(t, 0)
	ok := Route{Name: "a", Notifier: &blocking{}}
	for _, tc := range []struct {
		name string
		opts DispatcherOptions
		want string
	}{
		{"no client", DispatcherOptions{KeyPrefix: "p", Routes: []Route{ok}, Consumer: "c"}, "Client"},
		{"braces", DispatcherOptions{Client: g.client, KeyPrefix: "{p}", Routes: []Route{ok}, Consumer: "c"}, "KeyPrefix"},
		{"no routes", DispatcherOptions{Client: g.client, KeyPrefix: "p", Consumer: "c"}, "Routes"},
		{"duplicate", DispatcherOptions{Client: g.client, KeyPrefix: "p", Routes: []Route{ok, ok}, Consumer: "c", Logger: zap.NewNop()}, "duplicate"},
		{"no consumer", DispatcherOptions{Client: g.client, KeyPrefix: "p", Routes: []Route{ok}}, "Consumer"},
		{"no logger", DispatcherOptions{Client: g.client, KeyPrefix: "p", Routes: []Route{ok}, Consumer: "c"}, "Logger"},
	} {
		if _, err := NewDispatcher(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewDispatcher(%s) = %v; want an error naming %s", tc.name, err, tc.want)
		}
	}
	if _, err := NewOutbox(OutboxOptions{Client: g.client, KeyPrefix: "p", GroupWindow: -1}); err == nil || !strings.Contains(err.Error(), "GroupWindow") {
		t.Errorf("NewOutbox(negative window) = %v; want an error naming GroupWindow", err)
	}
	if _, err := g.outbox(nil).Raise(context.Background(), Event{ID: "x", Kind: "bogus"}); err == nil || !strings.Contains(err.Error(), "kind") {
		t.Errorf("Raise(bogus kind) = %v; want an error naming the kind", err)
	}
}

// TestSealClosesGroup reads a group while its window is still open: an
// event raised afterwards opens a new group instead of joining one whose
// list a receiver already has.
func TestSealClosesGroup(t *testing.T) {
	g := newRig(t, time.Minute)
	o := g.outbox(nil)
	ctx := context.Background()
	d := g.dispatcher("r1", nil, nil, Route{Name: "a", Notifier: &blocking{}})
	for i, scope := range []breaker.Scope{"rule:a", "rule:b"} {
		if _, err := o.Raise(ctx, event(t, tripOf(scope, uint64(i+1), time.Now()))); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := g.client.XRange(ctx, o.Keys().AlertStream(), "-", "+").Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("stream = %v, %v; want one group for two trips in the window", msgs, err)
	}
	n, err := d.load(ctx, "1", msgs[0])
	if err != nil || len(n.Events) != 2 {
		t.Fatalf("load = %d events, %v; want 2", len(n.Events), err)
	}
	if _, err := o.Raise(ctx, event(t, tripOf("rule:c", 1, time.Now()))); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := g.client.XRange(ctx, o.Keys().AlertStream(), "-", "+").Result(); len(msgs) != 2 {
		t.Fatalf("stream has %d groups after a raise past the seal; want 2", len(msgs))
	}
	if again, _ := d.load(ctx, "1", msgs[0]); len(again.Events) != 2 {
		t.Errorf("the sealed group has %d events; want it unchanged at 2", len(again.Events))
	}
}

// TestStoreOutage sends store_unreachable directly while Redis is down,
// then raises store_reachable once a new, empty Redis answers: the
// dispatcher recreates its lost consumer groups and PagerDuty gets a
// trigger and a resolve under one dedup key.
func TestStoreOutage(t *testing.T) {
	g := newRig(t, 0)
	s := newSinks(t)
	d := g.dispatcher("r1", nil, nil, s.routes(t)...)
	if err := d.Direct(StoreUnreachable(time.Now(), "pause")); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Direct before Run = %v; want ErrNotRunning", err)
	}
	start(t, d)
	waitFor(t, "Run", 5*time.Second, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.runCtx != nil
	})
	since := time.Now()
	g.redis.Kill(t)
	if err := d.Direct(StoreUnreachable(since, "pause")); err != nil {
		t.Fatal(err)
	}
	for name, k := range s.all() {
		waitFor(t, name+" outage page", 10*time.Second, func() bool { return len(k.requests()) == 1 })
	}
	g.redis.Restart(t)
	waitFor(t, "the consumer groups", 10*time.Second, func() bool {
		gs, err := g.client.XInfoGroups(context.Background(), testKeys(g.prefix).AlertStream()).Result()
		return err == nil && len(gs) == 4
	})
	if _, err := g.outbox(nil).Raise(context.Background(), StoreReachable(since, time.Now())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resolve", 10*time.Second, func() bool { return len(s.pagerduty.requests()) == 2 })
	var a, b PagerDutyEvent
	decode(t, s.pagerduty.requests()[0], &a)
	decode(t, s.pagerduty.requests()[1], &b)
	if a.EventAction != "trigger" || b.EventAction != "resolve" || a.DedupKey != b.DedupKey {
		t.Errorf("PagerDuty = %s %q then %s %q; want trigger then resolve under one key", a.EventAction, a.DedupKey, b.EventAction, b.DedupKey)
	}
}

func TestConditionIDs(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 2, 0, 0, time.UTC)
	// Two replicas noticing the same condition a little apart raise one ID.
	if a, b := StoreUnreachable(at, "pause"), StoreUnreachable(at.Add(30*time.Second), "pause"); a.ID != b.ID {
		t.Errorf("StoreUnreachable IDs %q, %q; want one", a.ID, b.ID)
	}
	if a, b := ConsumerLag(10, 5, at), ConsumerLag(20, 5, at.Add(10*time.Minute)); a.ID != b.ID {
		t.Errorf("ConsumerLag IDs %q, %q; want one per hour", a.ID, b.ID)
	}
	st := breaker.Status{State: breaker.ForcedOpen, Auto: breaker.Closed, Generation: 9, Actor: "bob", Until: at.Add(time.Hour)}
	for _, e := range []Event{
		StoreUnreachable(at, "hold"), StoreReachable(at, at.Add(time.Minute)), ConsumerLag(10, 5, at),
		OverrideExpiring("rule:x", st, describer), HeldOverdue("rule:x", "rule:x@3", 12, 5*time.Hour, 4*time.Hour, at, describer),
	} {
		if err := e.Validate(); err != nil {
			t.Errorf("%s: %v", e.Kind, err)
		}
	}
	if StoreUnreachable(at, "pause").DedupKey != StoreReachable(at, at).DedupKey {
		t.Errorf("store_reachable does not carry the dedup key of store_unreachable")
	}
}

// TestDoneMarkPreventsResend leaves a group pending although its done mark
// was written (a worker that sent it and died before acknowledging): the
// worker that claims it acknowledges it without sending again.
func TestDoneMarkPreventsResend(t *testing.T) {
	g := newRig(t, 0)
	ctx := context.Background()
	b := &blocking{calls: make(chan struct{}, 1)}
	stop := start(t, g.dispatcher("r1", nil, nil, Route{Name: "hook", Notifier: b}))
	if _, err := g.outbox(nil).Raise(ctx, event(t, tripOf("global", 1, time.Now()))); err != nil {
		t.Fatal(err)
	}
	<-b.calls
	stop()
	keys := testKeys(g.prefix)
	if err := g.client.Set(ctx, keys.AlertDone("1", "hook"), "sent", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	k := newSink(t)
	wh, _ := NewWebhook(k.srv.URL, hookSecret, http.DefaultClient)
	start(t, g.dispatcher("r2", nil, nil, Route{Name: "hook", Notifier: wh}))
	waitFor(t, "the acknowledgement", 10*time.Second, func() bool {
		p, err := g.client.XPending(ctx, keys.AlertStream(), groupName("hook")).Result()
		return err == nil && p.Count == 0
	})
	if n := len(k.requests()); n != 0 {
		t.Errorf("a group marked done was sent %d more times; want 0", n)
	}
}

func testKeys(prefix string) wire.Keys {
	k, err := wire.NewKeys(prefix)
	if err != nil {
		panic(err)
	}
	return k
}

// TestClaimedGroupNotResent lets a replica read a group and stall until
// another replica claims it as idle: the stalled replica, waking, leaves
// the group to the claimant and sends nothing, and a group it still holds
// it sends once.
func TestClaimedGroupNotResent(t *testing.T) {
	g := newRig(t, 0)
	ctx := context.Background()
	k := newSink(t)
	wh, _ := NewWebhook(k.srv.URL, hookSecret, http.DefaultClient)
	r := Route{Name: "hook", Notifier: wh}
	d := g.dispatcher("a", nil, nil, r)
	keys := testKeys(g.prefix)
	ob := g.outbox(nil)
	for i := range 2 {
		if _, err := ob.Raise(ctx, event(t, tripOf(breaker.RuleScope("r"+strconv.Itoa(i)), 1, time.Now()))); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := d.read(ctx, r, ">", -1)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("read the groups: %d, %v; want 2", len(msgs), err)
	}
	// The other replica claims the first group, as it would after ClaimIdle.
	if err := g.client.XClaimJustID(ctx, &redis.XClaimArgs{
		Stream: keys.AlertStream(), Group: groupName("hook"), Consumer: "b", Messages: []string{msgs[0].ID},
	}).Err(); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := d.handle(ctx, r, m); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(k.requests()); n != 1 {
		t.Errorf("the webhook got %d requests; want 1, for the group the replica still held", n)
	}
	p, err := g.client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: keys.AlertStream(), Group: groupName("hook"), Start: "-", End: "+", Count: 10,
	}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 1 || p[0].ID != msgs[0].ID || p[0].Consumer != "b" {
		t.Errorf("pending entries %+v; want only the claimed group, held by b", p)
	}
	if n, err := g.client.Exists(ctx, keys.AlertDone(msgs[0].Values["group"].(string), "hook")).Result(); err != nil || n != 0 {
		t.Errorf("the claimed group is marked done (%d, %v); want it left to its claimant", n, err)
	}
}

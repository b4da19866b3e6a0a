package review_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/review"
	"github.com/breakwater/breakwater/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

const heldTopic = "moderation.actions.held"

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// heldRecord is a held action as the pipeline writes it.
func heldRecord(id, rule, action, target, version, region, incident string) testbed.Record {
	v := fmt.Sprintf(`{"action_id":%q,"rule_id":%q,"action":%q,"target":{"type":"account","id":%q},"occurred_at":"2026-11-23T10:00:00Z","model":{"name":"m","version":%q},"region":%q,"extra":[1,2]}`,
		id, rule, action, target, version, region)
	r := testbed.KV(target, v)
	r.Headers = []testbed.Header{
		{Key: "breakwater-decision", Value: []byte("held")},
		{Key: "breakwater-scope", Value: []byte("rule:" + rule)},
		{Key: "breakwater-incident", Value: []byte(incident)},
		{Key: "breakwater-source", Value: []byte("moderation.actions/0/" + id)},
	}
	return r
}

func newIndex(t *testing.T, k *testbed.Kafka, r *testbed.Redis) *review.Index {
	j, err := audit.New(audit.Options{Kafka: kafkaconn.Plain(k.Addrs()...), Topic: "audit", WriteTimeout: 10 * time.Second, Redis: r.Client(t), Prefix: "bw-review", IndexSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	x, err := review.NewIndex(review.Options{
		Kafka: kafkaconn.Plain(k.Addrs()...), Topic: heldTopic, Redis: r.Client(t), Prefix: "bw-review",
		Poll: 50 * time.Millisecond, Logger: zap.NewNop(), Journal: j, States: store.NewMemory(time.Now),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Close)
	return x
}

func TestIndexIncidentsAndFilters(t *testing.T) {
	k := testbed.StartKafka(t)
	k.CreateTopic(t, heldTopic, 3)
	k.CreateTopic(t, "audit", 1)
	r := testbed.StartRedis(t)
	r.WatchScripts(t)
	ctx := ctxT(t)
	var recs []testbed.Record
	for i := range 300 {
		inc, rule := "rule:a@1", "a"
		if i%3 == 0 {
			inc, rule = "rule:b@4", "b"
		}
		action, region := "remove_pin", "eu"
		if i%2 == 0 {
			action, region = "ban_account", "us"
		}
		recs = append(recs, heldRecord(fmt.Sprintf("act-%03d", i), rule, action, fmt.Sprintf("u-%d", i%17), "v"+fmt.Sprint(i%5), region, inc))
	}
	// A redelivered action is held twice; the index keeps it once.
	recs = append(recs, heldRecord("act-001", "a", "remove_pin", "u-1", "v1", "eu", "rule:a@1"))
	// Something that is not an action is skipped.
	recs = append(recs, testbed.KV("k", "not json"))
	k.Produce(t, heldTopic, recs...)

	a, b := newIndex(t, k, r), newIndex(t, k, r)
	// Two replicas index at once.
	errs := make(chan error, 2)
	for _, x := range []*review.Index{a, b} {
		go func() { _, err := x.Sync(ctx); errs <- err }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("Sync = %v", err)
		}
	}

	check := func(when string) {
		t.Helper()
		incs, err := a.Incidents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held := map[string]int64{}
		for _, inc := range incs {
			held[inc.ID] = inc.Held
			if inc.Pending != inc.Held || inc.Approved != 0 {
				t.Errorf("%s: incident %+v; want all pending", when, inc)
			}
		}
		if len(incs) != 2 || held["rule:a@1"] != 200 || held["rule:b@4"] != 100 {
			t.Errorf("%s: incidents = %+v; want rule:a@1 with 200 and rule:b@4 with 100", when, incs)
		}
		inc, err := a.Incident(ctx, "rule:b@4")
		if err != nil || inc.Scope != "rule:b" {
			t.Errorf("%s: Incident(rule:b@4) = %+v, %v", when, inc, err)
		}
		tests := []struct {
			name string
			f    review.Filter
			want int
		}{
			{"all", review.Filter{}, 300},
			{"incident", review.Filter{Incident: "rule:a@1"}, 200},
			{"scope", review.Filter{Scope: "rule:b"}, 100},
			{"action", review.Filter{Action: "ban_account"}, 150},
			{"incident and action", review.Filter{Incident: "rule:b@4", Action: "ban_account"}, 50},
			{"model version", review.Filter{ModelVersion: "v0"}, 60},
			{"region", review.Filter{Region: "eu", Incident: "rule:a@1"}, 100},
			{"nothing", review.Filter{Incident: "rule:z@1"}, 0},
		}
		for _, tt := range tests {
			// Page through with a small limit: every action once, in held order.
			seen := map[string]bool{}
			cursor, pages := "", 0
			lastPos := [3]int64{-1, -1, -1}
			for {
				p, err := a.List(ctx, tt.f, cursor, 7)
				if err != nil {
					t.Fatalf("%s: List(%s) = %v", when, tt.name, err)
				}
				pages++
				for _, h := range p.Items {
					if seen[h.ActionID] {
						t.Errorf("%s: List(%s) repeats %s", when, tt.name, h.ActionID)
					}
					seen[h.ActionID] = true
					if h.Offset <= lastPos[h.Partition] {
						t.Errorf("%s: List(%s) is out of held order at %s", when, tt.name, h.ActionID)
					}
					lastPos[h.Partition] = h.Offset
				}
				if p.Next == "" {
					break
				}
				cursor = p.Next
			}
			if len(seen) != tt.want {
				t.Errorf("%s: List(%s) = %d actions; want %d", when, tt.name, len(seen), tt.want)
			}
		}
		h, err := a.Get(ctx, "act-004")
		if err != nil || h.Rule != "a" || h.Action != "ban_account" || h.Region != "us" || h.ModelVersion != "v4" ||
			h.Incident != "rule:a@1" || h.Status != review.Pending || h.Source != "moderation.actions/0/act-004" || h.TargetID != "u-4" {
			t.Errorf("%s: Get(act-004) = %+v, %v", when, h, err)
		}
	}
	check("indexed")

	// Redis loses its data: the next sync rebuilds the same index.
	r.Restart(t)
	if _, err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("rebuilt")

	// New held actions are picked up by the running indexer.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); b.Run(runCtx) }()
	k.Produce(t, heldTopic, heldRecord("act-new", "a", "warn", "u-x", "v1", "eu", "rule:a@1"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := a.Get(ctx, "act-new"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the running index did not pick up a new held action within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-done
	if _, err := a.List(ctx, review.Filter{}, "x", 10); err == nil {
		t.Error("List with a bad cursor = nil error")
	}
}

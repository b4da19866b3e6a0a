package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/store"
	"github.com/breakwater/breakwater/wire"
)

// TestRedisWaitsForReplicas: with MinReplicas set, a decision, an
// operator's change and a restore return only once that many replicas
// acknowledged them, and fail with ErrNotReplicated when fewer did; a
// redelivered batch, whose decision is replayed without a write, is
// acknowledged the same way.
func TestRedisWaitsForReplicas(t *testing.T) {
	sen := testbed.StartRedisSentinel(t, "")
	ctx := ctxT(t)
	primary := redis.NewClient(&redis.Options{Addr: sen.Primary})
	replica := redis.NewClient(&redis.Options{Addr: sen.Replica})
	t.Cleanup(func() { _ = primary.Close(); _ = replica.Close() })
	open := func(n int) *store.Redis {
		t.Helper()
		st, err := store.NewRedis(primary, store.RedisOptions{
			Prefix: prefix, RecordTTL: time.Hour, MinReplicas: n, ReplicaTimeout: 300 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	one, two := open(1), open(2) // the primary has one replica

	if _, err := two.Restore(ctx, nil); !errors.Is(err, store.ErrNotReplicated) {
		t.Fatalf("Restore waiting for 2 of 1 replicas: %v, want ErrNotReplicated", err)
	}
	if _, err := one.Restore(ctx, nil); err != nil {
		t.Fatalf("Restore waiting for 1 replica: %v", err)
	}

	// The partition's records start empty (nothing was written yet).
	if err := two.Rebuild(ctx, "in", 0, 0, nil); !errors.Is(err, store.ErrNotReplicated) {
		t.Fatalf("Rebuild waiting for 2 of 1 replicas: %v, want ErrNotReplicated", err)
	}
	if err := one.Rebuild(ctx, "in", 0, 0, nil); err != nil {
		t.Fatalf("Rebuild waiting for 1 replica: %v", err)
	}

	scope := breaker.RuleScope("spam")
	pol := breaker.Policy{Window: time.Minute, MaxActions: 2}
	trip := func(first int64) decide.Batch {
		g := pol.Grid()
		return decide.Batch{
			Partitions: []decide.Range{rangeOf("in", 0, first, first+2, first)},
			Scopes: []decide.ScopeCounts{{Scope: scope, Policy: pol, Buckets: []decide.Bucket{
				{At: g.Bucket(evt0), Weight: 3 * breaker.Milli},
			}}},
		}
	}
	// A trip that only the primary has is not one to act on.
	if _, err := two.Decide(ctx, trip(0)); !errors.Is(err, store.ErrNotReplicated) {
		t.Fatalf("Decide waiting for 2 of 1 replicas: %v, want ErrNotReplicated", err)
	}
	// Its redelivery replays the decision the primary kept, and is
	// acknowledged only once the replica has it.
	if _, err := two.Decide(ctx, trip(0)); !errors.Is(err, store.ErrNotReplicated) {
		t.Fatalf("redelivery waiting for 2 of 1 replicas: %v, want ErrNotReplicated", err)
	}
	r, err := one.Decide(ctx, trip(0))
	if err != nil {
		t.Fatalf("redelivery waiting for 1 replica: %v", err)
	}
	if len(r.Replayed) != 1 || r.Replayed[0].Holding[scope] != 1 {
		t.Fatalf("redelivery: %+v; want the first decision replayed, holding %s at generation 1", r, scope)
	}
	// Acknowledged means the replica has it now.
	keys, _ := wire.NewKeys(prefix)
	if st, err := replica.HGet(ctx, keys.Status(string(scope)), "st").Result(); err != nil || st != string(breaker.Open) {
		t.Fatalf("the replica has %s as %q (%v) after an acknowledged trip", scope, st, err)
	}

	reset := func(s breaker.Status, now time.Time) (breaker.Status, error) {
		return breaker.Reset(pol, s, "oncall", "test", now), nil
	}
	if _, err := two.Update(ctx, scope, reset); !errors.Is(err, store.ErrNotReplicated) {
		t.Fatalf("Update waiting for 2 of 1 replicas: %v, want ErrNotReplicated", err)
	}
	if _, err := one.Update(ctx, scope, reset); err != nil {
		t.Fatalf("Update waiting for 1 replica: %v", err)
	}

	// Without MinReplicas nothing waits: the same calls succeed with no
	// replica asked.
	none := open(0)
	if _, err := none.Decide(ctx, trip(10)); err != nil {
		t.Fatalf("Decide without waiting: %v", err)
	}
	if _, err := store.NewRedis(primary, store.RedisOptions{Prefix: prefix, RecordTTL: time.Hour, MinReplicas: 1}); err == nil {
		t.Error("NewRedis accepted MinReplicas without ReplicaTimeout")
	}
}

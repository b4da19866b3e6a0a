package review

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/store"
	"github.com/breakwater/breakwater/wire"
)

const (
	tHeld     = "held"
	tGated    = "gated"
	tRejected = "rejected"
)

func heldMsg(id, target, incident string) testbed.Record {
	r := testbed.KV(target, fmt.Sprintf(`{"action_id":%q,"rule_id":"a","action":"remove_pin","target":{"type":"account","id":%q},"occurred_at":"2026-11-23T10:00:00Z"}`, id, target))
	r.Headers = []testbed.Header{
		{Key: "x-trace", Value: []byte("t-" + id)},
		{Key: "breakwater-decision", Value: []byte("held")},
		{Key: "breakwater-scope", Value: []byte("rule:a")},
		{Key: "breakwater-incident", Value: []byte(incident)},
	}
	return r
}

func header(r testbed.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

// TestReleaseExactlyOnceInOrder approves a sample, then the rest of an
// incident in bulk with a crash after a written but unmarked batch, and
// rejects some: every approved action is on gated once, in held order per
// key, every rejected one on rejected, none on both.
func TestReleaseExactlyOnceInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	const total = 2000
	var recs []testbed.Record
	for i := range total {
		recs = append(recs, heldMsg(fmt.Sprintf("act-%04d", i), fmt.Sprintf("u-%d", i%37), "rule:a@1"))
	}
	b := newReleaseBed(t, 3, recs...)
	k, rs, x := b.k, b.rs, b.x
	if _, err := x.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	newReleaser := func() *Releaser { return b.releaser(t, 150) }

	// Reject every tenth action; approve a sample of 50.
	var rejected []string
	for i := 0; i < total; i += 10 {
		rejected = append(rejected, fmt.Sprintf("act-%04d", i))
	}
	if o, err := x.Decide(ctx, rejected, Decision{To: Rejected, Reviewer: "rita"}); err != nil || o.Changed != len(rejected) {
		t.Fatalf("Decide(reject) = %+v, %v", o, err)
	}
	sample, o, err := x.Sample(ctx, 50, Decision{Incident: "rule:a@1", Reviewer: "sam"})
	if err != nil || o.Changed != 50 || len(sample) != 50 {
		t.Fatalf("Sample = %d ids, %+v, %v", len(sample), o, err)
	}
	r1 := newReleaser()
	if _, err := r1.Step(ctx); err != nil {
		t.Fatal(err)
	}

	// Approve the rest; the first releaser crashes after writing its
	// second batch, before marking it.
	if o, err := x.DecideIncident(ctx, Decision{Incident: "rule:a@1", To: Approved, Reviewer: "alice"}); err != nil || o.Changed != total-len(rejected)-50 {
		t.Fatalf("DecideIncident = %+v, %v", o, err)
	}
	batches := 0
	r1.crashAfterWrite = func() bool { batches++; return batches == 2 }
	if _, err := r1.Step(ctx); err == nil {
		t.Fatal("Step did not crash")
	}
	// Approving again changes nothing.
	if o, err := x.DecideIncident(ctx, Decision{Incident: "rule:a@1", To: Approved, Reviewer: "alice"}); err != nil || o.Changed != 0 {
		t.Fatalf("DecideIncident again = %+v, %v; want nothing changed", o, err)
	}
	if o, err := x.Decide(ctx, []string{"act-0000", "act-0001", "nope"}, Decision{To: Approved, Reviewer: "bob"}); err != nil ||
		len(o.Conflicts) != 1 || o.Already != 1 || len(o.Unknown) != 1 {
		t.Fatalf("Decide(mixed) = %+v, %v; want one conflict, one already, one unknown", o, err)
	}

	// Another replica takes over once the lease has expired.
	r2 := newReleaser()
	if n, err := r2.Step(ctx); err != nil || n != 0 {
		t.Fatalf("Step while the lease is held = %d, %v; want nothing", n, err)
	}
	if err := rs.Client(t).Del(ctx, r1.lockKey()).Err(); err != nil { // the lease expires
		t.Fatal(err)
	}
	if _, err := r2.Step(ctx); err != nil {
		t.Fatal(err)
	}

	gated := k.ReadAll(t, tGated, 30*time.Second)
	rej := k.ReadAll(t, tRejected, 30*time.Second)
	onGated := map[string]int{}
	lastPos := map[string]int64{} // key -> held offset of the last approved action
	heldOff := map[string]int64{}
	for _, h := range k.ReadAll(t, tHeld, 30*time.Second) {
		heldOff[header(h, "x-trace")[2:]] = h.Offset
	}
	for _, g := range gated {
		id := header(g, wire.HeaderActionID)
		onGated[id]++
		if header(g, wire.HeaderDecision) != "approved" || header(g, "x-trace") != "t-"+id || header(g, wire.HeaderIncident) != "rule:a@1" {
			t.Errorf("gated %s has headers %+v", id, g.Headers)
		}
		if rv := header(g, wire.HeaderReviewer); rv != "alice" && rv != "sam" {
			t.Errorf("gated %s reviewer %q", id, rv)
		}
		key := string(g.Key)
		if p, ok := lastPos[key]; ok && heldOff[id] <= p {
			t.Errorf("gated %s of key %s is out of held order", id, key)
		}
		lastPos[key] = heldOff[id]
	}
	onRejected := map[string]int{}
	for _, r := range rej {
		id := header(r, wire.HeaderActionID)
		onRejected[id]++
		if header(r, wire.HeaderDecision) != "rejected" || header(r, wire.HeaderReviewer) != "rita" {
			t.Errorf("rejected %s has headers %+v", id, r.Headers)
		}
	}
	for i := range total {
		id := fmt.Sprintf("act-%04d", i)
		if i%10 == 0 {
			if onRejected[id] != 1 || onGated[id] != 0 {
				t.Errorf("%s: %d on rejected, %d on gated; want 1 and 0", id, onRejected[id], onGated[id])
			}
		} else if onGated[id] != 1 || onRejected[id] != 0 {
			t.Errorf("%s: %d on gated, %d on rejected; want 1 and 0", id, onGated[id], onRejected[id])
		}
	}
	inc, err := x.Incident(ctx, "rule:a@1")
	if err != nil || inc.Written != total || inc.Pending != 0 || inc.Approved != total-int64(len(rejected)) {
		t.Errorf("Incident = %+v, %v; want all written", inc, err)
	}
	// Approved actions count as released, rejected ones as written to the
	// rejected topic: neither reads as the other.
	if inc.ApprovedReleased != inc.Approved || inc.RejectedWritten != int64(len(rejected)) || inc.RejectedWritten == 0 {
		t.Errorf("Incident = %+v; want approved_released %d (the approved), rejected_written %d (the rejected)", inc, inc.Approved, len(rejected))
	}
}

// TestRebuildKeepsDecisions loses Redis after some actions were decided and
// released: the rebuilt index knows every decision and release from the
// journal, and finishing the release forwards nothing twice.
func TestRebuildKeepsDecisions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const total = 600
	var recs []testbed.Record
	for i := range total {
		recs = append(recs, heldMsg(fmt.Sprintf("act-%04d", i), fmt.Sprintf("u-%d", i%13), "rule:a@2"))
	}
	b := newReleaseBed(t, 2, recs...)
	k, rs, x := b.k, b.rs, b.x
	r := b.releaser(t, 100)
	// Before the first sync the index is not ready: no decision is taken.
	if _, err := x.Decide(ctx, []string{"act-0001"}, Decision{To: Approved, Reviewer: "a"}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Decide before the index is built = %v; want ErrNotReady", err)
	}
	if _, err := x.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	var first, rejected []string
	for i := range 200 {
		first = append(first, fmt.Sprintf("act-%04d", i))
	}
	for i := 200; i < total; i += 4 {
		rejected = append(rejected, fmt.Sprintf("act-%04d", i))
	}
	if _, err := x.Decide(ctx, first, Decision{To: Approved, Reviewer: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Decide(ctx, rejected, Decision{To: Rejected, Reviewer: "rita"}); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Step(ctx); err != nil || n != 200+len(rejected) {
		t.Fatalf("Step = %d, %v; want %d released", n, err, 200+len(rejected))
	}
	if _, err := x.DecideIncident(ctx, Decision{Incident: "rule:a@2", To: Approved, Reviewer: "bob"}); err != nil {
		t.Fatal(err)
	}

	rs.Restart(t) // Redis loses everything
	if n, err := r.Step(ctx); err != nil || n != 0 {
		t.Fatalf("Step before the rebuild = %d, %v; want nothing", n, err)
	}
	if _, err := x.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	inc, err := x.Incident(ctx, "rule:a@2")
	if err != nil || inc.Pending != 0 || inc.Rejected != int64(len(rejected)) || inc.Written != int64(200+len(rejected)) ||
		inc.RejectedWritten != int64(len(rejected)) || inc.ApprovedReleased != 200 {
		t.Fatalf("rebuilt incident = %+v, %v; want every decision and release back", inc, err)
	}
	if _, err := r.Step(ctx); err != nil {
		t.Fatal(err)
	}
	on := map[string]int{}
	for _, topic := range []string{tGated, tRejected} {
		for _, m := range k.ReadAll(t, topic, 30*time.Second) {
			on[header(m, wire.HeaderActionID)]++
		}
	}
	for i := range total {
		if id := fmt.Sprintf("act-%04d", i); on[id] != 1 {
			t.Errorf("%s was released %d times; want once", id, on[id])
		}
	}
	if inc, _ := x.Incident(ctx, "rule:a@2"); inc.Written != total || inc.ApprovedReleased+inc.RejectedWritten != total {
		t.Errorf("incident = %+v; want all released", inc)
	}
}

// TestApprovedButUnreleasedBlocks covers the race of a bulk approval with
// a releaser that has already read its queue: an earlier action of the key
// approved after that read is not in the batch, yet must still hold back
// the later one until it is released itself.
func TestApprovedButUnreleasedBlocks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := newReleaseBed(t, 1,
		heldMsg("early", "same-key", "rule:a@1"),
		heldMsg("late", "same-key", "rule:a@1"),
		heldMsg("other", "other-key", "rule:a@1"))
	k, x := b.k, b.x
	if _, err := x.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r := b.releaser(t, 10)
	// "late" first, then "early": both approved, neither released.
	for _, id := range []string{"late", "early"} {
		if _, err := x.Decide(ctx, []string{id}, Decision{To: Approved, Reviewer: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	late, err := x.Get(ctx, "late")
	if err != nil {
		t.Fatal(err)
	}
	// The batch the releaser read before "early" was approved holds "late"
	// alone.
	if blocked, err := r.blocked(ctx, late, map[string]bool{}); err != nil || !blocked {
		t.Errorf("blocked(late) with early approved but unreleased and not in the batch = %v, %v; want true", blocked, err)
	}
	if blocked, err := r.blocked(ctx, late, map[string]bool{"early": true}); err != nil || blocked {
		t.Errorf("blocked(late) with early ahead of it in the batch = %v, %v; want false", blocked, err)
	}
	// A release writes both, in order.
	if n, err := r.Step(ctx); err != nil || n != 2 {
		t.Fatalf("Step = %d, %v; want both released", n, err)
	}
	var order []string
	for _, rec := range k.ReadAll(t, tGated, 10*time.Second) {
		for _, h := range rec.Headers {
			if h.Key == wire.HeaderActionID {
				order = append(order, string(h.Value))
			}
		}
	}
	if strings.Join(order, ",") != "early,late" {
		t.Errorf("gated holds %v; want early, then late", order)
	}
	if blocked, err := r.blocked(ctx, late, map[string]bool{}); err != nil || blocked {
		t.Errorf("blocked(late) once early is released = %v, %v; want false", blocked, err)
	}
}

// releaseBed is a held topic with recs on kfake, a redis-server, the
// audit journal and the index over them (not synced yet).
type releaseBed struct {
	k  *testbed.Kafka
	rs *testbed.Redis
	x  *Index
	j  *audit.Trail
}

func newReleaseBed(t *testing.T, partitions int, recs ...testbed.Record) *releaseBed {
	t.Helper()
	return newReleaseBedWith(t, store.NewMemory(time.Now), partitions, recs...)
}

// newReleaseBedWith is newReleaseBed with the breakers' states read from states.
func newReleaseBedWith(t *testing.T, states StatusReader, partitions int, recs ...testbed.Record) *releaseBed {
	t.Helper()
	k := testbed.StartKafka(t)
	for _, n := range []string{tHeld, tGated, tRejected, "audit"} {
		k.CreateTopic(t, n, partitions)
	}
	rs := testbed.StartRedis(t)
	rs.WatchScripts(t)
	k.Produce(t, tHeld, recs...)
	j, err := audit.New(audit.Options{Kafka: kafkaconn.Plain(k.Addrs()...), Topic: "audit", WriteTimeout: 10 * time.Second, Redis: rs.Client(t), Prefix: "bw", IndexSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	x, err := NewIndex(Options{Kafka: kafkaconn.Plain(k.Addrs()...), Topic: tHeld, Redis: rs.Client(t), Prefix: "bw", Poll: time.Second, Logger: zap.NewNop(), Journal: j, States: states})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Close)
	return &releaseBed{k: k, rs: rs, x: x, j: j}
}

// releaser returns a releaser of b writing batch actions at a time.
func (b *releaseBed) releaser(t *testing.T, batch int) *Releaser {
	t.Helper()
	r, err := NewReleaser(b.x, ReleaseOptions{
		Kafka: kafkaconn.Plain(b.k.Addrs()...), Gated: tGated, Rejected: tRejected, WriteTimeout: 5 * time.Second,
		Lease: 11 * time.Second, Batch: batch, Poll: time.Second,
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// TestLeaseRenewedWhileWriting holds a write for several lease lengths:
// the lease stays with the writer, so a second releaser cannot take over;
// once another owner holds the lock, the write is cancelled.
func TestLeaseRenewedWhileWriting(t *testing.T) {
	b := newReleaseBed(t, 1)
	opts := ReleaseOptions{
		Kafka: kafkaconn.Plain(b.k.Addrs()...), Gated: tGated, Rejected: tRejected, WriteTimeout: 500 * time.Millisecond,
		Lease: 1500 * time.Millisecond, Batch: 10, Poll: time.Second,
	}
	newReleaser := func() *Releaser {
		r, err := NewReleaser(b.x, opts, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	r1, r2 := newReleaser(), newReleaser()
	ctx := t.Context()
	rc := b.rs.Client(t)
	wctx, release, err := r1.holdLease(ctx)
	if err != nil {
		t.Fatalf("holdLease() = %v", err)
	}
	// A write of three lease lengths: the second releaser tries all along.
	for end := time.Now().Add(3 * opts.Lease); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if wctx.Err() != nil {
			t.Fatalf("the write was cancelled while the lease was ours: %v", context.Cause(wctx))
		}
		if ok, err := leaseScript.Run(ctx, rc, []string{r2.lockKey()}, r2.owner, opts.Lease.Milliseconds()).Int(); err != nil || ok != 0 {
			t.Fatalf("a second releaser took the lease during the write: %d, %v", ok, err)
		}
	}
	if err := release(); err != nil {
		t.Fatalf("release() = %v; want nil", err)
	}
	if owner, err := rc.Get(ctx, r1.lockKey()).Result(); err != nil || owner != r1.owner {
		t.Errorf("lease owner after the write = %q, %v; want the writer", owner, err)
	}

	// A second releaser cannot start a write while the first holds it.
	if _, _, err := r2.holdLease(ctx); !errors.Is(err, errLeaseLost) {
		t.Errorf("holdLease() of a second releaser = %v; want errLeaseLost", err)
	}

	// The lease moves to another owner mid-write: the write is abandoned.
	wctx, release, err = r1.holdLease(ctx)
	if err != nil {
		t.Fatalf("holdLease() = %v", err)
	}
	if err := rc.Set(ctx, r1.lockKey(), r2.owner, opts.Lease).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wctx.Done():
	case <-time.After(5 * opts.Lease):
		t.Fatal("the write went on after the lease was lost")
	}
	if err := release(); !errors.Is(err, errLeaseLost) {
		t.Errorf("release() after the lease moved = %v; want errLeaseLost", err)
	}
}

// TestDecisionDuringScanWritesOnce decides actions ahead of the ones a
// releaser has already read while it reads the next page of its queue:
// every action is still written exactly once.
func TestDecisionDuringScanWritesOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// "p" stays pending, so "b1" and "b2" (same key) wait for it and the
	// first page does not fill the batch.
	b := newReleaseBed(t, 1,
		heldMsg("p", "k", "rule:a@1"),
		heldMsg("e1", "ke1", "rule:a@1"),
		heldMsg("e2", "ke2", "rule:a@1"),
		heldMsg("r", "kr", "rule:a@1"),
		heldMsg("b1", "k", "rule:a@1"),
		heldMsg("b2", "k", "rule:a@1"))
	k, x := b.k, b.x
	if _, err := x.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Decide(ctx, []string{"r"}, Decision{To: Rejected, Reviewer: "r"}); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Decide(ctx, []string{"b1", "b2"}, Decision{To: Approved, Reviewer: "r"}); err != nil {
		t.Fatal(err)
	}
	r := b.releaser(t, 2)
	// After the first page ([r, b1]) is read, two actions are approved
	// ahead of it: a page by rank would read [r, b1] again.
	pages := 0
	r.afterPage = func() {
		pages++
		if pages == 1 {
			if _, err := x.Decide(ctx, []string{"e1", "e2"}, Decision{To: Approved, Reviewer: "r"}); err != nil {
				t.Error(err)
			}
		}
	}
	if _, err := r.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if pages == 0 {
		t.Fatal("the releaser never read a second page; the test does not test the race")
	}
	count := func(topic string) map[string]int {
		out := map[string]int{}
		for _, rec := range k.ReadAll(t, topic, 10*time.Second) {
			out[header(rec, wire.HeaderActionID)]++
		}
		return out
	}
	if got := count(tRejected); len(got) != 1 || got["r"] != 1 {
		t.Errorf("rejected holds %v; want r once", got)
	}
	if got := count(tGated); len(got) != 2 || got["e1"] != 1 || got["e2"] != 1 {
		t.Errorf("gated holds %v; want e1 and e2 once each", got)
	}
}

// TestUndoDuringScan undoes a decision after the releaser read it and
// before it recorded its batch: the batch is read again without it, so the
// undone action is not released and stays pending; an action in the batch
// being written cannot be undone.
func TestUndoDuringScan(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// "p" stays pending, so "b1" (same key) waits for it and the first
	// page does not fill the batch.
	b := newReleaseBed(t, 1,
		heldMsg("p", "k", "rule:a@1"),
		heldMsg("u", "ku", "rule:a@1"),
		heldMsg("b1", "k", "rule:a@1"),
		heldMsg("v", "kv", "rule:a@1"))
	k, x := b.k, b.x
	if _, err := x.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Decide(ctx, []string{"u", "v"}, Decision{To: Rejected, Reviewer: "r"}); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Decide(ctx, []string{"b1"}, Decision{To: Approved, Reviewer: "r"}); err != nil {
		t.Fatal(err)
	}
	r := b.releaser(t, 2)
	pages := 0
	r.afterPage = func() {
		pages++
		if pages == 1 {
			out, err := x.Undo(ctx, []string{"u"}, "r", "by mistake")
			if err != nil || len(out.Undone) != 1 {
				t.Errorf("Undo(u) = %+v, %v; want it undone", out, err)
			}
		}
	}
	if _, err := r.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if pages == 0 {
		t.Fatal("the releaser never read a second page; the test does not test the race")
	}
	var ids []string
	for _, rec := range k.ReadAll(t, tRejected, 10*time.Second) {
		ids = append(ids, header(rec, wire.HeaderActionID))
	}
	if len(ids) != 1 || ids[0] != "v" {
		t.Errorf("rejected holds %v; want v alone", ids)
	}
	if h, err := x.Get(ctx, "u"); err != nil || h.Status != Pending || h.Released {
		t.Errorf("u = %+v, %v; want pending, not released", h, err)
	}
	if inc, err := x.Incident(ctx, "rule:a@1"); err != nil || inc.Pending != 2 || inc.Rejected != 1 || inc.Approved != 1 {
		t.Errorf("the incident = %+v, %v; want p and u pending, v rejected, b1 approved", inc, err)
	}
	// An action in the batch being written keeps its decision.
	if _, err := x.Decide(ctx, []string{"u"}, Decision{To: Rejected, Reviewer: "r"}); err != nil {
		t.Fatal(err)
	}
	rc := b.rs.Client(t)
	if err := rc.Set(ctx, x.keys.ReleaseInflight(), `{"ids":["u"]}`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if out, err := x.Undo(ctx, []string{"u"}, "r", ""); err != nil || len(out.Released) != 1 {
		t.Errorf("Undo(u) while u is being written = %+v, %v; want its decision to stand", out, err)
	}
}

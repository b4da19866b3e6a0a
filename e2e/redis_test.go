package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/traffic"
	"github.com/breakwater/breakwater/wire"
)

// TestRedisKilledMidStream kills Redis after a rule's breaker tripped,
// produces more while it is down, and restarts it empty: the daemon must
// pause without forwarding anything, resume by itself, and keep the
// breaker open from the state topic.
func TestRedisKilledMidStream(t *testing.T) {
	const parts = 4
	spiking := traffic.RuleID(2)
	scope := breaker.RuleScope(spiking)
	b := newBed(t, parts)
	cfg := b.config(t, settings{window: "1m", maxActions: 400})
	rep := startReplica(t, "solo", cfg)
	alive := replicasAlive(rep)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Phase A: rule-02 acts ten times its share from the start, about 750
	// weighted actions a minute against a limit of 400; the others about 75.
	g := traffic.New(10, 1000, 0, 10, 5)
	evA := g.Events(epoch, 5*time.Minute, 4000)
	written := b.producePaced(t, eventRecords(evA), 250, 500, alive)
	b.waitCommitted(t, 60*time.Second, alive)
	before := b.status(t, scope)
	if before.State != breaker.Open {
		t.Fatalf("phase A did not trip %s: %+v", scope, before)
	}
	t.Logf("phase A: %d actions, %s open at generation %d", len(written), scope, before.Generation)

	// Kill Redis, then produce phase B: five more minutes of the same.
	b.r.Kill(t)
	evB := g.Events(epoch.Add(5*time.Minute), 5*time.Minute, 4000)
	written = append(written, b.k.Produce(t, testTopics.Input, eventRecords(evB)...)...)

	// The daemon pauses: the metric says so once a batch failed to decide.
	var paused float64
	var perr error
	waitFor(t, 30*time.Second,
		func() string { return fmt.Sprintf("breakwater_paused == 1 (last %v, %v)", paused, perr) },
		alive,
		func() bool {
			paused, perr = rep.metric(ctx, "breakwater_paused")
			return perr == nil && paused == 1
		})
	if !strings.Contains(rep.logs.String(), "rate store unreachable; pausing consumption") {
		t.Errorf("paused, but the logs do not say so")
	}
	// Nothing moves while Redis is down: no output, no commit. A batch in
	// flight at the kill had finished before the pause was reported.
	snapshot := func() map[string]map[int32]int64 {
		return map[string]map[int32]int64{
			testTopics.Gated:      b.k.EndOffsets(t, testTopics.Gated),
			testTopics.Held:       b.k.EndOffsets(t, testTopics.Held),
			testTopics.DeadLetter: b.k.EndOffsets(t, testTopics.DeadLetter),
			"committed":           b.k.CommittedOffsets(t, groupID, testTopics.Input),
		}
	}
	frozen := snapshot()
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); {
		if now := snapshot(); !maps.EqualFunc(now, frozen, maps.Equal) {
			t.Fatalf("output or commits moved while Redis was down: %v, then %v", frozen, now)
		}
		if err := alive(); err != nil {
			t.Fatalf("daemon gave up while Redis was down: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, code, err := httpGet(ctx, "http://"+rep.addrs.HTTP+"/readyz"); err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while Redis is down: %d, %v; want 503", code, err)
	}
	if _, code, err := httpGet(ctx, "http://"+rep.addrs.HTTP+"/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz while Redis is down: %d, %v; want 200", code, err)
	}
	pending := sum(b.k.EndOffsets(t, testTopics.Input)) - sum(frozen["committed"])
	t.Logf("paused with %d input records pending; outputs frozen at %v", pending, frozen)
	if pending <= 0 {
		t.Fatalf("nothing left to decide after the kill")
	}

	// Redis comes back empty: the daemon restores the breakers from the
	// state topic and resumes by itself.
	b.r.Restart(t)
	b.waitCommitted(t, 60*time.Second, alive)
	waitFor(t, 10*time.Second,
		func() string { return fmt.Sprintf("breakwater_paused == 0 (last %v, %v)", paused, perr) },
		alive,
		func() bool {
			paused, perr = rep.metric(ctx, "breakwater_paused")
			return perr == nil && paused == 0
		})
	if n, err := rep.metric(ctx, "breakwater_state_restores_total"); err != nil || n < 2 {
		t.Errorf("breakwater_state_restores_total = %v, %v; want at least 2 (start and after the loss)", n, err)
	}
	after := b.status(t, scope)
	if after.State != breaker.Open || after.Generation != before.Generation {
		t.Errorf("%s after the Redis restart: %+v; want open at generation %d as before: %+v", scope, after, before.Generation, before)
	}

	in := newInput(t, written)
	o := b.readOutputs(t, in)
	dups := checkExactlyOne(t, in, o)
	t.Logf("distinct inputs per topic %v; duplicates per topic %v", o.decided, dups)
	if dups[testTopics.Gated]+dups[testTopics.Held] > 0 {
		// Allowed (at least once), but worth knowing why.
		t.Logf("duplicates without a crash; the daemon's warnings:\n%s", strings.Join(rep.warnings(), "\n"))
	}
	// Phase B of the tripped rule is held under the same incident; every
	// other rule is gated throughout.
	inc := breaker.Incident(scope, before.Generation)
	heldB := 0
	for i, a := range in.actions {
		topic, _ := o.topicOf(i)
		switch {
		case a.RuleID != spiking && topic != testTopics.Gated:
			t.Errorf("%s went to %s", describe(in, i), topic)
		case a.RuleID == spiking && i >= len(evA) && topic != testTopics.Held:
			t.Errorf("%s of the tripped rule went to %s after the Redis restart", describe(in, i), topic)
		case a.RuleID == spiking && i >= len(evA):
			heldB++
		}
	}
	for _, r := range o.recs {
		if r.topic == testTopics.Held && r.in >= len(evA) {
			if v, _ := header(r.rec, wire.HeaderIncident); v != inc {
				t.Errorf("held %s names incident %q, want %q", describe(in, r.in), v, inc)
			}
		}
	}
	t.Logf("phase B: %d actions of %s held under %s", heldB, spiking, inc)
}

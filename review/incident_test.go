package review

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/internal/testbed"
)

// statuses is a StatusReader whose breakers a test sets.
type statuses struct {
	mu sync.Mutex // guards m
	m  map[breaker.Scope]breaker.Status
}

func (s *statuses) Status(_ context.Context, scope breaker.Scope) (breaker.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[scope], nil
}

func (s *statuses) set(scope breaker.Scope, state breaker.State, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := breaker.Initial()
	st.State, st.Generation = state, gen
	s.m[scope] = st
}

// TestIncidentStatesAndStanding follows an incident through every state:
// active while its breaker holds, a standing reject deciding what it holds
// over several release steps, contained once the breaker closes with
// actions pending, reviewed once they are decided and not yet written,
// closed once written. The standing decision is one audit entry whose
// progress counts every action it decided, over its steps; it ends with
// an entry of its own; each action it decided says so on its own record;
// approved and rejected writes are counted apart.
func TestIncidentStatesAndStanding(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const inc, inc2 = "rule:a@1", "rule:a@2"
	scope := breaker.RuleScope("a")
	st := &statuses{m: map[breaker.Scope]breaker.Status{}}
	st.set(scope, breaker.Open, 1)
	held := func(inc string, from, n int) []testbed.Record {
		var recs []testbed.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, heldMsg(fmt.Sprintf("act-%03d", i), fmt.Sprintf("u-%d", i%7), inc))
		}
		return recs
	}
	b := newReleaseBedWith(t, st, 1, held(inc, 0, 10)...)
	x, r := b.x, b.releaser(t, 100)
	sync := func(inc string, want int64) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if _, err := x.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			i, err := x.Incident(ctx, inc)
			if err == nil && i.Held >= want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Incident(%s) = %+v, %v; want %d held", inc, i, err, want)
			}
		}
	}
	state := func(inc, want string) Incident {
		t.Helper()
		i, err := x.Incident(ctx, inc)
		if err != nil || i.State != want {
			t.Fatalf("Incident(%s) = %+v, %v; want %s", inc, i, err, want)
		}
		return i
	}
	sync(inc, 10)
	state(inc, api.IncidentActive)
	// Two sample decisions, one each way.
	if _, err := x.Decide(ctx, []string{"act-000"}, Decision{To: Approved, Reviewer: "rita"}); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Decide(ctx, []string{"act-001"}, Decision{To: Rejected, Reviewer: "rita"}); err != nil {
		t.Fatal(err)
	}

	// A standing reject, applied at three release steps as actions arrive.
	i, err := x.Change(ctx, Change{Kind: audit.KindStanding, Incident: inc, Actor: "sam", Text: "model 7 is broken", Decision: Rejected})
	if err != nil || i.Standing == nil || i.Standing.Entry == "" {
		t.Fatalf("Change(standing) = %+v, %v; want a standing decision naming its entry", i, err)
	}
	next := 10
	for step := range 3 {
		if step > 0 {
			b.k.Produce(t, tHeld, held(inc, next, 5)...)
			next += 5
			sync(inc, int64(next))
		}
		if _, err := r.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	i = state(inc, api.IncidentActive)
	if i.Pending != 0 || i.Rejected != int64(next-1) || i.Standing.Applied != int64(next-2) {
		t.Fatalf("after three steps the incident is %+v; want nothing pending, %d rejected, %d by the standing decision", i, next-1, next-2)
	}
	h, err := x.Get(ctx, "act-012")
	if err != nil || h.Status != Rejected || h.Reviewer != "sam" || h.Via != audit.ViaStanding || h.DecidedAt.IsZero() {
		t.Errorf("Get(act-012) = %+v, %v; want rejected by sam via the standing decision, with its time", h.Held, err)
	}
	if h, _ := x.Get(ctx, "act-001"); h.Via != "" || h.Reviewer != "rita" {
		t.Errorf("Get(act-001) = %+v; want rita's own decision", h.Held)
	}

	// The breaker closes with nothing pending: the incident is closed (all
	// written), and the standing decision ends at the next step, with an
	// entry of its own.
	st.set(scope, breaker.Closed, 1)
	state(inc, api.IncidentClosed)
	if _, err := r.Step(ctx); err != nil {
		t.Fatal(err)
	}
	i = state(inc, api.IncidentClosed)
	if i.Standing == nil || i.Standing.Ended.IsZero() || i.Written != int64(next) || i.ApprovedReleased != 1 || i.RejectedWritten != int64(next-1) {
		t.Errorf("closed incident %+v, standing %+v; want the standing decision ended, 1 approved released, %d rejected written", i, i.Standing, next-1)
	}
	es, err := b.j.Query(ctx, audit.Query{Incident: inc, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range es {
		kinds[e.Kind]++
		switch e.Kind {
		case audit.KindStanding:
			if p := e.Progress; p == nil || p.Count != next-2 || p.Steps != 3 || e.ID != i.Standing.Entry {
				t.Errorf("the standing entry %+v has progress %+v; want %d actions in 3 steps", e.AuditEntry, p, next-2)
			}
		case audit.KindStandingEnded:
			if e.Group != i.Standing.Entry || e.Count != next-2 || e.Actor != audit.System {
				t.Errorf("the standing_ended entry %+v; want it to name %s, with %d decided", e.AuditEntry, i.Standing.Entry, next-2)
			}
		case audit.KindRelease:
			if p := e.Progress; p == nil || p.Count != next {
				t.Errorf("the release entry %+v has progress %+v; want the %d written", e.AuditEntry, p, next)
			}
		}
	}
	// Two sample decisions (one row each), the standing decision and its
	// end, one release: the standing decision's steps are not rows.
	want := map[string]int{audit.KindApprove: 1, audit.KindReject: 1, audit.KindStanding: 1, audit.KindStandingEnded: 1, audit.KindRelease: 1}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("the audit trail of %s has %v; want %v", inc, kinds, want)
	}

	// A re-trip: the next incident is active, contained once its breaker
	// closes with actions pending, reviewed once they are decided and not
	// yet written, closed once written.
	st.set(scope, breaker.Open, 2)
	b.k.Produce(t, tHeld, held(inc2, 100, 6)...)
	sync(inc2, 6)
	state(inc2, api.IncidentActive)
	st.set(scope, breaker.Closed, 2)
	state(inc2, api.IncidentContained)
	if _, err := x.DecideIncident(ctx, Decision{Incident: inc2, To: Approved, Reviewer: "rita"}); err != nil {
		t.Fatal(err)
	}
	if i := state(inc2, api.IncidentReviewed); i.Written != 0 || i.Approved != 6 {
		t.Fatalf("reviewed incident %+v; want 6 approved, none written yet", i)
	}
	if _, err := r.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if i := state(inc2, api.IncidentClosed); i.Written != 6 || i.ApprovedReleased != 6 || i.RejectedWritten != 0 {
		t.Errorf("closed incident %+v; want the 6 approved released", i)
	}
}

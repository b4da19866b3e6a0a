package breaker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// fmtStatus prints a status compactly, times relative to t0.
func fmtStatus(s Status) string {
	tm := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return "t0+" + t.Sub(t0).String()
	}
	return fmt.Sprintf("{%s/%s g%d since=%s tripped=%s reason=%q actor=%q until=%s prob=%s}",
		s.State, s.Auto, s.Generation, tm(s.Since), tm(s.TrippedAt), s.Reason, s.Actor, tm(s.Until), tm(s.ProbationUntil))
}

func sameStatus(a, b Status) bool {
	return a.State == b.State && a.Auto == b.Auto && a.Generation == b.Generation &&
		a.Since.Equal(b.Since) && a.TrippedAt.Equal(b.TrippedAt) && a.Reason == b.Reason &&
		a.Actor == b.Actor && a.Until.Equal(b.Until) && a.ProbationUntil.Equal(b.ProbationUntil)
}

// checkGeneration checks the generation rule of every operation: a change
// advances the generation by exactly one, no change leaves the status as is.
func checkGeneration(t *testing.T, op string, from, to Status, changed bool) {
	t.Helper()
	if changed {
		if to.Generation != from.Generation+1 {
			t.Errorf("%s: generation %d -> %d on a transition; want +1", op, from.Generation, to.Generation)
		}
	} else if !sameStatus(from, to) {
		t.Errorf("%s: status changed to %s without a transition (from %s)", op, fmtStatus(to), fmtStatus(from))
	}
}

var (
	maxPol = Policy{Window: time.Minute, MaxActions: 10}
	facPol = Policy{Window: time.Minute, Baseline: time.Hour, Factor: 2, MinActions: 5}
	recPol = Policy{
		Window: time.Minute, MaxActions: 10, Factor: 2, MinActions: 10, Baseline: time.Hour,
		AutoCloseAfter: 10 * time.Minute, Probation: 30 * time.Minute, ProbationScale: 0.5,
	}

	closed0 = Status{State: Closed, Auto: Closed, Generation: 4, Since: at(-time.Hour), Reason: "probation ended"}
	open0   = Status{State: Open, Auto: Open, Generation: 5, Since: at(0), TrippedAt: at(0), Reason: "max_actions"}
	prob0   = Status{
		State: Probation, Auto: Probation, Generation: 6, Since: at(0), TrippedAt: at(-time.Hour),
		Reason: "reset", Actor: "alice", ProbationUntil: at(30 * time.Minute),
	}
)

func TestEvaluate(t *testing.T) {
	ready := func(win, base float64) Counts { return Counts{Window: win, Baseline: base, BaselineReady: true} }
	tests := []struct {
		name    string
		p       Policy
		from    Status
		c       Counts
		now     time.Time
		want    Status
		changed bool
	}{
		{
			name: "closed stays closed at max_actions",
			p:    maxPol, from: closed0, c: Counts{Window: 10}, now: at(0), want: closed0,
		},
		{
			name: "closed to open above max_actions",
			p:    maxPol, from: closed0, c: Counts{Window: 10.001}, now: at(time.Minute),
			want:    Status{State: Open, Auto: Open, Generation: 5, Since: at(time.Minute), TrippedAt: at(time.Minute), Reason: "max_actions"},
			changed: true,
		},
		{
			name: "trip clears the actor of a reset",
			p:    maxPol, from: Status{State: Closed, Auto: Closed, Generation: 9, Since: at(-time.Hour), Reason: "reset", Actor: "alice"},
			c: Counts{Window: 11}, now: at(0),
			want:    Status{State: Open, Auto: Open, Generation: 10, Since: at(0), TrippedAt: at(0), Reason: "max_actions"},
			changed: true,
		},
		{
			name: "initial status trips",
			p:    maxPol, from: Initial(), c: Counts{Window: 11}, now: at(0),
			want:    Status{State: Open, Auto: Open, Generation: 1, Since: at(0), TrippedAt: at(0), Reason: "max_actions"},
			changed: true,
		},
		{
			name: "empty auto counts as closed",
			p:    maxPol, from: Status{State: Closed}, c: Counts{Window: 11}, now: at(0),
			want:    Status{State: Open, Auto: Open, Generation: 1, Since: at(0), TrippedAt: at(0), Reason: "max_actions"},
			changed: true,
		},
		{
			name: "baseline factor needs a ready baseline",
			p:    facPol, from: closed0, c: Counts{Window: 1000, Baseline: 1}, now: at(0), want: closed0,
		},
		{
			name: "baseline factor needs min_actions",
			p:    facPol, from: closed0, c: ready(4.999, 0), now: at(0), want: closed0,
		},
		{
			name: "baseline factor trips at exactly min_actions",
			p:    facPol, from: closed0, c: ready(5, 2.4), now: at(0),
			want:    Status{State: Open, Auto: Open, Generation: 5, Since: at(0), TrippedAt: at(0), Reason: "baseline_factor"},
			changed: true,
		},
		{
			name: "baseline factor needs more than factor times baseline",
			p:    facPol, from: closed0, c: ready(10, 5), now: at(0), want: closed0,
		},
		{
			name: "max_actions wins over baseline factor",
			p:    recPol, from: closed0, c: ready(50, 1), now: at(0),
			want:    Status{State: Open, Auto: Open, Generation: 5, Since: at(0), TrippedAt: at(0), Reason: "max_actions"},
			changed: true,
		},
		{
			name: "disabled never trips",
			p:    Policy{Window: time.Minute, MaxActions: 1, Factor: 1, MinActions: 0, Disabled: true},
			from: closed0, c: ready(1e9, 0), now: at(0), want: closed0,
		},
		{
			name: "no thresholds never trip",
			p:    Policy{Window: time.Minute}, from: closed0, c: ready(1e9, 0), now: at(0), want: closed0,
		},
		{
			name: "open stays open without auto_close_after",
			p:    maxPol, from: open0, c: Counts{}, now: at(365 * 24 * time.Hour), want: open0,
		},
		{
			name: "open stays open before auto_close_after",
			p:    recPol, from: open0, c: Counts{}, now: at(10*time.Minute - time.Millisecond), want: open0,
		},
		{
			name: "open to probation at auto_close_after",
			p:    recPol, from: open0, c: ready(1000, 0), now: at(10 * time.Minute),
			want: Status{
				State: Probation, Auto: Probation, Generation: 6, Since: at(10 * time.Minute), TrippedAt: at(0),
				Reason: "auto close", ProbationUntil: at(40 * time.Minute),
			},
			changed: true,
		},
		{
			name: "auto close under forced_open moves only auto",
			p:    recPol,
			from: Status{
				State: ForcedOpen, Auto: Open, Generation: 7, Since: at(time.Minute), TrippedAt: at(0),
				Reason: "kill switch", Actor: "bob",
			},
			now: at(time.Hour),
			want: Status{
				State: ForcedOpen, Auto: Probation, Generation: 8, Since: at(time.Minute), TrippedAt: at(0),
				Reason: "auto close", Actor: "bob", ProbationUntil: at(time.Hour + 30*time.Minute),
			},
			changed: true,
		},
		{
			name: "probation trips on scaled max_actions",
			p:    recPol, from: prob0, c: Counts{Window: 5.001}, now: at(time.Minute),
			want: Status{
				State: Open, Auto: Open, Generation: 7, Since: at(time.Minute), TrippedAt: at(time.Minute),
				Reason: "max_actions",
			},
			changed: true,
		},
		{
			name: "probation holds at scaled max_actions",
			p:    recPol, from: prob0, c: Counts{Window: 5}, now: at(time.Minute), want: prob0,
		},
		{
			name: "probation trips on scaled min_actions",
			p:    Policy{Window: time.Minute, Baseline: time.Hour, Factor: 2, MinActions: 10, ProbationScale: 0.5},
			from: prob0, c: ready(5, 2), now: at(time.Minute),
			want: Status{
				State: Open, Auto: Open, Generation: 7, Since: at(time.Minute), TrippedAt: at(time.Minute),
				Reason: "baseline_factor",
			},
			changed: true,
		},
		{
			name: "the same counts do not trip closed",
			p:    Policy{Window: time.Minute, Baseline: time.Hour, Factor: 2, MinActions: 10, ProbationScale: 0.5},
			from: closed0, c: ready(5, 2), now: at(time.Minute), want: closed0,
		},
		{
			name: "probation scale zero keeps thresholds",
			p:    maxPol, from: prob0, c: Counts{Window: 10}, now: at(time.Minute), want: prob0,
		},
		{
			name: "probation to closed when probation_until passes",
			p:    recPol, from: prob0, c: Counts{Window: 1}, now: at(30 * time.Minute),
			want: Status{
				State: Closed, Auto: Closed, Generation: 7, Since: at(30 * time.Minute), TrippedAt: at(-time.Hour),
				Reason: "probation ended",
			},
			changed: true,
		},
		{
			name: "probation just before probation_until",
			p:    recPol, from: prob0, c: Counts{Window: 1}, now: at(30*time.Minute - time.Millisecond), want: prob0,
		},
		{
			name: "probation trip wins over its end",
			p:    recPol, from: prob0, c: Counts{Window: 6}, now: at(2 * time.Hour),
			want: Status{
				State: Open, Auto: Open, Generation: 7, Since: at(2 * time.Hour), TrippedAt: at(2 * time.Hour),
				Reason: "max_actions",
			},
			changed: true,
		},
		{
			name: "disabled probation still ends",
			p:    Policy{Window: time.Minute, MaxActions: 1, Disabled: true}, from: prob0, c: Counts{Window: 100}, now: at(time.Hour),
			want: Status{
				State: Closed, Auto: Closed, Generation: 7, Since: at(time.Hour), TrippedAt: at(-time.Hour),
				Reason: "probation ended",
			},
			changed: true,
		},
		{
			name: "trip under forced_closed advances auto and generation, not state",
			p:    maxPol,
			from: Status{
				State: ForcedClosed, Auto: Closed, Generation: 3, Since: at(-time.Minute), Reason: "false positives",
				Actor: "bob", Until: at(time.Hour),
			},
			c: Counts{Window: 11}, now: at(0),
			want: Status{
				State: ForcedClosed, Auto: Open, Generation: 4, Since: at(-time.Minute), TrippedAt: at(0),
				Reason: "max_actions", Actor: "bob", Until: at(time.Hour),
			},
			changed: true,
		},
		{
			name: "trip under shadow advances auto and generation, not state",
			p:    facPol,
			from: Status{State: Shadow, Auto: Closed, Generation: 3, Since: at(-time.Minute), Reason: "trial", Actor: "carol"},
			c:    ready(30, 1), now: at(0),
			want: Status{
				State: Shadow, Auto: Open, Generation: 4, Since: at(-time.Minute), TrippedAt: at(0),
				Reason: "baseline_factor", Actor: "carol",
			},
			changed: true,
		},
		{
			name: "evaluate does not expire an override",
			p:    maxPol,
			from: Status{
				State: ForcedOpen, Auto: Closed, Generation: 3, Since: at(-time.Minute), Reason: "kill", Actor: "bob",
				Until: at(time.Second),
			},
			c: Counts{Window: 1}, now: at(time.Hour),
			want: Status{
				State: ForcedOpen, Auto: Closed, Generation: 3, Since: at(-time.Minute), Reason: "kill", Actor: "bob",
				Until: at(time.Second),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := Evaluate(tt.p, tt.from, tt.c, tt.now)
			if !sameStatus(got, tt.want) || changed != tt.changed {
				t.Errorf("Evaluate(%+v, %s, %+v, %s) = %s, %v; want %s, %v", tt.p, fmtStatus(tt.from), tt.c,
					tt.now.Sub(t0), fmtStatus(got), changed, fmtStatus(tt.want), tt.changed)
			}
			checkGeneration(t, "Evaluate", tt.from, got, changed)
		})
	}
}

var newPol = Policy{MaxActions: 100, LearningMax: 5, Learning: time.Hour, ProbationScale: 0.5}

func TestInLearning(t *testing.T) {
	const h = int64(time.Hour / time.Millisecond)
	p := Policy{Learning: time.Hour}
	tests := []struct {
		name             string
		p                Policy
		first, at, ref   int64
		hasRef, learning bool
	}{
		{"new, first action", p, 5 * h, 5 * h, 0, true, true},
		{"new, just before the end", p, 5 * h, 6*h - 1, 0, true, true},
		{"learnt", p, 5 * h, 6 * h, 0, true, false},
		{"there when counting began", p, h - 1, h, 0, true, false},
		{"first seen a learning period after counting began", p, h, h, 0, true, true},
		{"nothing counted before", p, 5 * h, 5 * h, 0, false, false},
		{"no learning period", Policy{}, 5 * h, 5 * h, 0, true, false},
	}
	for _, tt := range tests {
		if got := tt.p.InLearning(tt.first, tt.at, tt.ref, tt.hasRef); got != tt.learning {
			t.Errorf("%s: InLearning(%d, %d, %d, %v) = %v; want %v", tt.name, tt.first, tt.at, tt.ref, tt.hasRef, got, tt.learning)
		}
	}
}

func TestContributors(t *testing.T) {
	gp := Policy{MaxActions: 100, Factor: 3, ProbationScale: 0.5, HoldContributors: true, ContributorFactor: 2}
	normal := func(s Scope, win float64) Child {
		return Child{Scope: s, Counts: Counts{Window: win, Baseline: win, BaselineReady: true}}
	}
	spiking := func(s Scope, win, base float64) Child {
		return Child{Scope: s, Counts: Counts{Window: win, Baseline: base, BaselineReady: true}}
	}
	a, b, c, n := RuleScope("a"), RuleScope("b"), RuleScope("c"), RuleScope("new")
	tests := []struct {
		name       string
		p          Policy
		c          Counts
		reason     Reason
		probation  bool
		children   []Child
		want       []Scope
		countsHeld bool
	}{
		{"one rule explains it", gp, Counts{Window: 130}, ReasonMaxActions, false,
			[]Child{normal(a, 30), spiking(b, 60, 10), normal(c, 40)}, []Scope{b}, false},
		{"a rule without a baseline", gp, Counts{Window: 130}, ReasonMaxActions, false,
			[]Child{normal(a, 30), {Scope: n, Counts: Counts{Window: 60}}, normal(c, 40)}, []Scope{n}, false},
		{"the stand-out does not explain it", gp, Counts{Window: 200}, ReasonMaxActions, false,
			[]Child{normal(a, 90), spiking(b, 20, 5), normal(c, 90)}, nil, false},
		{"every rule up: broad", gp, Counts{Window: 130}, ReasonMaxActions, false,
			[]Child{spiking(a, 40, 10), spiking(b, 50, 10), spiking(c, 40, 10)}, nil, false},
		{"a rule holding itself is not held again", gp, Counts{Window: 130}, ReasonMaxActions, false,
			[]Child{normal(a, 30), spiking(b, 60, 10), {Scope: c, Counts: Counts{Window: 400}, Holds: true}, normal(c, 40)}, []Scope{b}, false},
		{"on probation the threshold is scaled", gp, Counts{Window: 90}, ReasonMaxActions, true,
			[]Child{normal(a, 30), spiking(b, 30, 5), normal(c, 30)}, nil, false},
		{"off probation the same explains it", gp, Counts{Window: 90}, ReasonMaxActions, false,
			[]Child{normal(a, 30), spiking(b, 30, 5), normal(c, 30)}, []Scope{b}, false},
		{"factor: explained below factor times baseline", gp, Counts{Window: 100, Baseline: 20}, ReasonBaseline, false,
			[]Child{normal(a, 20), spiking(b, 70, 5), normal(c, 10)}, []Scope{b}, false},
		{"half the rules stand out: broad", gp, Counts{Window: 130}, ReasonMaxActions, false,
			[]Child{normal(a, 10), spiking(b, 60, 10), spiking(c, 50, 10), normal(n, 10)}, nil, false},
		{"counting held actions, the rule holding itself explains it", gp, Counts{Window: 130}, ReasonMaxActions, true,
			[]Child{normal(a, 20), {Scope: b, Counts: Counts{Window: 80}, Holds: true}, normal(c, 20), normal(n, 10)}, []Scope{b}, true},
		{"counting held actions, most rules held: broad", gp, Counts{Window: 130}, ReasonMaxActions, true,
			[]Child{{Scope: a, Counts: Counts{Window: 40}, Holds: true}, {Scope: b, Counts: Counts{Window: 40}, Holds: true}, spiking(c, 40, 10), normal(n, 10)}, nil, true},
		{"hold all", Policy{MaxActions: 100}, Counts{Window: 130}, ReasonMaxActions, false,
			[]Child{normal(a, 30), spiking(b, 60, 10), normal(c, 40)}, nil, false},
		{"exactly at the factor is not a contributor", gp, Counts{Window: 130}, ReasonMaxActions, false,
			[]Child{normal(a, 30), spiking(b, 20, 10), normal(c, 80)}, nil, false},
	}
	for _, tt := range tests {
		got := Contributors(tt.p, tt.c, tt.reason, tt.probation, tt.countsHeld, tt.children)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: Contributors(%+v, %q) = %v; want %v", tt.name, tt.c, tt.reason, got, tt.want)
		}
	}
}

func TestHoldsFor(t *testing.T) {
	a, b := RuleScope("a"), RuleScope("b")
	for _, tt := range []struct {
		s     Status
		child Scope
		want  bool
	}{
		{Status{State: Open}, a, true},
		{Status{State: Open, HeldScopes: []Scope{a}}, a, true},
		{Status{State: Open, HeldScopes: []Scope{a}}, b, false},
		{Status{State: ForcedOpen, HeldScopes: []Scope{a}}, b, true},
		{Status{State: Shadow, Auto: Open, HeldScopes: []Scope{a}}, a, false},
		{Status{State: Closed}, a, false},
	} {
		if got := tt.s.HoldsFor(tt.child); got != tt.want {
			t.Errorf("%+v.HoldsFor(%s) = %v; want %v", tt.s, tt.child, got, tt.want)
		}
	}
}

func TestExceeded(t *testing.T) {
	tests := []struct {
		name      string
		p         Policy
		c         Counts
		probation bool
		want      Reason
		ok        bool
	}{
		{"below max", maxPol, Counts{Window: 9.999}, false, "", false},
		{"at max", maxPol, Counts{Window: 10}, false, "", false},
		{"above max", maxPol, Counts{Window: 10.001}, false, ReasonMaxActions, true},
		{"probation without scale", maxPol, Counts{Window: 10}, true, "", false},
		{"probation scale", Policy{MaxActions: 10, ProbationScale: 0.25}, Counts{Window: 2.501}, true, ReasonMaxActions, true},
		{"probation scale above one", Policy{MaxActions: 10, ProbationScale: 2}, Counts{Window: 15}, true, "", false},
		{"factor not ready", facPol, Counts{Window: 100}, false, "", false},
		{"factor ready", facPol, Counts{Window: 5, Baseline: 2, BaselineReady: true}, false, ReasonBaseline, true},
		{"factor zero baseline", facPol, Counts{Window: 5, BaselineReady: true}, false, ReasonBaseline, true},
		{"factor below min", facPol, Counts{Window: 4, BaselineReady: true}, false, "", false},
		{"factor min zero", Policy{Factor: 3}, Counts{Window: 0.001, BaselineReady: true}, false, ReasonBaseline, true},
		{"factor zero window", Policy{Factor: 3}, Counts{Window: 0, BaselineReady: true}, false, "", false},
		{"factor equal", Policy{Factor: 1.5, MinActions: 1}, Counts{Window: 3, Baseline: 2, BaselineReady: true}, false, "", false},
		{"disabled", Policy{MaxActions: 1, Disabled: true}, Counts{Window: 2}, false, "", false},
		{"new rule over its budget", newPol, Counts{Window: 5.5, Learning: true}, false, ReasonNewRule, true},
		{"new rule at its budget", newPol, Counts{Window: 5, Learning: true}, false, "", false},
		{"learnt rule over the budget", newPol, Counts{Window: 5.5}, false, "", false},
		{"new rule on probation", newPol, Counts{Window: 2.6, Learning: true}, true, ReasonNewRule, true},
		{"max_actions before the budget", newPol, Counts{Window: 101, Learning: true}, false, ReasonMaxActions, true},
		{"no budget", Policy{MaxActions: 100}, Counts{Window: 50, Learning: true}, false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := tt.p.Exceeded(tt.c, tt.probation)
			if r != tt.want || ok != tt.ok {
				t.Errorf("Exceeded(%+v, %+v, %v) = %q, %v; want %q, %v", tt.p, tt.c, tt.probation, r, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestExpire(t *testing.T) {
	forced := Status{
		State: ForcedOpen, Auto: Open, Generation: 8, Since: at(0), TrippedAt: at(-time.Hour),
		Reason: "kill switch", Actor: "bob", Until: at(time.Hour),
	}
	shadow := Status{
		State: Shadow, Auto: Probation, Generation: 2, Since: at(0), Reason: "trial", Actor: "carol",
		Until: at(time.Minute), ProbationUntil: at(2 * time.Hour),
	}
	tests := []struct {
		name    string
		from    Status
		now     time.Time
		want    Status
		changed bool
	}{
		{"before until", forced, at(time.Hour - time.Millisecond), forced, false},
		{
			"at until falls back to auto", forced, at(time.Hour),
			Status{State: Open, Auto: Open, Generation: 9, Since: at(time.Hour), TrippedAt: at(-time.Hour), Reason: "override expired"},
			true,
		},
		{
			"shadow falls back to probation", shadow, at(3 * time.Hour),
			Status{
				State: Probation, Auto: Probation, Generation: 3, Since: at(3 * time.Hour), Reason: "override expired",
				ProbationUntil: at(2 * time.Hour),
			},
			true,
		},
		{
			"forced_closed falls back to closed",
			Status{State: ForcedClosed, Auto: Closed, Generation: 1, Since: at(0), Reason: "r", Actor: "a", Until: at(time.Second)},
			at(time.Second),
			Status{State: Closed, Auto: Closed, Generation: 2, Since: at(time.Second), Reason: "override expired"},
			true,
		},
		{
			"without until never",
			Status{State: ForcedClosed, Auto: Open, Generation: 1, Since: at(0), Actor: "a"},
			at(1000 * time.Hour),
			Status{State: ForcedClosed, Auto: Open, Generation: 1, Since: at(0), Actor: "a"},
			false,
		},
		{
			"automatic state with until",
			Status{State: Open, Auto: Open, Generation: 1, Until: at(0)},
			at(time.Hour),
			Status{State: Open, Auto: Open, Generation: 1, Until: at(0)},
			false,
		},
		{"initial", Initial(), at(0), Initial(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := Expire(tt.from, tt.now)
			if !sameStatus(got, tt.want) || changed != tt.changed {
				t.Errorf("Expire(%s, %s) = %s, %v; want %s, %v", fmtStatus(tt.from), tt.now.Sub(t0), fmtStatus(got), changed,
					fmtStatus(tt.want), tt.changed)
			}
			checkGeneration(t, "Expire", tt.from, got, changed)
		})
	}
}

func TestOverride(t *testing.T) {
	tests := []struct {
		name    string
		from    Status
		to      State
		until   time.Time
		want    Status
		wantErr bool
	}{
		{
			name: "forced_open without expiry", from: closed0, to: ForcedOpen,
			want: Status{State: ForcedOpen, Auto: Closed, Generation: 5, Since: at(0), Reason: "why", Actor: "op"},
		},
		{
			name: "forced_open with expiry", from: closed0, to: ForcedOpen, until: at(time.Hour),
			want: Status{State: ForcedOpen, Auto: Closed, Generation: 5, Since: at(0), Reason: "why", Actor: "op", Until: at(time.Hour)},
		},
		{
			name: "forced_closed over open keeps the trip", from: open0, to: ForcedClosed, until: at(time.Millisecond),
			want: Status{
				State: ForcedClosed, Auto: Open, Generation: 6, Since: at(0), TrippedAt: at(0), Reason: "why", Actor: "op",
				Until: at(time.Millisecond),
			},
		},
		{
			name: "shadow over probation", from: prob0, to: Shadow,
			want: Status{
				State: Shadow, Auto: Probation, Generation: 7, Since: at(0), TrippedAt: at(-time.Hour), Reason: "why",
				Actor: "op", ProbationUntil: at(30 * time.Minute),
			},
		},
		{
			name: "override replaces an override and its expiry",
			from: Status{State: ForcedOpen, Auto: Closed, Generation: 2, Since: at(-time.Hour), Reason: "x", Actor: "y", Until: at(time.Hour)},
			to:   Shadow,
			want: Status{State: Shadow, Auto: Closed, Generation: 3, Since: at(0), Reason: "why", Actor: "op"},
		},
		{
			name: "empty auto becomes closed", from: Status{State: Closed}, to: Shadow,
			want: Status{State: Shadow, Auto: Closed, Generation: 1, Since: at(0), Reason: "why", Actor: "op"},
		},
		{name: "rejects closed", from: open0, to: Closed, wantErr: true},
		{name: "rejects open", from: closed0, to: Open, wantErr: true},
		{name: "rejects probation", from: closed0, to: Probation, wantErr: true},
		{name: "rejects unknown", from: closed0, to: State("half_open"), wantErr: true},
		{name: "rejects expiry at now", from: closed0, to: ForcedOpen, until: at(0), wantErr: true},
		{name: "rejects past expiry", from: closed0, to: ForcedClosed, until: at(-time.Second), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Override(tt.from, tt.to, "op", "why", tt.until, at(0))
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidState) {
					t.Errorf("Override(%s, %q, until %v) error = %v; want ErrInvalidState", fmtStatus(tt.from), tt.to, tt.until, err)
				}
				if !sameStatus(got, tt.from) {
					t.Errorf("Override(%s, %q) failed but returned %s; want the status unchanged", fmtStatus(tt.from), tt.to, fmtStatus(got))
				}
				return
			}
			if err != nil || !sameStatus(got, tt.want) {
				t.Errorf("Override(%s, %q, until %v) = %s, %v; want %s, nil", fmtStatus(tt.from), tt.to, tt.until,
					fmtStatus(got), err, fmtStatus(tt.want))
			}
			checkGeneration(t, "Override", tt.from, got, true)
		})
	}
}

func TestReset(t *testing.T) {
	withProbation := Policy{MaxActions: 10, Probation: 30 * time.Minute}
	tests := []struct {
		name string
		p    Policy
		from Status
		want Status
	}{
		{
			name: "open to probation", p: withProbation, from: open0,
			want: Status{
				State: Probation, Auto: Probation, Generation: 6, Since: at(time.Hour), TrippedAt: at(0), Reason: "fixed",
				Actor: "dave", ProbationUntil: at(90 * time.Minute),
			},
		},
		{
			name: "open to closed without probation", p: maxPol, from: open0,
			want: Status{State: Closed, Auto: Closed, Generation: 6, Since: at(time.Hour), TrippedAt: at(0), Reason: "fixed", Actor: "dave"},
		},
		{
			name: "clears a manual state and its expiry", p: maxPol,
			from: Status{
				State: ForcedOpen, Auto: Open, Generation: 11, Since: at(0), TrippedAt: at(0), Reason: "kill", Actor: "bob",
				Until: at(2 * time.Hour),
			},
			want: Status{State: Closed, Auto: Closed, Generation: 12, Since: at(time.Hour), TrippedAt: at(0), Reason: "fixed", Actor: "dave"},
		},
		{
			name: "probation restarts", p: withProbation, from: prob0,
			want: Status{
				State: Probation, Auto: Probation, Generation: 7, Since: at(time.Hour), TrippedAt: at(-time.Hour),
				Reason: "fixed", Actor: "dave", ProbationUntil: at(90 * time.Minute),
			},
		},
		{
			name: "probation cleared without probation", p: maxPol, from: prob0,
			want: Status{
				State: Closed, Auto: Closed, Generation: 7, Since: at(time.Hour), TrippedAt: at(-time.Hour),
				Reason: "fixed", Actor: "dave",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Reset(tt.p, tt.from, "dave", "fixed", at(time.Hour))
			if !sameStatus(got, tt.want) {
				t.Errorf("Reset(%+v, %s) = %s; want %s", tt.p, fmtStatus(tt.from), fmtStatus(got), fmtStatus(tt.want))
			}
			checkGeneration(t, "Reset", tt.from, got, true)
		})
	}
}

// TestScenario walks one breaker through a whole incident.
func TestScenario(t *testing.T) {
	p := recPol
	s := Initial()
	var gens []uint64
	step := func(name string, next Status, changed bool, wantState, wantAuto State) {
		t.Helper()
		if !changed {
			t.Fatalf("%s: no transition from %s", name, fmtStatus(s))
		}
		checkGeneration(t, name, s, next, changed)
		if next.State != wantState || next.Auto != wantAuto {
			t.Fatalf("%s: %s; want %s/%s", name, fmtStatus(next), wantState, wantAuto)
		}
		s = next
		gens = append(gens, s.Generation)
	}
	n, ch := Evaluate(p, s, Counts{Window: 11}, at(0))
	step("trip", n, ch, Open, Open)
	if !s.Holds() {
		t.Fatalf("open breaker does not hold")
	}
	n, err := Override(s, ForcedClosed, "op", "let it through", at(time.Minute), at(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	step("force closed", n, true, ForcedClosed, Open)
	if s.Holds() {
		t.Fatalf("forced_closed breaker holds")
	}
	if n, ch := Expire(s, at(59*time.Second)); ch {
		t.Fatalf("expired early: %s", fmtStatus(n))
	}
	n, ch = Expire(s, at(time.Minute))
	step("expire", n, ch, Open, Open)
	n, ch = Evaluate(p, s, Counts{}, at(10*time.Minute))
	step("auto close", n, ch, Probation, Probation)
	n, ch = Evaluate(p, s, Counts{Window: 5.5}, at(11*time.Minute))
	step("trip in probation", n, ch, Open, Open)
	n = Reset(p, s, "dave", "fixed", at(12*time.Minute))
	step("reset", n, true, Probation, Probation)
	n, ch = Evaluate(p, s, Counts{Window: 5}, at(42*time.Minute))
	step("probation ends", n, ch, Closed, Closed)
	for i, g := range gens {
		if g != uint64(i+1) {
			t.Fatalf("generations %v; want 1, 2, 3, ...", gens)
		}
	}
}

// TestGenerationIncreases applies random operations and checks that every
// transition advances the generation by one and nothing else changes a status.
func TestGenerationIncreases(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pols := []Policy{
		maxPol, facPol, recPol,
		{MaxActions: 3, AutoCloseAfter: time.Minute, ProbationScale: 0.5},
		{MaxActions: 3, Disabled: true, Probation: time.Minute},
	}
	manual := []State{ForcedOpen, ForcedClosed, Shadow}
	for run := range 50 {
		p := pols[run%len(pols)]
		s := Initial()
		now := t0
		transitions := 0
		for range 500 {
			now = now.Add(time.Duration(rng.IntN(120)) * time.Second)
			prev := s
			var changed bool
			var op string
			switch k := rng.IntN(20); {
			case k < 14:
				c := Counts{Window: float64(rng.IntN(15000)) / Milli, Baseline: float64(rng.IntN(4000)) / Milli, BaselineReady: rng.IntN(3) > 0}
				op = fmt.Sprintf("Evaluate(%+v)", c)
				s, changed = Evaluate(p, s, c, now)
			case k < 16:
				op = "Expire"
				s, changed = Expire(s, now)
			case k < 19:
				var until time.Time
				if rng.IntN(2) == 0 {
					until = now.Add(time.Duration(1+rng.IntN(300)) * time.Second)
				}
				to := manual[rng.IntN(len(manual))]
				op = fmt.Sprintf("Override(%s)", to)
				var err error
				s, err = Override(s, to, "op", "r", until, now)
				if err != nil {
					t.Fatalf("%s: %v", op, err)
				}
				changed = true
			default:
				op = "Reset"
				s, changed = Reset(p, s, "op", "r", now), true
			}
			checkGeneration(t, op, prev, s, changed)
			if changed {
				transitions++
			}
			if !s.State.Valid() || !s.Auto.Valid() || s.Auto.Manual() {
				t.Fatalf("%s: invalid status %s", op, fmtStatus(s))
			}
			if !s.State.Manual() && s.State != s.Auto {
				t.Fatalf("%s: automatic state %s differs from auto %s", op, s.State, s.Auto)
			}
			if t.Failed() {
				t.FailNow()
			}
		}
		if s.Generation != uint64(transitions) {
			t.Fatalf("run %d: generation %d after %d transitions", run, s.Generation, transitions)
		}
	}
}

func TestStates(t *testing.T) {
	for _, s := range States {
		if !s.Valid() {
			t.Errorf("%q.Valid() = false", s)
		}
		wantManual := s == ForcedOpen || s == ForcedClosed || s == Shadow
		if s.Manual() != wantManual {
			t.Errorf("%q.Manual() = %v; want %v", s, s.Manual(), wantManual)
		}
		wantHolds := s == Open || s == ForcedOpen
		if s.Holds() != wantHolds {
			t.Errorf("%q.Holds() = %v; want %v", s, s.Holds(), wantHolds)
		}
	}
	for _, s := range []State{"", "half_open", "Open"} {
		if s.Valid() || s.Manual() || s.Holds() {
			t.Errorf("%q: Valid, Manual, Holds = %v, %v, %v; want all false", s, s.Valid(), s.Manual(), s.Holds())
		}
	}
	if got := Incident(ActionScope("spam", "ban"), 7); got != "rule:spam|action:ban@7" {
		t.Errorf("Incident = %q", got)
	}
}

func TestScopes(t *testing.T) {
	tests := []struct {
		name  string
		scope Scope
		str   string
		rule  string
	}{
		{"global", Global, "global", ""},
		{"rule", RuleScope("spam"), "rule:spam", "spam"},
		{"rule with slashes", RuleScope("spam/link-farm/v3"), "rule:spam/link-farm/v3", "spam/link-farm/v3"},
		{"rule with colons", RuleScope("a:b"), "rule:a:b", "a:b"},
		{"rule named global", RuleScope("global"), "rule:global", "global"},
		{"action", ActionScope("spam", "ban_account"), "rule:spam|action:ban_account", "spam"},
		{"action with spaces", ActionScope("a b:c", "remove pin"), "rule:a b:c|action:remove pin", "a b:c"},
		{"action with unicode", ActionScope("règle", "supprimer"), "rule:règle|action:supprimer", "règle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.scope) != tt.str {
				t.Errorf("scope = %q; want %q", tt.scope, tt.str)
			}
			if got := tt.scope.Rule(); got != tt.rule {
				t.Errorf("%q.Rule() = %q; want %q", tt.scope, got, tt.rule)
			}
			got, err := ParseScope(tt.str)
			if err != nil || got != tt.scope {
				t.Errorf("ParseScope(%q) = %q, %v; want %q, nil", tt.str, got, err, tt.scope)
			}
		})
	}
	for _, bad := range []string{
		"", "Global", "global ", "rule:", "rule", "rules:x", "action:x", "rule:|action:ban",
		"rule:spam|action:", "x:rule:spam",
	} {
		if got, err := ParseScope(bad); !errors.Is(err, ErrUnknownScope) {
			t.Errorf("ParseScope(%q) = %q, %v; want ErrUnknownScope", bad, got, err)
		}
	}
	if got := Scope("nonsense").Rule(); got != "" {
		t.Errorf("Scope(nonsense).Rule() = %q; want empty", got)
	}
}

// TestScopeRoundTrip checks, for rule ids and action names with the
// separator and escape characters in them (event validation accepts both),
// that every scope parses, gives its rule back, and that no two different
// breakers share a scope.
func TestScopeRoundTrip(t *testing.T) {
	names := []string{
		"spam", "a|b", "spam|action:ban", "|action:", "ban", "x|action:y", "%", "%7C", "%25", "a%7Cb",
		"|", "action:", "rule:x", "a:b", "ü|ö", " ",
	}
	seen := map[Scope]string{Global: "global"}
	add := func(s Scope, what string) {
		t.Helper()
		if prev, ok := seen[s]; ok {
			t.Errorf("%s and %s are both %q", prev, what, s)
		}
		seen[s] = what
	}
	for _, r := range names {
		rs := RuleScope(r)
		add(rs, fmt.Sprintf("RuleScope(%q)", r))
		if got := rs.Rule(); got != r {
			t.Errorf("RuleScope(%q).Rule() = %q; want %q", r, got, r)
		}
		if got, err := ParseScope(string(rs)); err != nil || got != rs {
			t.Errorf("ParseScope(RuleScope(%q) = %q) = %q, %v", r, rs, got, err)
		}
		for _, a := range names {
			as := ActionScope(r, a)
			add(as, fmt.Sprintf("ActionScope(%q, %q)", r, a))
			if got := as.Rule(); got != r {
				t.Errorf("ActionScope(%q, %q).Rule() = %q; want %q", r, a, got, r)
			}
			if got, err := ParseScope(string(as)); err != nil || got != as {
				t.Errorf("ParseScope(ActionScope(%q, %q) = %q) = %q, %v", r, a, as, got, err)
			}
		}
	}
}

func TestScopeAction(t *testing.T) {
	for _, c := range []struct {
		s            Scope
		rule, action string
	}{
		{Global, "", ""},
		{RuleScope("r1"), "r1", ""},
		{ActionScope("r1", "ban_account"), "r1", "ban_account"},
		{ActionScope("a|action:b", "c|d%"), "a|action:b", "c|d%"},
	} {
		if r, a := c.s.Rule(), c.s.Action(); r != c.rule || a != c.action {
			t.Errorf("%q: rule %q, action %q; want %q, %q", c.s, r, a, c.rule, c.action)
		}
	}
}

// TestSegmentScopes checks that segment scopes name their rule, dimension
// and value, parse, and never share a name with another breaker or with
// an incident id of another one, whatever the rule ids and values hold.
func TestSegmentScopes(t *testing.T) {
	for _, c := range []struct {
		s                Scope
		str              string
		rule, dim, value string
	}{
		{ModelScope("spam", "2025.06.0"), "rule:spam|model:2025.06.0", "spam", DimModel, "2025.06.0"},
		{SegmentScope("spam", DimRegion, "eu"), "rule:spam|region:eu", "spam", DimRegion, "eu"},
		{SegmentScope("a|b", DimTargetType, "x|y@z%"), "rule:a%7Cb|target.type:x%7Cy%40z%25", "a|b", DimTargetType, "x|y@z%"},
		{OverflowScope("r", DimModelName), "rule:r|model.name:%other", "r", DimModelName, ""},
		{SegmentScope("r", DimRegion, "%other"), "rule:r|region:%25other", "r", DimRegion, "%other"},
	} {
		if string(c.s) != c.str {
			t.Errorf("scope %q; want %q", c.s, c.str)
		}
		if c.s.Rule() != c.rule || c.s.Action() != "" {
			t.Errorf("%q: rule %q, action %q; want %q, none", c.s, c.s.Rule(), c.s.Action(), c.rule)
		}
		if d, v := c.s.Segment(); d != c.dim || v != c.value {
			t.Errorf("%q.Segment() = %q, %q; want %q, %q", c.s, d, v, c.dim, c.value)
		}
		if got, err := ParseScope(c.str); err != nil || got != c.s {
			t.Errorf("ParseScope(%q) = %q, %v", c.str, got, err)
		}
	}
	for _, s := range []Scope{Global, RuleScope("r"), ActionScope("r", "model:x")} {
		if d, v := s.Segment(); d != "" || v != "" {
			t.Errorf("%q.Segment() = %q, %q; want none", s, d, v)
		}
	}
	for _, bad := range []string{"rule:r|colour:red", "rule:r|region:", "rule:r|region", "rule:r|region:a|b", "rule:r|region:a@1", "rule:|model:v"} {
		if got, err := ParseScope(bad); !errors.Is(err, ErrUnknownScope) {
			t.Errorf("ParseScope(%q) = %q, %v; want ErrUnknownScope", bad, got, err)
		}
	}
	// No collisions, of scopes or of incident ids (scope@generation).
	names := []string{"spam", "a|b", "|", "%", "%7C", "%40", "@", "a@1", "%other", "other", "model:v", "x|model:y", "1"}
	seen := map[Scope]string{}
	incidents := map[string]string{}
	add := func(s Scope, what string) {
		t.Helper()
		if prev, ok := seen[s]; ok {
			t.Errorf("%s and %s are both %q", prev, what, s)
		}
		seen[s] = what
		id := Incident(s, 1)
		if prev, ok := incidents[id]; ok {
			t.Errorf("%s and %s share the incident %q", prev, what, id)
		}
		incidents[id] = what
		if _, err := ParseScope(string(s)); err != nil {
			t.Errorf("%s = %q does not parse: %v", what, s, err)
		}
	}
	for _, r := range names {
		add(RuleScope(r), fmt.Sprintf("RuleScope(%q)", r))
		for _, v := range names {
			add(ActionScope(r, v), fmt.Sprintf("ActionScope(%q, %q)", r, v))
			for _, d := range Dimensions {
				s := SegmentScope(r, d, v)
				add(s, fmt.Sprintf("SegmentScope(%q, %q, %q)", r, d, v))
				if gd, gv := s.Segment(); s.Rule() != r || gd != d || gv != v {
					t.Errorf("SegmentScope(%q, %q, %q) reads back as %q, %q, %q", r, d, v, s.Rule(), gd, gv)
				}
			}
		}
		for _, d := range Dimensions {
			add(OverflowScope(r, d), fmt.Sprintf("OverflowScope(%q, %q)", r, d))
		}
	}
}

// TestCovers checks which actions each kind of scope covers: the
// reversal candidates and the look-back of an incident are found with it.
func TestCovers(t *testing.T) {
	a := Fields{Rule: "r|x", Action: "ban", ModelVersion: "v@2", ModelName: "m", Region: "eu", TargetType: "account"}
	noModel := Fields{Rule: "r|x", Action: "ban", Region: "eu"}
	other := Fields{Rule: "s", Action: "ban", ModelVersion: "v@2", Region: "eu"}
	cases := []struct {
		name  string
		scope Scope
		f     Fields
		want  bool
	}{
		{"global", Global, a, true},
		{"rule", RuleScope("r|x"), a, true},
		{"rule of another", RuleScope("r|x"), other, false},
		{"action", ActionScope("r|x", "ban"), a, true},
		{"another action", ActionScope("r|x", "warn"), a, false},
		{"model version", ModelScope("r|x", "v@2"), a, true},
		{"another model version", ModelScope("r|x", "v3"), a, false},
		{"model version of another rule", ModelScope("r|x", "v@2"), other, false},
		{"model version, none", ModelScope("r|x", "v@2"), noModel, false},
		{"region", SegmentScope("r|x", DimRegion, "eu"), a, true},
		{"another region", SegmentScope("r|x", DimRegion, "us"), a, false},
		{"model name", SegmentScope("r|x", DimModelName, "m"), a, true},
		{"target type", SegmentScope("r|x", DimTargetType, "account"), a, true},
		{"target type, another", SegmentScope("r|x", DimTargetType, "post"), a, false},
		{"overflow of model versions", OverflowScope("r|x", DimModel), a, true},
		{"overflow, no value", OverflowScope("r|x", DimModel), noModel, false},
		{"overflow of another rule", OverflowScope("s", DimModel), a, false},
	}
	for _, c := range cases {
		if got := c.scope.Covers(c.f); got != c.want {
			t.Errorf("%s: %s.Covers(%+v) = %v; want %v", c.name, c.scope, c.f, got, c.want)
		}
	}
}

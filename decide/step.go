package decide

import (
	"time"

	"github.com/breakwater/breakwater/breaker"
)

// State is what a store keeps of one scope between decision calls: the
// breaker's status and its counts.
type State struct {
	// Status is the breaker's status.
	Status breaker.Status
	// Window is the scope's counts; nil until something is counted. Step
	// replaces it when the scope's policy changes its bucket layout.
	Window *breaker.Window
	// Evidence is the scope's evidence detector; nil until its policy runs
	// one. Step replaces it when the policy changes the detector's bins.
	Evidence *breaker.Evidence
}

// Step counts batch b into the states of its scopes (states[i] belongs to
// b.Scopes[i], and none is nil) and decides their breakers at the store's
// clock now. It is the decision of one store call: the Memory store calls
// it, store/decide.lua mirrors it line by line, and the differential test
// compares the two on the same inputs.
//
// Scopes are decided in batch order, narrower ones first. A bucket a wider
// scope counts via narrower scopes that hold after the batch is left out
// (Batch.Counted), unless the wider scope counts held actions
// (breaker.CountsHeld). A wider scope that trips holds only its
// contributors when they explain the trip (breaker.Contributors).
func Step(b Batch, now time.Time, states []*State) Result {
	res := Result{Now: now, Scopes: make([]ScopeResult, len(b.Scopes))}
	// When counting began: the first action of the reference scope, before
	// this batch.
	var ref int64
	var hasRef bool
	if b.Reference > 0 {
		if w := states[b.Reference-1].Window; w != nil {
			ref, hasRef = w.First()
		}
	}
	for i, sc := range b.Scopes {
		e := states[i]
		g := sc.Policy.Grid()
		p := sc.Policy
		dormant := false
		if p.NewOnly && len(sc.Buckets) > 0 {
			var src *State
			if sc.Seed > 0 {
				src = states[sc.Seed-1]
			}
			dormant = newOnly(e, src, sc, g)
		}
		if e.Window == nil || e.Window.Grid() != g {
			e.Window = breaker.NewWindow(g)
		}
		ev := p.EvidenceOn() && !dormant
		if ev && (e.Evidence == nil || e.Evidence.Bin != p.EvidenceBinMillis() || e.Evidence.Season != p.SlotMillis()*breaker.SeasonSlots) {
			e.Evidence = breaker.NewEvidence(p)
		}
		start := e.Status
		st, _ := breaker.Expire(e.Status, now)
		var last, trip breaker.Counts
		tripped, tripProbation := false, false
		all := breaker.CountsHeld(st)
		for _, bk := range sc.Buckets {
			if dormant {
				break
			}
			flows := b.Counted(bk, res)
			counted := all || flows
			// The detector of a scope that holds its contributors
			// (global) counts every action, those its narrower scopes
			// hold included: they cannot mask a broad rise. Others count
			// what their window counts.
			detect := ev && (counted || p.HoldContributors)
			if !counted && !detect {
				continue
			}
			if detect {
				// The residual evidence counts what no narrower breaker
				// holds.
				var residual int64
				if flows {
					residual = bk.Count
				}
				e.Evidence.Count(p, bk.At, bk.Count, residual, st.Auto == breaker.Open || st.Holds())
			}
			at := bk.At
			if counted {
				at = e.Window.Add(bk.At, bk.Weight)
				c := e.Window.Counts(at)
				first, _ := e.Window.First()
				c.Learning = p.InLearning(first, at, ref, hasRef)
				if p.NewOnly {
					born, ok := e.Window.Born()
					c.Learning = ok && at-born < p.Learning.Milliseconds()
				}
				last = c
			}
			if ev {
				last.Evidence, last.Expected, last.Observed, last.EvidenceReady = e.Evidence.Check(p)
				if p.HoldContributors && last.EvidenceReady {
					// The evidence of every action trips a scope that holds
					// its contributors only when what no narrower breaker
					// holds shows a rise too (half the evidence): evidence
					// that narrower breakers already contain trips nothing.
					last.Evidence = min(last.Evidence, e.Evidence.Residual(p)+p.EvidenceThreshold/2)
				}
			}
			prev := st
			st, _ = breaker.Evaluate(p, st, last, now)
			if st.Auto == breaker.Open && prev.Auto != breaker.Open {
				trip, tripped, tripProbation = last, true, prev.Auto == breaker.Probation
				st.Onset = onset(p, breaker.Reason(st.Reason), e.Evidence, at)
				st.Trip = breaker.Trip{Counts: last, Probation: tripProbation}
			}
		}
		if tripped && st.Auto == breaker.Open {
			st.HeldScopes = breaker.Contributors(sc.Policy, trip, breaker.Reason(st.Reason), tripProbation, all, children(sc, res.Scopes))
		}
		e.Status = st
		c := last
		if tripped {
			c = trip
		}
		res.Scopes[i] = ScopeResult{Scope: sc.Scope, Status: st, Changed: st.Generation != start.Generation, Counts: c}
	}
	return res
}

// newOnly keeps the state of a scope that trips only while new
// (Policy.NewOnly: a model version), before its batch sc, and reports
// whether it is dormant: it counts nothing and cannot trip. A scope seen
// for the first time starts from a copy of src's counts and detector (its
// rule's) when src has counts, its own first action kept as the window's
// born; otherwise it is dormant (it was there when its rule began). A
// seeded scope turns dormant, its counts dropped, once Learning has passed
// since it was born.
func newOnly(e, src *State, sc ScopeCounts, g breaker.Grid) bool {
	lo, hi := sc.Buckets[0].At, sc.Buckets[0].At
	for _, bk := range sc.Buckets {
		lo, hi = min(lo, bk.At), max(hi, bk.At)
	}
	born := int64(0)
	if e.Window != nil {
		if e.Window.Dormant() {
			born = breaker.Dormant
		} else if b, ok := e.Window.Born(); ok {
			born = b
		}
	}
	if born == 0 {
		e.Window, e.Evidence = breaker.NewDormant(g), nil
		born = breaker.Dormant
		if src != nil && src.Window != nil {
			if _, ok := src.Window.First(); ok {
				e.Window, born = src.Window.Seed(lo), lo
				if src.Evidence != nil && src.Evidence.Seen {
					ev := *src.Evidence
					e.Evidence = &ev
				}
			}
		}
	}
	if born > 0 && hi-born >= sc.Policy.Learning.Milliseconds() {
		e.Window, e.Evidence = breaker.NewDormant(g), nil
		born = breaker.Dormant
	}
	return born == breaker.Dormant
}

// onset estimates when what tripped a breaker began, in event time: when
// the detector's S last left 0 (the open bin's start if it left 0 in it)
// for an evidence trip, and the start of the window ending at atMillis for
// the others.
func onset(p breaker.Policy, r breaker.Reason, ev *breaker.Evidence, atMillis int64) time.Time {
	var ms int64
	if r == breaker.ReasonEvidence {
		ms = ev.Onset
		if ms == 0 {
			ms = ev.Cur * ev.Bin
		}
	} else {
		g := p.Grid()
		ms = g.Bucket(atMillis) - g.Window + g.Fine
	}
	return time.UnixMilli(ms).UTC()
}

// Holding returns the record of a decided batch's holding scopes: each
// holding scope's generation, and the narrower scopes a holding scope
// holds alone, if any (nil when none does).
func Holding(res Result) (holding map[breaker.Scope]uint64, only map[breaker.Scope][]breaker.Scope) {
	holding = map[breaker.Scope]uint64{}
	for _, r := range res.Scopes {
		st := r.Status
		if !st.Holds() {
			continue
		}
		holding[r.Scope] = st.Generation
		if st.State != breaker.ForcedOpen && len(st.HeldScopes) > 0 {
			if only == nil {
				only = map[breaker.Scope][]breaker.Scope{}
			}
			only[r.Scope] = st.HeldScopes
		}
	}
	return holding, only
}

// children returns the immediate narrower scopes of sc's buckets (their
// first Via), in the order they first appear, as decided in this batch,
// then the deeper ones (the other Via) that hold, marked Deeper.
func children(sc ScopeCounts, decided []ScopeResult) []breaker.Child {
	var out []breaker.Child
	seen := map[int32]bool{}
	for _, bk := range sc.Buckets {
		v := bk.Via[0]
		if v == 0 || seen[v] {
			continue
		}
		seen[v] = true
		r := decided[v-1]
		out = append(out, breaker.Child{Scope: r.Scope, Counts: r.Counts, Holds: r.Status.Holds()})
	}
	for _, bk := range sc.Buckets {
		for _, v := range bk.Via[1:] {
			if v == 0 {
				break
			}
			if r := decided[v-1]; !seen[v] && r.Status.Holds() {
				seen[v] = true
				out = append(out, breaker.Child{Scope: r.Scope, Counts: r.Counts, Holds: true, Deeper: true})
			}
		}
	}
	return out
}

package eval

import (
	"container/heap"
	"math/rand/v2"
	"time"

	"github.com/breakwater/breakwater/appeals"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
)

// The appeals of the suite: a share of the gated actions is appealed, and
// an appeal is decided some time after the action; it is overturned when
// the action was wrong. An incident's actions are wrong; an ordinary
// action is wrong with probability OrdinaryWrong (a rule's normal
// precision is 1 - OrdinaryWrong).
const (
	// AppealShare is the share of the gated actions appealed.
	AppealShare = 0.1
	// OrdinaryWrong is the share of ordinary actions that are wrong.
	OrdinaryWrong = 0.05
	// AppealMinDelay and AppealMaxDelay bound the time from an action to
	// the decision of its appeal (uniform between them).
	AppealMinDelay = 30 * time.Minute
	AppealMaxDelay = 4 * time.Hour
)

// appealGen turns the gated actions of a run into appeal outcomes, in the
// order of their decision. It is the run's replay.AppealSource.
type appealGen struct {
	rng     *rand.Rand
	pending outcomes
}

func newAppealGen(seed int64) *appealGen {
	return &appealGen{rng: rand.New(rand.NewPCG(uint64(seed), 0xa99ea15))}
}

// gated draws the appeal of one gated action: wrong is true for an action
// of an incident.
func (g *appealGen) gated(id string, at time.Time, incident bool) {
	appealed := g.rng.Float64() < AppealShare
	wrong := incident || g.rng.Float64() < OrdinaryWrong
	delay := AppealMinDelay + time.Duration(g.rng.Int64N(int64(AppealMaxDelay-AppealMinDelay)))
	if !appealed {
		return
	}
	out := appeals.Upheld
	if wrong {
		out = appeals.Overturned
	}
	heap.Push(&g.pending, appeals.Record{ActionID: id, Outcome: out, DecidedAt: at.Add(delay)})
}

// Due returns the outcomes decided up to until (all for a zero until).
func (g *appealGen) Due(until time.Time) []appeals.Record {
	var out []appeals.Record
	for g.pending.Len() > 0 && (until.IsZero() || !g.pending[0].DecidedAt.After(until)) {
		out = append(out, heap.Pop(&g.pending).(appeals.Record))
	}
	return out
}

type outcomes []appeals.Record

func (o outcomes) Len() int           { return len(o) }
func (o outcomes) Less(i, j int) bool { return o[i].DecidedAt.Before(o[j].DecidedAt) }
func (o outcomes) Swap(i, j int)      { o[i], o[j] = o[j], o[i] }
func (o *outcomes) Push(x any)        { *o = append(*o, x.(appeals.Record)) }
func (o *outcomes) Pop() any {
	old := *o
	x := old[len(old)-1]
	*o = old[:len(old)-1]
	return x
}

// forwardLog keeps the gated actions of a run from a time on, for the
// reversal each trip of an incident would have made.
type forwardLog struct {
	from time.Time
	// kinds interns the fields a scope's actions are found by (rule,
	// action type, model version, region, ...), one entry per distinct
	// combination.
	kinds  map[breaker.Fields]int32
	fields []breaker.Fields
	recs   []forwarded
}

type forwarded struct {
	at       int64 // Unix milliseconds
	kind     int32 // index in fields
	incident bool
}

func newForwardLog(from time.Time) *forwardLog {
	return &forwardLog{from: from, kinds: map[breaker.Fields]int32{}}
}

func (f *forwardLog) add(it *decide.Item, incident bool) {
	if it.Act.OccurredAt.Before(f.from) {
		return
	}
	a := &it.Act
	k := breaker.Fields{Rule: a.RuleID, Action: a.Action, ModelVersion: a.ModelVersion, ModelName: a.ModelName, Region: a.Region, TargetType: a.TargetType}
	i, ok := f.kinds[k]
	if !ok {
		i = int32(len(f.fields))
		f.kinds[k] = i
		f.fields = append(f.fields, k)
	}
	f.recs = append(f.recs, forwarded{at: a.OccurredAt.UnixMilli(), kind: i, incident: incident})
}

// Reversal is what reversing the candidates of a run's trips during its
// incidents would have done: for each such trip, the actions of the
// tripped scope gated from the trip's estimated onset to the trip (what
// package reversal offers), each counted once.
type Reversal struct {
	// Incident counts the leaked incident actions among them (undone),
	// Ordinary the ordinary actions (reversed too).
	Incident int64
	Ordinary int64
}

// reversal counts the candidates of trips: the actions of each trip's
// scope (breaker.Scope.Covers, as package reversal finds them, a segment's
// included) from its onset to the trip.
func (f *forwardLog) reversal(trips []Trip) Reversal {
	var out Reversal
	done := make([]bool, len(f.recs))
	covers := make([]bool, len(f.fields))
	for _, tr := range trips {
		if tr.Onset.IsZero() {
			continue
		}
		s := breaker.Scope(tr.Scope)
		for i, k := range f.fields {
			covers[i] = s.Covers(k)
		}
		from, to := tr.Onset.UnixMilli(), tr.At.UnixMilli()
		for i, r := range f.recs {
			if done[i] || r.at < from || r.at > to || !covers[r.kind] {
				continue
			}
			done[i] = true
			if r.incident {
				out.Incident++
			} else {
				out.Ordinary++
			}
		}
	}
	return out
}

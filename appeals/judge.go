package appeals

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/breakwater/breakwater/config"
)

// Policy is when the outcomes of a rule or model version trip its breaker.
type Policy struct {
	// Floor is the least precision (the share of outcomes upheld) a rule
	// is expected to keep.
	Floor float64
	// Confidence is how sure the estimate must be that the precision is
	// below Floor: P(precision < Floor) >= Confidence trips.
	Confidence float64
	// MinOutcomes is the fewest outcomes judged.
	MinOutcomes int
	// Window is how many of the latest outcomes of a rule (or a model
	// version of a rule) are judged.
	Window int
}

// DefaultPolicy returns the built-in policy: a floor of 0.8, 95%
// confidence, at least 20 outcomes among the latest 50.
func DefaultPolicy() Policy {
	return Policy{Floor: 0.8, Confidence: 0.95, MinOutcomes: 20, Window: 50}
}

// Validate checks the policy.
func (p Policy) Validate() error {
	switch {
	case !(p.Floor > 0 && p.Floor < 1):
		return fmt.Errorf("floor must be between 0 and 1, got %v", p.Floor)
	case !(p.Confidence >= 0.5 && p.Confidence < 1):
		return fmt.Errorf("confidence must be at least 0.5 and below 1, got %v", p.Confidence)
	case p.MinOutcomes < 1:
		return fmt.Errorf("min_outcomes must be at least 1, got %d", p.MinOutcomes)
	case p.Window < p.MinOutcomes || p.Window > MaxWindow:
		return fmt.Errorf("window must be between min_outcomes (%d) and %d, got %d", p.MinOutcomes, MaxWindow, p.Window)
	}
	return nil
}

// MaxWindow bounds Policy.Window.
const MaxWindow = 1000

// Key names what an estimate is of: a rule, or one model version of a rule.
type Key struct {
	Rule  string
	Model string
}

// String is the key as the store and the explanations name it.
func (k Key) String() string {
	if k.Model == "" {
		return k.Rule
	}
	return k.Rule + " (model " + k.Model + ")"
}

// Keys returns the keys an outcome of an action of rule and model counts
// towards: the rule, and the rule's model version when the action had one.
func Keys(rule, model string) []Key {
	if model == "" {
		return []Key{{Rule: rule}}
	}
	return []Key{{Rule: rule}, {Rule: rule, Model: model}}
}

// Sample is one outcome as the judgement sees it: the event time of the
// action appealed, its model version ("" when it had none, or for an
// outcome recorded before versions were kept) and whether it was
// overturned.
type Sample struct {
	At         time.Time
	Model      string
	Overturned bool
}

// Verdict is the judgement of the latest outcomes of one key.
type Verdict struct {
	Key Key `json:"key"`
	// Outcomes counts the outcomes judged, Overturned those overturned.
	Outcomes   int `json:"outcomes"`
	Overturned int `json:"overturned"`
	// Below is P(precision < floor) under a Beta(1 + upheld, 1 +
	// overturned) posterior (a uniform prior).
	Below float64 `json:"below"`
	// Trip is true when Outcomes >= MinOutcomes and Below >= Confidence.
	Trip bool `json:"trip"`
	// Onset is the estimated start of the fall, in the event time of the
	// actions: the action of the first outcome after the most likely change
	// point of the outcomes ordered by their actions' times.
	Onset time.Time `json:"onset,omitzero"`
}

// Share returns the share of the outcomes overturned.
func (v Verdict) Share() float64 {
	if v.Outcomes == 0 {
		return 0
	}
	return float64(v.Overturned) / float64(v.Outcomes)
}

// Judge judges samples, the latest outcomes of key (at most p.Window of
// them; the caller keeps the window), under p.
func Judge(p Policy, key Key, samples []Sample) Verdict {
	v := Verdict{Key: key, Outcomes: len(samples)}
	for _, s := range samples {
		if s.Overturned {
			v.Overturned++
		}
	}
	v.Below = ProbBelow(p.Floor, float64(v.Outcomes-v.Overturned), float64(v.Overturned))
	v.Trip = v.Outcomes >= p.MinOutcomes && v.Below >= p.Confidence
	if v.Trip {
		v.Onset = onset(samples)
	}
	return v
}

// onset returns the event time at which a two-segment Bernoulli model of
// samples ordered by time fits best (the maximum likelihood change point,
// the later segment overturned more often), or the first sample's time.
func onset(samples []Sample) time.Time {
	s := slices.Clone(samples)
	slices.SortStableFunc(s, func(a, b Sample) int { return a.At.Compare(b.At) })
	n := len(s)
	if n == 0 {
		return time.Time{}
	}
	total := 0
	for _, x := range s {
		if x.Overturned {
			total++
		}
	}
	ll := func(k, m int) float64 { // log-likelihood of k of m at the MLE
		if m == 0 || k == 0 || k == m {
			return 0
		}
		q := float64(k) / float64(m)
		return float64(k)*math.Log(q) + float64(m-k)*math.Log(1-q)
	}
	best, at := ll(total, n), 0
	before := 0
	for i := 1; i < n; i++ {
		if s[i-1].Overturned {
			before++
		}
		after := total - before
		// Only a rise of the overturned share is a fall of precision.
		if float64(after)/float64(n-i) <= float64(before)/float64(i) {
			continue
		}
		if l := ll(before, i) + ll(after, n-i); l > best+1e-9 {
			best, at = l, i
		}
	}
	return s[at].At
}

// ProbBelow returns P(X < floor) for X ~ Beta(1 + upheld, 1 + overturned):
// how likely a precision below floor is after upheld and overturned
// outcomes, from a uniform prior.
func ProbBelow(floor, upheld, overturned float64) float64 {
	return regIncBeta(1+upheld, 1+overturned, floor)
}

// regIncBeta is the regularised incomplete beta function I_x(a, b), by
// its continued fraction (Lentz's method), as in Numerical Recipes.
func regIncBeta(a, b, x float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	la, _ := math.Lgamma(a + b)
	lb, _ := math.Lgamma(a)
	lc, _ := math.Lgamma(b)
	front := math.Exp(la - lb - lc + a*math.Log(x) + b*math.Log1p(-x))
	if x < (a+1)/(a+b+2) {
		return front * betaCF(a, b, x) / a
	}
	return 1 - front*betaCF(b, a, 1-x)/b
}

func betaCF(a, b, x float64) float64 {
	const (
		eps  = 1e-14
		tiny = 1e-300
	)
	qab, qap, qam := a+b, a+1, a-1
	c, d := 1.0, 1-qab*x/qap
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1; m <= 500; m++ {
		fm := float64(m)
		m2 := 2 * fm
		aa := fm * (b - fm) * x / ((qam + m2) * (a + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		aa = -(a + fm) * (qab + fm) * x / ((a + m2) * (qap + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < eps {
			break
		}
	}
	return h
}

// Join is what Breakwater knows of a forwarded action: its rule, its
// model version ("" when it had none) and its event time.
type Join struct {
	Rule  string
	Model string
	At    time.Time
}

// ErrUnknown is returned for an outcome of an action Breakwater did not
// forward, or forwarded before the join's horizon.
var ErrUnknown = errors.New("unknown action_id")

// ErrDuplicate is returned for a second outcome of the same action.
var ErrDuplicate = errors.New("duplicate outcome")

// Tracker is the in-memory judgement of replays and tests: the join of
// forwarded actions and the latest outcomes of every key. The live daemon
// keeps the same in Redis (Store). Not safe for concurrent use.
type Tracker struct {
	policy  Policy
	joins   map[string]Join
	order   []string // action ids in the order joined, for the bound
	head    int
	maxJoin int
	decided map[string]bool
	windows map[Key][]Sample
}

// NewTracker returns a tracker judging under p that keeps at most maxJoin
// forwarded actions joinable (the oldest fall out first).
func NewTracker(p Policy, maxJoin int) *Tracker {
	return &Tracker{policy: p, joins: map[string]Join{}, maxJoin: maxJoin, decided: map[string]bool{}, windows: map[Key][]Sample{}}
}

// Forwarded records that the action id was forwarded to enforcement.
func (t *Tracker) Forwarded(id string, j Join) {
	if _, ok := t.joins[id]; ok {
		return
	}
	t.joins[id] = j
	t.order = append(t.order, id)
	for len(t.order)-t.head > t.maxJoin {
		old := t.order[t.head]
		delete(t.joins, old)
		delete(t.decided, old)
		t.head++
	}
	if t.head > 4096 && t.head*2 > len(t.order) {
		t.order = append(t.order[:0], t.order[t.head:]...)
		t.head = 0
	}
}

// Lookup returns the join of a forwarded action.
func (t *Tracker) Lookup(id string) (Join, bool) {
	j, ok := t.joins[id]
	return j, ok
}

// Record adds an outcome and returns the verdicts of the keys it counts
// towards. since, when not zero, leaves out the outcomes of actions at or
// before it from the rule's judgement (the rule's breaker tripped then:
// what came before is the business of that trip).
func (t *Tracker) Record(r Record, since func(rule string) time.Time) (Join, []Verdict, error) {
	j, ok := t.joins[r.ActionID]
	if !ok {
		return Join{}, nil, fmt.Errorf("%w: %q", ErrUnknown, r.ActionID)
	}
	if t.decided[r.ActionID] {
		return j, nil, fmt.Errorf("%w: %q", ErrDuplicate, r.ActionID)
	}
	t.decided[r.ActionID] = true
	var out []Verdict
	for _, k := range Keys(j.Rule, j.Model) {
		w := append(t.windows[k], Sample{At: j.At, Model: j.Model, Overturned: r.Outcome == Overturned})
		if len(w) > t.policy.Window {
			w = w[len(w)-t.policy.Window:]
		}
		t.windows[k] = w
		out = append(out, Judge(t.policy, k, After(w, since(j.Rule))))
	}
	return j, out, nil
}

// Decide judges the latest outcomes of j's rule and model version, as
// Decide does, after an outcome of an action of that version was recorded.
func (t *Tracker) Decide(j Join, since func(rule, model string) time.Time, versions func(model string) bool) (Scoped, bool) {
	return Decide(t.policy, j.Rule, j.Model, t.windows[Key{Rule: j.Rule}], t.windows[Key{Rule: j.Rule, Model: j.Model}], since, versions)
}

// Scoped is a verdict that trips a breaker: the model version's
// (rule:R|model:V) when Version, else the rule's.
type Scoped struct {
	Verdict
	Version bool
}

// Concentrated is the most P(precision < floor) the outcomes of a rule's
// other model versions may show for a fall to be one version's: they are
// more likely above the floor than below.
const Concentrated = 0.5

// Decide judges, after an outcome of an action of rule and model version
// model ("" for none), the latest outcomes of the rule (ruleWin) and of
// the version (verWin), and returns the breaker to trip, if any. A trip
// is due when the rule's outcomes trip it or the version's trip it (each
// as Judge says). The fall is then one model version's when
//
//   - versions(V) (the rule's model versions have breakers, and V's is not
//     disabled),
//   - V's outcomes show it: P(precision < floor) >= confidence, from V's
//     own latest outcomes if they trip, else from V's among the rule's
//     (the rule's count reached min_outcomes), and
//   - the rule's outcomes of its other versions do not: there are some,
//     and P(their precision < floor) < Concentrated. A rule with no
//     outcome of another version is never split.
//
// and only V's breaker trips; the version of the outcome is tried first,
// then the others of the rule's window in order. Otherwise the rule's
// breaker trips, on the rule's verdict if it trips, else on the version's.
//
// since(rule, "") is when the rule's breaker last tripped and since(rule,
// V) the later of that and when version V's did: the outcomes of actions
// at or before it are left out (that trip is there, and a reversal undoes
// them), from the version's judgement and, sample by sample, from the
// rule's, so a fall a version's breaker already holds trips neither the
// rule nor the version again.
func Decide(p Policy, rule, model string, ruleWin, verWin []Sample, since func(rule, model string) time.Time, versions func(model string) bool) (Scoped, bool) {
	open := make([]Sample, 0, len(ruleWin))
	cut := map[string]time.Time{}
	order := []string{}
	if model != "" {
		order = append(order, model)
	}
	for _, s := range ruleWin {
		c, ok := cut[s.Model]
		if !ok {
			c = since(rule, s.Model)
			cut[s.Model] = c
			if s.Model != "" && s.Model != model {
				order = append(order, s.Model)
			}
		}
		if c.IsZero() || s.At.After(c) {
			open = append(open, s)
		}
	}
	rv := Judge(p, Key{Rule: rule}, open)
	var vv Verdict
	if model != "" {
		vv = Judge(p, Key{Rule: rule, Model: model}, After(verWin, since(rule, model)))
	}
	if !rv.Trip && !vv.Trip {
		return Scoped{}, false
	}
	for _, m := range order {
		if !versions(m) {
			continue
		}
		var mine []Sample
		var up, over float64
		for _, s := range open {
			switch {
			case s.Model == m:
				mine = append(mine, s)
			case s.Overturned:
				over++
			default:
				up++
			}
		}
		if up+over == 0 || ProbBelow(p.Floor, up, over) >= Concentrated {
			continue
		}
		if m == model && vv.Trip {
			return Scoped{Verdict: vv, Version: true}, true
		}
		if !rv.Trip {
			continue
		}
		v := Judge(p, Key{Rule: rule, Model: m}, mine)
		if v.Outcomes > 0 && v.Below >= p.Confidence {
			v.Trip, v.Onset = true, onset(mine)
			return Scoped{Verdict: v, Version: true}, true
		}
	}
	if rv.Trip {
		return Scoped{Verdict: rv}, true
	}
	return Scoped{Verdict: vv}, true
}

// After returns the samples of actions after since (all of them for a zero
// since).
func After(w []Sample, since time.Time) []Sample {
	if since.IsZero() {
		return w
	}
	out := make([]Sample, 0, len(w))
	for _, s := range w {
		if s.At.After(since) {
			out = append(out, s)
		}
	}
	return out
}

// Explain says a verdict in one sentence.
func Explain(p Policy, v Verdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of the latest %d appeal outcomes of %s overturned (%.0f%%): P(precision < %g) = %.3f >= %g",
		v.Overturned, v.Outcomes, v.Key, 100*v.Share(), p.Floor, v.Below, p.Confidence)
	return b.String()
}

// PolicyOf returns the policy of the appeals section of the configuration.
func PolicyOf(c config.Appeals) Policy {
	return Policy{Floor: c.PrecisionFloor, Confidence: c.Confidence, MinOutcomes: c.MinOutcomes, Window: c.Window}
}

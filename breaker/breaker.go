// Package breaker holds the breaker states, policies and trip decisions.
//
// Everything here is pure: functions take the time and the counts they decide
// on and return the new status. The rate stores (Redis for the live daemon, an
// in-process one for replays and tests) call these rules, or mirror them
// exactly in Lua, and are tested against them.
package breaker

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// State is the position of one breaker.
type State string

// The breaker states.
const (
	// Closed forwards actions to the gated topic.
	Closed State = "closed"
	// Open has tripped: the scope's actions are held for review.
	Open State = "open"
	// Probation forwards again after a human reset, on tighter thresholds.
	Probation State = "probation"
	// ForcedOpen is the operator's kill switch: hold everything of the scope.
	ForcedOpen State = "forced_open"
	// ForcedClosed is the operator's override: forward whatever the counts say.
	ForcedClosed State = "forced_closed"
	// Shadow evaluates, records and alerts, but never holds.
	Shadow State = "shadow"
)

// States lists every state, automatic ones first.
var States = []State{Closed, Open, Probation, ForcedOpen, ForcedClosed, Shadow}

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool {
	switch s {
	case Closed, Open, Probation, ForcedOpen, ForcedClosed, Shadow:
		return true
	}
	return false
}

// Manual reports whether s is set by an operator rather than by the counts.
func (s State) Manual() bool {
	return s == ForcedOpen || s == ForcedClosed || s == Shadow
}

// Holds reports whether actions of a scope in state s are held.
func (s State) Holds() bool { return s == Open || s == ForcedOpen }

// ErrUnknownScope is returned for a scope string that names no breaker.
var ErrUnknownScope = errors.New("unknown scope")

// ErrInvalidState is returned for a state an operation cannot set.
var ErrInvalidState = errors.New("invalid state")

// Scope names what one breaker guards: the global total, a rule, a rule
// and one of its action types, or a segment of a rule (the actions of one
// model version, or of one value of a configured event field).
type Scope string

// Global is the scope of the weighted total across all rules.
const Global Scope = "global"

// scopeEscaper makes rule ids and action names that contain the separator
// unambiguous; ordinary ids read as they are. valueEscaper does the same
// for segment values, and escapes '@' too, which ends the scope in an
// incident id (Incident), so that no value reads as another.
var (
	scopeEscaper   = strings.NewReplacer("%", "%25", "|", "%7C")
	scopeUnescaper = strings.NewReplacer("%25", "%", "%7C", "|")
	valueEscaper   = strings.NewReplacer("%", "%25", "|", "%7C", "@", "%40")
	valueUnescaper = strings.NewReplacer("%25", "%", "%7C", "|", "%40", "@")
)

// The segment dimensions: the event fields a rule's actions can be split
// by, each giving one breaker per value (SegmentScope). DimModel is the
// model version, the scope rule:<id>|model:<version>.
const (
	DimModel      = "model"
	DimModelName  = "model.name"
	DimRegion     = "region"
	DimTargetType = "target.type"
)

// Dimensions lists the segment dimensions, DimModel first.
var Dimensions = []string{DimModel, DimModelName, DimRegion, DimTargetType}

// otherValue is the segment value of the overflow segment
// (OverflowScope): escaping never yields it from a real value, whose '%'
// always reads %25.
const otherValue = "%other"

// RuleScope returns the scope of a rule.
func RuleScope(rule string) Scope { return Scope("rule:" + scopeEscaper.Replace(rule)) }

// ActionScope returns the scope of one action type within a rule.
func ActionScope(rule, action string) Scope {
	return Scope("rule:" + scopeEscaper.Replace(rule) + "|action:" + scopeEscaper.Replace(action))
}

// SegmentScope returns the scope of the actions of a rule whose dimension
// dim (one of Dimensions) has value (not empty).
func SegmentScope(rule, dim, value string) Scope {
	return Scope("rule:" + scopeEscaper.Replace(rule) + "|" + dim + ":" + valueEscaper.Replace(value))
}

// OverflowScope returns the scope of the actions of a rule whose value of
// dimension dim is past the bound of values tracked on their own:
// rule:<id>|<dim>:%other.
func OverflowScope(rule, dim string) Scope {
	return Scope("rule:" + scopeEscaper.Replace(rule) + "|" + dim + ":" + otherValue)
}

// ModelScope returns the scope of one model version's actions of a rule.
func ModelScope(rule, version string) Scope { return SegmentScope(rule, DimModel, version) }

// Rule returns the rule of a rule, action or segment scope, and "" for
// Global.
func (s Scope) Rule() string {
	r, ok := strings.CutPrefix(string(s), "rule:")
	if !ok {
		return ""
	}
	if i := strings.IndexByte(r, '|'); i >= 0 {
		r = r[:i]
	}
	return scopeUnescaper.Replace(r)
}

// Action returns the action type of a rule and action scope, and "" for
// the others.
func (s Scope) Action() string {
	i := strings.Index(string(s), "|action:")
	if i < 0 || !strings.HasPrefix(string(s), "rule:") {
		return ""
	}
	return scopeUnescaper.Replace(string(s)[i+len("|action:"):])
}

// Segment returns the dimension and value of a segment scope, and "" for
// the others; the overflow segment's value is "" (OverflowScope).
func (s Scope) Segment() (dim, value string) {
	r, ok := strings.CutPrefix(string(s), "rule:")
	if !ok {
		return "", ""
	}
	i := strings.IndexByte(r, '|')
	if i < 0 {
		return "", ""
	}
	dim, value, ok = strings.Cut(r[i+1:], ":")
	if !ok || dim == "action" {
		return "", ""
	}
	if value == otherValue {
		return dim, ""
	}
	return dim, valueUnescaper.Replace(value)
}

// ParseScope checks that s names a scope.
func ParseScope(s string) (Scope, error) {
	if s == string(Global) {
		return Global, nil
	}
	r, ok := strings.CutPrefix(s, "rule:")
	if !ok || r == "" {
		return "", fmt.Errorf("%w: %q (want global, rule:<id>, rule:<id>|action:<type> or rule:<id>|<dimension>:<value>)", ErrUnknownScope, s)
	}
	i := strings.IndexByte(r, '|')
	if i < 0 {
		return Scope(s), nil
	}
	dim, value, ok := strings.Cut(r[i+1:], ":")
	if i == 0 || !ok || value == "" || strings.Contains(value, "|") || (dim != "action" && !slices.Contains(Dimensions, dim)) {
		return "", fmt.Errorf("%w: %q", ErrUnknownScope, s)
	}
	if dim != "action" && strings.Contains(value, "@") {
		return "", fmt.Errorf("%w: %q (a segment value writes @ as %%40)", ErrUnknownScope, s)
	}
	return Scope(s), nil
}

// Policy is the trip conditions and recovery rules of one scope.
type Policy struct {
	// Window is the sliding event-time window of the counts.
	Window time.Duration
	// MaxActions trips when the weighted window count exceeds it; 0 disables.
	MaxActions float64
	// Baseline is the trailing period of the scope's normal rate.
	Baseline time.Duration
	// Factor trips when the window count exceeds Factor times the baseline
	// count per window, with at least MinActions in the window; 0 disables.
	Factor float64
	// MinActions is the least window count for Factor to trip.
	MinActions float64
	// AutoCloseAfter moves an open breaker to probation by itself after this
	// long; 0 means never.
	AutoCloseAfter time.Duration
	// Probation is how long a reset breaker runs on tighter thresholds.
	Probation time.Duration
	// ProbationScale multiplies MaxActions and MinActions during probation.
	ProbationScale float64
	// Disabled turns the breaker off; the scope is still counted.
	Disabled bool
	// Learning is how long after its first action a new scope runs on the
	// LearningMax budget; 0 means the scope is never new. A scope first seen
	// within Learning of the first action the store counted at all is not
	// new: it was there when counting began.
	Learning time.Duration
	// LearningMax trips a new scope when its weighted window count exceeds
	// it during its learning period; 0 disables.
	LearningMax float64
	// NewOnly makes the breaker trip only while the scope is new: within
	// Learning of its first action, for a scope that started from another
	// one's counts (a model version from its rule's). Other times it
	// counts and never trips; its rule guards it.
	NewOnly bool
	// HoldContributors makes a tripped wider scope (global) hold only the
	// narrower scopes that drive its excess, when they explain it, instead
	// of every action it counts.
	HoldContributors bool
	// ContributorFactor is how far above its own baseline a narrower scope
	// must be to count as a contributor (a scope without a baseline always
	// counts).
	ContributorFactor float64
	// EvidenceBin is the width of the evidence detector's bins (see
	// Evidence).
	EvidenceBin time.Duration
	// EvidenceRatio is the rise the evidence detector is tuned to: the
	// factor r over the expected count; above 1.
	EvidenceRatio float64
	// EvidenceThreshold is h: the evidence detector trips when S reaches
	// it. 0 turns the detector off.
	EvidenceThreshold float64
	// EvidenceMinExpected floors the expected number of actions per bin, so a
	// quiet hour's handful of actions is not overwhelming evidence.
	EvidenceMinExpected float64
	// EvidenceDays is the memory of the seasonal expectation in seasons
	// (days).
	EvidenceDays int
	// EvidenceSeason is the period of the seasonal expectation; 0 means a
	// day.
	EvidenceSeason time.Duration
}

// Reason says why a breaker tripped.
type Reason string

// The trip reasons.
const (
	// ReasonMaxActions means the window count passed MaxActions.
	ReasonMaxActions Reason = "max_actions"
	// ReasonBaseline means the window count passed Factor times the baseline.
	ReasonBaseline Reason = "baseline_factor"
	// ReasonNewRule means a new scope passed its learning budget, LearningMax.
	ReasonNewRule Reason = "new_rule"
	// ReasonEvidence means the evidence detector's S reached
	// EvidenceThreshold: the scope acts above its expectation for this
	// time of day, for longer than chance explains.
	ReasonEvidence Reason = "evidence"
	// ReasonOverturnRate means the appeals system overturned so many of
	// the scope's recent forwarded actions that its precision is likely
	// below the floor (package appeals); decided outside the batches.
	ReasonOverturnRate Reason = "overturn_rate"
)

// Counts are the figures a trip decision is made on.
type Counts struct {
	// Window is the weighted count in the window ending at the decision.
	Window float64
	// Baseline is the trailing average weighted count per window.
	Baseline float64
	// BaselineReady is true once the scope has a full baseline period of history.
	BaselineReady bool
	// Learning is true while the scope is new and within its learning
	// period (see Policy.Learning).
	Learning bool `json:",omitempty"`
	// Evidence is the evidence detector's S (see Evidence.Check).
	Evidence float64 `json:",omitempty"`
	// Expected is the expected number of actions of the detector's open bin.
	Expected float64 `json:",omitempty"`
	// Observed is the number of actions of the detector's open bin so far.
	Observed float64 `json:",omitempty"`
	// EvidenceReady is true when the open bin's hour of the day has
	// learned enough for the detector to judge it.
	EvidenceReady bool `json:",omitempty"`
}

// InLearning reports whether a scope first counted at firstMillis is new and
// still learning at atMillis under p. refMillis is the first action the
// store counted at all (hasRef false when it had counted nothing before):
// a scope that appeared within Learning of it is taken as established.
func (p Policy) InLearning(firstMillis, atMillis, refMillis int64, hasRef bool) bool {
	l := p.Learning.Milliseconds()
	return hasRef && l > 0 && firstMillis-refMillis >= l && atMillis-firstMillis < l
}

// Exceeded reports whether c passes p's thresholds, and which one. During
// probation the thresholds are multiplied by ProbationScale.
func (p Policy) Exceeded(c Counts, probation bool) (Reason, bool) {
	if p.Disabled || (p.NewOnly && !c.Learning) {
		return "", false
	}
	scale := 1.0
	if probation && p.ProbationScale > 0 {
		scale = p.ProbationScale
	}
	if p.MaxActions > 0 && c.Window > p.MaxActions*scale {
		return ReasonMaxActions, true
	}
	if c.Learning && p.LearningMax > 0 && c.Window > p.LearningMax*scale {
		return ReasonNewRule, true
	}
	if p.Factor > 0 && c.BaselineReady && c.Window >= p.MinActions*scale && c.Window > p.Factor*c.Baseline {
		return ReasonBaseline, true
	}
	// The evidence threshold is not scaled on probation: S is kept at h
	// while the breaker is open, so a rise that goes on trips again at once.
	if p.EvidenceOn() && c.EvidenceReady && c.Evidence >= p.EvidenceThreshold {
		return ReasonEvidence, true
	}
	return "", false
}

// Status is the full state of one breaker, as shared between replicas.
type Status struct {
	// State is the effective state.
	State State `json:"state"`
	// Auto is the automatic state underneath a manual one (closed, open or
	// probation); the breaker returns to it when the override expires.
	Auto State `json:"auto"`
	// Generation counts the transitions of this breaker; it never goes back.
	Generation uint64 `json:"generation"`
	// Since is when the current State began.
	Since time.Time `json:"since"`
	// TrippedAt is when Auto last became open.
	TrippedAt time.Time `json:"tripped_at,omitzero"`
	// Reason is the trip reason or the operator's reason.
	Reason string `json:"reason,omitempty"`
	// Actor is who set a manual state or reset the breaker; "" for automatic transitions.
	Actor string `json:"actor,omitempty"`
	// Until is when a manual state expires; zero means it does not.
	Until time.Time `json:"until,omitzero"`
	// ProbationUntil is when probation ends.
	ProbationUntil time.Time `json:"probation_until,omitzero"`
	// Onset is the estimated start, in event time, of what tripped the
	// breaker: when the evidence detector's S last left 0 for an evidence
	// trip, the start of the window that passed its limit for the others.
	// Set at each trip and kept until the next one: the actions of the
	// scope with an event time from Onset on that were forwarded before
	// the trip are the candidates for reversal.
	Onset time.Time `json:"onset,omitzero"`
	// Trip is what the breaker last tripped on: the figures at the trip.
	// Set at each trip and kept until the next one (see Explain).
	Trip Trip `json:"trip,omitzero"`
	// HeldScopes, when not empty, are the only narrower scopes an open
	// wider breaker (global) holds: those that drove its trip. Empty means
	// it holds every action it counts.
	HeldScopes []Scope `json:"held_scopes,omitempty"`
}

// Trip is what a breaker tripped on.
type Trip struct {
	// Counts are the figures at the trip.
	Counts Counts `json:"counts"`
	// Probation is true when the breaker tripped on probation's tighter
	// thresholds.
	Probation bool `json:"probation,omitempty"`
	// Appeals are the figures of an overturn_rate trip.
	Appeals AppealsTrip `json:"appeals,omitzero"`
}

// AppealsTrip is what an overturn_rate trip was decided on.
type AppealsTrip struct {
	// Key is the rule, or the rule and model version, whose outcomes
	// were judged.
	Key string `json:"key"`
	// Outcomes counts the latest appeal outcomes judged, Overturned those
	// overturned.
	Outcomes   int `json:"outcomes"`
	Overturned int `json:"overturned"`
	// Below is P(precision < Floor) at the trip; Confidence the least
	// that trips.
	Below      float64 `json:"below"`
	Floor      float64 `json:"floor"`
	Confidence float64 `json:"confidence"`
}

// TripOn trips s for reason r decided outside the batches (the appeals
// signal) at now, with the figures t and the estimated onset. A breaker
// whose automatic state is already open does not change (false); a manual
// state on top stays on top, as for any trip.
func TripOn(s Status, r Reason, t Trip, onset, now time.Time) (Status, bool) {
	if s.Auto == Open {
		return s, false
	}
	probation := s.Auto == Probation
	n := trip(s, r, now)
	n.Trip = t
	n.Trip.Probation = probation
	n.Onset = onset
	return n, true
}

// Initial returns the status of a breaker that has never transitioned.
func Initial() Status { return Status{State: Closed, Auto: Closed} }

// Holds reports whether the breaker holds its scope's actions (all of them,
// or those of HeldScopes).
func (s Status) Holds() bool { return s.State.Holds() }

// HoldsFor reports whether the breaker holds an action whose narrower scope
// (its rule, for the global breaker) is child. The kill switch holds
// everything; an automatic trip holds HeldScopes, or everything when there
// are none.
func (s Status) HoldsFor(child Scope) bool {
	if !s.Holds() {
		return false
	}
	if s.State == ForcedOpen || len(s.HeldScopes) == 0 {
		return true
	}
	for _, h := range s.HeldScopes {
		if h == child {
			return true
		}
	}
	return false
}

// Child is a narrower scope as its wider one sees it when the wider one
// trips: its counts at the end of the batch and whether it holds itself.
type Child struct {
	// Scope is the narrower breaker.
	Scope Scope
	// Counts are its figures at the end of the batch.
	Counts Counts
	// Holds is true when it holds its own actions.
	Holds bool
	// Deeper marks a scope narrower than an immediate child (a rule's
	// model version or segment, for global): it is not a contributor, and
	// counts only as a holding scope that explains an evidence trip.
	Deeper bool
}

// Contributors returns the narrower scopes a wider scope under policy p
// that just tripped on counts c should hold, or nil for every action it
// counts. A contributor is a child that does not hold itself, let some of
// its actions through, and either has no baseline yet or counts more than
// ContributorFactor times its baseline.
// The contributors are held alone when they explain the excess (without
// their window counts the wider scope would not have passed the threshold
// it tripped on) and are fewer than half the children that do not hold
// themselves. Otherwise the rise is broad and everything is held.
// children are in batch order; the result keeps it.
//
// countsHeld says the wider scope counted the actions its holding children
// hold too (it does open and on probation, see CountsHeld): they are then
// contributors like the others.
func Contributors(p Policy, c Counts, reason Reason, probation, countsHeld bool, children []Child) []Scope {
	if !p.HoldContributors {
		return nil
	}
	scale := 1.0
	if probation && p.ProbationScale > 0 {
		scale = p.ProbationScale
	}
	var limit float64
	switch reason {
	case ReasonMaxActions:
		limit = p.MaxActions * scale
	case ReasonBaseline:
		limit = p.Factor * c.Baseline
	case ReasonNewRule:
		limit = p.LearningMax * scale
	case ReasonEvidence:
		// The detector counts every action, held ones included; what is
		// still flowing (the window count) is a rise when it passes the
		// rate at which evidence grows over the baseline.
		limit = c.Baseline * (p.EvidenceRatio - 1) / math.Log(p.EvidenceRatio)
	default:
		return nil
	}
	var out []Scope
	rest, open := c.Window, 0
	for _, ch := range children {
		if ch.Deeper || (ch.Holds && !countsHeld) {
			continue
		}
		open++
		if ch.Holds {
			out = append(out, ch.Scope)
			rest -= ch.Counts.Window
			continue
		}
		// A child that let nothing through (its narrower scopes hold all
		// of its actions of the batch) drives nothing.
		if ch.Counts.Window > 0 && (!ch.Counts.BaselineReady || ch.Counts.Window > p.ContributorFactor*ch.Counts.Baseline) {
			out = append(out, ch.Scope)
			rest -= ch.Counts.Window
		}
	}
	if reason == ReasonEvidence && len(out) == 0 && rest <= limit {
		// The evidence comes from what narrower breakers already hold:
		// hold those (nothing new), not everything. A deeper scope that
		// holds (a rule's model version) names no child, so holding it
		// holds nothing new either.
		for _, ch := range children {
			if ch.Holds && !ch.Deeper {
				out = append(out, ch.Scope)
			}
		}
		if len(out) == 0 {
			for _, ch := range children {
				if ch.Holds && ch.Deeper {
					out = append(out, ch.Scope)
				}
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	// Half the rules or more standing out is a broad rise, not an incident.
	if len(out) == 0 || 2*len(out) >= open || rest > limit {
		return nil
	}
	return out
}

// CountsHeld reports whether a wider scope in status s counts the actions
// its narrower scopes hold. Open and on probation it does: a person who
// resets it during a broad rise then finds the rise measured whole in its
// window at once, so it trips again on the first action after the reset
// instead of letting a window's worth of the rise through while its
// window refills; and on probation the rise is not only the part the
// narrower breakers that re-tripped on their own let through. Closed, it
// counts only what would reach enforcement, so that one rule's incident,
// contained by the rule's own breaker, does not trip it.
func CountsHeld(s Status) bool { return s.Auto == Probation || s.Auto == Open }

// Incident names the trip a held action belongs to: the scope and the
// generation at which the breaker opened.
func Incident(scope Scope, gen uint64) string { return fmt.Sprintf("%s@%d", scope, gen) }

// Transition records one change of a breaker's status.
type Transition struct {
	// Scope is the breaker that changed.
	Scope Scope `json:"scope"`
	// From is the status before.
	From Status `json:"from"`
	// To is the status after.
	To Status `json:"to"`
	// Counts are the figures at the transition, for automatic ones.
	Counts Counts `json:"counts"`
}

// Expire returns the status after any manual state whose Until has passed
// at now fell back to the automatic state beneath it.
func Expire(s Status, now time.Time) (Status, bool) {
	if !s.State.Manual() || s.Until.IsZero() || now.Before(s.Until) {
		return s, false
	}
	n := s
	n.State = s.Auto
	n.Generation++
	n.Since = now
	n.Reason = "override expired"
	n.Actor = ""
	n.Until = time.Time{}
	return n, true
}

// Evaluate returns the status after counts c were observed at now. The
// automatic state underneath a manual one keeps being evaluated, so that an
// expired override falls back to what the counts say.
func Evaluate(p Policy, s Status, c Counts, now time.Time) (Status, bool) {
	n := s
	switch s.Auto {
	case Closed, "":
		if r, ok := p.Exceeded(c, false); ok {
			n = trip(n, r, now)
		}
	case Probation:
		if r, ok := p.Exceeded(c, true); ok {
			n = trip(n, r, now)
		} else if !now.Before(s.ProbationUntil) {
			n.Auto = Closed
			n.ProbationUntil = time.Time{}
			n.Reason = "probation ended"
			n = moved(n, s, now)
		}
	case Open:
		if p.AutoCloseAfter > 0 && now.Sub(s.TrippedAt) >= p.AutoCloseAfter {
			n.Auto = Probation
			n.ProbationUntil = now.Add(p.Probation)
			n.Reason = "auto close"
			n.HeldScopes = nil
			n = moved(n, s, now)
		}
	}
	return n, n.Generation != s.Generation
}

func trip(s Status, r Reason, now time.Time) Status {
	prev := s
	s.Auto = Open
	s.TrippedAt = now
	s.ProbationUntil = time.Time{}
	s.Reason = string(r)
	s.HeldScopes = nil
	return moved(s, prev, now)
}

// moved finishes a change of the automatic state: the effective state
// follows it unless a manual state is on top, and the generation advances.
func moved(n, prev Status, now time.Time) Status {
	if !n.State.Manual() {
		n.State = n.Auto
		n.Since = now
		n.Actor = ""
	}
	n.Generation = prev.Generation + 1
	return n
}

// Override sets a manual state on top of the automatic one. A zero until
// means until further notice.
func Override(s Status, to State, actor, reason string, until, now time.Time) (Status, error) {
	if !to.Manual() {
		return s, fmt.Errorf("%w: %q is not a manual state (want forced_open, forced_closed or shadow)", ErrInvalidState, to)
	}
	if !until.IsZero() && !until.After(now) {
		return s, fmt.Errorf("%w: expiry %s is not after now", ErrInvalidState, until.Format(time.RFC3339))
	}
	n := s
	if n.Auto == "" {
		n.Auto = Closed
	}
	n.State = to
	n.Actor = actor
	n.Reason = reason
	n.Until = until
	n.Since = now
	n.Generation = s.Generation + 1
	return n, nil
}

// Reset is the human reset after a trip or an override: the breaker goes to
// probation (or closed when p has no probation) and any manual state is cleared.
func Reset(p Policy, s Status, actor, reason string, now time.Time) Status {
	n := s
	n.Auto = Closed
	n.ProbationUntil = time.Time{}
	n.HeldScopes = nil
	if p.Probation > 0 {
		n.Auto = Probation
		n.ProbationUntil = now.Add(p.Probation)
	}
	n.State = n.Auto
	n.Actor = actor
	n.Reason = reason
	n.Until = time.Time{}
	n.Since = now
	n.Generation = s.Generation + 1
	return n
}

// Fields are the fields of an action its scopes are found from.
type Fields struct {
	Rule, Action, ModelVersion, ModelName, Region, TargetType string
}

// value returns f's value of segment dimension dim, "" if none.
func (f Fields) value(dim string) string {
	switch dim {
	case DimModel:
		return f.ModelVersion
	case DimModelName:
		return f.ModelName
	case DimRegion:
		return f.Region
	case DimTargetType:
		return f.TargetType
	}
	return ""
}

// Covers reports whether an action with fields f is one of scope s's:
// every action for Global, the rule's for a rule scope, the rule's of one
// action type for an action scope, and the rule's with the segment's value
// for a segment scope. The overflow segment covers every value of its
// dimension: which values had a breaker of their own when the action
// passed is not kept.
func (s Scope) Covers(f Fields) bool {
	switch {
	case s == Global:
		return true
	case s == RuleScope(f.Rule):
		return true
	case s == ActionScope(f.Rule, f.Action):
		return true
	}
	dim, value := s.Segment()
	if dim == "" || s.Rule() != f.Rule {
		return false
	}
	v := f.value(dim)
	if value == "" {
		return v != "" && s == OverflowScope(f.Rule, dim)
	}
	return v != "" && s == SegmentScope(f.Rule, dim, v)
}

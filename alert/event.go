// Package alert turns breaker transitions and pipeline conditions into
// notifications for on-call people and delivers them exactly once per
// receiver across all replicas.
//
// The daemon raises Events into an outbox, a Redis stream: Raise is one Lua
// call that drops an Event whose ID was raised before (a redelivered batch,
// a second replica) and gathers events of the same kind and severity raised
// within the group window into one group, so that a storm of trips pages
// once with the list. Every receiver reads the stream through its own
// consumer group, in every replica: a receiver that is down falls behind on
// its own and blocks neither the pipeline nor the other receivers. A group
// is acknowledged for a receiver once it was delivered or failed for good,
// and marked done in Redis first, so that a group claimed again after a
// crash is not sent twice. Groups left pending by a replica that died are
// claimed by another after an idle time.
package alert

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/breakwater/breakwater/breaker"
)

// Kind says what happened.
type Kind string

// The kinds of events.
const (
	// KindTripped means a breaker opened by itself: its scope is held.
	KindTripped Kind = "tripped"
	// KindResolved means a tripped or forced open breaker forwards again.
	KindResolved Kind = "resolved"
	// KindOverrideSet means an operator set a manual state.
	KindOverrideSet Kind = "override_set"
	// KindOverrideExpiring means a manual state is about to expire.
	KindOverrideExpiring Kind = "override_expiring"
	// KindHeldOverdue means held actions wait longer than the review deadline.
	KindHeldOverdue Kind = "held_overdue"
	// KindStoreUnreachable means the rate store cannot be reached: the
	// pipeline pauses or holds.
	KindStoreUnreachable Kind = "store_unreachable"
	// KindStoreReachable means the rate store answers again; it resolves
	// KindStoreUnreachable.
	KindStoreReachable Kind = "store_reachable"
	// KindConsumerLag means the consumer lag passed its threshold.
	KindConsumerLag Kind = "consumer_lag"
	// KindBreakGlass means a person applied, alone, a change that needs a
	// second person's approval.
	KindBreakGlass Kind = "break_glass"
	// KindAcknowledged means a person acknowledged an incident: PagerDuty
	// gets an acknowledge event for the trip that paged, which stops its
	// re-notification; Alertmanager, which has no acknowledgement, gets
	// nothing.
	KindAcknowledged Kind = "acknowledged"
	// KindReversalDone means a reversal wrote all of its records.
	KindReversalDone Kind = "reversal_done"
)

// Kinds lists every kind.
var Kinds = []Kind{
	KindTripped, KindResolved, KindOverrideSet, KindOverrideExpiring,
	KindHeldOverdue, KindStoreUnreachable, KindStoreReachable, KindConsumerLag, KindBreakGlass, KindAcknowledged, KindReversalDone,
}

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool { return slices.Contains(Kinds, k) }

// Resolves reports whether k ends a condition that an earlier event began,
// rather than beginning one.
func (k Kind) Resolves() bool { return k == KindResolved || k == KindStoreReachable }

// Severity ranks an event for routing.
type Severity string

// The severities, most urgent first.
const (
	SeverityCritical Severity = "critical"
	SeverityWarning  Severity = "warning"
	SeverityInfo     Severity = "info"
)

// Severities lists every severity, most urgent first.
var Severities = []Severity{SeverityCritical, SeverityWarning, SeverityInfo}

// Valid reports whether s is one of Severities.
func (s Severity) Valid() bool { return slices.Contains(Severities, s) }

// Count is one entry of a top list: a value and how often it occurs.
type Count struct {
	// Value is the action type or model version.
	Value string `json:"value"`
	// Count is how many held actions have it.
	Count int `json:"count"`
}

// Figures are the numbers behind an event. Every field is optional.
type Figures struct {
	// Reason is the trip reason or the operator's reason.
	Reason string `json:"reason,omitempty"`
	// Actor is who set an override or reset a breaker.
	Actor string `json:"actor,omitempty"`
	// State is the breaker state after the transition.
	State breaker.State `json:"state,omitempty"`
	// Generation is the breaker generation after the transition.
	Generation uint64 `json:"generation,omitempty"`
	// WindowCount is the weighted count in the window at the transition.
	WindowCount float64 `json:"window_count,omitempty"`
	// Window is the width of the sliding window.
	Window Duration `json:"window,omitempty"`
	// Baseline is the trailing average weighted count per window.
	Baseline float64 `json:"baseline,omitempty"`
	// MaxActions is the absolute threshold.
	MaxActions float64 `json:"max_actions,omitempty"`
	// Factor is the baseline factor threshold.
	Factor float64 `json:"factor,omitempty"`
	// Held is how many actions are held; in a trip, those of the batch
	// that tripped the breaker, when it was raised.
	Held int64 `json:"held,omitempty"`
	// OldestHeld is the age of the oldest held action.
	OldestHeld Duration `json:"oldest_held,omitempty"`
	// Lag is the consumer lag in messages.
	Lag int64 `json:"lag,omitempty"`
	// Threshold is the threshold of a held backlog or lag event.
	Threshold float64 `json:"threshold,omitempty"`
	// Until is when an override expires.
	Until time.Time `json:"until,omitzero"`
	// TopActions are the most frequent action types among the held actions.
	TopActions []Count `json:"top_actions,omitempty"`
	// TopModels are the most frequent model versions among the held actions.
	TopModels []Count `json:"top_models,omitempty"`
	// HeldScopes are the only narrower scopes a tripped global breaker
	// holds (the rules that drive it); empty when it holds everything.
	HeldScopes []breaker.Scope `json:"held_scopes,omitempty"`
	// Explanation says why a breaker tripped: the condition, observed
	// against expected or allowed, the evidence and the estimated onset.
	Explanation *breaker.Explanation `json:"explanation,omitempty"`
}

// Duration is a time.Duration that JSON shows as people read it ("1m0s"),
// not in nanoseconds.
type Duration time.Duration

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON encodes d as a string such as "1m30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON decodes a string such as "1m30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// Event is one thing on-call people are told about.
type Event struct {
	// ID is the idempotency key: raising the same ID twice notifies once.
	ID string `json:"id"`
	// Kind says what happened.
	Kind Kind `json:"kind"`
	// Scope is the breaker concerned, if any.
	Scope breaker.Scope `json:"scope,omitempty"`
	// Incident names the trip, as breaker.Incident does.
	Incident string `json:"incident,omitempty"`
	// Severity routes the event. A resolve carries the severity of what it
	// resolves, so that it reaches the receivers that got the trigger.
	Severity Severity `json:"severity"`
	// Summary is one line for people.
	Summary string `json:"summary"`
	// At is when it happened.
	At time.Time `json:"at"`
	// DedupKey ties a trigger to its resolve: one per incident or condition.
	DedupKey string `json:"dedup_key"`
	// Link points at the incident in the admin API, if an admin URL is set.
	Link string `json:"link,omitempty"`
	// Figures are the numbers behind the event.
	Figures Figures `json:"figures"`
}

// Validate reports the first missing or invalid field of e.
func (e Event) Validate() error {
	switch {
	case e.ID == "":
		return fmt.Errorf("alert event: id is empty")
	case !e.Kind.Valid():
		return fmt.Errorf("alert event %q: unknown kind %q", e.ID, e.Kind)
	case !e.Severity.Valid():
		return fmt.Errorf("alert event %q: unknown severity %q", e.ID, e.Severity)
	case e.DedupKey == "":
		return fmt.Errorf("alert event %q: dedup_key is empty", e.ID)
	case e.At.IsZero():
		return fmt.Errorf("alert event %q: at is zero", e.ID)
	}
	return nil
}

// Describer gives the context of a transition that the transition itself
// does not carry. Every method may return zero values.
type Describer struct {
	// AdminURL is the base URL of the admin API; links are
	// AdminURL + "/v1/incidents/" + incident. Empty means no link.
	AdminURL string
	// Policy returns the thresholds of a scope.
	Policy func(breaker.Scope) breaker.Policy
	// Held returns the held count and the top action types and model
	// versions among the held actions of an incident.
	Held func(incident string) (held int64, actions, models []Count)
	// Severity returns the severity of a trip of scope; nil means critical.
	Severity func(breaker.Scope) Severity
}

// IncidentLink returns the admin API link of incident, or "" without an admin URL.
func (d Describer) IncidentLink(incident string) string {
	if d.AdminURL == "" || incident == "" {
		return ""
	}
	return strings.TrimRight(d.AdminURL, "/") + "/v1/incidents/" + incident
}

// DedupKey returns the dedup key of incident: one per trip, shared by its
// trigger and its resolve.
func DedupKey(incident string) string { return "breakwater/" + incident }

// FromTransition returns the event a breaker transition raises, and false
// when it raises none:
//
//   - tripped: the automatic state became open (while the effective state
//     holds, or in shadow);
//   - resolved: the effective state left open or forced_open for one that
//     forwards (closed, probation, forced_closed); it names the incident of
//     the last trip, so that it resolves that trigger;
//   - override_set: an operator set a manual state.
//
// A transition that both trips and sets an override cannot happen: trips
// are automatic and overrides manual.
func FromTransition(t breaker.Transition, d Describer) (Event, bool) {
	from, to := t.From, t.To
	sev := SeverityCritical
	if d.Severity != nil {
		sev = d.Severity(t.Scope)
	}
	ev := Event{Scope: t.Scope, Severity: sev, At: to.Since}
	ev.Figures = Figures{
		Reason: to.Reason, Actor: to.Actor, State: to.State, Generation: to.Generation,
		WindowCount: t.Counts.Window, Baseline: t.Counts.Baseline, Until: to.Until,
		HeldScopes: to.HeldScopes,
	}
	why := ""
	if d.Policy != nil {
		p := d.Policy(t.Scope)
		ev.Figures.Window, ev.Figures.MaxActions, ev.Figures.Factor = Duration(p.Window), p.MaxActions, p.Factor
		if e, ok := breaker.Explain(p, to); ok && to.Auto == breaker.Open && from.Auto != breaker.Open {
			ev.Figures.Explanation = &e
			why = ": " + e.Text
		}
	}
	held := func(incident string) {
		if d.Held != nil {
			ev.Figures.Held, ev.Figures.TopActions, ev.Figures.TopModels = d.Held(incident)
		}
	}
	switch {
	case to.Auto == breaker.Open && from.Auto != breaker.Open:
		ev.Kind = KindTripped
		ev.Incident = breaker.Incident(t.Scope, to.Generation)
		ev.ID = fmt.Sprintf("trip/%s/%d", t.Scope, to.Generation)
		held(ev.Incident)
		// what fired: the trip's explanation when the policy is known,
		// the window's figures otherwise
		what := fmt.Sprintf("(%s): %.1f in %s, baseline %.1f", to.Reason, t.Counts.Window, ev.Figures.Window, t.Counts.Baseline)
		if why != "" {
			what = "(" + to.Reason + ")" + why
		}
		ev.Summary = fmt.Sprintf("breaker %s tripped %s; its actions are held for review", t.Scope, what)
		if len(to.HeldScopes) > 0 {
			ev.Summary = fmt.Sprintf("breaker %s tripped %s; the actions of %s are held for review, the rest flow",
				t.Scope, what, scopeList(to.HeldScopes))
		}
		if to.State == breaker.Shadow {
			// Nothing is held: worth knowing, not worth a page.
			ev.Severity = SeverityWarning
			ev.Summary = fmt.Sprintf("breaker %s would have tripped %s (shadow mode)", t.Scope, what)
		}
	case from.State.Holds() && !to.State.Holds():
		ev.Kind = KindResolved
		// The last transition of an open breaker is its trip, so its
		// generation names the incident; when operator states came in
		// between, Raise finds the incident of the scope's last trip in Redis.
		gen := from.Generation
		ev.Incident = breaker.Incident(t.Scope, gen)
		ev.ID = fmt.Sprintf("resolve/%s/%d", t.Scope, to.Generation)
		held(ev.Incident)
		by := ""
		if to.Actor != "" {
			by = " by " + to.Actor
		}
		ev.Summary = fmt.Sprintf("breaker %s %s%s: its actions are forwarded again", t.Scope, to.State, by)
	case to.State.Manual() && (to.State != from.State || to.Generation != from.Generation) && to.Actor != "":
		ev.Kind = KindOverrideSet
		ev.Incident = breaker.Incident(t.Scope, to.Generation)
		ev.ID = fmt.Sprintf("override/%s/%d", t.Scope, to.Generation)
		ev.Severity = SeverityWarning
		until := "until further notice"
		if !to.Until.IsZero() {
			until = "until " + to.Until.UTC().Format(time.RFC3339)
		}
		ev.Summary = fmt.Sprintf("breaker %s set to %s by %s %s: %s", t.Scope, to.State, to.Actor, until, to.Reason)
		ev.DedupKey = DedupKey(ev.Incident)
		ev.Link = d.IncidentLink(ev.Incident)
		return ev, true
	default:
		return Event{}, false
	}
	ev.DedupKey = DedupKey(ev.Incident)
	ev.Link = d.IncidentLink(ev.Incident)
	return ev, true
}

// TopCounts returns the n most frequent values of counts, most frequent
// first (ties by value), for the top lists of an event.
func TopCounts(counts map[string]int, n int) []Count {
	out := make([]Count, 0, len(counts))
	for v, c := range counts {
		out = append(out, Count{Value: v, Count: c})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Value, b.Value)
	})
	return out[:min(n, len(out))]
}

// scopeList names up to five scopes, and how many more there are.
func scopeList(ss []breaker.Scope) string {
	const most = 5
	names := make([]string, 0, most+1)
	for i, s := range ss {
		if i == most {
			names = append(names, fmt.Sprintf("%d more", len(ss)-most))
			break
		}
		names = append(names, string(s))
	}
	return strings.Join(names, ", ")
}

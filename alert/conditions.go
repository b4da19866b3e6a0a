package alert

import (
	"fmt"
	"time"

	"github.com/breakwater/breakwater/breaker"
)

// The events below are raised by the pipeline for conditions rather than
// transitions. Their IDs are chosen so that every replica that notices the
// same condition raises the same ID, and the outbox sends it once.

// OverrideExpiring returns the event of a manual state s of scope that
// expires within the notice; one per override (scope and generation).
func OverrideExpiring(scope breaker.Scope, s breaker.Status, d Describer) Event {
	inc := breaker.Incident(scope, s.Generation)
	return Event{
		ID: fmt.Sprintf("override_expiring/%s/%d", scope, s.Generation), Kind: KindOverrideExpiring,
		Scope: scope, Incident: inc, Severity: SeverityWarning, At: s.Until, DedupKey: DedupKey(inc) + "/expiring",
		Summary: fmt.Sprintf("breaker %s: %s set by %s expires at %s; it then returns to %s",
			scope, s.State, s.Actor, s.Until.UTC().Format(time.RFC3339), s.Auto),
		Link:    d.IncidentLink(inc),
		Figures: Figures{State: s.State, Generation: s.Generation, Actor: s.Actor, Reason: s.Reason, Until: s.Until},
	}
}

// HeldOverdue returns the event of an incident whose oldest held action
// waits longer than the review deadline; one per incident.
func HeldOverdue(scope breaker.Scope, incident string, held int64, oldest, deadline time.Duration, at time.Time, d Describer) Event {
	return Event{
		ID: "held_overdue/" + incident, Kind: KindHeldOverdue, Scope: scope, Incident: incident,
		Severity: SeverityWarning, At: at, DedupKey: DedupKey(incident) + "/overdue", Link: d.IncidentLink(incident),
		Summary: fmt.Sprintf("%d held actions of %s wait for review; the oldest for %s, past the %s deadline",
			held, incident, oldest.Round(time.Second), deadline),
		Figures: Figures{Held: held, OldestHeld: Duration(oldest), Threshold: deadline.Seconds()},
	}
}

// Acknowledged returns the event of a person acknowledging incident of
// scope; one per incident. Its dedup key is the incident's until the outbox
// finds the group its trip paged under (Outbox.Raise), whose key it then
// takes, so that PagerDuty acknowledges the page that was sent.
func Acknowledged(scope breaker.Scope, incident, actor string, at time.Time, sev Severity, d Describer) Event {
	return Event{
		ID: "ack/" + incident, Kind: KindAcknowledged, Scope: scope, Incident: incident, Severity: sev, At: at,
		DedupKey: DedupKey(incident), Link: d.IncidentLink(incident),
		Summary: fmt.Sprintf("incident %s acknowledged by %s", incident, actor),
		Figures: Figures{Actor: actor},
	}
}

// outageBucket is the width of the time buckets that name an outage, so
// that replicas noticing it at slightly different moments raise one ID.
const outageBucket = 5 * time.Minute

// StoreUnreachable returns the event of the rate store being unreachable
// since since, with the pipeline doing policy (pause or hold). While the
// store is down, the outbox (in the same Redis) is too: send it with
// Dispatcher.Direct, and raise it as well so that it is delivered once the
// store answers if no direct attempt got through.
func StoreUnreachable(since time.Time, policy string) Event {
	b := since.Truncate(outageBucket).Unix()
	return Event{
		ID: fmt.Sprintf("store_unreachable/%d", b), Kind: KindStoreUnreachable, Severity: SeverityCritical,
		At: since, DedupKey: fmt.Sprintf("breakwater/store_unreachable/%d", b),
		Summary: fmt.Sprintf("the rate store (Redis) is unreachable since %s: the pipeline is on %s, nothing is forwarded unvetted",
			since.UTC().Format(time.RFC3339), policy),
		Figures: Figures{Reason: policy},
	}
}

// StoreReachable returns the event that resolves StoreUnreachable(since, ...).
func StoreReachable(since, at time.Time) Event {
	b := since.Truncate(outageBucket).Unix()
	return Event{
		ID: fmt.Sprintf("store_reachable/%d", b), Kind: KindStoreReachable, Severity: SeverityCritical,
		At: at, DedupKey: fmt.Sprintf("breakwater/store_unreachable/%d", b),
		Summary: fmt.Sprintf("the rate store (Redis) answers again after %s", at.Sub(since).Round(time.Second)),
	}
}

// ConsumerLag returns the event of the input lag passing threshold; at
// most one per hour.
func ConsumerLag(lag, threshold int64, at time.Time) Event {
	h := at.Truncate(time.Hour).Unix()
	return Event{
		ID: fmt.Sprintf("consumer_lag/%d", h), Kind: KindConsumerLag, Severity: SeverityWarning, At: at,
		DedupKey: fmt.Sprintf("breakwater/consumer_lag/%d", h),
		Summary:  fmt.Sprintf("the consumer is %d messages behind its input (threshold %d): enforcement is delayed", lag, threshold),
		Figures:  Figures{Lag: lag, Threshold: float64(threshold)},
	}
}

// BreakGlass returns the event of a person applying, without a second
// person's approval, the request id: what it does (summary), who and why;
// one per request.
func BreakGlass(id, actor, reason, summary string, scope breaker.Scope, incident string, at time.Time) Event {
	return Event{
		ID: "break_glass/" + id, Kind: KindBreakGlass, Scope: scope, Incident: incident, Severity: SeverityCritical,
		At: at, DedupKey: "breakwater/break_glass/" + id,
		Summary: fmt.Sprintf("break-glass by %s without a second approval: %s; reason: %s", actor, summary, reason),
		Figures: Figures{Actor: actor, Reason: reason},
	}
}

// ReversalDone returns the event of a reversal that wrote all of its
// records; one per reversal.
func ReversalDone(id, incident string, n int, requester, approver string, at time.Time) Event {
	by := requester
	if approver != "" {
		by += ", approved by " + approver
	}
	return Event{
		ID: "reversal_done/" + id, Kind: KindReversalDone, Incident: incident, Severity: SeverityWarning,
		At: at, DedupKey: "breakwater/reversal/" + id,
		Summary: fmt.Sprintf("reversal %s of incident %s is done: %d compensating records written (requested by %s)", id, incident, n, by),
		Figures: Figures{Actor: requester, Held: int64(n)},
	}
}

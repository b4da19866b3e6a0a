package alert

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// groupSummary returns one line for n, at most limit bytes: the event's own
// summary for a group of one, otherwise a count and the incidents (or the
// scopes of events that name none), so that two trips of one breaker in a
// group read as two incidents, not one scope twice.
func groupSummary(n Notification, limit int) string {
	if len(n.Events) == 1 {
		return truncate(n.Events[0].Summary, limit)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s: ", len(n.Events), kindPlural(n.Kind))
	for i, e := range n.Events {
		name := e.Incident
		if name == "" {
			name = string(e.Scope)
		}
		if name == "" {
			name = e.ID
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name)
	}
	return truncate(b.String(), limit)
}

// kindPlural names events of kind k in a group summary.
func kindPlural(k Kind) string {
	switch k {
	case KindTripped:
		return "breakers tripped"
	case KindResolved:
		return "breakers forward again"
	case KindOverrideSet:
		return "breaker overrides set"
	case KindOverrideExpiring:
		return "breaker overrides expiring"
	case KindHeldOverdue:
		return "held backlogs past the review deadline"
	case KindStoreUnreachable:
		return "rate store outages"
	case KindStoreReachable:
		return "rate store recoveries"
	case KindConsumerLag:
		return "consumer lag alerts"
	case KindBreakGlass:
		return "changes applied without a second person"
	case KindAcknowledged:
		return "incidents acknowledged"
	case KindReversalDone:
		return "reversals done"
	}
	return string(k)
}

// truncate cuts s to at most limit bytes on a rune boundary, ending in "…"
// when it cut.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const ell = "…"
	cut := limit - len(ell)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:max(cut, 0)] + ell
}

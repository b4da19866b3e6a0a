package alert

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// pdMaxEvents is how many events a PagerDuty event lists in custom_details.
const pdMaxEvents = 100

// PagerDutyURL is the PagerDuty Events API v2 endpoint.
const PagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// PagerDutyEvent is a PagerDuty Events API v2 request body.
type PagerDutyEvent struct {
	// RoutingKey is the integration key of the service.
	RoutingKey string `json:"routing_key"`
	// EventAction is trigger, acknowledge or resolve.
	EventAction string `json:"event_action"`
	// DedupKey ties a resolve to its trigger.
	DedupKey string `json:"dedup_key"`
	// Payload describes the alert; Breakwater sends it on resolves too.
	Payload *PagerDutyPayload `json:"payload,omitempty"`
	// Client names the sender.
	Client string `json:"client,omitempty"`
	// ClientURL links to the sender.
	ClientURL string `json:"client_url,omitempty"`
	// Links are shown on the incident.
	Links []PagerDutyLink `json:"links,omitempty"`
}

// PagerDutyPayload is the payload of a PagerDuty event.
type PagerDutyPayload struct {
	// Summary is at most 1024 characters.
	Summary string `json:"summary"`
	// Source is the affected system.
	Source string `json:"source"`
	// Severity is critical, error, warning or info.
	Severity string `json:"severity"`
	// Timestamp is RFC 3339.
	Timestamp string `json:"timestamp,omitempty"`
	// Component is the breaker scope, for a single scope.
	Component string `json:"component,omitempty"`
	// Group is "breakwater".
	Group string `json:"group,omitempty"`
	// Class is the event kind.
	Class string `json:"class,omitempty"`
	// CustomDetails carry the figures of every event.
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// PagerDutyLink is a link of a PagerDuty event.
type PagerDutyLink struct {
	// Href is the URL.
	Href string `json:"href"`
	// Text is the link text.
	Text string `json:"text,omitempty"`
}

// PagerDuty sends to the PagerDuty Events API v2: a trigger per group of
// trips under the group's dedup key, resolved when the group's last
// incident closes; other kinds trigger or resolve under each event's dedup
// key.
type PagerDuty struct {
	url        string
	routingKey string
	client     *http.Client
}

// NewPagerDuty returns a PagerDuty receiver; url "" means PagerDutyURL.
func NewPagerDuty(url, routingKey string, client *http.Client) (*PagerDuty, error) {
	if routingKey == "" {
		return nil, errors.New("alert: PagerDuty needs a routing key")
	}
	if url == "" {
		url = PagerDutyURL
	}
	return &PagerDuty{url: url, routingKey: routingKey, client: client}, nil
}

// PagerDutyEvents returns the API requests for n, without the routing key.
func PagerDutyEvents(n Notification) []PagerDutyEvent {
	var out []PagerDutyEvent
	add := func(action, dedup string, evs []Event, resolves []Resolve) {
		sub := n
		sub.Events, sub.Resolves = evs, resolves
		// PagerDuty takes at most 512 KB per event: list the first ones.
		listed := evs[:min(len(evs), pdMaxEvents)]
		details := map[string]any{"key": n.Key, "kind": n.Kind, "count": len(evs), "events": listed}
		if len(listed) < len(evs) {
			details["not_listed"] = len(evs) - len(listed)
		}
		if len(resolves) > 0 {
			details["resolves"] = resolves
		}
		p := &PagerDutyPayload{
			Summary: groupSummary(sub, 1024), Source: "breakwater", Severity: pdSeverity(n.Severity),
			Group: "breakwater", Class: string(n.Kind), CustomDetails: details,
		}
		if len(evs) > 0 {
			p.Timestamp = evs[0].At.UTC().Format(time.RFC3339Nano)
		}
		if len(evs) == 1 {
			p.Component = string(evs[0].Scope)
		}
		e := PagerDutyEvent{EventAction: action, DedupKey: dedup, Payload: p, Client: "Breakwater", ClientURL: n.AdminURL}
		for i, ev := range evs {
			if ev.Link != "" && i < 10 {
				e.Links = append(e.Links, PagerDutyLink{Href: ev.Link, Text: "incident " + ev.Incident})
			}
		}
		out = append(out, e)
	}
	switch n.Kind {
	case KindTripped:
		add("trigger", GroupDedupKey(n.Key), n.Events, nil)
	case KindResolved:
		// One resolve per trip group whose last incident this closes; the
		// resolve carries every resolved event of that group.
		byID := map[string]Event{}
		for _, e := range n.Events {
			byID[e.ID] = e
		}
		var order []string
		groups := map[string][]Resolve{}
		for _, r := range n.Resolves {
			if _, ok := groups[r.TripKey]; !ok {
				order = append(order, r.TripKey)
			}
			groups[r.TripKey] = append(groups[r.TripKey], r)
		}
		for _, k := range order {
			rs := groups[k]
			if !rs[len(rs)-1].GroupClosed {
				continue
			}
			var evs []Event
			for _, r := range rs {
				evs = append(evs, byID[r.EventID])
			}
			add("resolve", GroupDedupKey(k), evs, rs)
		}
	case KindAcknowledged:
		// One acknowledge per page: the events carry the dedup key of
		// the trip group they acknowledge.
		var order []string
		by := map[string][]Event{}
		for _, e := range n.Events {
			if _, ok := by[e.DedupKey]; !ok {
				order = append(order, e.DedupKey)
			}
			by[e.DedupKey] = append(by[e.DedupKey], e)
		}
		for _, k := range order {
			add("acknowledge", k, by[k], nil)
		}
	default:
		var order []string
		by := map[string][]Event{}
		for _, e := range n.Events {
			if _, ok := by[e.DedupKey]; !ok {
				order = append(order, e.DedupKey)
			}
			by[e.DedupKey] = append(by[e.DedupKey], e)
		}
		action := "trigger"
		if !n.Firing() {
			action = "resolve"
		}
		for _, k := range order {
			add(action, k, by[k], nil)
		}
	}
	return out
}

// pdSeverity maps a severity to PagerDuty's.
func pdSeverity(s Severity) string {
	switch s {
	case SeverityCritical:
		return "critical"
	case SeverityWarning:
		return "warning"
	}
	return "info"
}

// Notify sends the requests of n in order; it stops at the first failure
// and the whole notification is retried (PagerDuty deduplicates repeated
// triggers and resolves of one dedup key).
func (p *PagerDuty) Notify(ctx context.Context, n Notification) error {
	for _, e := range PagerDutyEvents(n) {
		e.RoutingKey = p.routingKey
		body, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if err := post(ctx, p.client, p.url, body, nil); err != nil {
			return err
		}
	}
	return nil
}

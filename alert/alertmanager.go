package alert

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/common/model"
)

// AlertmanagerMessage is the Alertmanager webhook payload, version 4, so
// that receivers written for Alertmanager accept Breakwater's notifications.
type AlertmanagerMessage struct {
	// Version is "4".
	Version string `json:"version"`
	// GroupKey identifies the group.
	GroupKey string `json:"groupKey"`
	// TruncatedAlerts is how many alerts were left out; always 0.
	TruncatedAlerts int `json:"truncatedAlerts"`
	// Status is firing or resolved.
	Status string `json:"status"`
	// Receiver is the receiver's name.
	Receiver string `json:"receiver"`
	// GroupLabels are the labels the group is formed on.
	GroupLabels map[string]string `json:"groupLabels"`
	// CommonLabels are the labels every alert has.
	CommonLabels map[string]string `json:"commonLabels"`
	// CommonAnnotations are the annotations every alert has.
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	// ExternalURL is the admin API base URL.
	ExternalURL string `json:"externalURL"`
	// Alerts are the alerts.
	Alerts []AlertmanagerAlert `json:"alerts"`
}

// AlertmanagerAlert is one alert of the payload.
type AlertmanagerAlert struct {
	// Status is firing or resolved.
	Status string `json:"status"`
	// Labels identify the alert; a resolve has the labels of its trigger.
	Labels map[string]string `json:"labels"`
	// Annotations describe it.
	Annotations map[string]string `json:"annotations"`
	// StartsAt is when it began.
	StartsAt time.Time `json:"startsAt"`
	// EndsAt is when it ended; zero while firing.
	EndsAt time.Time `json:"endsAt"`
	// GeneratorURL links to the incident.
	GeneratorURL string `json:"generatorURL"`
	// Fingerprint is the hash of the labels, as Alertmanager computes it.
	Fingerprint string `json:"fingerprint"`
}

// Alertmanager posts Alertmanager webhook payloads.
type Alertmanager struct {
	name   string
	url    string
	client *http.Client
}

// NewAlertmanager returns a receiver named name posting to url.
func NewAlertmanager(name, url string, client *http.Client) (*Alertmanager, error) {
	if url == "" {
		return nil, errors.New("alert: an Alertmanager webhook needs a URL")
	}
	return &Alertmanager{name: name, url: url, client: client}, nil
}

// alertName returns the alertname of kind k; the kinds that resolve share
// the name of what they resolve.
func alertName(k Kind) string {
	switch k {
	case KindTripped, KindResolved:
		return "BreakwaterBreakerTripped"
	case KindOverrideSet:
		return "BreakwaterOverrideSet"
	case KindOverrideExpiring:
		return "BreakwaterOverrideExpiring"
	case KindHeldOverdue:
		return "BreakwaterHeldOverdue"
	case KindStoreUnreachable, KindStoreReachable:
		return "BreakwaterStoreUnreachable"
	case KindConsumerLag:
		return "BreakwaterConsumerLag"
	case KindBreakGlass:
		return "BreakwaterBreakGlass"
	case KindReversalDone:
		return "BreakwaterReversalDone"
	}
	return "Breakwater"
}

// AlertmanagerMessageOf returns the payload of n for the receiver name.
func AlertmanagerMessageOf(name string, n Notification) AlertmanagerMessage {
	status := "firing"
	if !n.Firing() {
		status = "resolved"
	}
	m := AlertmanagerMessage{
		Version: "4", Status: status, Receiver: name, ExternalURL: n.AdminURL,
		GroupLabels: map[string]string{"alertname": alertName(n.Kind)},
	}
	for _, e := range n.Events {
		labels := map[string]string{"alertname": alertName(n.Kind), "severity": string(n.Severity), "service": "breakwater"}
		if e.Scope != "" {
			labels["scope"] = string(e.Scope)
		}
		if e.Incident != "" {
			labels["incident"] = e.Incident
		}
		ann := map[string]string{"summary": e.Summary}
		if e.Figures.Reason != "" {
			ann["reason"] = e.Figures.Reason
		}
		if b, err := json.Marshal(e.Figures); err == nil {
			ann["figures"] = string(b)
		}
		a := AlertmanagerAlert{
			Status: status, Labels: labels, Annotations: ann, StartsAt: e.At.UTC(),
			GeneratorURL: e.Link, Fingerprint: fingerprint(labels),
		}
		if status == "resolved" {
			a.EndsAt = e.At.UTC()
		}
		m.Alerts = append(m.Alerts, a)
	}
	m.CommonLabels = commonOf(m.Alerts, func(a AlertmanagerAlert) map[string]string { return a.Labels })
	m.CommonAnnotations = commonOf(m.Alerts, func(a AlertmanagerAlert) map[string]string { return a.Annotations })
	m.GroupKey = "{}:{alertname=\"" + alertName(n.Kind) + "\"}/" + n.Key
	return m
}

// fingerprint hashes labels as Alertmanager does.
func fingerprint(labels map[string]string) string {
	ls := make(model.LabelSet, len(labels))
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}

// commonOf returns the pairs every alert has.
func commonOf(alerts []AlertmanagerAlert, get func(AlertmanagerAlert) map[string]string) map[string]string {
	out := map[string]string{}
	if len(alerts) == 0 {
		return out
	}
	keys := make([]string, 0)
	for k := range get(alerts[0]) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := get(alerts[0])[k]
		same := true
		for _, a := range alerts[1:] {
			if w, ok := get(a)[k]; !ok || w != v {
				same = false
				break
			}
		}
		if same {
			out[k] = v
		}
	}
	return out
}

// Notify posts n. Acknowledgements are not sent: Alertmanager has none,
// and a firing alert would page instead.
func (a *Alertmanager) Notify(ctx context.Context, n Notification) error {
	if n.Kind == KindAcknowledged {
		return nil
	}
	body, err := json.Marshal(AlertmanagerMessageOf(a.name, n))
	if err != nil {
		return err
	}
	return post(ctx, a.client, a.url, body, http.Header{IdempotencyHeader: {n.Key}})
}

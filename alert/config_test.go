package alert

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/config"
)

// TestRoutesFrom builds the receivers of a configuration and checks that
// each speaks its format and that a redirect is not followed.
func TestRoutesFrom(t *testing.T) {
	target := newSink(t)
	redirect := newSink(t, http.StatusFound)
	redirect.header.Set("Location", target.srv.URL)
	s := newSinks(t)
	routes, err := RoutesFrom([]config.Receiver{
		{Name: "hook", Type: config.ReceiverWebhook, URL: s.webhook.srv.URL, Secret: "k", Severities: []string{"critical"}, Timeout: time.Second},
		{Name: "slack", Type: config.ReceiverSlack, URL: s.slack.srv.URL, Timeout: time.Second},
		{Name: "pd", Type: config.ReceiverPagerDuty, URL: s.pagerduty.srv.URL, Secret: "rk", Timeout: time.Second},
		{Name: "am", Type: config.ReceiverAlertmanager, URL: s.alertmanager.srv.URL, Timeout: time.Second},
		{Name: "moved", Type: config.ReceiverAlertmanager, URL: redirect.srv.URL, Timeout: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := Notification{Key: "bw/1", Kind: KindTripped, Severity: SeverityCritical, Events: []Event{event(t, tripOf("global", 1, time.Now()))}}
	for _, r := range routes[:4] {
		if err := r.Notifier.Notify(context.Background(), n); err != nil {
			t.Errorf("route %s: Notify = %v", r.Name, err)
		}
	}
	if !routes[0].accepts(SeverityCritical) || routes[0].accepts(SeverityWarning) {
		t.Errorf("route hook severities = %v; want critical only", routes[0].Severities)
	}
	checks := map[string]func(request) bool{
		"hook":  func(r request) bool { return Verify([]byte("k"), r.Body, r.Header.Get(SignatureHeader)) },
		"slack": func(r request) bool { return strings.Contains(string(r.Body), `"blocks"`) },
		"pd":    func(r request) bool { return strings.Contains(string(r.Body), `"routing_key":"rk"`) },
		"am":    func(r request) bool { return strings.Contains(string(r.Body), `"version":"4"`) },
	}
	for name, k := range s.all() {
		rs := k.requests()
		if len(rs) != 1 || !checks[name](rs[0]) {
			t.Errorf("receiver %s got %d requests, first %q; want one in its format", name, len(rs), rs)
		}
	}
	err = routes[4].Notifier.Notify(context.Background(), n)
	var de *DeliveryError
	if !errors.As(err, &de) || de.Status != http.StatusFound || !permanent(err) {
		t.Errorf("Notify through a redirect = %v; want a permanent 302", err)
	}
	if len(target.requests()) != 0 {
		t.Errorf("the redirect was followed")
	}
}

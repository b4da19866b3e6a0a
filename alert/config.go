package alert

import (
	"fmt"
	"net/http"

	"github.com/breakwater/breakwater/config"
)

// RoutesFrom builds the routes of the configured receivers. Every receiver
// gets its own HTTP client with the receiver's timeout, which does not
// follow redirects (a redirect is answered as a failure, never sent on to
// an address that was not configured).
func RoutesFrom(receivers []config.Receiver) ([]Route, error) {
	routes := make([]Route, 0, len(receivers))
	for i, r := range receivers {
		client := &http.Client{
			Timeout:       r.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		var (
			n   Notifier
			err error
		)
		switch r.Type {
		case config.ReceiverWebhook:
			n, err = NewWebhook(r.URL, r.Secret, client)
		case config.ReceiverSlack:
			n, err = NewSlack(r.URL, client)
		case config.ReceiverPagerDuty:
			n, err = NewPagerDuty(r.URL, r.Secret, client)
		case config.ReceiverAlertmanager:
			n, err = NewAlertmanager(r.Name, r.URL, client)
		default:
			err = fmt.Errorf("unknown type %q", r.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("alerts.receivers[%d] (%s): %w", i, r.Name, err)
		}
		sev := make([]Severity, len(r.Severities))
		for j, s := range r.Severities {
			sev[j] = Severity(s)
		}
		routes = append(routes, Route{Name: r.Name, Severities: sev, Notifier: n})
	}
	return routes, nil
}

package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const alertsYAML = `
alerts:
  receivers:
    - name: on-call
      type: pagerduty
      secret_env: PD_KEY
    - name: slack
      type: slack
      url_env: SLACK_URL
    - name: hook
      type: webhook
      url: https://hooks.example.com/x
      secret: from-file
`

func TestAlertsEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(alertsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                        string
		env                         map[string]string
		pdKey, slackURL, hookSecret string
		err                         string
	}{
		{
			name:  "secret_env and url_env",
			env:   map[string]string{"PD_KEY": "k1", "SLACK_URL": "https://hooks.slack.com/services/A"},
			pdKey: "k1", slackURL: "https://hooks.slack.com/services/A", hookSecret: "from-file",
		},
		{
			name: "BREAKWATER_ALERT_ variables win",
			env: map[string]string{
				"PD_KEY": "k1", "BREAKWATER_ALERT_ON_CALL_SECRET": "k2",
				"SLACK_URL": "https://a.example.com", "BREAKWATER_ALERT_SLACK_URL": "https://b.example.com",
				"BREAKWATER_ALERT_HOOK_SECRET": "from-env",
			},
			pdKey: "k2", slackURL: "https://b.example.com", hookSecret: "from-env",
		},
		{
			name: "empty values are ignored",
			env:  map[string]string{"PD_KEY": "", "SLACK_URL": "https://a.example.com"},
			err:  "alerts.receivers[0].secret: the PagerDuty routing key: set BREAKWATER_ALERT_ON_CALL_SECRET, secret_env or secret",
		},
		{
			name: "a URL from the environment is validated",
			env:  map[string]string{"PD_KEY": "k", "SLACK_URL": "hooks.slack.com/x"},
			err:  "alerts.receivers[1].url: must be an http or https URL with a host (value not shown)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			c, err := LoadWithEnv(path, lookup)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("LoadWithEnv = %v; want an error containing %q", err, tc.err)
				}
				for _, v := range tc.env {
					if v != "" && strings.Contains(err.Error(), v) {
						t.Errorf("LoadWithEnv error %q shows the value %q", err, v)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadWithEnv = %v", err)
			}
			rs := c.Alerts.Receivers
			if rs[0].Secret != tc.pdKey || rs[1].URL != tc.slackURL || rs[2].Secret != tc.hookSecret {
				t.Errorf("secrets = %q, %q, %q; want %q, %q, %q", rs[0].Secret, rs[1].URL, rs[2].Secret, tc.pdKey, tc.slackURL, tc.hookSecret)
			}
			if rs[0].URL != PagerDutyEventsURL || rs[0].Timeout != 10*time.Second || !reflect.DeepEqual(rs[1].Severities, AlertSeverities) {
				t.Errorf("defaults = %q, %s, %v; want the PagerDuty URL, 10s and every severity", rs[0].URL, rs[0].Timeout, rs[1].Severities)
			}
		})
	}
}

func TestAlertsRedacted(t *testing.T) {
	const slackURL = "https://hooks.slack.com/services/T0/B0/sekrit-token"
	c, err := Parse([]byte(alertsYAML + "      timeout: 0s\n"))
	if err == nil {
		t.Fatal("Parse with an unset url and secret = nil error; want one")
	}
	c, err = Parse([]byte(strings.NewReplacer("secret_env: PD_KEY", "secret: pd-sekrit", "url_env: SLACK_URL", "url: "+slackURL).Replace(alertsYAML)))
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"json": string(j), "Redacted": fmt.Sprintf("%+v", r.Alerts.Receivers[1].Secret+r.Alerts.Receivers[1].URL+r.Alerts.Receivers[0].Secret),
	}
	for name, out := range outputs {
		for _, s := range []string{"pd-sekrit", "sekrit-token", "from-file", "hooks.example.com"} {
			if strings.Contains(out, s) {
				t.Errorf("%s shows %q: %s", name, s, out)
			}
		}
	}
	if c.Alerts.Receivers[1].URL != slackURL {
		t.Errorf("Redacted changed the original URL to %q", c.Alerts.Receivers[1].URL)
	}
	r.Alerts.Receivers[0].Severities[0] = "changed"
	if c.Alerts.Receivers[0].Severities[0] != "critical" {
		t.Errorf("Redacted shares the severities with the original")
	}
}

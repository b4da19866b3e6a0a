package admin_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/admintest"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/reversal"
)

// decisionOf waits for the action id on the gated or the held topic and
// returns the topic and the record.
func decisionOf(t *testing.T, bed *admintest.Bed, id string) (string, testbed.Record) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, topic := range []string{admintest.Topics.Gated, admintest.Topics.Held} {
			for _, r := range bed.Kafka.ReadAll(t, topic, 5*time.Second) {
				if strings.Contains(string(r.Value), fmt.Sprintf(`"action_id":%q`, id)) {
					return topic, r
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is on neither the gated nor the held topic after 60s", id)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSuppressionAfterReversal: once a reversal undid rule-a's actions,
// rule-a's next action on a reversed target is held, with the
// suppression as its hold reason, while another rule's action on it and
// rule-a's on another target are gated; after reversals.suppress_for it is
// gated again. The daemon that decides is not the one that reversed, and
// Redis lost its data in between: the suppression comes from the
// reversals topic.
func TestSuppressionAfterReversal(t *testing.T) {
	const suppressFor = 40 * time.Second
	bed := admintest.NewBed(t, 2)
	cfg := withSeconds(bed.Config(t, 10))
	cfg.Reversals.SuppressFor = suppressFor
	d := admintest.StartDaemon(t, cfg)
	forwarded, inc := lateTrip(t, bed, d.URL, 10, 30)
	if forwarded["early-0001"] != "u-1" {
		t.Fatalf("early-0001 went to %q; want u-1", forwarded["early-0001"])
	}
	op, vw := tok(config.RoleOperator), tok(config.RoleViewer)
	var ap api.Approval
	if code := call(t, d.URL, "POST", "/v1/incidents/"+url.PathEscape(inc.ID)+"/reversal", op, `{"reason":"the rule misfired"}`, &ap); code != 202 {
		t.Fatalf("reversal request = %d", code)
	}
	if code := approve(t, d.URL, operator2, ap, ap.PayloadSHA256, nil); code != 200 {
		t.Fatalf("approval = %d", code)
	}
	var job api.Reversal
	admintest.WaitFor(t, 60*time.Second, func() string { return fmt.Sprintf("reversal %+v", job) }, func() bool {
		call(t, d.URL, "GET", "/v1/reversals/"+ap.ID, vw, "", &job)
		return job.Status == "done"
	})
	var until time.Time
	for _, r := range bed.Kafka.ReadAll(t, admintest.ReversalsTopic, 10*time.Second) {
		var rec reversal.Record
		if err := json.Unmarshal(r.Value, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.ActionID == "early-0001" {
			until = rec.ReversedAt.Add(suppressFor)
		}
	}
	if until.IsZero() {
		t.Fatal("early-0001 is not on the reversals topic")
	}

	// Another replica, after Redis lost its data.
	d.Stop(t)
	bed.Redis.Restart(t)
	d = admintest.StartDaemon(t, cfg)
	if code := call(t, d.URL, "POST", "/v1/breakers/"+url.PathEscape("rule:rule-a")+"/reset", op, `{"reason":"fixed"}`, nil); code != 200 {
		t.Fatalf("reset = %d", code)
	}
	now := time.Now()
	bed.Kafka.Produce(t, admintest.Topics.Input,
		admintest.Event("again-u1", "rule-a", "remove_pin", "u-1", now),
		admintest.Event("other-rule-u1", "rule-b", "warn", "u-1", now),
		admintest.Event("again-u99", "rule-a", "remove_pin", "u-99", now))
	topic, rec := decisionOf(t, bed, "again-u1")
	if time.Now().After(until) {
		t.Fatalf("the test took longer than the suppression (%s) to see the decision", suppressFor)
	}
	if reason := header(rec, "breakwater-reason"); topic != admintest.Topics.Held || !strings.HasPrefix(reason, "suppressed: ") ||
		!strings.Contains(reason, ap.ID) || header(rec, "breakwater-incident") != "" {
		t.Errorf("rule-a's next action on a reversed target went to %s, reason %q; want held without an incident, suppressed by reversal %s", topic, reason, ap.ID)
	}
	if topic, _ := decisionOf(t, bed, "other-rule-u1"); topic != admintest.Topics.Gated {
		t.Errorf("rule-b's action on the reversed target went to %s; want gated", topic)
	}
	if topic, _ := decisionOf(t, bed, "again-u99"); topic != admintest.Topics.Gated {
		t.Errorf("rule-a's action on another target went to %s; want gated", topic)
	}
	// The API shows why it is held.
	var page api.HeldPage
	admintest.WaitFor(t, 30*time.Second, func() string { return fmt.Sprintf("held %+v", page) }, func() bool {
		call(t, d.URL, "GET", "/v1/held?incident="+url.QueryEscape("rule:rule-a@0"), vw, "", &page)
		return len(page.Items) == 1
	})
	if h := page.Items[0]; h.ActionID != "again-u1" || !strings.HasPrefix(h.HoldReason, "suppressed: ") {
		t.Errorf("held = %+v; want again-u1 with its suppression as the hold reason", h)
	}

	// After the suppression time, rule-a acts on u-1 again.
	time.Sleep(time.Until(until) + 2*time.Second)
	bed.Kafka.Produce(t, admintest.Topics.Input, admintest.Event("later-u1", "rule-a", "remove_pin", "u-1", time.Now()))
	if topic, _ := decisionOf(t, bed, "later-u1"); topic != admintest.Topics.Gated {
		t.Errorf("rule-a's action on u-1 after the suppression went to %s; want gated", topic)
	}
}

package console_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/admintest"
	"github.com/breakwater/breakwater/internal/testbed"
)

// TestConsoleApproval drives two-person approval in headless Chromium: an
// operator forces a breaker that holds into shadow from its page, which
// becomes a pending request with no Review button for its requester; a
// second person, in a tab of their own, reviews the exact payload on the
// Approvals page and approves it, which applies it.
func TestConsoleApproval(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium and a daemon")
	}
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("%s not found: install it with apt-get install -y chromium", chromium)
	}
	bed := admintest.NewBed(t, 2)
	cfg := bed.Config(t, 1000)
	// Rules without thresholds of their own (rule-b) take the defaults,
	// here without probation; rule-a keeps the 30m it was loaded with.
	cfg.Breakers.Defaults.Probation = 0
	d := admintest.StartDaemon(t, cfg)
	const scope = "rule:rule-a"
	scopePath := strings.ReplaceAll(scope, ":", "%3A")

	ctx := startBrowser(t, 4*time.Minute)
	w := &watcher{origin: d.URL}
	w.listen(ctx)
	signIn(t, ctx, d.URL, admintest.Tokens[config.RoleOperator])

	// Force it open (never asks), then ask for shadow.
	run(t, ctx, "force open",
		chromedp.Navigate(d.URL+"/ui/#/breaker/"+scopePath),
		chromedp.WaitVisible("#controls", chromedp.ByID),
		chromedp.Click(`//div[@id="controls"]/button[text()="Force open"]`, chromedp.BySearch),
		chromedp.SendKeys("#reason", "kill switch", chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//div[@id="banner" and contains(., "→ forced_open")]`, chromedp.BySearch),
		poll(`document.querySelector(".tools .state") && document.querySelector(".tools .state").textContent.includes("forced")`))
	run(t, ctx, "ask for shadow",
		chromedp.Click(`//div[@id="controls"]/button[text()="Shadow"]`, chromedp.BySearch),
		chromedp.WaitVisible("#break-glass", chromedp.ByID),
		chromedp.SendKeys("#reason", "watch the new model", chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//div[@id="banner" and contains(., "Needs a second person")]`, chromedp.BySearch))
	var own int
	run(t, ctx, "the requester's approvals page",
		chromedp.Click(`#nav a[data-nav="approvals"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#approvals tr[data-status="pending"]`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('#approvals button[data-act="review"]').length`, &own))
	if own != 0 {
		t.Errorf("the requester sees %d Review buttons on their own request; want none", own)
	}
	var b api.Breaker
	apiGet(t, d.URL, admintest.Tokens[config.RoleViewer], "/v1/breakers/"+scope, &b)
	if b.State != "forced_open" {
		t.Fatalf("before the approval the breaker is %s; want forced_open", b.State)
	}

	// A second person approves in a tab of their own.
	actx2, cancel2 := chromedp.NewContext(ctx)
	defer cancel2()
	if err := chromedp.Run(actx2); err != nil {
		t.Fatal(err)
	}
	w2 := &watcher{origin: d.URL}
	w2.listen(actx2)
	signIn(t, actx2, d.URL, admintest.Tokens[config.RoleAdmin])
	var payload string
	run(t, actx2, "review the request",
		chromedp.Navigate(d.URL+"/ui/#/approvals"),
		chromedp.WaitVisible(`#approvals tr[data-status="pending"] button[data-act="review"]`, chromedp.ByQuery),
		chromedp.Click(`#approvals tr[data-status="pending"] button[data-act="review"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#approval-payload", chromedp.ByID),
		chromedp.Text("#approval-payload", &payload, chromedp.ByID))
	if !strings.Contains(payload, `"shadow"`) || !strings.Contains(payload, "watch the new model") {
		t.Errorf("the reviewed payload is %q; want the shadow request and its reason", payload)
	}
	run(t, actx2, "approve it",
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//div[@id="banner" and contains(., "Approved and applied")]`, chromedp.BySearch))
	apiGet(t, d.URL, admintest.Tokens[config.RoleViewer], "/v1/breakers/"+scope, &b)
	if b.State != "shadow" || b.Actor != admintest.Name(config.RoleOperator) {
		t.Errorf("after the approval the breaker is %+v; want shadow set by the requester", b.Status)
	}
	run(t, ctx, "the requester sees it applied",
		chromedp.Click(`#f-status`, chromedp.ByID),
		chromedp.SetValue("#f-status", "", chromedp.ByID),
		chromedp.Evaluate(`document.getElementById("f-status").dispatchEvent(new Event("change"))`, nil),
		chromedp.WaitVisible(`//table[@id="approvals"]//tr[@data-status="applied" and contains(., "`+admintest.Name(config.RoleAdmin)+`")]`, chromedp.BySearch))
	run(t, actx2, "the audit trail names both",
		chromedp.Click(`#nav a[data-nav="audit"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//table[@id="audit"]//tr[@data-kind="override" and contains(., "approved by `+admintest.Name(config.RoleAdmin)+`")]`, chromedp.BySearch))

	// Without probation, resetting a breaker that holds closes it
	// outright: the dialog says so and offers break-glass, and the reset
	// waits for a second person like forcing it closed.
	const bare = "rule:rule-b"
	barePath := strings.ReplaceAll(bare, ":", "%3A")
	var dialog string
	run(t, ctx, "force rule-b open",
		chromedp.Navigate(d.URL+"/ui/#/breaker/"+barePath),
		chromedp.WaitVisible("#controls", chromedp.ByID),
		chromedp.Click(`//div[@id="controls"]/button[text()="Force open"]`, chromedp.BySearch),
		chromedp.SendKeys("#reason", "hold it", chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//div[@id="banner" and contains(., "→ forced_open")]`, chromedp.BySearch),
		poll(`document.querySelector(".tools .state") && document.querySelector(".tools .state").textContent.includes("forced")`))
	run(t, ctx, "ask for a reset",
		chromedp.Click(`//div[@id="controls"]/button[text()="Reset"]`, chromedp.BySearch),
		chromedp.WaitVisible("#break-glass", chromedp.ByID),
		chromedp.Text("#dialog", &dialog, chromedp.ByID),
		chromedp.SendKeys("#reason", "false alarm", chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//div[@id="banner" and contains(., "Needs a second person") and contains(., "closing it outright")]`, chromedp.BySearch))
	if !strings.Contains(dialog, "outright") || !strings.Contains(dialog, "second operator") {
		t.Errorf("the reset dialog says %q; want that it closes the breaker outright and asks a second operator", dialog)
	}
	apiGet(t, d.URL, admintest.Tokens[config.RoleViewer], "/v1/breakers/"+bare, &b)
	if b.State != "forced_open" {
		t.Fatalf("before the reset's approval %s is %s; want forced_open", bare, b.State)
	}
	run(t, actx2, "review the reset",
		chromedp.Navigate(d.URL+"/ui/#/approvals"),
		chromedp.WaitVisible(`#approvals tr[data-status="pending"] button[data-act="review"]`, chromedp.ByQuery),
		chromedp.Click(`#approvals tr[data-status="pending"] button[data-act="review"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#approval-payload", chromedp.ByID),
		chromedp.Text("#approval-payload", &payload, chromedp.ByID))
	if !strings.Contains(payload, `"probation": "0s"`) || !strings.Contains(payload, "false alarm") {
		t.Errorf("the reviewed payload is %q; want the reset's reason and probation 0s", payload)
	}
	run(t, actx2, "approve the reset",
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//div[@id="banner" and contains(., "Approved and applied")]`, chromedp.BySearch))
	apiGet(t, d.URL, admintest.Tokens[config.RoleViewer], "/v1/breakers/"+bare, &b)
	if b.State != "closed" || b.Actor != admintest.Name(config.RoleOperator) {
		t.Errorf("after the reset's approval %s is %+v; want closed by the requester", bare, b.Status)
	}
	w.check(t)
	w2.check(t)
}

// TestConsoleReversal drives a reversal in headless Chromium: an incident
// that tripped late shows what it let through; an operator requests its
// reversal from the incident's page, gets no Review button on it and is
// refused when approving it with their own session; a second person
// approves it on the Approvals page and follows it there until it is done;
// the reversals topic then has one record per forwarded action.
func TestConsoleReversal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium and a daemon")
	}
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("%s not found: install it with apt-get install -y chromium", chromium)
	}
	bed := admintest.NewBed(t, 2)
	d := admintest.StartDaemon(t, bed.Config(t, 10))
	now := time.Now()
	var early []testbed.Record
	for i := range 8 {
		early = append(early, admintest.Event(fmt.Sprintf("early-%d", i), "rule-a", "remove_pin", fmt.Sprintf("u-%d", i), now))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, early...)
	deadline := time.Now().Add(30 * time.Second)
	for len(bed.Kafka.ReadAll(t, admintest.Topics.Gated, 10*time.Second)) < 8 {
		if time.Now().After(deadline) {
			t.Fatal("the early actions did not reach gated within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var late []testbed.Record
	for i := range 30 {
		late = append(late, admintest.Event(fmt.Sprintf("late-%d", i), "rule-a", "remove_pin", fmt.Sprintf("u-%d", i), now))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, late...)
	var inc api.Incident
	for {
		var l api.Incidents
		apiGet(t, d.URL, admintest.Tokens[config.RoleViewer], "/v1/incidents", &l)
		if len(l.Incidents) == 1 && l.Incidents[0].Held == 30 {
			inc = l.Incidents[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incidents = %+v; want one holding 30", l.Incidents)
		}
		time.Sleep(100 * time.Millisecond)
	}

	ctx := startBrowser(t, 4*time.Minute)
	w := &watcher{origin: d.URL}
	w.listen(ctx)
	signIn(t, ctx, d.URL, admintest.Tokens[config.RoleOperator])
	run(t, ctx, "request the reversal",
		chromedp.Navigate(d.URL+"/ui/#/incident/"+url.PathEscape(inc.ID)),
		chromedp.WaitVisible(`#reversal-count[data-candidates="8"]`, chromedp.ByQuery),
		chromedp.Click("#request-reversal", chromedp.ByID),
		chromedp.WaitVisible("#reversal-reason", chromedp.ByID),
		chromedp.SendKeys("#reversal-reason", "the rule misfired", chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//div[@id="banner" and contains(., "Needs a second person")]`, chromedp.BySearch))
	// The requester gets no Review button on their own request, and an
	// approval forged with their session is refused.
	var own, status int
	w.allow("/approve")
	run(t, ctx, "the requester cannot approve it",
		chromedp.Click(`#nav a[data-nav="approvals"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#approvals tr[data-status="pending"]`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('#approvals button[data-act="review"]').length`, &own),
		evalAwait(`(async () => {
			const h = {"Authorization": "Bearer " + sessionStorage.getItem("breakwater.token"), "Content-Type": "application/json"};
			const l = await (await fetch("/v1/approvals", {headers: h})).json();
			const ap = l.approvals.find(a => a.operation === "reversal" && a.status === "pending");
			const r = await fetch("/v1/approvals/" + ap.id + "/approve", {method: "POST", headers: h,
				body: JSON.stringify({payload_sha256: ap.payload_sha256})});
			return r.status;
		})()`, &status))
	if own != 0 {
		t.Errorf("the requester sees %d Review buttons on their own reversal request; want none", own)
	}
	if status != 403 {
		t.Errorf("the requester's own approval of the reversal = %d; want 403", status)
	}
	if n := len(bed.Kafka.ReadAll(t, admintest.ReversalsTopic, 2*time.Second)); n != 0 {
		t.Fatalf("%d reversal records before a second person approved; want none", n)
	}

	actx2, cancel2 := chromedp.NewContext(ctx)
	defer cancel2()
	if err := chromedp.Run(actx2); err != nil {
		t.Fatal(err)
	}
	w2 := &watcher{origin: d.URL}
	w2.listen(actx2)
	signIn(t, actx2, d.URL, admintest.Tokens[config.RoleAdmin])
	var payload string
	run(t, actx2, "approve the reversal and follow it",
		chromedp.Navigate(d.URL+"/ui/#/approvals"),
		chromedp.WaitVisible(`#approvals tr[data-status="pending"] button[data-act="review"]`, chromedp.ByQuery),
		chromedp.Click(`#approvals tr[data-status="pending"] button[data-act="review"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#approval-payload", chromedp.ByID),
		chromedp.Text("#approval-payload", &payload, chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//div[@id="banner" and contains(., "Approved and applied")]`, chromedp.BySearch),
		chromedp.WaitVisible(`#reversals tr[data-status="done"]`, chromedp.ByQuery))
	if !strings.Contains(payload, "early-0") || !strings.Contains(payload, "the rule misfired") {
		t.Errorf("the reviewed payload is %q; want the forwarded ids and the reason", payload)
	}
	seen := map[string]int{}
	for _, r := range bed.Kafka.ReadAll(t, admintest.ReversalsTopic, 10*time.Second) {
		var rec struct {
			ActionID   string `json:"action_id"`
			ApprovedBy string `json:"approved_by"`
		}
		_ = json.Unmarshal(r.Value, &rec)
		seen[rec.ActionID]++
		if rec.ApprovedBy != admintest.Name(config.RoleAdmin) {
			t.Errorf("reversal of %s approved by %q; want %s", rec.ActionID, rec.ApprovedBy, admintest.Name(config.RoleAdmin))
		}
	}
	for i := range 8 {
		if id := fmt.Sprintf("early-%d", i); seen[id] != 1 {
			t.Errorf("%s is on the reversals topic %d times; want once", id, seen[id])
		}
	}
	if len(seen) != 8 {
		t.Errorf("%d actions reversed; want the 8 forwarded", len(seen))
	}
	w.check(t)
	w2.check(t)
}

// TestConsoleAppeals drives the Appeals page in headless Chromium: the
// estimates per rule and model version, and turning the appeals trip off,
// which waits for a second person (no Review button for the requester)
// who approves it on the Approvals page; the requester's page then shows
// it off, and turning it on applies at once.
func TestConsoleAppeals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium and a daemon")
	}
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("%s not found: install it with apt-get install -y chromium", chromium)
	}
	const appealsTopic = "moderation.appeals"
	bed := admintest.NewBed(t, 2)
	bed.Kafka.CreateTopic(t, appealsTopic, 1)
	cfg, err := config.Parse([]byte(bed.YAML(1e6) + "appeals:\n  enabled: true\n  topic: " + appealsTopic + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := admintest.StartDaemon(t, cfg)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var acts, outs []testbed.Record
	for i := range 3 {
		id := fmt.Sprintf("act-%d", i)
		acts = append(acts, testbed.KV(id, fmt.Sprintf(`{"action_id":%q,"rule_id":"rule-a","action":"warn","target":{"type":"account","id":"u-%d"},"occurred_at":%q,"model":{"name":"clf","version":"v1"}}`, id, i, now)))
		o := "overturned"
		if i == 0 {
			o = "upheld"
		}
		outs = append(outs, testbed.KV(id, fmt.Sprintf(`{"action_id":%q,"outcome":%q,"decided_at":%q}`, id, o, now)))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, acts...)
	// An outcome is joined once its action is: send them until all three
	// are judged (a second outcome of a judged action changes nothing).
	var es api.AppealsEstimates
	admintest.WaitFor(t, 60*time.Second, func() string { return fmt.Sprintf("estimates %+v", es) }, func() bool {
		bed.Kafka.Produce(t, appealsTopic, outs...)
		time.Sleep(500 * time.Millisecond)
		es = api.AppealsEstimates{}
		apiGet(t, d.URL, admintest.Tokens[config.RoleViewer], "/v1/appeals", &es)
		return len(es.Estimates) == 2 && es.Estimates[0].Outcomes == 3
	})

	ctx := startBrowser(t, 4*time.Minute)
	w := &watcher{origin: d.URL}
	w.listen(ctx)
	signIn(t, ctx, d.URL, admintest.Tokens[config.RoleOperator])
	var row string
	run(t, ctx, "the estimates",
		chromedp.Click(`#nav a[data-nav="appeals"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#appeals-estimates tr[data-scope="rule:rule-a|model:v1"]`, chromedp.ByQuery),
		chromedp.Text(`#appeals-estimates tr[data-scope="rule:rule-a|model:v1"]`, &row, chromedp.ByQuery),
		chromedp.WaitVisible(`#appeals-switch[data-enabled="true"]`, chromedp.ByQuery))
	if !strings.Contains(row, "v1") || !strings.Contains(row, "2 (67%)") {
		t.Errorf("the estimate row of v1 reads %q; want 3 outcomes, 2 (67%%) overturned", row)
	}
	run(t, ctx, "ask to turn the trip off",
		chromedp.Click("#appeals-toggle", chromedp.ByID),
		chromedp.WaitVisible("#break-glass", chromedp.ByID),
		chromedp.SendKeys("#reason", "the appeals backlog is re-decided", chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//div[@id="banner" and contains(., "Needs a second person")]`, chromedp.BySearch))
	var own int
	run(t, ctx, "the requester's approvals page",
		chromedp.Click(`#nav a[data-nav="approvals"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#approvals tr[data-status="pending"]`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('#approvals button[data-act="review"]').length`, &own))
	if own != 0 {
		t.Errorf("the requester sees %d Review buttons on their own request; want none", own)
	}
	var sw api.AppealsTrip
	apiGet(t, d.URL, admintest.Tokens[config.RoleViewer], "/v1/appeals/trip", &sw)
	if !sw.Enabled {
		t.Fatalf("before the approval the trip is %+v; want on", sw)
	}

	actx2, cancel2 := chromedp.NewContext(ctx)
	defer cancel2()
	if err := chromedp.Run(actx2); err != nil {
		t.Fatal(err)
	}
	w2 := &watcher{origin: d.URL}
	w2.listen(actx2)
	signIn(t, actx2, d.URL, admintest.Tokens[config.RoleAdmin])
	var payload string
	run(t, actx2, "approve it",
		chromedp.Navigate(d.URL+"/ui/#/approvals"),
		chromedp.WaitVisible(`#approvals tr[data-status="pending"] button[data-act="review"]`, chromedp.ByQuery),
		chromedp.Click(`#approvals tr[data-status="pending"] button[data-act="review"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#approval-payload", chromedp.ByID),
		chromedp.Text("#approval-payload", &payload, chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//div[@id="banner" and contains(., "Approved and applied")]`, chromedp.BySearch))
	if !strings.Contains(payload, `"enabled": false`) && !strings.Contains(payload, `"enabled":false`) || !strings.Contains(payload, "backlog") {
		t.Errorf("the reviewed payload is %q; want turning the trip off and the reason", payload)
	}
	run(t, ctx, "the requester sees it off, and turns it on",
		chromedp.Click(`#nav a[data-nav="appeals"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//p[@id="appeals-switch" and @data-enabled="false" and contains(., "approved by `+admintest.Name(config.RoleAdmin)+`")]`, chromedp.BySearch),
		chromedp.Click("#appeals-toggle", chromedp.ByID),
		chromedp.WaitVisible("#reason", chromedp.ByID),
		chromedp.SendKeys("#reason", "re-decided", chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//div[@id="banner" and contains(., "The appeals trip is on")]`, chromedp.BySearch),
		chromedp.WaitVisible(`#appeals-switch[data-enabled="true"]`, chromedp.ByQuery))
	w.check(t)
	w2.check(t)
}

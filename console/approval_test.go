package console_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/admintest"
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
	d := admintest.StartDaemon(t, bed.Config(t, 1000))
	const scope = "rule:rule-a"
	scopePath := strings.ReplaceAll(scope, ":", "%3A")

	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1360, 900))
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	if err := chromedp.Run(ctx); err != nil {
		t.Fatal(err)
	}
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
	w.check(t)
	w2.check(t)
}

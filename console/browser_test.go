package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"go.uber.org/goleak"

	"github.com/breakwater/breakwater/alert"
	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/history"
	"github.com/breakwater/breakwater/internal/admintest"
	"github.com/breakwater/breakwater/internal/testbed"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// chromium is Debian's browser; the test never downloads one.
const chromium = "/usr/bin/chromium"

// startBrowser starts headless Chromium (the flags the project runs it
// with, a 1360x900 window) and returns its context, which ends after
// timeout; the browser stops when t ends.
func startBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1360, 900))
	ctx, cancelBrowser := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Run(ctx); err != nil { // starts the browser, owned by ctx
		t.Fatal(err)
	}
	return ctx
}

// artifacts is the git-ignored directory the screenshots are kept in.
var artifacts = filepath.Join("..", "testdata-artifacts")

// watcher collects what must not happen in a session: exceptions, console
// errors, and requests to anywhere but the daemon.
type watcher struct {
	origin string
	// also are other origins the session may reach (an identity provider).
	also []string
	mu   sync.Mutex // guards the fields below
	// allowed are URL substrings of requests expected to fail (a forged
	// write), whose failure the browser logs as an error.
	allowed  []string
	problems []string
	requests int
	urls     map[network.RequestID]string // the URL of each request, for failures
}

func (w *watcher) listen(ctx context.Context) {
	chromedp.ListenTarget(ctx, func(ev any) {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			w.problems = append(w.problems, "exception: "+e.ExceptionDetails.Text+" "+describe(e.ExceptionDetails.Exception))
		case *runtime.EventConsoleAPICalled:
			if os.Getenv("DEBUG_CONSOLE") != "" {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value))
				}
				fmt.Println("console:", strings.Join(args, " "))
			}
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeWarning {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				w.problems = append(w.problems, fmt.Sprintf("console %s: %s", e.Type, strings.Join(args, " ")))
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.LevelError || e.Entry.Level == cdplog.LevelWarning {
				for _, a := range w.allowed {
					if strings.Contains(e.Entry.URL, a) {
						return
					}
				}
				w.problems = append(w.problems, fmt.Sprintf("log %s: %s %s", e.Entry.Level, e.Entry.Text, e.Entry.URL))
			}
		case *network.EventRequestWillBeSent:
			w.requests++
			if w.urls == nil {
				w.urls = map[network.RequestID]string{}
			}
			w.urls[e.RequestID] = e.Request.URL
			// data: URLs (the browser's own form control icons) are not
			// requests; anything else must go to the daemon.
			if !strings.HasPrefix(e.Request.URL, w.origin+"/") && !strings.HasPrefix(e.Request.URL, "data:") &&
				!slices.ContainsFunc(w.also, func(o string) bool { return strings.HasPrefix(e.Request.URL, o+"/") }) {
				w.problems = append(w.problems, "request outside the daemon: "+e.Request.URL)
			}
		case *network.EventLoadingFailed:
			w.problems = append(w.problems, "loading failed: "+e.ErrorText+" "+w.urls[e.RequestID])
		}
	})
}

func describe(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	return o.Description
}

func (w *watcher) allow(urlPart string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.allowed = append(w.allowed, urlPart)
}

func (w *watcher) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.problems) > 0 {
		t.Errorf("the session had problems:\n  %s", strings.Join(w.problems, "\n  "))
	}
	if w.requests < 10 {
		t.Errorf("the browser made %d requests; the watcher saw nothing", w.requests)
	}
}

// apiGet reads the admin API with a token.
func apiGet(t *testing.T, base, token, path string, out any) {
	t.Helper()
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(artifacts, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs browser actions, failing the test with what step failed.
func run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Run(sctx, actions...); err != nil {
		var body string
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = chromedp.Run(bctx, chromedp.Evaluate(`document.body.innerText.slice(0, 3000)`, &body))
		t.Fatalf("%s: %v\nthe page read:\n%s", step, err, body)
	}
}

// poll waits until the JavaScript expression is true, evaluated in the
// page (chromedp's cached DOM can lag behind attribute changes).
func poll(expr string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		for {
			var ok bool
			if err := chromedp.Evaluate("Boolean("+expr+")", &ok).Do(ctx); err != nil {
				return fmt.Errorf("poll %s: %w", expr, err)
			}
			if ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("poll %s: %w", expr, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

func evalAwait(expr string, out any) chromedp.Action {
	return chromedp.Evaluate(expr, out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })
}

// signIn opens the console in a fresh tab and signs in with token.
func signIn(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	run(t, ctx, "sign in",
		network.Enable(), runtime.Enable(), cdplog.Enable(),
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SendKeys("#token", token, chromedp.ByID),
		chromedp.Click("#login button", chromedp.ByQuery),
		chromedp.WaitVisible("#board tbody tr[data-scope]", chromedp.ByQuery))
}

// TestConsole drives the console in headless Chromium against a daemon on
// kfake and redis-server: sign in, watch a trip caused by produced traffic
// arrive on the board without a reload, reset the breaker from its page
// with a reason and find the audit entry, review a sample with the
// keyboard, approve the rest of the incident behind a typed confirmation
// and watch the release reach 100%; then, as a viewer, see no controls and
// get 403 for a forged write. No exception, console error or request
// outside the daemon's origin may happen in either session.
func TestConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium and a daemon")
	}
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("%s not found: install it with apt-get install -y chromium", chromium)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	bed := admintest.NewBed(t, 2)
	cfg := bed.Config(t, 50)
	cfg.Admin.ConfirmAbove = 10
	pd := &pagerDuty{}
	pdSrv := httptest.NewServer(pd)
	defer pdSrv.Close()
	cfg.Alerts.Receivers = []config.Receiver{{Name: "pd", Type: config.ReceiverPagerDuty, URL: pdSrv.URL, Secret: "routing-key", Timeout: 5 * time.Second}}
	cfg.Alerts.GroupWindow = 100 * time.Millisecond
	cfg.Review.TargetURL = "https://admin.example/{type}/{id}"
	ruleA := cfg.Breakers.Rules["rule-a"]
	ruleA.Description = "Removes pins that link to known spam domains"
	cfg.Breakers.Rules["rule-a"] = ruleA
	d := admintest.StartDaemon(t, cfg)
	const scope = "rule:rule-a"

	ctx := startBrowser(t, 8*time.Minute)
	w := &watcher{origin: d.URL}
	w.listen(ctx)

	signIn(t, ctx, d.URL, admintest.Tokens[config.RoleOperator])
	var who string
	run(t, ctx, "read who is signed in", chromedp.Text("#who", &who, chromedp.ByID))
	if want := admintest.Name(config.RoleOperator) + " · operator"; who != want {
		t.Errorf("the header says %q; want %q", who, want)
	}

	// A trip caused by produced traffic appears without a reload.
	var marker string
	run(t, ctx, "mark the page", evalAwait(`window.__notReloaded = "yes"`, &marker))
	now := time.Now()
	var recs []testbed.Record
	for i := range 120 {
		// With a model and a confidence, which the sample card shows.
		recs = append(recs, testbed.KV(fmt.Sprintf("t-%d", i%9), fmt.Sprintf(
			`{"action_id":"c-%03d","rule_id":"rule-a","action":"remove_pin","target":{"type":"account","id":"t-%d"},"occurred_at":%q,"model":{"name":"pinclf","version":"7.2"},"confidence":0.93}`,
			i, i%9, now.UTC().Format(time.RFC3339Nano))))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, recs...)
	run(t, ctx, "see the trip on the board",
		chromedp.WaitVisible(`#board tr[data-scope="`+scope+`"][data-state="open"]`, chromedp.ByQuery),
		chromedp.Evaluate(`window.__notReloaded || "reloaded"`, &marker))
	if marker != "yes" {
		t.Errorf("the page was reloaded (%q); the board must update in place", marker)
	}
	// The tab's title and favicon say that one breaker holds; the board
	// names the window its count is over, and its held count links to the
	// incident.
	row := `document.querySelector('#board tr[data-scope="` + scope + `"]')`
	var favicon, windowCell, heldHref string
	run(t, ctx, "the tab, the window and the held link",
		poll(`document.title === "(1 holding) Breakwater console"`),
		poll(row+`.querySelector("td.num a") !== null`),
		chromedp.Evaluate(`document.querySelector('link[rel="icon"]').getAttribute("href")`, &favicon),
		chromedp.Evaluate(row+`.children[2].textContent`, &windowCell),
		chromedp.Evaluate(row+`.querySelector("td.num a").getAttribute("href")`, &heldHref))
	if !strings.HasPrefix(favicon, "data:image/svg+xml,") || !strings.Contains(favicon, "%3E1%3C") {
		t.Errorf("the favicon is %.80q; want the red one with 1", favicon)
	}
	if !regexp.MustCompile(`^[\d,.]+ / 50 per \d+(ms|s|m|h)`).MatchString(windowCell) {
		t.Errorf("the board's window cell reads %q; want the count over the limit per the window's length", windowCell)
	}
	if !strings.HasPrefix(heldHref, "#/incident/rule%3Arule-a%40") {
		t.Errorf("the board's held count links to %q; want the incident of %s", heldHref, scope)
	}
	shot(t, ctx, "console-board.png")

	// The breaker page: chart, then a reset with a reason.
	var title string
	run(t, ctx, "open the breaker page",
		chromedp.Click(`#board tr[data-scope="`+scope+`"] a`, chromedp.ByQuery),
		chromedp.WaitVisible("#controls", chromedp.ByID),
		chromedp.WaitReady("#chart svg path.rate", chromedp.ByQuery),
		chromedp.WaitReady("#chart svg g.trip", chromedp.ByQuery),
		chromedp.Text("h1", &title, chromedp.ByQuery))
	if title != scope {
		t.Errorf("the breaker page is titled %q; want %q", title, scope)
	}
	shot(t, ctx, "console-breaker.png")
	const reason = "classifier fixed in the browser test"
	var confirm string
	run(t, ctx, "reset",
		chromedp.Click(`//div[@id="controls"]/button[text()="Reset"]`, chromedp.BySearch),
		chromedp.WaitVisible("#reason", chromedp.ByID),
		chromedp.Text("#confirm", &confirm, chromedp.ByID))
	if confirm != "Reset "+scope {
		t.Errorf("the confirmation button reads %q; want it to name the scope", confirm)
	}
	run(t, ctx, "an empty reason is refused",
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//dialog//p[@class="err" and contains(., "reason is required")]`, chromedp.BySearch))
	run(t, ctx, "confirm the reset",
		chromedp.SendKeys("#reason", reason, chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//div[@id="banner" and contains(., "open → probation")]`, chromedp.BySearch))
	run(t, ctx, "see the reset in the audit trail",
		chromedp.Click(`#nav a[data-nav="audit"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//table[@id="audit"]//tr[@data-kind="reset" and contains(., "`+reason+`") and contains(., "`+admintest.Name(config.RoleOperator)+`")]`, chromedp.BySearch))

	// Review a sample with the keyboard.
	var incs api.Incidents
	apiGet(t, d.URL, admintest.Tokens[config.RoleViewer], "/v1/incidents", &incs)
	if len(incs.Incidents) != 1 {
		t.Fatalf("incidents = %+v; want one", incs.Incidents)
	}
	inc := incs.Incidents[0]
	run(t, ctx, "open the incident",
		chromedp.Click(`#nav a[data-nav="incidents"]`, chromedp.ByQuery),
		chromedp.Click(`#incidents tr[data-incident="`+inc.ID+`"] a`, chromedp.ByQuery),
		chromedp.WaitVisible(`//div[@class="card" and @data-count="pending"]/b[text()!="0"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//h2[text()="Action type"]/following-sibling::table//td[text()="remove_pin"]`, chromedp.BySearch),
		chromedp.Click("#review-sample", chromedp.ByID),
		chromedp.WaitVisible("#sample-item", chromedp.ByID))
	var first, second, firstStatus, secondStatus string
	// Each expression naming an id is built after the run that read it.
	run(t, ctx, "read the first", chromedp.Evaluate(`document.getElementById("sample-item").dataset.actionId`, &first))
	// The card has what a reviewer needs to judge the action.
	var card struct {
		Rule, Model, Confidence, Href, Target string
		Related, Strip                        int
	}
	run(t, ctx, "read the sample card",
		poll(`document.querySelectorAll("#sample-related tr").length > 0`),
		evalAwait(`(() => { const q = (s) => document.querySelector(s); return {
			rule: q("#sample-rule").textContent, model: q("#sample-model").textContent, confidence: q("#sample-confidence").textContent,
			href: q("#sample-target").getAttribute("href"), target: q("#sample-target").textContent,
			related: document.querySelectorAll("#sample-related tr").length, strip: document.querySelectorAll("#sample-strip i").length }; })()`, &card))
	var firstHeld api.HeldPage
	apiGet(t, d.URL, admintest.Tokens[config.RoleViewer], "/v1/held?limit=1000&incident="+inc.ID, &firstHeld)
	var target string
	for _, h := range firstHeld.Items {
		if h.ActionID == first {
			target = h.TargetID
		}
	}
	if card.Rule != "Removes pins that link to known spam domains" || card.Model != "pinclf 7.2" || card.Confidence != "0.93" ||
		card.Href != "https://admin.example/account/"+target || card.Strip != 20 || card.Related < 1 {
		t.Errorf("the sample card of %s (target %s) shows %+v; want the rule's description, the model, the confidence, a link to the target, the other actions on it and a strip of 20", first, target, card)
	}
	shot(t, ctx, "console-sample.png")
	run(t, ctx, "approve the first with a",
		chromedp.KeyEvent("a"),
		poll(`document.getElementById("sample-item").dataset.actionId !== "`+first+`"`),
		chromedp.Evaluate(`document.getElementById("sample-item").dataset.actionId`, &second))
	if first == "" || second == "" || first == second {
		t.Fatalf("the sample showed %q then %q; want two actions", first, second)
	}
	run(t, ctx, "reject the second with r",
		chromedp.KeyEvent("r"),
		poll(`document.getElementById("sample-status").textContent.startsWith("2 of")`))
	// u undoes it: pending again in the page and the API; then r again.
	var undone api.HeldPage
	run(t, ctx, "undo with u",
		chromedp.KeyEvent("u"),
		poll(`document.getElementById("sample-status").textContent.startsWith("1 of")`),
		poll(`document.getElementById("sample-item").dataset.actionId === "`+second+`" && document.getElementById("sample-item").dataset.status === "pending"`))
	apiGet(t, d.URL, admintest.Tokens[config.RoleViewer], "/v1/held?limit=1000&incident="+inc.ID, &undone)
	for _, h := range undone.Items {
		if h.ActionID == second && h.Status != "pending" {
			t.Errorf("after u the API has %s %s; want pending", second, h.Status)
		}
	}
	run(t, ctx, "reject the second again",
		chromedp.KeyEvent("r"),
		poll(`document.getElementById("sample-status").textContent.startsWith("2 of")`))
	run(t, ctx, "back to the second with k",
		chromedp.KeyEvent("k"),
		poll(`document.getElementById("sample-item").dataset.actionId === "`+second+`"`),
		chromedp.Evaluate(`document.getElementById("sample-item").dataset.status`, &secondStatus))
	run(t, ctx, "back to the first with the left arrow",
		chromedp.KeyEvent(kb.ArrowLeft),
		poll(`document.getElementById("sample-item").dataset.actionId === "`+first+`"`),
		chromedp.Evaluate(`document.getElementById("sample-item").dataset.status`, &firstStatus))
	run(t, ctx, "forward to the second with j",
		chromedp.KeyEvent("j"),
		poll(`document.getElementById("sample-item").dataset.actionId === "`+second+`"`))
	if firstStatus != "approved" || secondStatus != "rejected" {
		t.Errorf("the sample shows %s %s and %s %s; want approved and rejected", first, firstStatus, second, secondStatus)
	}
	var page api.HeldPage
	apiGet(t, d.URL, admintest.Tokens[config.RoleViewer], "/v1/held?limit=1000&incident="+inc.ID, &page)
	statuses := map[string]string{}
	for _, h := range page.Items {
		statuses[h.ActionID] = h.Status
	}
	if statuses[first] != "approved" || statuses[second] != "rejected" {
		t.Errorf("the API has %s %s and %s %s; want approved and rejected", first, statuses[first], second, statuses[second])
	}

	// The two verdicts give the incident its sampled precision.
	run(t, ctx, "the sampled precision",
		poll(`(document.getElementById("sample-precision") || {}).textContent === "1 of 2 sampled rejected: about 50% wrong"`))

	// Approve the rest behind a typed confirmation and follow the release.
	run(t, ctx, "approve all",
		chromedp.Click("#approve-all", chromedp.ByID),
		chromedp.WaitVisible("#typed", chromedp.ByID),
		chromedp.SendKeys("#typed", "not the id", chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//dialog//p[@class="err" and contains(., "exactly")]`, chromedp.BySearch),
		chromedp.Evaluate(`document.getElementById("typed").value = ""`, nil),
		chromedp.SendKeys("#typed", inc.ID, chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`#release[data-pct="100"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//div[@id="release" and contains(., "Done")]`, chromedp.BySearch))
	var after api.Incident
	apiGet(t, d.URL, admintest.Tokens[config.RoleViewer], "/v1/incidents/"+inc.ID, &after)
	if after.Pending != 0 || after.Rejected != 1 || after.Approved != after.Held-1 || after.Written != after.Held || after.ApprovedReleased != after.Approved || after.RejectedWritten != 1 {
		t.Errorf("after the review the incident is %+v; want one rejected, the rest approved, all released", after)
	}
	shot(t, ctx, "console-incident.png")

	// A viewer, in a tab of its own, sees no controls; a forged write is refused.
	vctx, vcancel := chromedp.NewContext(ctx)
	defer vcancel()
	if err := chromedp.Run(vctx); err != nil { // opens the tab, owned by vctx
		t.Fatal(err)
	}
	vw := &watcher{origin: d.URL}
	vw.listen(vctx)
	vw.allow("/reset")
	signIn(t, vctx, d.URL, admintest.Tokens[config.RoleViewer])
	var controls, review, approveAll int
	run(t, vctx, "a viewer's breaker page",
		chromedp.Navigate(d.URL+"/ui/#/breaker/"+strings.ReplaceAll(scope, ":", "%3A")),
		chromedp.WaitVisible(`//h2[text()="Transitions"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//div[@class="tools"]/span[@class="state probation"]`, chromedp.BySearch),
		chromedp.Evaluate(`document.querySelectorAll("#controls, #controls button").length`, &controls),
		chromedp.Navigate(d.URL+"/ui/#/incident/"+inc.ID),
		chromedp.WaitVisible(`//div[@data-count="held"]`, chromedp.BySearch),
		chromedp.Evaluate(`document.querySelectorAll("#review-sample").length`, &review),
		chromedp.Evaluate(`document.querySelectorAll("#approve-all, #reject-all").length`, &approveAll))
	if controls+review+approveAll != 0 {
		t.Errorf("a viewer sees %d breaker controls, %d review buttons and %d bulk buttons; want none", controls, review, approveAll)
	}
	var status int
	run(t, vctx, "forge a write",
		evalAwait(`fetch("/v1/breakers/`+scope+`/reset", {method: "POST",
			headers: {"Authorization": "Bearer " + sessionStorage.getItem("breakwater.token"), "Content-Type": "application/json"},
			body: JSON.stringify({reason: "forged"})}).then(r => r.status)`, &status))
	if status != http.StatusForbidden {
		t.Errorf("a forged reset with the viewer's token = %d; want 403", status)
	}
	var b api.Breaker
	apiGet(t, d.URL, admintest.Tokens[config.RoleViewer], "/v1/breakers/"+scope, &b)
	if b.Reason == "forged" || b.State != "probation" {
		t.Errorf("after the forged reset the breaker is %+v; want the operator's probation unchanged", b.Status)
	}
	// The token lives in the tab, not in a cookie.
	var cookies string
	run(t, vctx, "read cookies", chromedp.Evaluate(`document.cookie`, &cookies))
	if cookies != "" {
		t.Errorf("the console set cookies %q; the token belongs in sessionStorage", cookies)
	}

	lifecycle(t, ctx, bed, d.URL, pd, inc.ID)
	w.check(t)
	vw.check(t)
}

// lifecycle trips the breaker again after its reset and follows the new
// incident in the console: it continues the first, is acknowledged (which
// reaches PagerDuty once, as an acknowledge of its page), gets a standing
// reject that keeps up with the traffic the breaker still holds, and goes
// to closed once the breaker is reset; the audit trail of the incident
// lists every step and links back to it.
func lifecycle(t *testing.T, ctx context.Context, bed *admintest.Bed, base string, pd *pagerDuty, first string) {
	const scope = "rule:rule-a"
	produce := func(prefix string, n int) {
		now := time.Now()
		var recs []testbed.Record
		for i := range n {
			recs = append(recs, admintest.Event(fmt.Sprintf("%s-%03d", prefix, i), "rule-a", "remove_pin", fmt.Sprintf("t-%d", i%9), now))
		}
		bed.Kafka.Produce(t, admintest.Topics.Input, recs...)
	}
	produce("d", 120)
	var second string
	run(t, ctx, "the re-trip's incident continues the first",
		chromedp.Navigate(base+"/ui/#/incidents"),
		chromedp.WaitVisible(`//table[@id="incidents"]//tr[@data-state="active"]//div[contains(., "continues `+first+`")]`, chromedp.BySearch),
		chromedp.Evaluate(`document.querySelector('#incidents tr[data-state="active"]').dataset.incident`, &second))
	if second == "" || second == first {
		t.Fatalf("the re-trip's incident is %q; want a new one", second)
	}
	run(t, ctx, "open it and acknowledge it",
		chromedp.Click(`#incidents tr[data-incident="`+second+`"] a`, chromedp.ByQuery),
		chromedp.WaitVisible(`//div[@id="lifecycle"]/span[contains(@class, "life active")]`, chromedp.BySearch),
		chromedp.WaitVisible(`//div[@id="lifecycle"]//a[text()="`+first+`"]`, chromedp.BySearch),
		chromedp.Click("#ack-button", chromedp.ByID),
		chromedp.WaitVisible(`//dd[@id="ack" and contains(., "by `+admintest.Name(config.RoleOperator)+`")]`, chromedp.BySearch),
		chromedp.Click("#take", chromedp.ByID),
		chromedp.WaitVisible(`//dd[@id="owner" and starts-with(., "`+admintest.Name(config.RoleOperator)+`")]`, chromedp.BySearch),
		chromedp.SendKeys("#note-text", "model 7 mislabels craft pins", chromedp.ByID),
		chromedp.Click(`#note-form button`, chromedp.ByQuery),
		chromedp.WaitVisible(`//dd[@id="notes"]//li[contains(., "model 7 mislabels craft pins")]`, chromedp.BySearch))

	// A bulk dialog counts live: its count follows what the breaker holds
	// while it is open, and it says that later actions stay pending.
	var shown, bulkWhat string
	run(t, ctx, "open the reject-all dialog",
		chromedp.Click("#reject-all", chromedp.ByID),
		chromedp.WaitVisible("#bulk-what", chromedp.ByID),
		poll(`Number(document.getElementById("confirm").dataset.count) > 0`),
		chromedp.Evaluate(`document.getElementById("confirm").dataset.count`, &shown))
	produce("live", 60)
	run(t, ctx, "its count follows the incident",
		poll(`Number(document.getElementById("confirm").dataset.count) > `+shown),
		chromedp.Text("#bulk-what", &bulkWhat, chromedp.ByID),
		chromedp.Click(`//dialog//button[text()="Cancel"]`, chromedp.BySearch))
	if !strings.Contains(bulkWhat, "never be enforced") || !strings.Contains(bulkWhat, "stay pending") {
		t.Errorf("the reject-all dialog says %q; want what happens to them and that later actions stay pending", bulkWhat)
	}

	// A standing reject: the dialog says what it covers, live.
	var said string
	run(t, ctx, "set a standing reject",
		chromedp.Click("#standing-reject", chromedp.ByID),
		chromedp.WaitVisible("#standing-live", chromedp.ByID),
		chromedp.Text("#standing-live", &said, chromedp.ByID))
	if !strings.Contains(said, "pending now") || !strings.Contains(said, "while "+scope+" holds under it") {
		t.Errorf("the standing dialog says %q; want what it covers now and until when", said)
	}
	shot(t, ctx, "console-standing-dialog.png")
	run(t, ctx, "confirm the standing reject",
		chromedp.SendKeys("#reason", "model 7 is broken", chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//p[@id="standing-text" and contains(., "Reject everything `+second+` holds")]`, chromedp.BySearch),
		poll(`document.querySelector('[data-count="pending"] b').textContent === "0"`))
	// More traffic while the breaker holds: the standing decision keeps up.
	var before api.Incident
	apiGet(t, base, admintest.Tokens[config.RoleViewer], "/v1/incidents/"+second, &before)
	produce("e", 150)
	var after api.Incident
	admintest.WaitFor(t, 60*time.Second, func() string { return fmt.Sprintf("incident %+v", after) }, func() bool {
		after = api.Incident{}
		apiGet(t, base, admintest.Tokens[config.RoleViewer], "/v1/incidents/"+second, &after)
		return after.Held > before.Held && after.Pending == 0 && after.Rejected == after.Held
	})
	run(t, ctx, "the page shows the standing decision's count",
		poll(`document.getElementById("standing-applied").textContent === "`+fmt.Sprint(after.Rejected)+`"`))
	// The breakdown, counted when the page opened, is counted again as the
	// incident grows.
	run(t, ctx, "the breakdown follows the incident",
		poll(`document.getElementById("breakdown").dataset.counted === "`+fmt.Sprint(after.Held)+`"`))
	shot(t, ctx, "console-standing.png")

	// The breaker stops holding: the incident is reviewed, then closed.
	var reset api.ChangeResponse
	apiPost(t, base, admintest.Tokens[config.RoleOperator], "/v1/breakers/"+scope+"/reset", `{"reason":"model 7 rolled back"}`, &reset)
	run(t, ctx, "the incident closes",
		chromedp.WaitVisible(`//div[@id="lifecycle"]/span[contains(@class, "life closed")]`, chromedp.BySearch))
	// Closed, nothing pending: no review button, the reason in their place;
	// the counters say what was approved and released, and what rejected.
	var closed api.Incident
	apiGet(t, base, admintest.Tokens[config.RoleViewer], "/v1/incidents/"+second, &closed)
	var visibleButtons int
	var why, rejectedSub string
	run(t, ctx, "no review buttons on the closed incident",
		chromedp.WaitVisible(`//p[@id="review-why" and starts-with(., "Closed")]`, chromedp.BySearch),
		chromedp.Evaluate(`[...document.querySelectorAll("#review-sample, #approve-all, #reject-all, #standing-reject, #standing-approve, #revoke")].filter((b) => b.offsetParent !== null).length`, &visibleButtons),
		chromedp.Text("#review-why", &why, chromedp.ByID),
		poll(`document.getElementById("count-rejected-sub").textContent.includes("`+jsNum(float64(closed.Rejected))+` recorded")`),
		chromedp.Text("#count-rejected-sub", &rejectedSub, chromedp.ByID))
	if visibleButtons != 0 || !strings.Contains(why, "nothing is left to review") || !strings.HasPrefix(rejectedSub, "never enforced") {
		t.Errorf("the closed incident shows %d review buttons, says %q, and under rejected %q; want none, why, and that they are never enforced", visibleButtons, why, rejectedSub)
	}
	shot(t, ctx, "console-closed.png")

	// Every step is in the incident's audit trail, linked to it.
	run(t, ctx, "the incident's audit trail",
		chromedp.Click("#incident-audit", chromedp.ByID),
		chromedp.WaitVisible(`//table[@id="audit"]//tr[@data-kind="standing"]//a[@class="incident-link" and text()="`+second+`"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//table[@id="audit"]//tr[@data-kind="acknowledge"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//table[@id="audit"]//tr[@data-kind="owner"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//table[@id="audit"]//tr[@data-kind="note"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//table[@id="audit"]//tr[@data-kind="standing_ended"]`, chromedp.BySearch))
	// The standing decision is one entry: its rejections are folded into
	// it, their count the incident's, and none is a row of its own.
	var standingRows, rejectRows int
	run(t, ctx, "the standing decision is one entry with its progress",
		poll(`document.querySelector('#audit tr[data-kind="standing"] .standing-progress').dataset.count === "`+fmt.Sprint(closed.Rejected)+`"`),
		chromedp.Evaluate(`document.querySelectorAll('#audit tr[data-kind="standing"]').length`, &standingRows),
		chromedp.Evaluate(`document.querySelectorAll('#audit tr[data-kind="reject"]').length`, &rejectRows))
	if standingRows != 1 || rejectRows != 0 {
		t.Errorf("the incident's audit trail has %d standing and %d reject rows; want 1 and 0 (the rejections folded into the standing entry)", standingRows, rejectRows)
	}
	// Its releases read as one entry with the incident's progress.
	run(t, ctx, "one release entry, at 100%",
		poll(`document.querySelectorAll('#audit tr[data-kind="release"]').length === 1 && document.querySelector('#audit .release-progress[data-pct="100"]')`))
	var others int
	run(t, ctx, "only its entries", chromedp.Evaluate(`[...document.querySelectorAll("#audit tbody tr")].filter(r => r.dataset.incident !== "`+second+`").length`, &others))
	if others != 0 {
		t.Errorf("the incident's audit trail lists %d entries of something else", others)
	}
	shot(t, ctx, "console-audit.png")
	run(t, ctx, "the audit links back to the incident",
		chromedp.Click(`//table[@id="audit"]//tr[@data-kind="standing"]//a[@class="incident-link"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//h1[text()="Incident `+second+`"]`, chromedp.BySearch))

	// A reset on the breaker's page, and traffic at once: the page says it
	// tripped again, with the count and probation's limit it crossed, and
	// the chart's trip marker carries that count.
	run(t, ctx, "reset again from the breaker's page",
		chromedp.Navigate(base+"/ui/#/breaker/"+strings.ReplaceAll(scope, ":", "%3A")),
		chromedp.WaitVisible("#controls", chromedp.ByID),
		chromedp.Click(`//div[@id="controls"]/button[text()="Reset"]`, chromedp.BySearch),
		chromedp.WaitVisible("#reason", chromedp.ByID),
		chromedp.SendKeys("#reason", "try again", chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//div[@id="banner" and contains(., "→ probation")]`, chromedp.BySearch))
	produce("f", 120)
	var banner string
	run(t, ctx, "the page says it tripped again",
		poll(`document.getElementById("banner").dataset.retrip`),
		chromedp.Text("#banner", &banner, chromedp.ByID))
	var trips api.Audit
	apiGet(t, base, admintest.Tokens[config.RoleViewer], "/v1/audit?kind=transition&limit=1&scope="+scope, &trips)
	if len(trips.Entries) != 1 || trips.Entries[0].To == nil || trips.Entries[0].To.State != "open" || trips.Entries[0].Window <= 0 {
		t.Fatalf("the last transition is %+v; want the re-trip with its window count", trips.Entries)
	}
	retrip := trips.Entries[0]
	var b api.Breaker
	apiGet(t, base, admintest.Tokens[config.RoleViewer], "/v1/breakers/"+scope, &b)
	limit := b.Thresholds.MaxActions * b.Thresholds.ProbationScale
	want := fmt.Sprintf("tripped again at once (generation %d): %s > %s, probation's limit", retrip.To.Generation, jsNum(retrip.Window), jsNum(limit))
	if !strings.Contains(banner, want) {
		t.Errorf("after the reset the page says %q; want it to contain %q", banner, want)
	}
	// The chart is drawn again every 15 s; its newest marker is the re-trip's.
	run(t, ctx, "the chart's trip marker",
		poll(`[...document.querySelectorAll("#chart svg g.trip circle title")].some((e) => e.textContent.includes(": `+chartNum(retrip.Window)+` in "))`))
	// Every label of the chart is drawn inside it, and hovering the plot
	// gives the values: a title per column with the time, the window count
	// per the window's length, the baseline and what was held.
	var clipped []string
	var hover string
	run(t, ctx, "the chart's labels and hover values",
		chromedp.Evaluate(`(() => { const box = document.querySelector("#chart svg").getBoundingClientRect();
			return [...document.querySelectorAll("#chart svg text")].filter((t) => { const r = t.getBoundingClientRect();
				return r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1); })
				.map((t) => t.textContent); })()`, &clipped),
		chromedp.Evaluate(`(([...document.querySelectorAll("#chart svg rect.hover title")].pop() || {}).textContent || "")`, &hover))
	if len(clipped) > 0 {
		t.Errorf("chart labels drawn outside the chart: %q", clipped)
	}
	if !regexp.MustCompile(`: window [\d.]+[kM]? per \d+(ms|s|m|h)\S* · baseline [\d.]+[kM]? · held \d+`).MatchString(hover) {
		t.Errorf("the chart's last hover title is %q; want the time, the window count per the window, the baseline and the held count", hover)
	}
	shot(t, ctx, "console-retrip.png")
	longRange(t, ctx, bed, base, scope)

	// PagerDuty: the acknowledgement reached it once, for the page the
	// re-trip sent, before that page was resolved by the reset.
	var page string
	admintest.WaitFor(t, 30*time.Second, func() string { return fmt.Sprintf("pagerduty got %v", pd.actions()) }, func() bool {
		for k, as := range pd.actions() {
			if len(as) >= 2 && as[1] == "acknowledge" && as[len(as)-1] == "resolve" {
				page = k
				return true
			}
		}
		return false
	})
	if got := pd.actions()[page]; len(got) != 3 || got[0] != "trigger" {
		t.Errorf("pagerduty got %v for the page %s; want trigger, acknowledge, resolve", got, page)
	}
	acks := 0
	for _, as := range pd.actions() {
		for _, a := range as {
			if a == "acknowledge" {
				acks++
			}
		}
	}
	if acks != 1 {
		t.Errorf("pagerduty got %d acknowledgements; want 1", acks)
	}
}

// longRange gives the breaker a day of coarse history in which the
// evidence detector judged it (the daemon's own samples cannot: the
// detector needs a day of traffic first), then picks the chart's 24 h
// range: the chart spans the day and draws the detector's expected band
// and its evidence line against h.
func longRange(t *testing.T, ctx context.Context, bed *admintest.Bed, base, scope string) {
	t.Helper()
	var b api.Breaker
	apiGet(t, base, admintest.Tokens[config.RoleViewer], "/v1/breakers/"+scope, &b)
	if b.Thresholds.Evidence == nil {
		t.Fatalf("%s does not run the evidence detector: %+v", scope, b.Thresholds)
	}
	// The daemon's coarse ring (daemon.newHistory): five-minute peaks, a day.
	coarse, err := history.New(history.Options{Redis: bed.Redis.Client(t), Prefix: "bw-admin", Step: 5 * time.Minute, Slots: 288, Name: "hist5m", Peak: true})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().Add(-23 * time.Hour)
	for i := range 12 * 20 { // 20 hours, ending three hours ago
		at := start.Add(time.Duration(i) * 5 * time.Minute)
		if err := coarse.Write(ctx, map[breaker.Scope]history.Sample{breaker.Scope(scope): {
			At: at, Window: 30, State: breaker.Closed, Expected: 120, Evidence: float64(i%24) / 2,
		}}); err != nil {
			t.Fatal(err)
		}
	}
	var options []string
	run(t, ctx, "pick the 24 h range",
		chromedp.Evaluate(`[...document.querySelectorAll("#range option")].map((o) => o.value)`, &options),
		chromedp.Evaluate(`(() => { const r = document.getElementById("range"); r.value = "24h"; r.dispatchEvent(new Event("change")); })()`, nil),
		poll(`document.querySelector("#chart svg path.band") && document.querySelector("#chart svg path.evidence") && document.querySelector("#chart svg line.evidence-h")`))
	if !slices.Contains(options, "24h") || !slices.Contains(options, "6h") {
		t.Errorf("the range picker offers %v; want up to 24h", options)
	}
	var ticks []string
	run(t, ctx, "read the chart's time axis", chromedp.Evaluate(`[...document.querySelectorAll("#chart svg text")].map((e) => e.textContent).filter((s) => /^[A-Z][a-z]{2} \d+ \d\d:\d\d$/.test(s))`, &ticks))
	if len(ticks) == 0 {
		t.Error("the 24 h chart's axis names no day; want it to span the day")
	}
	shot(t, ctx, "console-24h.png")
}

// pagerDuty is a PagerDuty-shaped receiver: it records the events posted.
type pagerDuty struct {
	mu     sync.Mutex // guards events
	events []alert.PagerDutyEvent
}

func (p *pagerDuty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var e alert.PagerDutyEvent
	if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	p.events = append(p.events, e)
	p.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// actions returns the event actions received per dedup key, in order.
func (p *pagerDuty) actions() map[string][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]string{}
	for _, e := range p.events {
		out[e.DedupKey] = append(out[e.DedupKey], e.EventAction)
	}
	return out
}

// apiPost writes to the admin API with a token.
func apiPost(t *testing.T, base, token, path, body string, out any) {
	t.Helper()
	req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s = %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
}

// jsNum formats v as the console's num does (en-US, at most one decimal
// below 100, none above).
func jsNum(v float64) string {
	d := 0
	if v < 100 {
		d = 1
	}
	s := strconv.FormatFloat(v, 'f', d, 64)
	s = strings.TrimSuffix(strings.TrimSuffix(s, ".0"), ".")
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return b.String()
}

// chartNum formats v as the server's chart does.
func chartNum(v float64) string {
	switch {
	case v >= 1e4:
		return strings.Replace(fmt.Sprintf("%.1fk", v/1e3), ".0", "", 1)
	case v == float64(int64(v)):
		return fmt.Sprintf("%.0f", v)
	}
	return strings.Replace(fmt.Sprintf("%.1f", v), ".0", "", 1)
}

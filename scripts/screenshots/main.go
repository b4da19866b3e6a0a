// Command screenshots retakes the console's screenshots in docs/ from the
// live embedded demo, as a person on call would go through its incident:
// sign in, see the trip on the board and the breaker's chart, open the
// incident, acknowledge it, take it and leave a note, review a sample with
// the keyboard, set a standing reject, reset the breaker once the demo's
// classifier behaves again, watch the incident close, and read its audit
// trail, where every step is. `make screenshots` runs it; it starts
// bin/breakwater run (the embedded default, nothing else changed but the
// listen address), reads the operator token the daemon prints, drives
// Debian's headless Chromium, and stops the daemon with an interrupt.
//
// With -url it drives a demo that is already running instead (its token in
// -token). A step that does not happen in time stops the run with what the
// page read; nothing is written over docs/ but the screenshots taken.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"
)

func main() {
	bin := flag.String("daemon", "bin/breakwater", "the breakwater binary to start with `run` (ignored with -url)")
	base := flag.String("url", "", "drive a demo already running at this URL instead of starting one")
	token := flag.String("token", "demo-operator", "the operator token of the demo given with -url")
	out := flag.String("out", "docs", "the directory the screenshots are written to")
	chromium := flag.String("chromium", "/usr/bin/chromium", "the browser")
	timeout := flag.Duration("timeout", 25*time.Minute, "how long the whole run may take")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if *base == "" {
		d, err := startDemo(ctx, *bin)
		if err != nil {
			fail(err)
		}
		defer d.stop()
		*base, *token = d.url, d.token
	}
	if err := tour(ctx, *base, *token, *out, *chromium); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "screenshots:", err)
	os.Exit(1)
}

// demo is a daemon started by this program.
type demo struct {
	cmd        *exec.Cmd
	url, token string
	done       chan struct{}
}

// startDemo starts bin run on a free loopback port and waits for the line
// that prints the console's address and tokens, and for /readyz.
func startDemo(ctx context.Context, bin string) (*demo, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	cmd := exec.Command(bin, "run")
	cmd.Env = append(os.Environ(), "BREAKWATER_HTTP_LISTEN="+addr)
	logs, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s run: %w", bin, err)
	}
	d := &demo{cmd: cmd, url: "http://" + addr, done: make(chan struct{})}
	tokens := make(chan string, 1)
	logf, err := os.Create(filepath.Join(filepath.Dir(bin), "screenshots-demo.log"))
	if err != nil {
		return nil, err
	}
	go func() {
		defer close(d.done)
		defer func() { _ = logf.Close() }()
		re := regexp.MustCompile(`"admin_token": "([^"]+)"`)
		sc := bufio.NewScanner(io.TeeReader(logs, logf))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case tokens <- m[1]:
				default:
				}
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case d.token = <-tokens:
	case <-d.done:
		return nil, fmt.Errorf("%s run stopped before printing its tokens (log in %s)", bin, logf.Name())
	case <-time.After(60 * time.Second):
		d.stop()
		return nil, fmt.Errorf("%s run printed no admin token in 60 s (log in %s)", bin, logf.Name())
	case <-ctx.Done():
		d.stop()
		return nil, ctx.Err()
	}
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(d.url + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(start) > 60*time.Second {
			d.stop()
			return nil, errors.New("the demo was not ready in 60 s")
		}
	}
	fmt.Println("demo running at", d.url)
	return d, nil
}

// stop interrupts the daemon, as Ctrl-C would, and waits for it.
func (d *demo) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// tour is the person's way through the demo's incident.
func tour(ctx context.Context, base, token, out, chromium string) error {
	actx, cancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1360, 900))
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Run(bctx); err != nil { // starts the browser, owned by bctx
		return fmt.Errorf("start %s: %w", chromium, err)
	}
	t := &tourist{ctx: bctx, base: base, token: token, out: out}

	t.step("sign in", 30*time.Second,
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SendKeys("#token", token, chromedp.ByID),
		chromedp.Click("#login button", chromedp.ByQuery),
		chromedp.WaitVisible("#board tbody tr[data-scope]", chromedp.ByQuery))
	// The demo's classifier turns bad on one rule after 20 s.
	t.step("the trip on the board", 2*time.Minute,
		chromedp.WaitVisible(`#board tr[data-state="open"]`, chromedp.ByQuery))
	var scope string
	t.step("read the scope", 5*time.Second,
		chromedp.Evaluate(`document.querySelector('#board tr[data-state="open"]').dataset.scope`, &scope))
	t.pause(3 * time.Second) // a few more points on the sparkline
	t.shot("console-board.png")

	t.step("the breaker's page", 30*time.Second,
		chromedp.Click(`#board tr[data-state="open"] a`, chromedp.ByQuery),
		chromedp.WaitVisible("#controls", chromedp.ByID),
		chromedp.WaitReady("#chart svg g.trip", chromedp.ByQuery),
		// The transitions table is read every 5 s: wait for the trip's row.
		chromedp.WaitVisible(`//table[@id="transitions"]//td[text()="transition"]`, chromedp.BySearch))
	// The chart's figures are sampled every 15 s: one more sample after
	// the trip shows the window count and the held strip as they are now.
	t.pause(16 * time.Second)
	t.shot("console-breaker.png")

	// The incident: acknowledge it, take it, leave a note.
	var inc string
	t.step("open the incident", 30*time.Second,
		chromedp.Click(`#nav a[data-nav="incidents"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#incidents tr[data-state="active"]`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector('#incidents tr[data-state="active"]').dataset.incident`, &inc))
	t.step("acknowledge, take and note it", 30*time.Second,
		chromedp.Click(`#incidents tr[data-incident="`+inc+`"] a`, chromedp.ByQuery),
		chromedp.WaitVisible(`//div[@id="lifecycle"]/span[contains(@class, "life active")]`, chromedp.BySearch),
		chromedp.Click("#ack-button", chromedp.ByID),
		chromedp.WaitVisible(`//dd[@id="ack" and starts-with(., "by ")]`, chromedp.BySearch),
		chromedp.Click("#take", chromedp.ByID),
		chromedp.WaitVisible(`//dd[@id="owner"]/button[text()="Release"]`, chromedp.BySearch),
		chromedp.SendKeys("#note-text", "rule-02 acts 20 times its normal rate since the demo's classifier turned bad; reviewing a sample", chromedp.ByID),
		chromedp.Click(`#note-form button`, chromedp.ByQuery),
		chromedp.WaitVisible(`//dd[@id="notes"]//li`, chromedp.BySearch),
		chromedp.WaitVisible(`//h2[text()="Action type"]`, chromedp.BySearch))

	// A sample, judged with its context and decided with the keyboard.
	t.step("review a sample", 30*time.Second,
		chromedp.Click("#review-sample", chromedp.ByID),
		chromedp.WaitVisible("#sample-item", chromedp.ByID))
	for i, key := range []string{"r", "r", "a", "r"} {
		want := fmt.Sprintf("%d of", i+1)
		t.step("decide with "+key, 20*time.Second,
			chromedp.KeyEvent(key),
			poll(`document.getElementById("sample-status").textContent.startsWith(`+jsString(want)+`)`))
	}
	t.step("the target's other actions", 30*time.Second,
		poll(`!/Looking/.test(document.getElementById("sample-item").textContent)`))
	// The sample card alone: the review card around it, not the page.
	t.shotOf("console-sample.png", `//div[@id="review-controls"]/..`)
	t.shot("console-incident.png")

	// A standing reject: what it covers, then it keeps up.
	t.step("the standing decision's dialog", 30*time.Second,
		chromedp.Click("#standing-reject", chromedp.ByID),
		chromedp.WaitVisible("#standing-live", chromedp.ByID))
	t.pause(1500 * time.Millisecond)
	// What the person sees: a modal dialog over the page's viewport (a
	// full-page shot would show its backdrop as a band across the page).
	t.shotView("console-standing-dialog.png")
	t.step("set it", 60*time.Second,
		chromedp.SendKeys("#reason", "the demo's classifier is broken on rule-02: everything it holds is a false positive", chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible("#standing-text", chromedp.ByID))
	// It decides what the breaker holds at each release step; on a loaded
	// machine it may trail the spike by a few thousand, and catches up
	// once the spike ends.
	t.step("the standing decision decides", 2*time.Minute,
		poll(`Number(document.getElementById("standing-applied").textContent.replace(/,/g, "")) > 0`))
	t.pause(10 * time.Second)
	t.shot("console-standing.png")

	// Once the classifier behaves again (the demo's spike ends after
	// demo.incident_for), reset the breaker from its page.
	if err := t.waitCalm(scope, 5*time.Minute); err != nil {
		return err
	}
	t.step("reset the breaker", 60*time.Second,
		chromedp.Navigate(base+"/ui/#/breaker/"+strings.ReplaceAll(scope, ":", "%3A")),
		chromedp.WaitVisible("#controls", chromedp.ByID),
		chromedp.Click(`//div[@id="controls"]/button[text()="Reset"]`, chromedp.BySearch),
		chromedp.WaitVisible("#reason", chromedp.ByID),
		chromedp.SendKeys("#reason", "the demo's classifier is back to normal on rule-02", chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//div[@id="banner" and contains(., "→ probation")]`, chromedp.BySearch),
		// The page follows the breaker for 30 s and says what happened.
		poll(`/has not tripped again|tripped again at once/.test(document.getElementById("banner").textContent)`))
	t.step("the chart with the reset", 30*time.Second,
		chromedp.WaitReady("#chart svg g.trip", chromedp.ByQuery))
	t.shot("console-reset.png")

	t.step("the incident closes", 10*time.Minute,
		chromedp.Navigate(base+"/ui/#/incident/"+inc),
		chromedp.WaitVisible(`//div[@id="lifecycle"]/span[contains(@class, "life closed")]`, chromedp.BySearch),
		chromedp.WaitVisible(`#breakdown table`, chromedp.ByQuery),
		poll(`!/Reading the gated topic/.test(document.body.innerText)`))
	t.shot("console-closed.png")

	t.step("its audit trail", 60*time.Second,
		chromedp.Click("#incident-audit", chromedp.ByID),
		chromedp.WaitVisible(`//table[@id="audit"]//tr[@data-kind="acknowledge"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//table[@id="audit"]//tr[@data-kind="owner"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//table[@id="audit"]//tr[@data-kind="note"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//table[@id="audit"]//tr[@data-kind="standing"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//table[@id="audit"]//tr[@data-kind="approve"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//table[@id="audit"]//tr[@data-kind="standing"]//div[@class="standing-progress" and not(@data-count="0")]`, chromedp.BySearch),
		chromedp.WaitVisible(`//table[@id="audit"]//tr[@data-kind="release"]`, chromedp.BySearch))
	t.shot("console-audit.png")
	if t.err != nil {
		return t.err
	}
	fmt.Println("incident", inc, "of", scope, "acknowledged, sampled, rejected by a standing decision and closed; screenshots in", out)
	return nil
}

// tourist runs the steps of the tour, stopping at the first that fails.
type tourist struct {
	ctx              context.Context
	base, token, out string
	err              error
}

func (t *tourist) step(what string, within time.Duration, actions ...chromedp.Action) {
	if t.err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(t.ctx, within)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var body string
		bctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
		defer cancel()
		_ = chromedp.Run(bctx, chromedp.Evaluate(`document.body.innerText.slice(0, 2000)`, &body))
		t.err = fmt.Errorf("%s: %w\nthe page read:\n%s", what, err, body)
		return
	}
	fmt.Println("ok:", what)
}

func (t *tourist) pause(d time.Duration) {
	if t.err == nil {
		time.Sleep(d)
	}
}

// shot writes a screenshot of the whole page.
func (t *tourist) shot(name string) {
	var png []byte
	t.capture(name, chromedp.FullScreenshot(&png, 100), &png)
}

// shotView writes a screenshot of the viewport, as the person sees it.
func (t *tourist) shotView(name string) {
	var png []byte
	t.capture(name, chromedp.CaptureScreenshot(&png), &png)
}

// shotOf writes a screenshot of the element the XPath sel finds.
func (t *tourist) shotOf(name, sel string) {
	var png []byte
	t.capture(name, chromedp.Screenshot(sel, &png, chromedp.BySearch), &png)
}

func (t *tourist) capture(name string, take chromedp.Action, png *[]byte) {
	if t.err != nil {
		return
	}
	if err := chromedp.Run(t.ctx, take); err != nil {
		t.err = fmt.Errorf("screenshot %s: %w", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(t.out, name), *png, 0o644); err != nil {
		t.err = err
		return
	}
	fmt.Println("wrote", filepath.Join(t.out, name))
}

// waitCalm waits until the breaker's window count has stayed below 70% of
// its probation limit for 20 s (the demo's rule-02 weighs about half of it
// on a normal day): a reset then puts it on probation without an immediate
// re-trip.
func (t *tourist) waitCalm(scope string, within time.Duration) error {
	if t.err != nil {
		return t.err
	}
	fmt.Println("waiting for the demo's spike on", scope, "to end")
	deadline := time.Now().Add(within)
	var calmSince time.Time
	for time.Now().Before(deadline) {
		var b struct {
			Thresholds struct {
				MaxActions     float64 `json:"max_actions"`
				ProbationScale float64 `json:"probation_scale"`
			} `json:"thresholds"`
			Counts *struct {
				Window float64 `json:"window"`
			} `json:"counts"`
		}
		if err := t.get("/v1/breakers/"+scope, &b); err != nil {
			return err
		}
		limit := b.Thresholds.MaxActions * b.Thresholds.ProbationScale
		switch {
		case b.Counts == nil || limit <= 0 || b.Counts.Window >= 0.7*limit:
			calmSince = time.Time{}
		case calmSince.IsZero():
			calmSince = time.Now()
		case time.Since(calmSince) >= 20*time.Second:
			return nil
		}
		time.Sleep(time.Second)
	}
	t.err = fmt.Errorf("%s did not calm down in %s", scope, within)
	return t.err
}

func (t *tourist) get(path string, out any) error {
	req, err := http.NewRequestWithContext(t.ctx, "GET", t.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+t.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// poll waits until the JavaScript expression is true in the page.
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
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

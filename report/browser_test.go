package report_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/breakwater/breakwater/report"
)

// chromium is Debian's browser; the test never downloads one.
const chromium = "/usr/bin/chromium"

// artifacts is the git-ignored directory the screenshot is kept in.
var artifacts = filepath.Join("..", "testdata-artifacts")

// TestReportInBrowser opens the report in headless Chromium, checks that it
// loads without errors or requests and shows one chart per tripped scope,
// and keeps a screenshot.
func TestReportInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("%s not found: install it with apt-get install -y chromium", chromium)
	}
	s := summary(t, 15*time.Minute)
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	path, err := filepath.Abs(filepath.Join(artifacts, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	var html bytes.Buffer
	if err := report.Write(&html, s, report.Options{Input: "scenario", Close: 5, MinCharts: -1}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, html.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1200, 900))
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	var mu sync.Mutex
	var problems []string
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError {
				problems = append(problems, "console error")
			}
		case *network.EventRequestWillBeSent:
			if !strings.HasPrefix(e.Request.URL, "file://") {
				problems = append(problems, "request: "+e.Request.URL)
			}
		case *network.EventLoadingFailed:
			problems = append(problems, "loading failed: "+e.ErrorText)
		}
	})
	var charts, rates, trips int
	var title string
	var shot []byte
	err = chromedp.Run(ctx,
		network.Enable(), runtime.Enable(),
		chromedp.Navigate("file://"+path),
		chromedp.WaitVisible("figure.chart svg", chromedp.ByQuery),
		chromedp.Title(&title),
		chromedp.Evaluate(`document.querySelectorAll("figure.chart svg").length`, &charts),
		chromedp.Evaluate(`[...document.querySelectorAll("figure.chart svg path.rate")].filter(p => p.getTotalLength() > 100).length`, &rates),
		chromedp.Evaluate(`document.querySelectorAll("figure.chart svg g.trip").length`, &trips),
		chromedp.FullScreenshot(&shot, 100), // quality 100 gives a PNG
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(artifacts, "report.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the page had problems: %v", problems)
	}
	want := len(s.Tripped())
	if title != "Breakwater replay" || charts != want || rates != want || trips < want {
		t.Errorf("title %q, %d charts, %d drawn rate lines, %d trip markers; want %q and %d charts with a drawn line and a trip each",
			title, charts, rates, trips, "Breakwater replay", want)
	}
	t.Log(fmt.Sprintf("screenshot: %s", filepath.Join(artifacts, "report.png")))
}

package report_test

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/replay"
	"github.com/breakwater/breakwater/report"
	"github.com/breakwater/breakwater/traffic"
)

var epoch = time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)

// summary replays a seeded scenario in which one rule spikes and, later,
// every rule rises at once, so that a rule and the global scope trip.
func summary(t testing.TB, reset time.Duration) replay.Summary {
	t.Helper()
	cfg, err := config.Parse([]byte(`
breakers:
  defaults: {window: 1m, max_actions: 2000, baseline: 30m, factor: 5, min_actions: 60}
  global: {window: 1m, baseline: 30m, factor: 2.5, min_actions: 400}
`))
	if err != nil {
		t.Fatal(err)
	}
	sim := traffic.NewSimulation(traffic.Scenario{
		Start: epoch, Duration: 3 * time.Hour, Rules: 8, Rate: 15, Diurnal: 0.5, Noise: 0.1, Seed: 3,
		Incidents: []traffic.Incident{
			{Kind: traffic.Spike, Rule: 3, At: 70 * time.Minute, For: 20 * time.Minute, Factor: 10},
			{Kind: traffic.Broad, At: 150 * time.Minute, For: 10 * time.Minute, Factor: 3},
		},
	})
	var buf bytes.Buffer
	for l, ok := sim.Next(nil); ok; l, ok = sim.Next(l[:0]) {
		buf.Write(l)
		buf.WriteByte('\n')
	}
	src, err := replay.NewLines(&buf, "test")
	if err != nil {
		t.Fatal(err)
	}
	r, err := replay.New(replay.Options{Config: cfg, AssumeResetAfter: reset})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Run(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Tripped()) < 2 {
		t.Fatalf("%d scopes tripped; the scenario should trip a rule and global", len(s.Tripped()))
	}
	return s
}

func TestWrite(t *testing.T) {
	s := summary(t, 15*time.Minute)
	var out bytes.Buffer
	if err := report.Write(&out, s, report.Options{Input: "<scenario>", Close: 5, MinCharts: -1}); err != nil {
		t.Fatal(err)
	}
	html := out.String()
	charts := strings.Count(html, `<figure id="s-`)
	if want := len(s.Tripped()); charts != want {
		t.Errorf("%d charts; want one per tripped scope, %d (closeness 5 leaves out the rest)", charts, want)
	}
	for _, sc := range s.Tripped() {
		if !strings.Contains(html, `data-scope="`+string(sc.Scope)+`"`) {
			t.Errorf("no chart for %s", sc.Scope)
		}
	}
	if n := strings.Count(html, `<g class="trip">`); n < len(s.Tripped()) {
		t.Errorf("%d trip markers; want at least %d", n, len(s.Tripped()))
	}
	if !strings.Contains(html, "&lt;scenario&gt;") || strings.Contains(html, "<scenario>") {
		t.Error("the input name is not escaped")
	}
	// By default the closest scope that did not trip gets a chart too.
	out.Reset()
	if err := report.Write(&out, s, report.Options{Close: 5, MinCharts: len(s.Tripped()) + 1}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), `<figure id="s-`); n != len(s.Tripped())+1 {
		t.Errorf("MinCharts %d: %d charts", len(s.Tripped())+1, n)
	}
	// Self-contained: no script, no external reference.
	if regexp.MustCompile(`(?i)<script|src=|href="http|url\(|@import`).MatchString(html) {
		t.Error("the report references something outside itself or runs a script")
	}
}

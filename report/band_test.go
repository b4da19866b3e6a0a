package report_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/replay"
	"github.com/breakwater/breakwater/report"
)

// TestSVGEvidence checks the evidence detector's parts of the chart: where
// the scope runs the detector and its slots carry an expectation, the
// expected band (per window, from the per-bin expectation) and the S strip
// with its h line are drawn and the hover titles give them; without the
// detector, or before it judges the scope, neither is.
func TestSVGEvidence(t *testing.T) {
	step := 15 * time.Second
	policy := breaker.Policy{Window: 10 * time.Second, MaxActions: 600, EvidenceBin: 5 * time.Minute, EvidenceRatio: 1.5,
		EvidenceThreshold: 12, EvidenceDays: 7, EvidenceMinExpected: 0.5}
	series := make([]replay.Slot, 40)
	for i := range series {
		series[i] = replay.Slot{Window: 20, Samples: 1}
		if i >= 10 {
			series[i].Expected, series[i].Evidence = 600, float64(i-10)/2 // 20 per 10 s window
		}
	}
	sum := replay.Summary{From: epoch, To: epoch.Add(40 * step), Origin: epoch, SlotWidth: step}
	svg := report.SVG(sum, replay.ScopeSummary{Scope: "rule:a", Policy: policy, Series: series, PeakWindow: 20})
	for _, class := range []string{`class="band"`, `class="expected"`, `class="evidence"`, `class="evidence-h"`} {
		if !strings.Contains(svg, class) {
			t.Errorf("the chart has no %s", class)
		}
	}
	if !strings.Contains(svg, "evidence S against h = 12") {
		t.Error("the evidence strip does not name h")
	}
	// The hover of a judged slot gives the expectation per window and S.
	if !strings.Contains(svg, "expected 20 · evidence 14.5 of 12") {
		t.Errorf("no hover title gives the last slot's expectation and S; titles: %v", regexp.MustCompile(`<title>[^<]*expected[^<]*</title>`).FindAllString(svg, 3))
	}
	// The band's upper edge is expected + 2 sqrt(expected) per window: 20 +
	// 2 sqrt(20) = 28.9, above the expected line.
	m := regexp.MustCompile(`class="expected" d="M[0-9.]+ ([0-9.]+)`).FindStringSubmatch(svg)
	b := regexp.MustCompile(`class="band" d="M[0-9.]+ ([0-9.]+)`).FindStringSubmatch(svg)
	if m == nil || b == nil {
		t.Fatalf("no expected line or band path")
	}
	ym, _ := strconv.ParseFloat(m[1], 64)
	yb, _ := strconv.ParseFloat(b[1], 64)
	// y grows downwards; the plot is 200 units for 0 to yMax.
	if !(yb < ym) {
		t.Errorf("the band's top (y %v) is not above the expected line (y %v)", yb, ym)
	}

	// No detector: no band, no strip.
	policy.EvidenceThreshold = 0
	svg = report.SVG(sum, replay.ScopeSummary{Scope: "rule:a", Policy: policy, Series: series, PeakWindow: 20})
	if strings.Contains(svg, `class="band"`) || strings.Contains(svg, `class="evidence"`) {
		t.Error("a scope without the detector has its band or strip")
	}
	// The detector on but never judging (no expectation): none either.
	policy.EvidenceThreshold = 12
	for i := range series {
		series[i].Expected, series[i].Evidence = 0, 0
	}
	svg = report.SVG(sum, replay.ScopeSummary{Scope: "rule:a", Policy: policy, Series: series, PeakWindow: 20})
	if strings.Contains(svg, `class="band"`) || strings.Contains(svg, `class="evidence"`) {
		t.Error("a scope the detector has not judged has its band or strip")
	}
}

// TestSVGTripLabels checks that trips close together keep every marker
// but never stack their labels: the newest is labelled, the others only
// where a row is free.
func TestSVGTripLabels(t *testing.T) {
	step := 15 * time.Second
	series := make([]replay.Slot, 200)
	for i := range series {
		series[i] = replay.Slot{Window: 20, Samples: 1}
	}
	var trips []replay.Trip
	for i := range 4 {
		trips = append(trips, replay.Trip{At: epoch.Add(190*step + time.Duration(i)*5*time.Second), Reason: "max_actions", Window: float64(600 + i)})
	}
	sum := replay.Summary{From: epoch, To: epoch.Add(200 * step), Origin: epoch, SlotWidth: step}
	svg := report.SVG(sum, replay.ScopeSummary{Scope: "rule:a", Policy: breaker.Policy{Window: 10 * time.Second, MaxActions: 600}, Series: series, Trips: trips, PeakWindow: 603})
	if n := strings.Count(svg, `<g class="trip">`); n != 4 {
		t.Errorf("%d trip markers; want 4", n)
	}
	labels := regexp.MustCompile(`>trip [^<]*\((60\d)\)</text>`).FindAllStringSubmatch(svg, -1)
	if len(labels) != 2 || labels[0][1] != "602" || labels[1][1] != "603" {
		t.Errorf("trip labels %v; want the two newest (one per row)", labels)
	}
}

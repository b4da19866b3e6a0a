package report

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/replay"
)

type chart struct {
	Scope    breaker.Scope
	Anchor   string
	Trips    []replay.Trip
	Held     int64
	Actions  int64
	ClosePct float64
	SVG      template.HTML
}

// Chart geometry, in SVG user units.
const (
	width   = 1040.0
	left    = 62.0
	right   = 18.0
	top     = 36.0
	plotH   = 200.0
	gap     = 16.0
	heldH   = 46.0
	bottomH = 24.0
	evH     = 46.0
)

func chartOf(s replay.Summary, sc replay.ScopeSummary, anchor string) chart {
	c := chart{Scope: sc.Scope, Anchor: anchor, Trips: sc.Trips, Held: sc.Held, Actions: sc.Actions, ClosePct: math.Round(sc.Closeness * 100)}
	c.SVG = template.HTML(svg(s, sc)) //nolint:gosec // every string in it is escaped or numeric
	return c
}

func svg(s replay.Summary, sc replay.ScopeSummary) string {
	n := len(sc.Series)
	slot := s.SlotWidth
	if n == 0 || slot <= 0 {
		return `<p class="note">No data.</p>`
	}
	p := sc.Policy
	origin := s.Origin
	span := time.Duration(n) * slot
	plotW := width - left - right
	x := func(t time.Time) float64 { return left + plotW*float64(t.Sub(origin))/float64(span) }
	xi := func(i int) float64 { return left + plotW*(float64(i)+0.5)/float64(n) }

	yMax := math.Max(sc.PeakWindow, p.MinActions)
	if p.MaxActions > 0 {
		yMax = math.Max(yMax, p.MaxActions)
	}
	// The evidence detector's expectation is per bin and counts actions;
	// the band shows it per window, with two Poisson standard deviations
	// either side.
	evidence := false
	perWindow := 1.0
	if p.EvidenceOn() {
		perWindow = float64(p.Window) / float64(p.EvidenceBin)
	}
	band := func(sl replay.Slot) (lo, mid, hi float64) {
		mid = sl.Expected * perWindow
		return math.Max(0, mid-2*math.Sqrt(mid)), mid, mid + 2*math.Sqrt(mid)
	}
	maxS := p.EvidenceThreshold
	for _, sl := range sc.Series {
		yMax = math.Max(yMax, sl.Baseline)
		if p.EvidenceOn() && sl.Samples > 0 && sl.Expected > 0 {
			evidence = true
			_, _, hi := band(sl)
			yMax = math.Max(yMax, hi)
			maxS = math.Max(maxS, sl.Evidence)
		}
	}
	// The held strip, then the evidence strip where the detector judged
	// the scope, then the time axis.
	hy := top + plotH + gap
	ey := hy + heldH + gap
	low := hy + heldH
	if evidence {
		low = ey + evH
	}
	axisY := low
	height := low + bottomH
	yMax = niceCeil(yMax * 1.12)
	y := func(v float64) float64 { return top + plotH*(1-math.Min(v, yMax)/yMax) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %.0f %.0f" role="img" aria-label="window count of %s over event time" xmlns="http://www.w3.org/2000/svg">`, width, height, template.HTMLEscapeString(string(sc.Scope)))
	// Grid and y axis.
	step := niceStep(yMax / 4)
	for v := 0.0; v <= yMax+step/1000; v += step {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#eef0f3"/>`, left, width-right, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left-6, y(v)+4, num(v))
	}
	fmt.Fprintf(&b, `<text x="12" y="%.1f" transform="rotate(-90 12 %.1f)" text-anchor="middle">per %s window</text>`, top+plotH/2, top+plotH/2, dur(p.Window))
	// Time ticks.
	tick := timeTick(span)
	first := origin.Truncate(tick)
	if first.Before(origin) {
		first = first.Add(tick)
	}
	days := s.To.Sub(s.From) > 20*time.Hour
	for t := first; !t.After(origin.Add(span)); t = t.Add(tick) {
		xt := x(t)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#eef0f3"/>`, xt, xt, top, axisY)
		label := t.UTC().Format("15:04")
		if tick < time.Minute {
			label = t.UTC().Format("15:04:05")
		}
		if days && (t.UTC().Hour() == 0 && t.UTC().Minute() == 0 || t.Equal(first)) {
			label = t.UTC().Format("Jan 2 15:04")
		}
		// Labels at the edges stay inside the chart.
		anchor, lx := "middle", xt
		switch {
		case xt > width-right-30:
			anchor, lx = "end", width-2
		case xt < left-30:
			anchor, lx = "start", 2
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="%s">%s</text>`, lx, axisY+16, anchor, label)
	}
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#98a2b3"/>`, left, width-right, top+plotH, top+plotH)

	// Window count as an area under a line, broken where no batch reported the scope.
	var line, area strings.Builder
	seg := -1
	flush := func(last int) {
		if seg < 0 {
			return
		}
		fmt.Fprintf(&area, "L%.1f %.1f L%.1f %.1f Z ", xi(last), y(0), xi(seg), y(0))
		seg = -1
	}
	for i, sl := range sc.Series {
		if sl.Samples == 0 {
			flush(i - 1)
			continue
		}
		cmd := "L"
		if seg < 0 {
			seg, cmd = i, "M"
			fmt.Fprintf(&area, "M%.1f %.1f ", xi(i), y(0))
		}
		fmt.Fprintf(&line, "%s%.1f %.1f ", cmd, xi(i), y(sl.Window))
		fmt.Fprintf(&area, "L%.1f %.1f ", xi(i), y(sl.Window))
	}
	flush(n - 1)
	fmt.Fprintf(&b, `<path d="%s" fill="#2563eb" fill-opacity="0.12"/>`, area.String())

	// The evidence detector's expected band, where it judged the scope.
	if evidence {
		var upper, lower []string
		var mid strings.Builder
		flushBand := func() {
			if len(upper) == 0 {
				return
			}
			for i := len(lower) - 1; i >= 0; i-- {
				upper = append(upper, lower[i])
			}
			fmt.Fprintf(&b, `<path class="band" d="M%s Z" fill="#0d9488" fill-opacity="0.14" stroke="none"/>`, strings.Join(upper, " L"))
			upper, lower = nil, nil
		}
		started := false
		for i, sl := range sc.Series {
			if sl.Samples == 0 || sl.Expected <= 0 {
				flushBand()
				started = false
				continue
			}
			lo, m, hi := band(sl)
			upper = append(upper, fmt.Sprintf("%.1f %.1f", xi(i), y(hi)))
			lower = append(lower, fmt.Sprintf("%.1f %.1f", xi(i), y(lo)))
			cmd := "L"
			if !started {
				cmd, started = "M", true
			}
			fmt.Fprintf(&mid, "%s%.1f %.1f ", cmd, xi(i), y(m))
		}
		flushBand()
		fmt.Fprintf(&b, `<path class="expected" d="%s" fill="none" stroke="#0d9488" stroke-width="1.2"/>`, mid.String())
	}

	// Baseline and the factor threshold, where the baseline is ready.
	if p.Factor > 0 {
		var base, fac strings.Builder
		started := false
		for i, sl := range sc.Series {
			if sl.Samples == 0 || !sl.BaselineReady {
				started = false
				continue
			}
			cmd := "L"
			if !started {
				cmd, started = "M", true
			}
			fmt.Fprintf(&base, "%s%.1f %.1f ", cmd, xi(i), y(sl.Baseline))
			fmt.Fprintf(&fac, "%s%.1f %.1f ", cmd, xi(i), y(math.Max(p.Factor*sl.Baseline, p.MinActions)))
		}
		fmt.Fprintf(&b, `<path class="baseline" d="%s" fill="none" stroke="#475467" stroke-width="1.5"/>`, base.String())
		fmt.Fprintf(&b, `<path class="factor" d="%s" fill="none" stroke="#d97706" stroke-width="1.5" stroke-dasharray="2 3"/>`, fac.String())
	}
	fmt.Fprintf(&b, `<path class="rate" d="%s" fill="none" stroke="#2563eb" stroke-width="1.8" stroke-linejoin="round"/>`, line.String())
	// A figure with no neighbour (a long range's first minutes) is a dot,
	// not an invisible line of one point.
	for i, sl := range sc.Series {
		if sl.Samples > 0 && (i == 0 || sc.Series[i-1].Samples == 0) && (i == n-1 || sc.Series[i+1].Samples == 0) {
			fmt.Fprintf(&b, `<circle class="point" cx="%.1f" cy="%.1f" r="3" fill="#2563eb"/>`, xi(i), y(sl.Window))
		}
	}
	if p.MaxActions > 0 && p.MaxActions <= yMax {
		fmt.Fprintf(&b, `<line class="max" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#dc2626" stroke-width="1.5" stroke-dasharray="6 4"/>`, left, width-right, y(p.MaxActions), y(p.MaxActions))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" style="%s;fill:#dc2626">max_actions %s per %s</text>`, width-right-4, y(p.MaxActions)-5, halo, num(p.MaxActions), dur(p.Window))
	}

	// Held actions per slot, in a strip under the chart.
	var maxHeld int64
	for _, sl := range sc.Series {
		maxHeld = max(maxHeld, sl.Held)
	}
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#faf8ff"/>`, left, hy, plotW, heldH)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">held</text>`, left-6, hy+heldH/2+4)
	if maxHeld > 0 {
		bw := math.Max(plotW/float64(n)-0.6, 0.8)
		for i, sl := range sc.Series {
			if sl.Held == 0 {
				continue
			}
			h := heldH * float64(sl.Held) / float64(maxHeld)
			fmt.Fprintf(&b, `<rect class="held" x="%.1f" y="%.1f" width="%.2f" height="%.1f" fill="#7c3aed"><title>%d held</title></rect>`, xi(i)-bw/2, hy+heldH-h, bw, h, sl.Held)
		}
		// At the left of the strip, away from the trip and reset labels.
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" style="fill:#7c3aed">max %s held per %s</text>`, left+4, hy+12, num(float64(maxHeld)), dur(slot))
	} else {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">nothing held</text>`, left+6, hy+heldH/2+4)
	}

	// The evidence S against h, in a strip of its own.
	if evidence {
		sMax := niceCeil(maxS * 1.1)
		ys := func(v float64) float64 { return ey + evH*(1-math.Min(v, sMax)/sMax) }
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f0fdfa"/>`, left, ey, plotW, evH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">evidence</text>`, left-6, ey+evH/2+4)
		fmt.Fprintf(&b, `<line class="evidence-h" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#dc2626" stroke-width="1" stroke-dasharray="6 4"/>`, left, width-right, ys(p.EvidenceThreshold), ys(p.EvidenceThreshold))
		var line strings.Builder
		started := false
		for i, sl := range sc.Series {
			if sl.Samples == 0 || sl.Expected <= 0 {
				started = false
				continue
			}
			cmd := "L"
			if !started {
				cmd, started = "M", true
			}
			fmt.Fprintf(&line, "%s%.1f %.1f ", cmd, xi(i), ys(sl.Evidence))
		}
		fmt.Fprintf(&b, `<path class="evidence" d="%s" fill="none" stroke="#0d9488" stroke-width="1.5"/>`, line.String())
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" style="fill:#0f766e">evidence S against h = %s (dashed); band: the detector's expected actions per %s ±2σ</text>`, left+4, ey-3, num(p.EvidenceThreshold), dur(p.Window))
	}

	// Hover targets under the markers, so that a trip's own title shows.
	hover(&b, sc, n, xi, plotW, low, perWindow, evidence, func(i int) time.Time { return origin.Add(time.Duration(i) * slot) })

	// Resets and trips.
	for i, r := range sc.Resets {
		xr := x(r)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#059669" stroke-width="1.5" stroke-dasharray="4 3"/>`, xr, xr, top, low)
		// Near the right edge the label goes left of its line, never off the chart.
		anchor, dx := "start", 3.0
		if xr > width-right-40 {
			anchor, dx = "end", -3
		}
		// On a white halo: after a reset the window count runs along the
		// bottom of the plot, through the label.
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="%s" style="%s;fill:#059669">reset</text>`, xr+dx, top+plotH-6-float64(i%2)*13, anchor, halo)
	}
	// A trip's label takes the first of two rows where it overlaps no
	// other label, newest first; a trip whose label fits in neither keeps
	// its marker and the marker's title.
	var rows [2][][2]float64
	labels := make([]string, len(sc.Trips))
	for i := len(sc.Trips) - 1; i >= 0; i-- {
		t := sc.Trips[i]
		xt := x(t.At)
		text := fmt.Sprintf("trip %s %s (%s)", t.At.UTC().Format("15:04:05"), t.Reason, num(t.Window))
		w := 6.5*float64(len(text)) + 6
		anchor, dx, lo := "start", 5.0, xt
		if xt > width-right-220 {
			anchor, dx, lo = "end", -5, xt-w
		}
		for r := range rows {
			free := true
			for _, iv := range rows[r] {
				if lo < iv[1] && lo+w > iv[0] {
					free = false
				}
			}
			if free {
				rows[r] = append(rows[r], [2]float64{lo, lo + w})
				labels[i] = fmt.Sprintf(`<text x="%.1f" y="%.1f" text-anchor="%s" style="fill:#dc2626;font-weight:600">%s</text>`,
					xt+dx, top-22+float64(r)*13, anchor, template.HTMLEscapeString(text))
				break
			}
		}
	}
	for i, t := range sc.Trips {
		xt := x(t.At)
		fmt.Fprintf(&b, `<g class="trip"><line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#dc2626" stroke-width="1.5"/>`, xt, xt, top-20, low)
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4.5" fill="#dc2626"><title>tripped at %s: %s in %s (%s)</title></circle>`,
			xt, y(t.Window), t.At.UTC().Format("15:04:05"), num(t.Window), dur(p.Window), template.HTMLEscapeString(t.Reason))
		b.WriteString(labels[i] + `</g>`)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// halo draws a label over a white outline, so that a line crossing it
// does not hide it.
const halo = "paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round"

// hoverColumns bounds the hover targets of a chart: slots are grouped so
// that a day of 15 s slots stays a few hundred elements.
const hoverColumns = 240

// hover adds transparent columns over the plot whose titles give the
// figures under the pointer: the time, the window count (the highest of
// the column's slots), the baseline and what was held, and where the
// evidence detector judged the scope its expectation per window and the
// highest S.
func hover(b *strings.Builder, sc replay.ScopeSummary, n int, xi func(int) float64, plotW, low, perWindow float64, evidence bool, at func(int) time.Time) {
	per := max(1, (n+hoverColumns-1)/hoverColumns)
	w := plotW * float64(per) / float64(n)
	for i := 0; i < n; i += per {
		var win, base, exp, ev float64
		var held int64
		seen := false
		for j := i; j < min(i+per, n); j++ {
			sl := sc.Series[j]
			if sl.Samples == 0 {
				continue
			}
			seen = true
			win = math.Max(win, sl.Window)
			base = sl.Baseline
			held += sl.Held
			exp = sl.Expected * perWindow
			ev = math.Max(ev, sl.Evidence)
		}
		if !seen {
			continue
		}
		x0 := xi(i) - plotW/float64(n)/2
		detector := ""
		if evidence && exp > 0 {
			detector = fmt.Sprintf(" · expected %s · evidence %s of %s", num(exp), num(ev), num(sc.Policy.EvidenceThreshold))
		}
		fmt.Fprintf(b, `<rect class="hover" x="%.1f" y="%.1f" width="%.2f" height="%.1f" fill="transparent"><title>%s: window %s per %s · baseline %s · held %d%s</title></rect>`,
			x0, top, w, low-top, at(i).UTC().Format("15:04:05"), num(win), dur(sc.Policy.Window), num(base), held, detector)
	}
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if v <= m*e {
			return m * e
		}
	}
	return 10 * e
}

func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*e {
			return m * e
		}
	}
	return 10 * e
}

var ticks = []time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute,
	10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour,
	6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour,
}

func timeTick(span time.Duration) time.Duration {
	for _, t := range ticks {
		if span/t <= 10 {
			return t
		}
	}
	return ticks[len(ticks)-1]
}

// SVG draws the chart of one scope of s: its weighted window count over
// time against max_actions, factor times its baseline and the baseline,
// with its trips and resets marked and its held actions per slot in a strip
// underneath. Every string in it is escaped. The replay report and the
// admin API's breaker chart both draw with it.
func SVG(s replay.Summary, sc replay.ScopeSummary) string { return svg(s, sc) }

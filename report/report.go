// Package report renders the result of a replay as a self-contained HTML
// page: a summary table and, for every breaker that tripped or came close,
// an inline SVG chart of its window count over event time against its
// thresholds and baseline, with the trips and the held actions marked. The
// page loads nothing from elsewhere and runs no script.
package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/replay"
)

// Options configure a report.
type Options struct {
	// Title heads the page.
	Title string
	// Input and Config name what was replayed, for the header.
	Input, Config string
	// Close is the closeness (window count over the nearest threshold) from
	// which a scope that did not trip still gets a chart; 0 means 0.8.
	Close float64
	// MaxCharts bounds the number of charts; 0 means 40.
	MaxCharts int
	// MinCharts adds charts of the closest other scopes until there are
	// this many, so that a quiet replay still shows its busiest breakers;
	// 0 means 3, a negative value none.
	MinCharts int
}

// Write renders the report of s to w.
func Write(w io.Writer, s replay.Summary, opts Options) error {
	if opts.Close == 0 {
		opts.Close = 0.8
	}
	if opts.MaxCharts == 0 {
		opts.MaxCharts = 40
	}
	if opts.MinCharts == 0 {
		opts.MinCharts = 3
	}
	if opts.Title == "" {
		opts.Title = "Breakwater replay"
	}
	p := page{Opts: opts, S: s}
	want := 0
	for _, sc := range s.Scopes {
		if len(sc.Trips) > 0 || sc.Closeness >= opts.Close {
			want++
		}
	}
	want = min(max(want, opts.MinCharts), opts.MaxCharts)
	for _, sc := range s.Scopes {
		row := row{S: sc, Threshold: threshold(sc.Policy), ClosePct: math.Round(sc.Closeness * 100)}
		if len(sc.Trips) > 0 {
			row.FirstTrip = sc.Trips[0].At.UTC().Format("Jan 2 15:04:05")
			p.Tripped++
		}
		// Scopes come tripped first, then by closeness.
		if len(p.Charts) < want {
			row.Anchor = anchor(sc.Scope)
			p.Charts = append(p.Charts, chartOf(s, sc, row.Anchor))
		} else {
			p.Quiet++
		}
		p.Rows = append(p.Rows, row)
	}
	return tmpl.Execute(w, p)
}

type page struct {
	Opts    Options
	S       replay.Summary
	Rows    []row
	Charts  []chart
	Tripped int
	Quiet   int
}

type row struct {
	S         replay.ScopeSummary
	Threshold string
	FirstTrip string
	ClosePct  float64
	Anchor    string
}

func threshold(p breaker.Policy) string {
	if p.Disabled {
		return "disabled"
	}
	var parts []string
	if p.MaxActions > 0 {
		parts = append(parts, fmt.Sprintf("%s per %s", num(p.MaxActions), dur(p.Window)))
	}
	if p.Factor > 0 {
		parts = append(parts, fmt.Sprintf("%s&times;&#8239;baseline (min&#8239;%s)", num(p.Factor), num(p.MinActions)))
	}
	return strings.Join(parts, " or ")
}

func anchor(s breaker.Scope) string {
	var b strings.Builder
	b.WriteString("s-")
	for _, r := range string(s) {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, ".%x", r)
		}
	}
	return b.String()
}

func num(f float64) string {
	switch {
	case f >= 1e6:
		return trimZero(fmt.Sprintf("%.1fM", f/1e6))
	case f >= 1e4:
		return trimZero(fmt.Sprintf("%.1fk", f/1e3))
	case f == math.Trunc(f):
		return fmt.Sprintf("%.0f", f)
	default:
		return trimZero(fmt.Sprintf("%.1f", f))
	}
}

func trimZero(s string) string { return strings.Replace(s, ".0", "", 1) }

// dur formats d without zero trailing units: 10s, 1m, 1m30s, 2h, 1h5m.
func dur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

var funcs = template.FuncMap{
	"num":  func(v any) string { return numAny(v) },
	"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"raw":  func(s string) template.HTML { return template.HTML(s) }, //nolint:gosec // built from numbers only
	"barw": func(p float64) int { return int(math.Min(p, 150) * 0.6) },
	"pct": func(a, b int64) string {
		if b == 0 {
			return "0%"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
	},
}

func numAny(v any) string {
	switch x := v.(type) {
	case int64:
		return num(float64(x))
	case int:
		return num(float64(x))
	case float64:
		return num(x)
	}
	return fmt.Sprint(v)
}

var tmpl = template.Must(template.New("report").Funcs(funcs).Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Opts.Title}}</title>
<style>
:root{--fg:#1d2330;--muted:#667085;--line:#e4e7ec;--rate:#2563eb;--max:#dc2626;--fac:#d97706;--base:#475467;--held:#7c3aed;--ok:#059669}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 10px}
.sub{color:var(--muted);margin:0 0 18px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.card b{display:block;font-size:24px}
.card span{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card.held b{color:var(--held)} .card.trip b{color:var(--max)} .card.gated b{color:var(--ok)}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid var(--line);border-radius:10px;overflow:hidden}
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap;font-size:13px}
th{white-space:normal}
.tablewrap{overflow-x:auto}
th{background:#f9fafb;font-weight:600;font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
td:first-child,th:first-child,td.l,th.l{text-align:left}
tr.tripped td:first-child{border-left:4px solid var(--max)}
tr.close td:first-child{border-left:4px solid var(--fac)}
.bar{display:inline-block;height:8px;border-radius:4px;background:#98a2b3;vertical-align:middle;margin-right:6px}
.bar.near{background:var(--fac)} .bar.over{background:var(--max)}
td.wrap{white-space:normal;font-size:12px;color:#344054;min-width:150px}
figure{background:#fff;border:1px solid var(--line);border-radius:10px;margin:0 0 16px;padding:12px 14px}
figcaption{display:flex;justify-content:space-between;gap:12px;flex-wrap:wrap;margin-bottom:4px}
figcaption b{font-size:15px}
.tag{display:inline-block;border-radius:999px;padding:1px 9px;font-size:12px;font-weight:600;background:#fee4e2;color:#b42318}
.tag.close{background:#fef0c7;color:#b54708}
.legend{color:var(--muted);font-size:12px}
.legend i{display:inline-block;width:14px;height:3px;vertical-align:middle;margin:0 4px 0 10px}
svg{display:block;width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:#475467}
.note{color:var(--muted);font-size:12px}
a{color:var(--rate)}
</style></head>
<body><main>
<h1>{{.Opts.Title}}</h1>
<p class="sub">{{if .Opts.Input}}Input <code>{{.Opts.Input}}</code> · {{end}}{{if .Opts.Config}}config <code>{{.Opts.Config}}</code> · {{end}}event time {{time .S.From}} to {{time .S.To}} · {{num .S.Batches}} batches · replayed at {{num .S.EventsPerSecond}} events/s{{if .S.AssumeResetAfter}} · assumed human reset {{.S.AssumeResetAfter}} after each trip{{else}} · tripped breakers stay open (no reset assumed){{end}}</p>
<div class="cards">
<div class="card"><span>actions</span><b>{{num .S.Actions}}</b></div>
<div class="card gated"><span>gated</span><b>{{num .S.Gated}}</b>{{pct .S.Gated .S.Actions}}</div>
<div class="card held"><span>held</span><b>{{num .S.Held}}</b>{{pct .S.Held .S.Actions}}</div>
<div class="card"><span>dead letter</span><b>{{num .S.DeadLetter}}</b>{{pct .S.DeadLetter .S.Actions}}</div>
<div class="card trip"><span>breakers tripped</span><b>{{.Tripped}}</b>of {{len .S.Scopes}} scopes</div>
</div>

{{with .S.Labels}}<h2>Labelled incidents</h2>
<div class="cards">
<div class="card"><span>incident actions</span><b>{{num .IncidentActions}}</b></div>
<div class="card gated"><span>gated before detection</span><b>{{num .GatedBefore}}</b></div>
<div class="card {{if .GatedAfter}}trip{{else}}gated{{end}}"><span>gated after detection</span><b>{{num .GatedAfter}}</b></div>
<div class="card held"><span>collateral</span><b>{{num .Collateral}}</b>ordinary actions held while an incident ran</div>
<div class="card held"><span>false holds</span><b>{{num .FalseHolds}}</b>outside incidents</div>
<div class="card trip"><span>trips outside incidents</span><b>{{.TripsOutside}}</b></div>
</div>
<div class="tablewrap"><table>
<tr><th>incident</th><th class="l">kind</th><th>actions</th><th>held</th><th>gated before detection</th><th>gated after</th><th class="l">first action</th><th class="l">time to detect</th><th class="l">held first by</th></tr>
{{range .Incidents}}<tr><td>{{.Incident}}</td><td class="l">{{.Kind}}</td><td>{{num .Actions}}</td><td>{{num .Held}}</td><td>{{num .GatedBefore}}</td><td>{{num .GatedAfter}}</td><td class="l">{{time .First}}</td><td class="l">{{if .DetectAfter}}{{.DetectAfter}}{{else}}never{{end}}</td><td class="l">{{.Scope}}</td></tr>
{{end}}</table></div>
<p class="note">From the labels of the input: which actions the injected incidents produced. Collateral: ordinary actions held between an incident's first and last action; {{num .Malformed}} malformed lines, {{num .MalformedDeadLetter}} to dead-letter.</p>
{{end}}
<h2>Breakers</h2>
<div class="tablewrap"><table>
<tr><th>scope</th><th>actions</th><th>held</th><th class="l">trips</th><th>peak window</th><th class="l">trips when the window count is above</th><th class="l">closest approach</th><th>state at end</th></tr>
{{range .Rows}}<tr class="{{if .S.Trips}}tripped{{else if ge .S.Closeness $.Opts.Close}}close{{end}}">
<td>{{if .Anchor}}<a href="#{{.Anchor}}">{{.S.Scope}}</a>{{else}}{{.S.Scope}}{{end}}</td>
<td>{{num .S.Actions}}</td><td>{{num .S.Held}}</td><td class="l">{{if .S.Trips}}{{len .S.Trips}}&times;, first {{.FirstTrip}}{{else}}&ndash;{{end}}</td>
<td>{{num .S.PeakWindow}}</td><td class="l wrap">{{raw .Threshold}}</td>
<td class="l"><span class="bar{{if ge .S.Closeness 1.0}} over{{else if ge .S.Closeness $.Opts.Close}} near{{end}}" style="width:{{.ClosePct | barw}}px"></span>{{.ClosePct}}%</td>
<td>{{.S.State}}</td></tr>
{{end}}</table></div>
<p class="note">Closest approach: the highest window count as a share of the nearest threshold (100% or more trips). Held counts the actions this breaker held; an action held by another scope (global, say) counts there.{{if .Quiet}} The {{.Quiet}} scopes without a link stayed further from their thresholds and have no chart.{{end}}</p>

<h2>Charts</h2>
{{if not .Tripped}}<p>No breaker tripped.{{if .Charts}} The closest ones:{{end}}</p>{{end}}
{{range .Charts}}<figure id="{{.Anchor}}" class="chart" data-scope="{{.Scope}}">
<figcaption><span><b>{{.Scope}}</b> {{if .Trips}}<span class="tag">tripped {{len .Trips}}&times;</span>{{else}}<span class="tag close">came to {{.ClosePct}}%</span>{{end}} <span class="legend">held {{num .Held}} of {{num .Actions}} actions</span></span>
<span class="legend"><i style="background:var(--rate)"></i>window count<i style="background:var(--max)"></i>max_actions<i style="background:var(--fac)"></i>factor &times; baseline<i style="background:var(--base)"></i>baseline<i style="background:var(--held);height:8px"></i>held</span></figcaption>
{{.SVG}}
</figure>
{{end}}
<p class="note">Weighted counts: each action counts with its type's weight. Times are event times (UTC). One chart point is {{.S.SlotWidth}} of event time.</p>
</main></body></html>
`

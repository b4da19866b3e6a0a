package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"text/template"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// recorder is a Registerer that keeps what New registers.
type recorder struct{ cs []prometheus.Collector }

func (r *recorder) Register(c prometheus.Collector) error   { r.cs = append(r.cs, c); return nil }
func (r *recorder) MustRegister(cs ...prometheus.Collector) { r.cs = append(r.cs, cs...) }
func (r *recorder) Unregister(prometheus.Collector) bool    { return false }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// seriesNames returns every series name the registry built by New exposes:
// histograms as their _bucket, _sum and _count series.
func seriesNames(t *testing.T) map[string]bool {
	r := &recorder{}
	New(r, 10)
	names := map[string]bool{}
	for _, c := range r.cs {
		ch := make(chan *prometheus.Desc, 4)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := fqName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			switch c.(type) {
			case prometheus.Histogram, *prometheus.HistogramVec:
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					names[m[1]+s] = true
				}
			default:
				names[m[1]] = true
			}
		}
	}
	return names
}

// ruleFile is the Prometheus rule file format, decoded strictly.
type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	// External series the rules and dashboard may use besides our own.
	external = map[string]bool{"up": true}
	// Grafana's variables, replaced by values PromQL accepts.
	grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$scope", ".*")
)

// selectors parses expr and returns the series names it selects.
func selectors(p parser.Parser, expr string) ([]string, error) {
	e, err := p.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names, nil
}

// checkTemplate parses an annotation as Prometheus does, with its
// $labels and $value and the humanize functions.
func checkTemplate(text string) error {
	funcs := template.FuncMap{"humanize": fmt.Sprint, "humanizeDuration": fmt.Sprint}
	tmpl, err := template.New("a").Funcs(funcs).Option("missingkey=zero").
		Parse("{{$labels := .Labels}}{{$value := .Value}}" + text)
	if err != nil {
		return err
	}
	return tmpl.Execute(&bytes.Buffer{}, map[string]any{"Labels": map[string]string{}, "Value": 1.0})
}

func TestPrometheusRules(t *testing.T) {
	data, err := os.ReadFile("../deploy/prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f ruleFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("rules.yml: %v", err)
	}
	have := seriesNames(t)
	recorded := map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
		}
	}
	p := parser.NewParser(parser.Options{})
	groups := map[string]bool{}
	alerts, records := 0, 0
	for _, g := range f.Groups {
		if g.Name == "" || groups[g.Name] {
			t.Errorf("group name %q is empty or repeated", g.Name)
		}
		groups[g.Name] = true
		if g.Interval != "" {
			if _, err := model.ParseDuration(g.Interval); err != nil {
				t.Errorf("group %s: interval %q: %v", g.Name, g.Interval, err)
			}
		}
		for i, r := range g.Rules {
			where := fmt.Sprintf("group %s rule %d (%s%s)", g.Name, i, r.Alert, r.Record)
			switch {
			case (r.Alert == "") == (r.Record == ""):
				t.Errorf("%s: exactly one of alert and record must be set", where)
			case r.Record != "":
				records++
				if !metricName.MatchString(r.Record) || r.For != "" || len(r.Annotations) > 0 {
					t.Errorf("%s: a recording rule needs a valid metric name and no for or annotations", where)
				}
			default:
				alerts++
				if !model.LabelValue(r.Alert).IsValid() || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
					t.Errorf("%s: an alert needs a valid name, a severity label and a summary", where)
				}
				if r.For != "" {
					if _, err := model.ParseDuration(r.For); err != nil {
						t.Errorf("%s: for %q: %v", where, r.For, err)
					}
				}
				for k, v := range r.Annotations {
					if err := checkTemplate(v); err != nil {
						t.Errorf("%s: annotation %s: %v", where, k, err)
					}
				}
			}
			names, err := selectors(p, r.Expr)
			if err != nil {
				t.Errorf("%s: expr %q: %v", where, r.Expr, err)
				continue
			}
			for _, n := range names {
				if !have[n] && !recorded[n] && !external[n] {
					t.Errorf("%s: expr uses %s, which metrics.New does not register", where, n)
				}
			}
		}
	}
	if alerts < 5 || records < 3 {
		t.Errorf("rules.yml has %d alerts and %d recording rules; want the daemon's down and stuck alerts and recordings", alerts, records)
	}
	for _, want := range []string{"BreakwaterDown", "BreakwaterStuck", "BreakwaterNotificationsFailing"} {
		if !bytes.Contains(data, []byte("alert: "+want+"\n")) {
			t.Errorf("rules.yml lacks the alert %s", want)
		}
	}
}

func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("../deploy/grafana/breakwater.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("breakwater.json: %v", err)
	}
	if dash.UID == "" || dash.Title == "" || len(dash.Panels) < 8 {
		t.Fatalf("dashboard uid %q title %q with %d panels; want a titled dashboard with the metric set", dash.UID, dash.Title, len(dash.Panels))
	}
	have := seriesNames(t)
	p := parser.NewParser(parser.Options{})
	used := map[string]bool{}
	ids := map[int]bool{}
	for _, pn := range dash.Panels {
		if ids[pn.ID] || len(pn.Targets) == 0 {
			t.Errorf("panel %d %q: repeated id or no query", pn.ID, pn.Title)
		}
		ids[pn.ID] = true
		for _, tg := range pn.Targets {
			names, err := selectors(p, grafanaVars.Replace(tg.Expr))
			if err != nil {
				t.Errorf("panel %q: expr %q: %v", pn.Title, tg.Expr, err)
				continue
			}
			for _, n := range names {
				used[n] = true
				if !have[n] && !external[n] {
					t.Errorf("panel %q: uses %s, which metrics.New does not register", pn.Title, n)
				}
			}
		}
	}
	// The dashboard shows every metric the daemon exports.
	var missing []string
	for n := range have {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if !used[n] && !used[base+"_bucket"] && !used[base+"_count"] && !used[base+"_sum"] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	allowed := map[string]bool{ // shown through others or only useful ad hoc
		"breakwater_batch_actions_bucket": true, "breakwater_batch_actions_sum": true, "breakwater_batch_actions_count": true,
		"breakwater_state_restores_total": true, "breakwater_last_batch_timestamp_seconds": true,
		"breakwater_notification_duration_seconds_bucket": true, "breakwater_notification_duration_seconds_sum": true,
		"breakwater_notification_duration_seconds_count": true,
	}
	for _, n := range missing {
		if !allowed[n] {
			t.Errorf("the dashboard does not show %s", n)
		}
	}
}

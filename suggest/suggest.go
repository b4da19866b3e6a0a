// Package suggest proposes breaker thresholds from recorded traffic: for
// every rule and the global total, a max_actions above the highest window
// count the traffic reached and a factor above the highest ratio of the
// window count to the scope's baseline, each with headroom, so that the
// normal traffic of the recording would not have tripped them and a rule
// acting several times its normal rate would; a min_actions (and
// max_actions at least as high) that traffic like the recording's reaches
// within a target rate of false trips (see WindowLevel); and the evidence
// detector's threshold from the same target (see Calibration).
package suggest

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
)

// Options tune the suggestions.
type Options struct {
	// Headroom multiplies the observed peaks; 0 means 1.5.
	Headroom float64
	// Quantile of the observed window counts and ratios taken as the
	// normal peak, in (0, 1]; 0 means 1 (the highest). Below 1 it ignores
	// short bursts, for recordings that contain an incident.
	Quantile float64
	// Floor is the least max_actions suggested; 0 means 20.
	Floor float64
	// MinFactor is the least factor suggested; 0 means 2.
	MinFactor float64
	// NewRules is the configured budget of new rules, which the
	// suggestion never loosens.
	NewRules config.NewRules
	// ActionWindow is the window of the breakers suggested per rule for
	// each irreversible action type (see ObservingActions); 0 means 10m.
	ActionWindow time.Duration
	// FalseTripsPerWeek is the target rate of false trips of the evidence
	// detectors, across every scope observed that runs one: each gets an
	// equal share, and its threshold is set so that traffic like the
	// recording's trips it at most that often (see Calibration). 0 means
	// 1; negative leaves the configured thresholds.
	FalseTripsPerWeek float64
}

func (o *Options) fill() error {
	if o.Headroom == 0 {
		o.Headroom = 1.5
	}
	if o.Quantile == 0 {
		o.Quantile = 1
	}
	if o.Floor == 0 {
		o.Floor = 20
	}
	if o.MinFactor == 0 {
		o.MinFactor = 2
	}
	if o.ActionWindow == 0 {
		o.ActionWindow = DefaultActionWindow
	}
	if o.FalseTripsPerWeek == 0 {
		o.FalseTripsPerWeek = 1
	}
	switch {
	case !(o.Headroom >= 1 && o.Headroom <= 100):
		return fmt.Errorf("suggest: headroom must be between 1 and 100, got %g", o.Headroom)
	case !(o.Quantile > 0 && o.Quantile <= 1):
		return fmt.Errorf("suggest: quantile must be in (0, 1], got %g", o.Quantile)
	case !(o.Floor >= 0):
		return fmt.Errorf("suggest: floor must not be negative, got %g", o.Floor)
	case !(o.MinFactor >= 1):
		return fmt.Errorf("suggest: min factor must be at least 1, got %g", o.MinFactor)
	case o.ActionWindow < 10*time.Millisecond || o.ActionWindow > 24*time.Hour:
		return fmt.Errorf("suggest: action window must be between 10ms and 24h, got %v", o.ActionWindow)
	case math.IsNaN(o.FalseTripsPerWeek) || o.FalseTripsPerWeek > 10000:
		return fmt.Errorf("suggest: false trips per week must be at most 10000, got %g", o.FalseTripsPerWeek)
	}
	return nil
}

// Observer collects the window counts of every scope during a replay,
// and the number of actions per evidence bin of those that run the evidence
// detector.
type Observer struct {
	opts     Options
	scopes   map[breaker.Scope]*observed
	evidence map[breaker.Scope]*evidenceStats
	windows  map[breaker.Scope]*windowStats
	first    int64 // the earliest bucket seen, Unix ms
	top      int64 // the latest bucket seen, Unix ms
	seen     bool
}

type observed struct {
	policy  breaker.Policy
	windows dist
	ratios  dist
}

// NewObserver returns an empty observer.
func NewObserver(opts Options) (*Observer, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	return &Observer{opts: opts, scopes: map[breaker.Scope]*observed{}, evidence: map[breaker.Scope]*evidenceStats{}, windows: map[breaker.Scope]*windowStats{}}, nil
}

// Bucket records the number of actions of one fine bucket of scope at
// atMillis and their summed weight (in breaker.Milli units); it fits
// replay.Options.OnBucket.
func (o *Observer) Bucket(scope breaker.Scope, p breaker.Policy, atMillis, count, weight int64) {
	if !o.seen || atMillis < o.first {
		o.first, o.seen = atMillis, true
	}
	o.top = max(o.top, atMillis)
	if dim, _ := scope.Segment(); dim != "" {
		// A segment runs on its rule's thresholds.
		return
	}
	if o.opts.FalseTripsPerWeek >= 0 && p.Window > 0 {
		w := o.windows[scope]
		if w == nil {
			w = newWindowStats(p)
			o.windows[scope] = w
		}
		w.add(atMillis, count, weight)
	}
	if o.opts.FalseTripsPerWeek < 0 || !(p.EvidenceBin > 0 && p.EvidenceRatio > 1 && p.EvidenceDays > 0) {
		return
	}
	e := o.evidence[scope]
	if e == nil {
		e = newEvidenceStats(p)
		o.evidence[scope] = e
	}
	e.add(atMillis, count)
}

// Observe records the counts of scope after one fine bucket; it fits
// replay.Options.OnCounts.
func (o *Observer) Observe(scope breaker.Scope, p breaker.Policy, _ int64, c breaker.Counts) {
	if dim, _ := scope.Segment(); dim != "" {
		// A segment runs on its rule's thresholds: nothing to propose.
		return
	}
	s := o.scopes[scope]
	if s == nil {
		s = &observed{policy: p, windows: newDist(o.opts.Quantile), ratios: newDist(o.opts.Quantile)}
		o.scopes[scope] = s
	}
	s.windows.add(c.Window)
	if c.BaselineReady && c.Baseline > 0 && c.Window >= p.MinActions {
		s.ratios.add(c.Window / c.Baseline)
	}
}

// Suggestion is the proposed thresholds of one scope.
type Suggestion struct {
	Scope  breaker.Scope
	Window time.Duration
	// Peak is the normal peak window count and PeakRatio the normal peak
	// ratio of the window count to the baseline (0 if never measurable).
	Peak, PeakRatio float64
	// MaxActions and Factor are the suggested thresholds; Factor is 0
	// when no ratio could be measured (the configured factor stays).
	MaxActions, Factor float64
	// MinActions, for a rule and action type, is the least window count
	// for Factor to trip: the normal peak. 0 keeps the configured one.
	MinActions float64
	// ProbationScale, when not 0, raises the configured one so that the
	// normal peak stays 10% below max_actions during probation too;
	// otherwise a breaker reset after an incident trips again on normal
	// traffic.
	ProbationScale float64
	// Current are the configured thresholds.
	Current breaker.Policy
	// Evidence, when not nil, is the calibration of the scope's evidence
	// detector: its suggested threshold and what it buys.
	Evidence *Calibration
	// Level, when not nil, is the least window count at which the
	// scope's window conditions trip within its share of the false-trip
	// target (see WindowLevel): MaxActions is at least it and MinActions
	// is it.
	Level *WindowLevel
}

// Rules returns the rules seen, sorted.
func (o *Observer) Rules() []string {
	var out []string
	for sc := range o.scopes {
		if sc != breaker.Global && breaker.RuleScope(sc.Rule()) == sc {
			out = append(out, sc.Rule())
		}
	}
	slices.Sort(out)
	return out
}

// Suggestions returns the proposals for the global scope, every rule seen
// and every rule and action type observed, global first, then by scope (a
// rule before its action types).
func (o *Observer) Suggestions() []Suggestion {
	var out []Suggestion
	for _, sc := range slices.Sorted(maps.Keys(o.scopes)) {
		s := o.scopes[sc]
		sg := Suggestion{Scope: sc, Window: s.policy.Window, Current: s.policy, Peak: s.windows.quantile(), PeakRatio: s.ratios.quantile()}
		sg.MaxActions = roundUp(math.Max(sg.Peak*o.opts.Headroom, o.opts.Floor))
		if sg.PeakRatio > 0 {
			sg.Factor = math.Max(math.Ceil(sg.PeakRatio*o.opts.Headroom*2)/2, o.opts.MinFactor)
		}
		if sc.Action() != "" {
			// An action type of a rule counts few actions: the factor
			// trips only above the normal peak, never on a burst of
			// random arrivals that a small baseline multiplies.
			sg.MinActions = roundUp(math.Max(sg.Peak, s.policy.MinActions))
		}
		if ps := s.policy.ProbationScale; ps > 0 && sg.MaxActions*ps < sg.Peak*1.1 {
			sg.ProbationScale = math.Min(math.Ceil(sg.Peak*1.1/sg.MaxActions*20)/20, 1)
		}
		out = append(out, sg)
	}
	o.levels(out)
	o.calibrate(out)
	slices.SortStableFunc(out, func(a, b Suggestion) int {
		if (a.Scope == breaker.Global) != (b.Scope == breaker.Global) {
			if a.Scope == breaker.Global {
				return -1
			}
			return 1
		}
		return strings.Compare(string(a.Scope), string(b.Scope))
	})
	return out
}

// calibrate sets the evidence threshold of every suggestion whose scope
// runs the detector, each scope getting an equal share of the target.
func (o *Observer) calibrate(sgs []Suggestion) {
	type model struct {
		mu [breaker.SeasonSlots]float64
		c2 float64
	}
	models := map[breaker.Scope]model{}
	for sc, e := range o.evidence {
		e.closeTo(floorDiv(o.top, e.bin))
		if mu, c2, ok := e.model(); ok {
			models[sc] = model{mu, c2}
		}
	}
	if len(models) == 0 {
		return
	}
	budget := o.opts.FalseTripsPerWeek / float64(len(models))
	for i := range sgs {
		m, ok := models[sgs[i].Scope]
		if !ok {
			continue
		}
		if c, ok := calibrate(sgs[i].Scope, o.evidence[sgs[i].Scope].policy, m.mu, m.c2, budget); ok {
			sgs[i].Evidence = &c
		}
	}
}

// levels sets the window conditions of every suggestion whose scope was
// observed from a target false-alarm rate, each scope getting an equal
// share of the target (see WindowLevel).
func (o *Observer) levels(sgs []Suggestion) {
	if o.opts.FalseTripsPerWeek < 0 || len(o.windows) == 0 {
		return
	}
	end := o.top + 1
	models := map[breaker.Scope]windowModel{}
	for sc, w := range o.windows {
		if m, ok := w.model(o.first, end); ok {
			models[sc] = m
		}
	}
	if len(models) == 0 {
		return
	}
	budget := o.opts.FalseTripsPerWeek / float64(len(models))
	for i := range sgs {
		s := &sgs[i]
		m, ok := models[s.Scope]
		if !ok {
			continue
		}
		lv, ok := m.level(budget, s.Current.ProbationScale, s.Current.Probation)
		if !ok {
			continue
		}
		s.Level = &lv
		s.MinActions = roundUp(lv.Level)
		s.MaxActions = max(s.MaxActions, s.MinActions)
		if s.Current.ProbationScale > 0 && lv.ProbationScale > max(s.ProbationScale, s.Current.ProbationScale) {
			s.ProbationScale = lv.ProbationScale
		}
	}
}

// Defaults returns the max_actions suggested for breakers.defaults: the
// median of the rules' suggestions, so that a rule never seen before (which
// has no baseline yet, so only max_actions can trip it) is guarded like an
// ordinary rule. It returns 0 when no rule was seen.
func Defaults(sgs []Suggestion) float64 {
	var v []float64
	for _, s := range sgs {
		if isRule(s.Scope) {
			v = append(v, s.MaxActions)
		}
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[(len(v)-1)/2]
}

// NewRules returns the budget suggested for breakers.new_rules: the
// configured one, tightened to the smallest max_actions suggested for an
// established rule, so that a rule nobody has seen act gets no more room
// than the quietest rule that has. The learning period stays as configured.
func NewRules(sgs []Suggestion, current config.NewRules) config.NewRules {
	out := current
	if out.MaxActions <= 0 {
		return out
	}
	for _, s := range sgs {
		if isRule(s.Scope) && s.MaxActions > 0 && s.MaxActions < out.MaxActions {
			out.MaxActions = s.MaxActions
		}
	}
	return out
}

// isRule reports whether s is a rule's scope (not global, not a rule and
// action type or a segment).
func isRule(s breaker.Scope) bool { return s != breaker.Global && breaker.RuleScope(s.Rule()) == s }

// roundUp rounds v up to two significant digits.
func roundUp(v float64) float64 {
	if v <= 0 {
		return 0
	}
	e := math.Pow(10, math.Floor(math.Log10(v))-1)
	return math.Ceil(v/e-1e-9) * e
}

// Observing returns a copy of cfg whose breakers are all disabled, so that
// a replay counts every scope as cfg would without tripping any: the
// observation pass of a suggestion.
func Observing(cfg config.Config) config.Config {
	c := cfg
	c.Breakers.Defaults.Disabled = true
	c.Breakers.Global.Disabled = true
	c.Breakers.Rules = make(map[string]config.Rule, len(cfg.Breakers.Rules))
	for id, r := range cfg.Breakers.Rules {
		r.Disabled = true
		acts := make(map[string]config.Thresholds, len(r.Actions))
		for a, t := range r.Actions {
			t.Disabled = true
			acts[a] = t
		}
		r.Actions = acts
		c.Breakers.Rules[id] = r
	}
	return c
}

// DefaultActionWindow is the window of the per-action-type breakers that
// suggest proposes: long enough that a rule's few bans a minute make a
// count whose random variation is small against a slow rise.
const DefaultActionWindow = 10 * time.Minute

// Guarded returns the action types suggest proposes a breaker for in every
// rule: the irreversible ones of cfg's action table, sorted.
func Guarded(cfg config.Config) []string {
	var out []string
	for name, a := range cfg.Actions {
		if a.Irreversible {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// ObservingActions returns Observing(cfg) with, for every one of rules, a
// disabled breaker of each of actions that the rule does not configure,
// with window window (and a baseline of at least six windows): the
// observation pass that measures them. A rule's bans are a small share of
// its actions, so a rule that starts banning more (a ramp of bans) is seen
// far earlier in its bans than in its weighted total.
func ObservingActions(cfg config.Config, rules, actions []string, window time.Duration) config.Config {
	c := Observing(cfg)
	for _, id := range rules {
		r, ok := c.Breakers.Rules[id]
		if !ok {
			r = config.Rule{Thresholds: cfg.RuleThresholds(id)}
			r.Disabled = true
		}
		acts := maps.Clone(r.Actions)
		if acts == nil {
			acts = map[string]config.Thresholds{}
		}
		for _, a := range actions {
			if _, ok := acts[a]; ok {
				continue
			}
			t := cfg.RuleThresholds(id)
			t.Window, t.Baseline, t.Disabled = window, max(t.Baseline, 6*window), true
			acts[a] = t
		}
		r.Actions = acts
		c.Breakers.Rules[id] = r
	}
	return c
}

// Observe runs the observation passes of a suggestion: pass replays the
// input under a configuration, feeding the observer every scope's counts
// and buckets (Observer.Observe and Observer.Bucket). A first pass finds
// the rules; a second measures them with a breaker for each guarded action
// type (see ObservingActions).
func Observe(cfg config.Config, opts Options, pass func(c config.Config, o *Observer) error) ([]Suggestion, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	first, err := NewObserver(opts)
	if err != nil {
		return nil, err
	}
	guarded := Guarded(cfg)
	if len(guarded) == 0 {
		if err := pass(Observing(cfg), first); err != nil {
			return nil, err
		}
		return first.Suggestions(), nil
	}
	// The first pass only finds the rules: no evidence to calibrate.
	first.opts.FalseTripsPerWeek = -1
	if err := pass(Observing(cfg), first); err != nil {
		return nil, err
	}
	if len(first.Rules()) == 0 {
		return first.Suggestions(), nil
	}
	second, _ := NewObserver(opts)
	if err := pass(ObservingActions(cfg, first.Rules(), guarded, opts.ActionWindow), second); err != nil {
		return nil, err
	}
	return second.Suggestions(), nil
}

// Apply returns a copy of cfg with the suggestions in place, validated.
func Apply(cfg config.Config, sgs []Suggestion) (config.Config, error) {
	c := cfg
	c.Breakers.Rules = maps.Clone(cfg.Breakers.Rules)
	if c.Breakers.Rules == nil {
		c.Breakers.Rules = map[string]config.Rule{}
	}
	for _, s := range sgs {
		if s.Scope == breaker.Global {
			c.Breakers.Global.MaxActions = s.MaxActions
			if s.Factor > 0 {
				c.Breakers.Global.Factor = s.Factor
			}
			if s.MinActions > 0 {
				c.Breakers.Global.MinActions = s.MinActions
			}
			if s.Evidence != nil {
				c.Breakers.Global.Evidence.Threshold = s.Evidence.Threshold
			}
			if s.ProbationScale > 0 {
				c.Breakers.Global.ProbationScale = s.ProbationScale
			}
			continue
		}
		r, ok := c.Breakers.Rules[s.Scope.Rule()]
		if !ok {
			// A new entry starts from what the rule had: the defaults.
			r = config.Rule{Thresholds: cfg.RuleThresholds(s.Scope.Rule())}
		}
		if a := s.Scope.Action(); a != "" {
			acts := maps.Clone(r.Actions)
			if acts == nil {
				acts = map[string]config.Thresholds{}
			}
			t, had := acts[a]
			if !had {
				// Resolved like a loaded configuration: the rule's
				// thresholds, on the observed window and baseline.
				t = r.Thresholds
				t.Window, t.Baseline, t.Disabled = s.Current.Window, s.Current.Baseline, false
			}
			t.MaxActions = s.MaxActions
			if s.Factor > 0 {
				t.Factor = s.Factor
			}
			if s.MinActions > 0 {
				t.MinActions = s.MinActions
			}
			if s.ProbationScale > 0 {
				t.ProbationScale = s.ProbationScale
			}
			if s.Evidence != nil {
				t.Evidence.Threshold = s.Evidence.Threshold
			}
			acts[a] = t
			r.Actions = acts
			c.Breakers.Rules[s.Scope.Rule()] = r
			continue
		}
		r.MaxActions = s.MaxActions
		if s.Factor > 0 {
			r.Factor = s.Factor
		}
		if s.MinActions > 0 {
			r.MinActions = s.MinActions
		}
		if s.ProbationScale > 0 {
			r.ProbationScale = s.ProbationScale
		}
		if s.Evidence != nil {
			r.Evidence.Threshold = s.Evidence.Threshold
		}
		c.Breakers.Rules[s.Scope.Rule()] = r
	}
	// The rules seen have entries now; the defaults are for new ones.
	if d := Defaults(sgs); d > 0 {
		c.Breakers.Defaults.MaxActions = d
	}
	c.Breakers.NewRules = NewRules(sgs, cfg.Breakers.NewRules)
	if err := c.Validate(); err != nil {
		return config.Config{}, fmt.Errorf("suggested configuration: %w", err)
	}
	return c, nil
}

// WriteYAML writes the suggestions as a breakers: snippet to merge into
// the configuration, each value with what it was derived from.
func WriteYAML(w io.Writer, sgs []Suggestion, opts Options) error {
	if err := opts.fill(); err != nil {
		return err
	}
	if len(sgs) == 0 {
		return errors.New("suggest: no traffic observed")
	}
	var b strings.Builder
	q := "peak"
	if opts.Quantile < 1 {
		q = fmt.Sprintf("p%g", opts.Quantile*100)
	}
	fmt.Fprintf(&b, "# max_actions: the %s weighted window count x %g headroom (at least %g);\n", q, opts.Headroom, opts.Floor)
	fmt.Fprintf(&b, "# factor: the %s ratio of the window count to the baseline x %g (at least %g).\n", q, opts.Headroom, opts.MinFactor)
	b.WriteString("breakers:\n")
	entry := func(indent string, s Suggestion) {
		fmt.Fprintf(&b, "%smax_actions: %s # %s %s per %s; was %s\n", indent, fnum(s.MaxActions), q, fnum(s.Peak), window(s.Window), threshold(s.Current.MaxActions))
		if s.Factor > 0 {
			fmt.Fprintf(&b, "%sfactor: %s # %s %.2fx baseline; was %s\n", indent, fnum(s.Factor), q, s.PeakRatio, threshold(s.Current.Factor))
		} else {
			fmt.Fprintf(&b, "%s# factor: unchanged (%s): the baseline was never ready with min_actions in the window\n", indent, threshold(s.Current.Factor))
		}
		if lv := s.Level; lv != nil {
			fmt.Fprintf(&b, "%smin_actions: %s # the least count either window condition trips on (max_actions at least it): normal traffic reaches it %s times a week (its share of %g); was %s\n", indent, fnum(s.MinActions), rate(lv.TripsPerWeek), opts.FalseTripsPerWeek, fnum(s.Current.MinActions))
		} else if s.MinActions > 0 {
			fmt.Fprintf(&b, "%smin_actions: %s # %s %s per %s: factor trips only above the normal peak; was %s\n", indent, fnum(s.MinActions), q, fnum(s.Peak), window(s.Window), fnum(s.Current.MinActions))
		}
		if s.ProbationScale > 0 {
			fmt.Fprintf(&b, "%sprobation_scale: %s # keeps max_actions above the peak during probation; was %s\n", indent, fnum(s.ProbationScale), fnum(s.Current.ProbationScale))
		}
		if e := s.Evidence; e != nil {
			fmt.Fprintf(&b, "%sevidence:\n", indent)
			fmt.Fprintf(&b, "%s  threshold: %s # %s false trips a week expected here (its share of %g); was %s\n", indent, fnum(e.Threshold), rate(e.TripsPerWeek), opts.FalseTripsPerWeek, threshold(s.Current.EvidenceThreshold))
			fmt.Fprintf(&b, "%s  # a rise to 2x of its %s actions an hour: tripped after %s (median of %d simulated)\n", indent, fnum(math.Round(e.PerHour)), delayText(e.Delay2x), delayRuns)
		}
	}
	if d := Defaults(sgs); d > 0 {
		b.WriteString("  defaults:\n")
		fmt.Fprintf(&b, "    max_actions: %s # the median rule's: a rule past its learning period is guarded like an ordinary one\n", fnum(d))
	}
	if nr := NewRules(sgs, opts.NewRules); nr.MaxActions > 0 {
		b.WriteString("  new_rules:\n")
		fmt.Fprintf(&b, "    max_actions: %s # at most the quietest rule's; was %s\n", fnum(nr.MaxActions), fnum(opts.NewRules.MaxActions))
		fmt.Fprintf(&b, "    learning: %s\n", window(nr.Learning))
	}
	rules, actionsOf := false, ""
	for _, s := range sgs {
		if s.Scope == breaker.Global {
			b.WriteString("  global:\n")
			entry("    ", s)
			continue
		}
		if !rules {
			b.WriteString("  rules:\n")
			rules = true
		}
		if a := s.Scope.Action(); a != "" {
			// After its rule (Suggestions sorts a rule before its
			// action types); the window and baseline are written out,
			// as left out they would be the rule's.
			if actionsOf != s.Scope.Rule() {
				b.WriteString("      actions:\n")
				actionsOf = s.Scope.Rule()
			}
			fmt.Fprintf(&b, "        %s:\n", yamlKey(a))
			fmt.Fprintf(&b, "          window: %s\n", window(s.Window))
			fmt.Fprintf(&b, "          baseline: %s\n", window(s.Current.Baseline))
			entry("          ", s)
			continue
		}
		fmt.Fprintf(&b, "    %s:\n", yamlKey(s.Scope.Rule()))
		entry("      ", s)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// window formats d without zero units: 1m, 1h30m, 10s.
func window(d time.Duration) string {
	s := d.String()
	for _, z := range []string{"m0s", "h0m"} {
		if strings.HasSuffix(s, z) {
			s = strings.TrimSuffix(s, z[1:])
		}
	}
	return s
}

// rate formats a small rate with two significant digits.
func rate(v float64) string { return strconv.FormatFloat(v, 'g', 2, 64) }

// delayText formats a detection delay, or says it was not within MaxDelay.
func delayText(d time.Duration) string {
	switch {
	case d <= 0:
		return "not within " + window(MaxDelay)
	case d < time.Minute:
		return d.Round(time.Second).String()
	}
	return window(d.Round(time.Minute))
}

func threshold(v float64) string {
	if v == 0 {
		return "off"
	}
	return fnum(v)
}

func fnum(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

// yamlKey quotes a rule id unless it is plainly safe as a YAML key.
func yamlKey(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			safe = false
		}
	}
	if safe && !strings.ContainsAny(s[:1], "-.0123456789") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// dist keeps the maximum of a series, and for a quantile below 1 a
// histogram on a logarithmic scale (2% wide bins), so that memory does
// not grow with the input.
type dist struct {
	q    float64
	max  float64
	n    int64
	bins []int64
}

const (
	binBase = 1.02
	nBins   = 1400 // up to 1.02^1400, about 1e12
)

func newDist(q float64) dist {
	d := dist{q: q}
	if q < 1 {
		d.bins = make([]int64, nBins)
	}
	return d
}

func (d *dist) add(v float64) {
	if math.IsNaN(v) || v < 0 {
		return
	}
	d.max = math.Max(d.max, v)
	d.n++
	if d.bins == nil {
		return
	}
	i := 0
	if v > 1 {
		i = min(int(math.Log(v)/math.Log(binBase))+1, nBins-1)
	}
	d.bins[i]++
}

func (d *dist) quantile() float64 {
	if d.bins == nil || d.n == 0 {
		return d.max
	}
	want := int64(math.Ceil(d.q * float64(d.n)))
	var seen int64
	for i, c := range d.bins {
		seen += c
		if seen >= want {
			if i == 0 {
				return math.Min(1, d.max)
			}
			return math.Min(math.Pow(binBase, float64(i)), d.max)
		}
	}
	return d.max
}

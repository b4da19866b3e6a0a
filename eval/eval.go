// Package eval runs the labelled scenario suite: the protocol an operator
// follows to judge thresholds, over incidents whose every action is known.
//
// For each scenario it simulates four days of traffic (twenty rules with a
// daily cycle) with the incident on the fourth, proposes thresholds with
// package suggest from the first two days, replays all four days under them
// with a person resetting each trip an hour after it, and scores the
// decisions against the simulation's labels: incident actions gated before
// and after detection, time to detect, ordinary actions held while the
// incident ran (collateral) and outside it (false holds), and trips outside
// incidents. Everything printed is computed from the run.
package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/replay"
	"github.com/breakwater/breakwater/suggest"
	"github.com/breakwater/breakwater/traffic"
)

// Scenario is one labelled case of the suite.
type Scenario struct {
	// Name identifies the scenario in the table.
	Name string
	// Incidents are injected into the simulated traffic.
	Incidents []traffic.Incident
	// Untuned replays under the base configuration instead of the
	// suggested one (a rule nobody tuned for).
	Untuned bool
	// Legitimate marks the injected incidents as ordinary traffic (a real
	// wave of abuse the rules should act on): the scenario counts trips,
	// not detections.
	Legitimate bool
	// Broad marks an incident that raises every rule, to which the
	// collateral goal does not apply.
	Broad bool
	// Detect is the goal for the time to detect; 0 means none.
	Detect time.Duration
}

// day4 is when the incidents of the suite begin: 10:00 UTC on the fourth day.
const day4 = 3*24*time.Hour + 10*time.Hour

// Suite returns the scenarios of the suite: three rules spiking 30x for 6
// hours, one rule spiking 8x, every rule rising 3x for 3 hours, one rule
// ramping 1.6x per hour (bans only), a new unconfigured rule banning 600
// accounts an hour for 4 hours (under the suggested thresholds and under
// the base configuration, untuned), 1% malformed lines, and four normal
// days with a legitimate 2x wave on one rule for 2 hours.
func Suite() []Scenario {
	spike := func(rule int, factor float64, d time.Duration) traffic.Incident {
		return traffic.Incident{Kind: traffic.Spike, Rule: rule, At: day4, For: d, Factor: factor}
	}
	newRule := traffic.Incident{Kind: traffic.NewRule, At: day4, For: 4 * time.Hour, Rate: 600, Action: "ban_account"}
	return []Scenario{
		{Name: "3 rules 30x 6h", Incidents: []traffic.Incident{spike(1, 30, 6*time.Hour), spike(6, 30, 6*time.Hour), spike(13, 30, 6*time.Hour)}, Detect: time.Minute},
		{Name: "1 rule 8x 3h", Incidents: []traffic.Incident{spike(4, 8, 3*time.Hour)}, Detect: time.Minute},
		{Name: "all rules 3x 3h", Incidents: []traffic.Incident{{Kind: traffic.Broad, At: day4, For: 3 * time.Hour, Factor: 3}}, Broad: true, Detect: time.Minute},
		{Name: "ramp 1.6x/h bans", Incidents: []traffic.Incident{{Kind: traffic.Ramp, Rule: 3, At: day4, For: 5 * time.Hour, Factor: math.Pow(1.6, 5), Exponential: true, Action: "ban_account"}}, Detect: 15 * time.Minute},
		{Name: "new rule 600 bans/h", Incidents: []traffic.Incident{newRule}, Detect: time.Minute},
		{Name: "new rule, untuned", Incidents: []traffic.Incident{newRule}, Untuned: true, Detect: time.Minute},
		{Name: "1% malformed", Incidents: []traffic.Incident{{Kind: traffic.Malformed, At: 0, For: 4 * 24 * time.Hour, Factor: 0.01}}},
		{Name: "normal, 2x wave", Incidents: []traffic.Incident{{Kind: traffic.Spike, Rule: 5, At: 2*24*time.Hour + 14*time.Hour, For: 2 * time.Hour, Factor: 2}}, Legitimate: true},
	}
}

// Options configure a run of the suite.
type Options struct {
	// Config is the base configuration: the built-in defaults in make eval.
	Config config.Config
	// Seed makes the traffic reproducible.
	Seed int64
	// Rules, Rate (actions per second across all rules), Days and
	// NormalDays (the days suggest learns from) shape the traffic; zero
	// means 20, 10, 4 and 2.
	Rules      int
	Rate       float64
	Days       int
	NormalDays int
	// ResetAfter is when a person resets each trip; 0 means 1h.
	ResetAfter time.Duration
	// BatchSize is the replay's batch size; 0 means the configuration's.
	BatchSize int
	// Parallel is how many scenarios run at once; 0 means 1.
	Parallel int
}

func (o *Options) fill() error {
	if o.Rules == 0 {
		o.Rules = 20
	}
	if o.Rate == 0 {
		o.Rate = 10
	}
	if o.Days == 0 {
		o.Days = 4
	}
	if o.NormalDays == 0 {
		o.NormalDays = 2
	}
	if o.ResetAfter == 0 {
		o.ResetAfter = time.Hour
	}
	if o.Parallel <= 0 {
		o.Parallel = 1
	}
	if o.NormalDays >= o.Days {
		return fmt.Errorf("eval: NormalDays (%d) must be fewer than Days (%d)", o.NormalDays, o.Days)
	}
	return o.Config.Validate()
}

var start = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

func (o Options) scenario(in []traffic.Incident, days int) traffic.Scenario {
	return traffic.Scenario{
		Start: start, Duration: time.Duration(days) * 24 * time.Hour, Rules: o.Rules, Rate: o.Rate,
		Diurnal: 0.5, Noise: 0.1, Seed: o.Seed, Incidents: in,
	}
}

// Result is the score of one scenario.
type Result struct {
	Scenario Scenario
	// Labels is the score against the labels.
	Labels replay.LabelSummary
	// Actions counts the replayed lines and Trips every trip.
	Actions int64
	Trips   int
}

// Run proposes thresholds from the normal days and runs every scenario.
func Run(ctx context.Context, opts Options, scenarios []Scenario) ([]Result, config.Config, error) {
	if err := opts.fill(); err != nil {
		return nil, config.Config{}, err
	}
	tuned, err := Suggest(ctx, opts)
	if err != nil {
		return nil, config.Config{}, err
	}
	out := make([]Result, len(scenarios))
	errs := make([]error, len(scenarios))
	sem := make(chan struct{}, opts.Parallel)
	var wg sync.WaitGroup
	for i, sc := range scenarios {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			cfg := tuned
			if sc.Untuned {
				cfg = opts.Config
			}
			out[i], errs[i] = runOne(ctx, opts, cfg, sc)
		}()
	}
	wg.Wait()
	return out, tuned, errors.Join(errs...)
}

// Suggest returns the base configuration with the thresholds suggest
// proposes from the normal days of the traffic.
func Suggest(ctx context.Context, opts Options) (config.Config, error) {
	sgs, err := suggest.Observe(opts.Config, suggest.Options{}, func(c config.Config, on func(breaker.Scope, breaker.Policy, int64, breaker.Counts)) error {
		r, err := replay.New(replay.Options{Config: c, OnCounts: on})
		if err != nil {
			return err
		}
		sim := &source{sim: traffic.NewSimulation(opts.scenario(nil, opts.NormalDays))}
		if _, err := r.Run(ctx, sim); err != nil {
			return fmt.Errorf("suggest: %w", err)
		}
		return nil
	})
	if err != nil {
		return config.Config{}, err
	}
	return suggest.Apply(opts.Config, sgs)
}

func runOne(ctx context.Context, opts Options, cfg config.Config, sc Scenario) (Result, error) {
	tsc := opts.scenario(sc.Incidents, opts.Days)
	if err := tsc.Validate(); err != nil {
		return Result{}, fmt.Errorf("%s: %w", sc.Name, err)
	}
	src := &source{sim: traffic.NewSimulation(tsc), keep: true}
	scorer := replay.NewScorer()
	r, err := replay.New(replay.Options{
		Config: cfg, AssumeResetAfter: opts.ResetAfter, BatchSize: opts.BatchSize,
		OnDecision: func(seq int64, id string, it *decide.Item) error {
			lb := src.label(seq)
			if sc.Legitimate {
				lb.Incident = 0
			}
			if lb.Incident > 0 {
				lb.Kind = string(sc.Incidents[lb.Incident-1].Kind)
			}
			return scorer.Add(lb, it)
		},
	})
	if err != nil {
		return Result{}, err
	}
	sum, err := r.Run(ctx, src)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", sc.Name, err)
	}
	res := Result{Scenario: sc, Labels: scorer.Summary(sum), Actions: sum.Actions}
	for _, s := range sum.Scopes {
		res.Trips += len(s.Trips)
	}
	return res, nil
}

// source plays a simulation as replay input and keeps the labels of the
// lines not decided yet.
type source struct {
	sim    *traffic.Simulation
	keep   bool
	buf    []byte
	n      int64
	labels []traffic.Label // of lines base+1 ...
	base   int64
}

func (s *source) Next() ([]byte, decide.Position, error) {
	var ok bool
	s.buf, ok = s.sim.Next(s.buf[:0])
	if !ok {
		return nil, decide.Position{}, io.EOF
	}
	s.n++
	if s.keep {
		s.labels = append(s.labels, s.sim.Label())
	}
	return s.buf, decide.Position{Topic: "simulation", Offset: s.n}, nil
}

// label returns the label of line seq and forgets those before it.
func (s *source) label(seq int64) replay.Label {
	i := seq - s.base - 1
	l := s.labels[i]
	if i > 4096 {
		// Lines are decided in order: drop the decided ones.
		s.labels = append(s.labels[:0], s.labels[i:]...)
		s.base += i
	}
	return replay.Label{Line: seq, Incident: l.Incident, Malformed: l.Malformed}
}

// Goals are the targets the table checks.
const (
	// MaxCollateral is the most ordinary actions held per incident action
	// while a single-rule incident runs.
	MaxCollateral = 0.25
	// MaxNormalTrips is the most trips on the normal days.
	MaxNormalTrips = 1
)

// Misses returns the goals r misses, empty when it meets them all.
func (r Result) Misses() []string {
	var out []string
	l, sc := r.Labels, r.Scenario
	if sc.Legitimate {
		if r.Trips > MaxNormalTrips {
			out = append(out, fmt.Sprintf("%d trips on normal days", r.Trips))
		}
	}
	if l.GatedAfter > 0 {
		out = append(out, fmt.Sprintf("%d leaked after detection", l.GatedAfter))
	}
	for _, in := range l.Incidents {
		switch {
		case in.Detected.IsZero():
			out = append(out, fmt.Sprintf("incident %d never held", in.Incident))
		case sc.Detect > 0 && in.Detected.Sub(in.First) > sc.Detect:
			out = append(out, fmt.Sprintf("incident %d detected after %s", in.Incident, in.Detected.Sub(in.First).Round(time.Second)))
		}
	}
	if !sc.Broad && l.IncidentActions > 0 && l.CollateralRatio > MaxCollateral {
		out = append(out, fmt.Sprintf("collateral %.2fx", l.CollateralRatio))
	}
	if l.MalformedDeadLetter != l.Malformed {
		out = append(out, fmt.Sprintf("%d malformed not dead-lettered", l.Malformed-l.MalformedDeadLetter))
	}
	return out
}

// Print writes one table of the results.
func Print(w io.Writer, opts Options, results []Result) error {
	_ = opts.fill()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\tincident actions\tgated before detection\tgated after\ttime to detect (worst)\theld by\tcollateral\tfalse holds\ttrips (outside incidents)\tmalformed to dead-letter\tgoals\n")
	for _, r := range results {
		l := r.Labels
		detect, by := "-", "-"
		var worst time.Duration
		for i, in := range l.Incidents {
			if in.Detected.IsZero() {
				detect = "never"
				break
			}
			if d := in.Detected.Sub(in.First); i == 0 || d > worst {
				worst, detect = d, d.Round(100*time.Millisecond).String()
			}
			if i == 0 {
				by = in.Scope
			} else if in.Scope != by && !strings.HasSuffix(by, "...") {
				by += ", ..."
			}
		}
		coll := "-"
		if l.IncidentActions > 0 {
			coll = fmt.Sprintf("%d (%.2fx)", l.Collateral, l.CollateralRatio)
		}
		mal := "-"
		if l.Malformed > 0 {
			mal = fmt.Sprintf("%d of %d", l.MalformedDeadLetter, l.Malformed)
		}
		goals := "met"
		if m := r.Misses(); len(m) > 0 {
			goals = "MISSED: " + strings.Join(m, "; ")
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t%d (%d)\t%s\t%s\n", r.Scenario.Name, l.IncidentActions, l.GatedBefore, l.GatedAfter,
			detect, by, coll, l.FalseHolds, r.Trips, l.TripsOutside, mal, goals)
	}
	return tw.Flush()
}

// Package eval runs the labelled scenario suite: the protocol an operator
// follows to judge thresholds, over incidents whose every action is known.
//
// For each seed, traffic size and scenario it simulates four days of
// traffic (twenty rules with a daily cycle) with the incident on the
// fourth, proposes thresholds with package suggest from the first two days,
// replays all four days under them with a person resetting each trip an
// hour after it, and scores the decisions against the simulation's labels:
// incident actions gated before and after detection, time to detect (of
// each incident, or of each rule a broad incident concerns), ordinary
// actions held while the incident ran (collateral) and outside it (false
// holds), and trips outside incidents. The table gives, per scenario and
// size, the median and the worst case over the seeds against the goals.
// Everything printed is computed from the runs.
package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/replay"
	"github.com/breakwater/breakwater/suggest"
	"github.com/breakwater/breakwater/traffic"
)

// Size is one traffic volume the suite runs each scenario at.
type Size struct {
	// Name labels the size in the table.
	Name string
	// Rate is the mean actions per second across all rules.
	Rate float64
}

// DefaultSizes returns the two volumes of make eval: with 20 rules, small
// gives rules of about 20 to 400 actions an hour (daily mean, the busiest
// about 20 times the quietest), large five times as many.
func DefaultSizes() []Size {
	return []Size{{Name: "small", Rate: 0.4}, {Name: "large", Rate: 2}}
}

// DefaultSeeds returns the five seeds of make eval.
func DefaultSeeds() []int64 { return []int64{101, 202, 303, 404, 505} }

// Options configure a run of the suite.
type Options struct {
	// Config is the base configuration: the built-in defaults in make eval.
	Config config.Config
	// Seeds make the traffic reproducible, one run per seed; empty means
	// DefaultSeeds.
	Seeds []int64
	// Sizes are the traffic volumes; empty means DefaultSizes.
	Sizes []Size
	// Rules, Days and NormalDays (the days suggest learns from) shape the
	// traffic; zero means 20, 4 and 2.
	Rules      int
	Days       int
	NormalDays int
	// Skew sets how unequal the rules are (see traffic.Scenario); 0 means
	// 1, the busiest rule about 20 times the quietest of 20.
	Skew float64
	// ResetAfter is when a person resets each trip; 0 means 1h.
	ResetAfter time.Duration
	// BatchSpan is how much traffic (at the size's mean rate) the replay
	// decides together; 0 means 2s. BatchSize, when set, fixes the batch
	// size instead.
	BatchSpan time.Duration
	BatchSize int
	// Parallel is how many runs go at once; 0 means 1.
	Parallel int
}

func (o *Options) fill() error {
	if len(o.Seeds) == 0 {
		o.Seeds = DefaultSeeds()
	}
	if len(o.Sizes) == 0 {
		o.Sizes = DefaultSizes()
	}
	if o.Rules == 0 {
		o.Rules = 20
	}
	if o.Days == 0 {
		o.Days = 4
	}
	if o.NormalDays == 0 {
		o.NormalDays = 2
	}
	if o.Skew == 0 {
		o.Skew = 1
	}
	if o.ResetAfter == 0 {
		o.ResetAfter = time.Hour
	}
	if o.BatchSpan == 0 {
		o.BatchSpan = 2 * time.Second
	}
	if o.Parallel <= 0 {
		o.Parallel = 1
	}
	switch {
	case o.NormalDays >= o.Days:
		return fmt.Errorf("eval: NormalDays (%d) must be fewer than Days (%d)", o.NormalDays, o.Days)
	case o.BatchSize < 0:
		return fmt.Errorf("eval: BatchSize must not be negative, got %d", o.BatchSize)
	case o.BatchSpan < 0:
		return fmt.Errorf("eval: BatchSpan must not be negative, got %v", o.BatchSpan)
	}
	for _, s := range o.Sizes {
		if !(s.Rate > 0) || s.Name == "" {
			return fmt.Errorf("eval: size %q: want a name and a positive rate, got %g", s.Name, s.Rate)
		}
	}
	return o.Config.Validate()
}

// Batch returns the replay's batch size at size s.
func (o Options) Batch(s Size) int {
	if o.BatchSize > 0 {
		return o.BatchSize
	}
	return max(1, int(math.Round(s.Rate*o.BatchSpan.Seconds())))
}

var start = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

func (o Options) traffic(seed int64, s Size, in []traffic.Incident, days int) traffic.Scenario {
	return traffic.Scenario{
		Start: start, Duration: time.Duration(days) * 24 * time.Hour, Rules: o.Rules, Rate: s.Rate,
		Diurnal: 0.5, Noise: 0.1, Skew: o.Skew, Seed: seed, Incidents: in,
	}
}

// Result is the score of one run: one scenario at one size with one seed.
type Result struct {
	Scenario Scenario
	Size     Size
	Seed     int64
	// Labels is the score against the labels.
	Labels replay.LabelSummary
	// Units are what the detection is judged on: each incident, or with
	// Scenario.PerRule each rule an incident concerns.
	Units []Unit
	// Actions counts the replayed lines and Trips every trip; WaveTrips
	// the trips while a legitimate incident ran (to TripGrace after it).
	Actions   int64
	Trips     int
	WaveTrips int
	// Days is the event time replayed, in days.
	Days float64
	// Outside are the false trips: those outside every incident, from its
	// start to replay.TripGrace after its end (a legitimate wave counts as
	// an incident here), in time order. A breaker tripping again after an
	// incident ended is one.
	Outside []Trip
	// OverturnTrips counts the overturn_rate trips of the incidents'
	// rules while an incident ran (to replay.TripGrace after it).
	OverturnTrips int
	// Reversal is what reversing the candidates of the trips while an
	// incident ran would have undone.
	Reversal Reversal
	// Appeals is what the appeals signal did.
	Appeals replay.AppealsSummary
}

// Trip is one trip of a breaker.
type Trip struct {
	// Scope is the breaker, At the event time of the trip and Reason the
	// condition that tripped it.
	Scope  string
	At     time.Time
	Reason string
	// Onset is the trip's estimated onset.
	Onset time.Time
}

// Unit is one incident, or one rule of an incident, whose detection is
// judged.
type Unit struct {
	// Name is the rule's id, or the incident's number.
	Name string
	// PerHour is the rule's normal actions an hour (daily mean); 0 for an
	// incident.
	PerHour float64
	// Actions counts its incident actions.
	Actions int64
	// Start is when the incident began; Detected the event time of its
	// first held incident action (zero if none) and Scope the breaker
	// that held it.
	Start    time.Time
	Detected time.Time
	Scope    string
	// Target is the longest time to detect; 0 means none.
	Target time.Duration
}

// Delay returns the time from the start to the detection, and false if
// the unit was never detected.
func (u Unit) Delay() (time.Duration, bool) {
	if u.Detected.IsZero() {
		return 0, false
	}
	return u.Detected.Sub(u.Start), true
}

// Run proposes thresholds from the normal days of every seed and size and
// runs every scenario with each. The results come in the order of the
// scenarios, then sizes, then seeds.
func Run(ctx context.Context, opts Options, scenarios []Scenario) ([]Result, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	for _, sc := range scenarios {
		for _, in := range sc.Incidents {
			for _, r := range append([]int{in.Rule}, in.Rules...) {
				if r < 0 || r >= opts.Rules {
					return nil, fmt.Errorf("eval: scenario %q: rule %d of %d", sc.Name, r, opts.Rules)
				}
			}
		}
	}
	n := len(scenarios) * len(opts.Sizes) * len(opts.Seeds)
	out := make([]Result, n)
	errs := make([]error, n+len(opts.Sizes)*len(opts.Seeds))
	sem := make(chan struct{}, opts.Parallel)
	acquire := func() bool {
		select {
		case sem <- struct{}{}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var wg sync.WaitGroup
	for zi, size := range opts.Sizes {
		for si, seed := range opts.Seeds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := n + zi*len(opts.Seeds) + si
				if !acquire() {
					errs[k] = ctx.Err()
					return
				}
				tuned, err := Suggest(ctx, opts, seed, size)
				<-sem
				if err != nil {
					errs[k] = fmt.Errorf("seed %d, %s: %w", seed, size.Name, err)
					return
				}
				for ci, sc := range scenarios {
					i := (ci*len(opts.Sizes)+zi)*len(opts.Seeds) + si
					wg.Add(1)
					go func() {
						defer wg.Done()
						if !acquire() {
							errs[i] = ctx.Err()
							return
						}
						defer func() { <-sem }()
						cfg := tuned
						if sc.Untuned {
							cfg = opts.Config
						}
						out[i], errs[i] = runOne(ctx, opts, cfg, sc, seed, size)
					}()
				}
			}()
		}
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// Suggest returns the base configuration with the thresholds suggest
// proposes from the normal days of the traffic of seed at size.
func Suggest(ctx context.Context, opts Options, seed int64, size Size) (config.Config, error) {
	if err := opts.fill(); err != nil {
		return config.Config{}, err
	}
	sgs, err := suggest.Observe(opts.Config, suggest.Options{}, func(c config.Config, o *suggest.Observer) error {
		r, err := replay.New(replay.Options{Config: c, OnCounts: o.Observe, OnBucket: o.Bucket, BatchSize: opts.Batch(size)})
		if err != nil {
			return err
		}
		sim := &source{sim: traffic.NewSimulation(opts.traffic(seed, size, nil, opts.NormalDays))}
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

// ranked returns the incidents of sc with ranks by volume turned into rule
// indexes.
func ranked(sc Scenario, bySize []int) []traffic.Incident {
	out := slices.Clone(sc.Incidents)
	if !sc.Ranked {
		return out
	}
	for i := range out {
		out[i].Rule = bySize[out[i].Rule]
		if len(out[i].Rules) > 0 {
			rs := make([]int, len(out[i].Rules))
			for j, r := range out[i].Rules {
				rs[j] = bySize[r]
			}
			out[i].Rules = rs
		}
	}
	return out
}

type unitKey struct {
	incident int
	rule     string
}

func runOne(ctx context.Context, opts Options, cfg config.Config, sc Scenario, seed int64, size Size) (Result, error) {
	base := opts.traffic(seed, size, nil, opts.Days)
	incidents := ranked(sc, traffic.BySize(base))
	tsc := base
	tsc.Incidents = incidents
	if err := tsc.Validate(); err != nil {
		return Result{}, fmt.Errorf("%s: %w", sc.Name, err)
	}
	sim := traffic.NewSimulation(tsc)
	shares := sim.Shares()
	src := &source{sim: sim, keep: true}
	scorer := replay.NewScorer()
	// The first held action and the count of each rule's incident actions.
	type ruleScore struct {
		actions  int64
		detected time.Time
		scope    string
	}
	perRule := map[unitKey]*ruleScore{}
	gen := newAppealGen(seed)
	first := start.Add(tsc.Duration)
	for _, in := range incidents {
		if at := start.Add(in.At); at.Before(first) {
			first = at
		}
	}
	flog := newForwardLog(first.Add(-24 * time.Hour))
	r, err := replay.New(replay.Options{
		Config: cfg, AssumeResetAfter: opts.ResetAfter, BatchSize: opts.Batch(size), Appeals: gen,
		OnDecision: func(seq int64, id string, it *decide.Item) error {
			lb := src.label(seq)
			if sc.Legitimate {
				lb.Incident = 0
			}
			if it.Bad == nil && it.Decision == decide.Gated {
				gen.gated(it.Act.ActionID, it.Act.OccurredAt, lb.Incident > 0)
				flog.add(it, lb.Incident > 0)
			}
			if lb.Incident > 0 {
				lb.Kind = string(incidents[lb.Incident-1].Kind)
				if it.Bad == nil {
					k := unitKey{lb.Incident, it.Act.RuleID}
					rs := perRule[k]
					if rs == nil {
						rs = &ruleScore{}
						perRule[k] = rs
					}
					rs.actions++
					if it.Decision == decide.Held && rs.detected.IsZero() {
						rs.detected, rs.scope = it.Act.OccurredAt, string(it.Scope)
					}
				}
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
	res := Result{Scenario: sc, Size: size, Seed: seed, Labels: scorer.Summary(sum), Actions: sum.Actions, Days: tsc.Duration.Hours() / 24}
	if sum.Appeals != nil {
		res.Appeals = *sum.Appeals
	}
	var during []Trip
	for _, s := range sum.Scopes {
		res.Trips += len(s.Trips)
		for _, tr := range s.Trips {
			var concerns *traffic.Incident
			for i, in := range incidents {
				from, grace := start.Add(in.At), replay.TripGrace
				if tr.Reason == string(breaker.ReasonOverturnRate) {
					// Appeals judge actions up to AppealMaxDelay old: one
					// of the incident's wrong actions may trip it after.
					grace += AppealMaxDelay
				}
				if !tr.At.Before(from) && !tr.At.After(from.Add(in.For+grace)) {
					concerns = &incidents[i]
					break
				}
			}
			t := Trip{Scope: string(s.Scope), At: tr.At, Reason: tr.Reason, Onset: tr.Onset}
			switch {
			case concerns == nil:
				res.Outside = append(res.Outside, t)
			case sc.Legitimate:
				res.WaveTrips++
			default:
				during = append(during, t)
				if tr.Reason == string(breaker.ReasonOverturnRate) {
					for _, r := range concerns.Concerned(opts.Rules) {
						if s.Scope.Rule() == traffic.RuleID(r) {
							res.OverturnTrips++
						}
					}
				}
			}
		}
	}
	res.Reversal = flog.reversal(during)
	slices.SortFunc(res.Outside, func(a, b Trip) int { return a.At.Compare(b.At) })
	if sc.Legitimate {
		return res, nil
	}
	for i, in := range incidents {
		began := start.Add(in.At)
		if sc.PerRule {
			for _, r := range in.Concerned(opts.Rules) {
				id := traffic.RuleID(r)
				u := Unit{Name: id, PerHour: shares[r] * size.Rate * 3600, Start: began, Target: sc.Detect}
				if rs := perRule[unitKey{i + 1, id}]; rs != nil {
					u.Actions, u.Detected, u.Scope = rs.actions, rs.detected, rs.scope
				}
				if sc.ByVolume {
					u.Target = RiseSlow
					if u.PerHour >= BusyRule {
						u.Target = RiseFast
					}
				}
				res.Units = append(res.Units, u)
			}
			continue
		}
		if in.Kind == traffic.Malformed {
			continue
		}
		u := Unit{Name: fmt.Sprintf("incident %d", i+1), Start: began, Target: sc.Detect}
		for _, is := range res.Labels.Incidents {
			if is.Incident == i+1 {
				u.Actions, u.Detected, u.Scope = is.Actions, is.Detected, is.Scope
			}
		}
		res.Units = append(res.Units, u)
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

// RuleVolumes returns the normal actions an hour (daily mean) of the
// quietest and the busiest rule at size s with the first seed.
func RuleVolumes(opts Options, s Size) (lo, hi float64) {
	if err := opts.fill(); err != nil {
		return 0, 0
	}
	sh := traffic.NewSimulation(opts.traffic(opts.Seeds[0], s, nil, 1)).Shares()
	return slices.Min(sh) * s.Rate * 3600, slices.Max(sh) * s.Rate * 3600
}

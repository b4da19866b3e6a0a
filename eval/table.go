package eval

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/breakwater/breakwater/traffic"
)

// Miss is one goal a run or a class does not meet, and how.
type Miss struct {
	Goal Goal
	What string
}

// detectGoal returns the goal the scenario's detection is judged against.
func (sc Scenario) detectGoal() Goal {
	if sc.ByVolume {
		return Rise2x
	}
	return sc.DetectGoal
}

// Misses returns the goals r misses on its own (those judged in every
// run), empty when it meets them all.
func (r Result) Misses() []Miss {
	var out []Miss
	l, sc := r.Labels, r.Scenario
	if sc.Legitimate && len(sc.Incidents) > 0 && r.WaveTrips > MaxWaveTrips {
		out = append(out, Miss{WaveTrips, fmt.Sprintf("%d trips in the wave", r.WaveTrips)})
	}
	if l.GatedAfter > 0 && !sc.AppealsOnly {
		out = append(out, Miss{NoLeakAfter, fmt.Sprintf("%d gated after detection", l.GatedAfter)})
	}
	if sc.AppealsOnly && r.OverturnTrips == 0 {
		out = append(out, Miss{AppealsOnly, "not tripped by overturn_rate"})
	}
	late, never := 0, 0
	var worst time.Duration
	for _, u := range r.Units {
		d, ok := u.Delay()
		switch {
		case !ok:
			never++
		case u.Target > 0 && d > u.Target:
			late++
			worst = max(worst, d)
		}
	}
	if late+never > 0 {
		what := fmt.Sprintf("%d of %d late (worst %s)", late, len(r.Units), Duration(worst))
		if never > 0 {
			what = fmt.Sprintf("%d of %d never held, %d late", never, len(r.Units), late)
		}
		out = append(out, Miss{sc.detectGoal(), what})
	}
	if !sc.Broad && !sc.AppealsOnly && l.IncidentActions > 0 && l.CollateralRatio > MaxCollateral {
		out = append(out, Miss{Collateral, fmt.Sprintf("collateral %.2fx", l.CollateralRatio)})
	}
	if l.MalformedDeadLetter != l.Malformed {
		out = append(out, Miss{Malformed, fmt.Sprintf("%d malformed not dead-lettered", l.Malformed-l.MalformedDeadLetter)})
	}
	return out
}

// LeakShare returns the share of the incident actions that were gated.
func (r Result) LeakShare() float64 {
	l := r.Labels
	if l.IncidentActions == 0 {
		return 0
	}
	return float64(l.GatedBefore+l.GatedAfter) / float64(l.IncidentActions)
}

// FalseTrips returns the trips outside incidents (and outside a legitimate
// wave) per two days.
func (r Result) FalseTrips() float64 {
	if r.Days <= 0 {
		return 0
	}
	return float64(len(r.Outside)) * 2 / r.Days
}

// worstDelay returns the longest time to detect of r's units, +Inf (as
// the largest duration) if one was never detected, and how many were.
func (r Result) worstDelay() (time.Duration, int) {
	var worst time.Duration
	held := 0
	for _, u := range r.Units {
		d, ok := u.Delay()
		if !ok {
			worst = math.MaxInt64
			continue
		}
		held++
		if worst != math.MaxInt64 {
			worst = max(worst, d)
		}
	}
	return worst, held
}

// long reports whether the leak-share goal applies to r: an incident of
// LongIncident or more.
func (r Result) long() bool {
	if r.Scenario.Legitimate || r.Scenario.AppealsOnly {
		return false
	}
	for _, in := range r.Scenario.Incidents {
		if in.Kind != traffic.Malformed && in.For >= LongIncident {
			return true
		}
	}
	return false
}

// Class is the results of one scenario at one size over the seeds.
type Class struct {
	Scenario Scenario
	Size     Size
	Runs     []Result
}

// Classes groups results by scenario and size, in the order they come.
func Classes(results []Result) []Class {
	var out []Class
	for _, r := range results {
		i := slices.IndexFunc(out, func(c Class) bool { return c.Scenario.Name == r.Scenario.Name && c.Size == r.Size })
		if i < 0 {
			out = append(out, Class{Scenario: r.Scenario, Size: r.Size})
			i = len(out) - 1
		}
		out[i].Runs = append(out[i].Runs, r)
	}
	return out
}

// median returns the median of v (the lower middle of an even count, so
// that it is one of the values), sorting v.
func median[T int64 | float64 | time.Duration](v []T) T {
	slices.Sort(v)
	return v[(len(v)-1)/2]
}

func collect[T any](runs []Result, f func(Result) T) []T {
	out := make([]T, len(runs))
	for i, r := range runs {
		out[i] = f(r)
	}
	return out
}

// LeakShares returns the median and the worst leak share of the runs.
func (c Class) LeakShares() (med, worst float64) {
	v := collect(c.Runs, Result.LeakShare)
	return median(v), slices.Max(v)
}

// Undone returns the share of the leaked incident actions that a reversal
// of the candidates of the incident's trips would have undone: the median
// and the worst (least) run; a run that leaked nothing undid all.
func (c Class) Undone() (med, worst float64) {
	v := collect(c.Runs, Result.UndoneShare)
	return median(v), slices.Min(v)
}

// UndoneShare returns the share of the leaked incident actions a reversal
// of the candidates of the incident's trips would have undone (1 when
// nothing leaked).
func (r Result) UndoneShare() float64 {
	leaked := r.Labels.GatedBefore + r.Labels.GatedAfter
	if leaked == 0 {
		return 1
	}
	return float64(r.Reversal.Incident) / float64(leaked)
}

// FalseTrips returns the trips per two days outside incidents, all runs
// pooled, and the worst run's.
func (c Class) FalseTrips() (pooled, worst float64) {
	var days float64
	for _, r := range c.Runs {
		pooled += r.FalseTrips() * r.Days / 2
		days += r.Days
		worst = max(worst, r.FalseTrips())
	}
	if days > 0 {
		pooled = pooled * 2 / days
	}
	return pooled, worst
}

// Misses returns the goals the class misses: those of each run, and those
// judged over the seeds (the median leak share, the pooled false trips),
// each goal once with the number of runs that miss it.
func (c Class) Misses() []Miss {
	byGoal := map[Goal][]string{}
	for _, r := range c.Runs {
		for _, m := range r.Misses() {
			byGoal[m.Goal] = append(byGoal[m.Goal], m.What)
		}
	}
	var out []Miss
	for g := range numGoals {
		if w := byGoal[g]; len(w) > 0 {
			out = append(out, Miss{g, fmt.Sprintf("%d of %d runs (seed %d: %s)", len(w), len(c.Runs), c.firstMissing(g), w[0])})
		}
	}
	if len(c.Runs) > 0 && c.Runs[0].long() {
		if med, _ := c.LeakShares(); med > MaxLeakShare {
			out = append(out, Miss{LeakShare, fmt.Sprintf("median %.1f%% leaked", 100*med)})
		}
	}
	if pooled, _ := c.FalseTrips(); pooled > MaxFalseTrips {
		out = append(out, Miss{FalseTrips, fmt.Sprintf("%.2f trips per two days outside incidents", pooled)})
	}
	slices.SortStableFunc(out, func(a, b Miss) int { return int(a.Goal) - int(b.Goal) })
	return out
}

func (c Class) firstMissing(g Goal) int64 {
	for _, r := range c.Runs {
		for _, m := range r.Misses() {
			if m.Goal == g {
				return r.Seed
			}
		}
	}
	return 0
}

// Goals returns the goals that apply to the class.
func (c Class) Goals() []Goal {
	sc := c.Scenario
	out := []Goal{FalseTrips}
	if sc.Legitimate {
		if len(sc.Incidents) > 0 {
			out = append(out, WaveTrips)
		}
		return out
	}
	for _, in := range sc.Incidents {
		if in.Kind == traffic.Malformed {
			return append(out, Malformed)
		}
	}
	if sc.AppealsOnly {
		out = append(out, AppealsOnly)
	} else {
		out = append(out, NoLeakAfter)
	}
	if sc.Detect > 0 || sc.ByVolume {
		out = append(out, sc.detectGoal())
	}
	if len(c.Runs) > 0 && c.Runs[0].long() {
		out = append(out, LeakShare)
	}
	if !sc.Broad && !sc.AppealsOnly {
		out = append(out, Collateral)
	}
	out = slices.Compact(slices.Sorted(slices.Values(out)))
	return out
}

// Duration formats a time to detect: tenths of seconds under a minute,
// seconds under an hour, minutes above, "never" for the largest duration.
func Duration(d time.Duration) string {
	switch {
	case d == math.MaxInt64:
		return "never"
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		s := int(d.Round(time.Second).Seconds())
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	m := int(d.Round(time.Minute).Minutes())
	return fmt.Sprintf("%dh%02dm", m/60, m%60)
}

var ruleID = regexp.MustCompile(`rule-[0-9]+`)

// heldBy returns the most common breaker (rule ids written R) that first
// held each unit of the runs, with how many units of how many it held
// first.
func (c Class) heldBy() string {
	n := map[string]int{}
	total := 0
	for _, r := range c.Runs {
		for _, u := range r.Units {
			total++
			if u.Scope != "" {
				n[ruleID.ReplaceAllString(u.Scope, "R")]++
			}
		}
	}
	best := ""
	for s, k := range n {
		if best == "" || k > n[best] || k == n[best] && s < best {
			best = s
		}
	}
	if best == "" {
		return "-"
	}
	return fmt.Sprintf("%s (%d/%d)", best, n[best], total)
}

// PrintTrips writes every run's trips outside incidents.
func PrintTrips(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\tsize\tseed\ttrip\tscope\treason\n")
	for _, r := range results {
		for _, tr := range r.Outside {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", r.Scenario.Name, r.Size.Name, r.Seed, tr.At.UTC().Format("Jan 2 15:04:05"), tr.Scope, tr.Reason)
		}
	}
	return tw.Flush()
}

// Print writes the table of the classes: per scenario and size the median
// and the worst run, and the goals each misses; then, per goal, whether
// every class it applies to meets it.
func Print(w io.Writer, results []Result) error {
	classes := Classes(results)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\tsize\tincident actions\tdetect median\tworst\tunits held\tleaked median\tworst\tafter detection\tcollateral median\tworst\tfalse trips/2d\treversal undoes median\tworst\tordinary reversed median\tfirst held by\tgoals\n")
	for _, c := range classes {
		inc := median(collect(c.Runs, func(r Result) int64 { return r.Labels.IncidentActions }))
		detMed, detWorst, held := "-", "-", "-"
		if len(c.Runs[0].Units) > 0 {
			ds := collect(c.Runs, func(r Result) time.Duration { d, _ := r.worstDelay(); return d })
			detMed, detWorst = Duration(median(ds)), Duration(slices.Max(ds))
			least, of := math.MaxInt, 0
			for _, r := range c.Runs {
				if _, h := r.worstDelay(); h < least {
					least, of = h, len(r.Units)
				}
			}
			held = fmt.Sprintf("%d/%d", least, of)
		}
		leakMed, leakWorst, after, collMed, collWorst := "-", "-", "-", "-", "-"
		if inc > 0 {
			m, wst := c.LeakShares()
			leakMed, leakWorst = fmt.Sprintf("%.1f%%", 100*m), fmt.Sprintf("%.1f%%", 100*wst)
			after = fmt.Sprint(slices.Max(collect(c.Runs, func(r Result) int64 { return r.Labels.GatedAfter })))
			cr := collect(c.Runs, func(r Result) float64 { return r.Labels.CollateralRatio })
			collMed, collWorst = fmt.Sprintf("%.2fx", median(cr)), fmt.Sprintf("%.2fx", slices.Max(cr))
		}
		undoMed, undoWorst, ordMed := "-", "-", "-"
		if inc > 0 {
			m, wst := c.Undone()
			undoMed, undoWorst = fmt.Sprintf("%.1f%%", 100*m), fmt.Sprintf("%.1f%%", 100*wst)
			ordMed = fmt.Sprint(median(collect(c.Runs, func(r Result) int64 { return r.Reversal.Ordinary })))
		}
		pooled, worstFT := c.FalseTrips()
		goals := "met"
		if ms := c.Misses(); len(ms) > 0 {
			var s []string
			for _, m := range ms {
				s = append(s, m.What)
			}
			goals = "MISSED: " + strings.Join(s, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f (worst %.1f)\t%s\t%s\t%s\t%s\t%s\n",
			c.Scenario.Name, c.Size.Name, inc, detMed, detWorst, held, leakMed, leakWorst, after, collMed, collWorst, pooled, worstFT,
			undoMed, undoWorst, ordMed, c.heldBy(), goals)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nGoals:\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for g := range numGoals {
		var applies, missed []string
		for _, c := range classes {
			if !slices.Contains(c.Goals(), g) {
				continue
			}
			name := c.Scenario.Name + " (" + c.Size.Name + ")"
			applies = append(applies, name)
			for _, m := range c.Misses() {
				if m.Goal == g {
					missed = append(missed, name)
					break
				}
			}
		}
		if len(applies) == 0 {
			continue
		}
		verdict := fmt.Sprintf("met in all %d classes", len(applies))
		if len(missed) > 0 {
			verdict = fmt.Sprintf("MISSED in %d of %d: %s", len(missed), len(applies), strings.Join(missed, ", "))
		}
		fmt.Fprintf(tw, "  %s\t%s\n", g, verdict)
	}
	return tw.Flush()
}

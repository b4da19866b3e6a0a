package breaker

import (
	"fmt"
	"math"
	"time"
)

// Explanation says why a breaker tripped: the condition that fired, what
// was observed against what was expected or allowed, and the estimated
// onset.
type Explanation struct {
	// Detector is the condition that fired (the trip reason).
	Detector Reason `json:"detector"`
	// Observed is the count the condition judged: the window's weighted
	// count for the window conditions, the number of actions of the
	// detector's open bin for evidence.
	Observed float64 `json:"observed"`
	// Expected is the scope's normal count for the same span: the baseline
	// per window, or the evidence detector's expectation for the bin; 0
	// when the condition has none (max_actions, new_rule).
	Expected float64 `json:"expected"`
	// Limit is the window condition's threshold that Observed passed
	// (scaled on probation); 0 for evidence.
	Limit float64 `json:"limit,omitempty"`
	// Window is the span of Observed: the window or the detector's bin.
	Window string `json:"window"`
	// Evidence and Threshold are the detector's S and h, for evidence.
	Evidence  float64 `json:"evidence,omitempty"`
	Threshold float64 `json:"threshold,omitempty"`
	// Onset is the estimated start, in event time (Status.Onset).
	Onset time.Time `json:"onset,omitzero"`
	// Text says it in one sentence.
	Text string `json:"text"`
}

// Explain returns the explanation of s's last trip under policy p, and
// false when s never tripped.
func Explain(p Policy, s Status) (Explanation, bool) {
	if s.Trip == (Trip{}) || s.Reason == "" {
		return Explanation{}, false
	}
	c := s.Trip.Counts
	scale, on := 1.0, ""
	if s.Trip.Probation && p.ProbationScale > 0 {
		scale, on = p.ProbationScale, " (on probation)"
	}
	e := Explanation{Detector: Reason(s.Reason), Observed: c.Window, Window: p.Window.String(), Onset: s.Onset}
	onset := ""
	if !s.Onset.IsZero() {
		onset = "; estimated onset " + s.Onset.UTC().Format(time.RFC3339)
	}
	switch e.Detector {
	case ReasonMaxActions:
		e.Limit = p.MaxActions * scale
		e.Text = fmt.Sprintf("%.1f weighted actions in %s passed max_actions %.1f%s%s", c.Window, e.Window, e.Limit, on, onset)
	case ReasonNewRule:
		e.Limit = p.LearningMax * scale
		e.Text = fmt.Sprintf("new scope: %.1f weighted actions in %s passed its learning budget %.1f%s%s", c.Window, e.Window, e.Limit, on, onset)
	case ReasonBaseline:
		e.Expected, e.Limit = c.Baseline, p.Factor*c.Baseline
		e.Text = fmt.Sprintf("%.1f weighted actions in %s against a baseline of %.1f passed factor %g (limit %.1f, min_actions %.1f)%s%s",
			c.Window, e.Window, c.Baseline, p.Factor, e.Limit, p.MinActions*scale, on, onset)
	case ReasonEvidence:
		e.Observed, e.Expected, e.Window = c.Observed, c.Expected, p.EvidenceBin.String()
		e.Evidence, e.Threshold = c.Evidence, p.EvidenceThreshold
		e.Text = fmt.Sprintf("evidence S %.2f reached h %g: %.0f actions so far in the current %s bin against %.1f expected at this hour of the day (tuned to a %gx rise)%s",
			c.Evidence, p.EvidenceThreshold, c.Observed, e.Window, c.Expected, p.EvidenceRatio, onset)
	case ReasonOverturnRate:
		a := s.Trip.Appeals
		e.Observed, e.Expected, e.Window = float64(a.Overturned), float64(a.Outcomes)*(1-a.Floor), fmt.Sprintf("latest %d appeal outcomes", a.Outcomes)
		e.Limit = e.Expected
		e.Text = fmt.Sprintf("appeals overturned %d of the latest %d outcomes of %s (%.0f%%): P(precision < %g) = %.3f reached %g%s",
			a.Overturned, a.Outcomes, a.Key, 100*float64(a.Overturned)/math.Max(1, float64(a.Outcomes)), a.Floor, a.Below, a.Confidence, onset)
	default:
		e.Text = s.Reason + onset
	}
	return e, true
}

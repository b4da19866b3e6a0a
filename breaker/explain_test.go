package breaker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
)

func TestExplain(t *testing.T) {
	onset := time.Date(2026, 11, 23, 9, 59, 3, 0, time.UTC)
	p := breaker.Policy{
		Window: time.Minute, MaxActions: 100, Factor: 5, MinActions: 50, ProbationScale: 0.5, LearningMax: 20,
		EvidenceBin: 5 * time.Minute, EvidenceRatio: 1.5, EvidenceThreshold: 10, EvidenceDays: 7,
	}
	tests := []struct {
		name   string
		status breaker.Status
		want   breaker.Explanation
		text   []string
	}{
		{"max_actions on probation", breaker.Status{Reason: "max_actions", Onset: onset, Trip: breaker.Trip{Counts: breaker.Counts{Window: 51}, Probation: true}},
			breaker.Explanation{Detector: breaker.ReasonMaxActions, Observed: 51, Limit: 50, Window: "1m0s", Onset: onset},
			[]string{"51.0 weighted actions in 1m0s passed max_actions 50.0 (on probation)", "estimated onset 2026-11-23T09:59:03Z"}},
		{"baseline", breaker.Status{Reason: "baseline_factor", Trip: breaker.Trip{Counts: breaker.Counts{Window: 60, Baseline: 10, BaselineReady: true}}},
			breaker.Explanation{Detector: breaker.ReasonBaseline, Observed: 60, Expected: 10, Limit: 50, Window: "1m0s"},
			[]string{"against a baseline of 10.0 passed factor 5 (limit 50.0"}},
		{"new rule", breaker.Status{Reason: "new_rule", Trip: breaker.Trip{Counts: breaker.Counts{Window: 21, Learning: true}}},
			breaker.Explanation{Detector: breaker.ReasonNewRule, Observed: 21, Limit: 20, Window: "1m0s"},
			[]string{"learning budget 20.0"}},
		{"evidence", breaker.Status{Reason: "evidence", Onset: onset, Trip: breaker.Trip{Counts: breaker.Counts{Evidence: 10.2, Expected: 4, Observed: 9, EvidenceReady: true}}},
			breaker.Explanation{Detector: breaker.ReasonEvidence, Observed: 9, Expected: 4, Window: "5m0s", Evidence: 10.2, Threshold: 10, Onset: onset},
			[]string{"evidence S 10.20 reached h 10: 9 actions so far in the current 5m0s bin against 4.0 expected"}},
		{"overturn_rate", breaker.Status{Reason: "overturn_rate", Onset: onset, Trip: breaker.Trip{Appeals: breaker.AppealsTrip{Key: "r1", Outcomes: 40, Overturned: 18, Below: 0.991, Floor: 0.75, Confidence: 0.95}}},
			breaker.Explanation{Detector: breaker.ReasonOverturnRate, Observed: 18, Expected: 10, Limit: 10, Window: "latest 40 appeal outcomes", Onset: onset},
			[]string{"appeals overturned 18 of the latest 40 outcomes of r1 (45%): P(precision < 0.75) = 0.991 reached 0.95", "estimated onset 2026-11-23T09:59:03Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := breaker.Explain(p, tt.status)
			text := got.Text
			got.Text = ""
			if !ok || got != tt.want {
				t.Errorf("Explain(%+v) = %+v, %v; want %+v", tt.status, got, ok, tt.want)
			}
			for _, w := range tt.text {
				if !strings.Contains(text, w) {
					t.Errorf("Explain(%+v).Text = %q; want it to contain %q", tt.status, text, w)
				}
			}
		})
	}
	if _, ok := breaker.Explain(p, breaker.Initial()); ok {
		t.Errorf("Explain(never tripped) = ok; want false")
	}
}

func TestTripOn(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	onset := now.Add(-3 * time.Hour)
	fig := breaker.Trip{Appeals: breaker.AppealsTrip{Key: "r1", Outcomes: 30, Overturned: 15}}
	tests := []struct {
		name    string
		from    breaker.Status
		changed bool
		want    breaker.State
	}{
		{"closed", breaker.Initial(), true, breaker.Open},
		{"probation", breaker.Status{State: breaker.Probation, Auto: breaker.Probation, Generation: 3, ProbationUntil: now.Add(time.Hour)}, true, breaker.Open},
		{"already open", breaker.Status{State: breaker.Open, Auto: breaker.Open, Generation: 2, Reason: "max_actions"}, false, breaker.Open},
		{"forced closed on top", breaker.Status{State: breaker.ForcedClosed, Auto: breaker.Closed, Generation: 4}, true, breaker.ForcedClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := breaker.TripOn(tt.from, breaker.ReasonOverturnRate, fig, onset, now)
			if changed != tt.changed || got.State != tt.want {
				t.Fatalf("TripOn(%+v) = %+v, %v; want state %s, changed %v", tt.from, got, changed, tt.want, tt.changed)
			}
			if !changed {
				if got.Generation != tt.from.Generation || got.Reason != tt.from.Reason {
					t.Errorf("TripOn(open) changed the status: %+v", got)
				}
				return
			}
			if got.Auto != breaker.Open || got.Generation != tt.from.Generation+1 || got.Reason != "overturn_rate" ||
				!got.TrippedAt.Equal(now) || !got.Onset.Equal(onset) || got.Trip.Appeals != fig.Appeals ||
				got.Trip.Probation != (tt.from.Auto == breaker.Probation) {
				t.Errorf("TripOn(%+v) = %+v", tt.from, got)
			}
		})
	}
}

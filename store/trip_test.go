package store

import (
	"testing"

	"github.com/breakwater/breakwater/breaker"
)

func TestTripFieldRoundTrip(t *testing.T) {
	tests := []breaker.Trip{
		{},
		{Counts: breaker.Counts{Window: 12.5, Baseline: 3, BaselineReady: true, Evidence: 10.25, Expected: 4, Observed: 9, EvidenceReady: true}, Probation: true},
		{Appeals: breaker.AppealsTrip{Key: "spam\t\"v2\" (model 2025.06.0)", Outcomes: 41, Overturned: 19, Below: 0.9734, Floor: 0.8, Confidence: 0.95}},
		{Counts: breaker.Counts{Window: 1}, Appeals: breaker.AppealsTrip{Key: "r", Outcomes: 20, Overturned: 9, Below: 0.96, Floor: 0.7, Confidence: 0.95}, Probation: true},
	}
	for _, tt := range tests {
		if got := parseTrip(tripField(tt)); got != tt {
			t.Errorf("parseTrip(tripField(%+v)) = %+v", tt, got)
		}
	}
}

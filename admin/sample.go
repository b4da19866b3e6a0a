package admin

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/audit"
)

// sampleEntries bounds the audit entries read for an incident's sampled
// precision: its latest review decisions.
const sampleEntries = 1000

// samplePrecision estimates an incident's precision from the reviewers'
// verdicts on its held actions one at a time, read from the audit trail
// (its latest sampleEntries entries): the last approve or reject of a
// single action stands unless an undo put it back; decisions of many
// actions at once (a bulk approval, a standing decision) judge none. It
// returns nil before the first verdict.
func samplePrecision(ctx context.Context, trail Trail, incident string) (*api.SamplePrecision, error) {
	es, err := trail.Query(ctx, audit.Query{Incident: incident, Limit: sampleEntries})
	if err != nil {
		return nil, err
	}
	return judgeSample(es), nil
}

// judgeSample is samplePrecision on entries in any order.
func judgeSample(es []audit.Entry) *api.SamplePrecision {
	es = slices.Clone(es)
	slices.SortStableFunc(es, func(a, b audit.Entry) int { return a.At.Compare(b.At) })
	verdict := map[string]string{}
	for _, e := range es {
		switch e.Kind {
		case audit.KindApprove, audit.KindReject:
			if len(e.IDs) == 1 && e.Via != audit.ViaStanding {
				verdict[e.IDs[0]] = e.Kind
			}
		case audit.KindUndo:
			for _, id := range e.IDs {
				delete(verdict, id)
			}
		}
	}
	if len(verdict) == 0 {
		return nil
	}
	s := &api.SamplePrecision{Judged: len(verdict)}
	for _, k := range verdict {
		if k == audit.KindReject {
			s.Rejected++
		}
	}
	s.Wrong = float64(s.Rejected) / float64(s.Judged)
	s.Text = fmt.Sprintf("%d of %d sampled rejected: about %.0f%% wrong", s.Rejected, s.Judged, math.Round(100*s.Wrong))
	return s
}

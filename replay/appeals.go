package replay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/breakwater/breakwater/appeals"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
)

// AppealSource gives appeal outcomes (package appeals) in event time.
type AppealSource interface {
	// Due returns the outcomes decided at or before until that it has not
	// returned yet, in the order of their decided_at; a zero until
	// returns all the rest.
	Due(until time.Time) []appeals.Record
}

// AppealsSummary is what the appeals signal of a replay did.
type AppealsSummary struct {
	// Outcomes counts the outcomes read; Overturned those overturned.
	Outcomes   int64 `json:"outcomes"`
	Overturned int64 `json:"overturned"`
	// Joined counts the outcomes joined to an action the replay gated;
	// Unknown those of an action it did not gate (or that fell out of the
	// join), Duplicate the second outcomes of one action, and Malformed
	// the lines that are no outcome: the live daemon writes all three to
	// the dead-letter topic.
	Joined    int64 `json:"joined"`
	Unknown   int64 `json:"unknown"`
	Duplicate int64 `json:"duplicate"`
	Malformed int64 `json:"malformed"`
	// Trips counts the overturn_rate trips.
	Trips int64 `json:"trips"`
}

// DefaultJoinMax is the most gated actions a replay keeps joinable.
const DefaultJoinMax = 5_000_000

// appealState is the appeals signal of a replay.
type appealState struct {
	src     AppealSource
	policy  appeals.Policy
	tracker *appeals.Tracker
	sum     AppealsSummary
}

func newAppealState(o Options) *appealState {
	if o.Appeals == nil {
		return nil
	}
	p := o.AppealsPolicy
	if p == (appeals.Policy{}) {
		p = appeals.DefaultPolicy()
	}
	j := o.AppealsJoinMax
	if j <= 0 {
		j = DefaultJoinMax
	}
	return &appealState{src: o.Appeals, policy: p, tracker: appeals.NewTracker(p, j)}
}

// forwarded adds the gated items of a decided batch to the join.
func (a *appealState) forwarded(items []decide.Item) {
	if a == nil {
		return
	}
	for i := range items {
		it := &items[i]
		if it.Bad == nil && it.Decision == decide.Gated {
			a.tracker.Forwarded(it.Act.ActionID, appeals.Join{Rule: it.Act.RuleID, Model: it.Act.ModelVersion, At: it.Act.OccurredAt})
		}
	}
}

// appeals judges the outcomes decided up to until, tripping the rules
// whose precision fell below the floor.
func (r *Replay) appeals(ctx context.Context, until time.Time) error {
	a := r.appeal
	if a == nil {
		return nil
	}
	for _, rec := range a.src.Due(until) {
		a.sum.Outcomes++
		if rec.Outcome == appeals.Overturned {
			a.sum.Overturned++
		}
		// Outcomes of actions the rule's breaker held back, or forwarded
		// before its last trip, do not trip it again: that trip is there.
		tripped := func(s breaker.Scope) time.Time {
			if t := r.scopes[s]; t != nil {
				return t.status.TrippedAt
			}
			return time.Time{}
		}
		j, _, err := a.tracker.Record(rec, func(rule string) time.Time { return tripped(breaker.RuleScope(rule)) })
		switch {
		case errors.Is(err, appeals.ErrUnknown):
			a.sum.Unknown++
			continue
		case errors.Is(err, appeals.ErrDuplicate):
			a.sum.Duplicate++
			continue
		case err != nil:
			return err
		}
		a.sum.Joined++
		since := func(rule, model string) time.Time {
			t := tripped(breaker.RuleScope(rule))
			if model != "" && r.opts.Config.Breakers.Segments.ModelVersion {
				if v := tripped(breaker.ModelScope(rule, model)); v.After(t) {
					t = v
				}
			}
			return t
		}
		if v, ok := a.tracker.Decide(j, since, func(m string) bool { return appeals.Versions(r.opts.Config, j.Rule, m) }); ok {
			if err := r.tripAppeals(ctx, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// tripAppeals trips the breaker of the verdict's rule, or of its model
// version (overturn_rate).
func (r *Replay) tripAppeals(ctx context.Context, v appeals.Scoped) error {
	s := breaker.RuleScope(v.Key.Rule)
	if v.Version {
		s = breaker.ModelScope(v.Key.Rule, v.Key.Model)
	}
	p := decide.ScopePolicy(r.opts.Config, s)
	if p.Disabled {
		return nil
	}
	a := r.appeal.policy
	fig := breaker.Trip{Appeals: breaker.AppealsTrip{
		Key: v.Key.String(), Outcomes: v.Outcomes, Overturned: v.Overturned, Below: v.Below, Floor: a.Floor, Confidence: a.Confidence,
	}}
	changed := false
	tr, err := r.store.Update(ctx, s, func(st breaker.Status, now time.Time) (breaker.Status, error) {
		n, ok := breaker.TripOn(st, breaker.ReasonOverturnRate, fig, v.Onset, now)
		changed = ok
		return n, nil
	})
	if err != nil {
		return fmt.Errorf("trip %s on appeals: %w", s, err)
	}
	if !changed {
		return nil
	}
	if _, ok := r.policies[s]; !ok {
		r.policies[s] = p
	}
	t := r.track(s)
	t.status = tr.To
	t.sum.Policy = p
	t.sum.Trips = append(t.sum.Trips, Trip{At: r.watermark, Reason: tr.To.Reason, Generation: tr.To.Generation, Onset: tr.To.Onset})
	r.appeal.sum.Trips++
	return nil
}

// AppealFile is the outcomes of a JSON Lines file, ordered by decided_at.
type AppealFile struct {
	recs      []appeals.Record
	next      int
	malformed int64
	errs      []string
}

// ReadAppeals reads appeal outcomes, one record per line (see
// appeals.Parse). Malformed lines are counted (the first ten errors are
// kept), not fatal: the live daemon dead-letters them and goes on.
func ReadAppeals(r io.Reader) (*AppealFile, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), appeals.MaxRecordBytes+1)
	f := &AppealFile{}
	line := 0
	for {
		ok := sc.Scan()
		if !ok {
			if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
				return nil, fmt.Errorf("appeals line %d: longer than %d bytes", line+1, appeals.MaxRecordBytes)
			} else if err != nil {
				return nil, fmt.Errorf("read appeals: %w", err)
			}
			break
		}
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		rec, err := appeals.Parse(b)
		if err != nil {
			f.malformed++
			if len(f.errs) < 10 {
				f.errs = append(f.errs, fmt.Sprintf("line %d: %v", line, err))
			}
			continue
		}
		f.recs = append(f.recs, rec)
	}
	slices.SortStableFunc(f.recs, func(a, b appeals.Record) int { return a.DecidedAt.Compare(b.DecidedAt) })
	return f, nil
}

// Due returns the outcomes decided up to until not returned yet; a zero
// until returns all the rest.
func (f *AppealFile) Due(until time.Time) []appeals.Record {
	i := f.next
	for f.next < len(f.recs) && (until.IsZero() || !f.recs[f.next].DecidedAt.After(until)) {
		f.next++
	}
	return f.recs[i:f.next]
}

// Malformed returns the count of malformed lines and the first errors.
func (f *AppealFile) Malformed() (int64, []string) { return f.malformed, f.errs }

// Len returns the number of well-formed outcomes.
func (f *AppealFile) Len() int { return len(f.recs) }

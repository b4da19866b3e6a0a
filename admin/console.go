package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/history"
	"github.com/breakwater/breakwater/replay"
	"github.com/breakwater/breakwater/report"
	"github.com/breakwater/breakwater/review"
)

// History is the recent figures of every breaker (history.Ring).
type History interface {
	Write(ctx context.Context, samples map[breaker.Scope]history.Sample) error
	Read(ctx context.Context, since time.Time) (map[breaker.Scope][]history.Sample, error)
	ReadScopes(ctx context.Context, scopes []breaker.Scope, since time.Time) (map[breaker.Scope][]history.Sample, error)
	// Step is how often the history is sampled, Span how far back it
	// goes, and StepSince the step of the samples a read since a time
	// returns (a coarser ring reaches further back).
	Step() time.Duration
	Span() time.Duration
	StepSince(since time.Time) time.Duration
}

var (
	_ History = (*history.Ring)(nil)
	_ History = history.Tiers(nil)
)

// breakers returns every breaker the store or the configuration knows, or
// this replica has seen counted, sorted by scope.
func (a *API) breakers(ctx context.Context) ([]api.Breaker, error) {
	ss, err := a.opts.Breakers.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list breakers: %w", err)
	}
	seen := map[breaker.Scope]bool{}
	out := make([]api.Breaker, 0, len(ss))
	for _, s := range ss {
		seen[s.Scope] = true
		out = append(out, a.view(ctx, s.Scope, s.Status))
	}
	for _, scope := range a.known() {
		if seen[scope] {
			continue
		}
		seen[scope] = true
		st, err := a.opts.Breakers.Status(ctx, scope)
		if err != nil {
			return nil, fmt.Errorf("read breaker %s: %w", scope, err)
		}
		out = append(out, a.view(ctx, scope, st))
	}
	sortBreakers(out)
	return out, nil
}

// RunHistory samples every breaker into the history each step until ctx
// is done. Every replica runs it; they write the same slots.
func (a *API) RunHistory(ctx context.Context) {
	t := time.NewTicker(a.opts.History.Step())
	defer t.Stop()
	for {
		if err := a.SampleHistory(ctx); err != nil && ctx.Err() == nil {
			a.opts.Logger.Warn("sample the breaker history", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SampleHistory writes the current figures of every breaker to the history.
func (a *API) SampleHistory(ctx context.Context) error {
	bs, err := a.breakers(ctx)
	if err != nil {
		return err
	}
	incs, err := a.opts.Review.Incidents(ctx)
	if err != nil {
		return fmt.Errorf("list incidents: %w", err)
	}
	held := map[breaker.Scope]int64{}
	for _, inc := range incs {
		held[breaker.Scope(inc.Scope)] += inc.Held
	}
	now := time.Now().UTC()
	samples := make(map[breaker.Scope]history.Sample, len(bs))
	for _, b := range bs {
		s := history.Sample{At: now, State: b.State, HeldTotal: held[b.Scope]}
		if b.Counts != nil {
			s.Window, s.Baseline, s.BaselineReady = b.Counts.Window, b.Counts.Baseline, b.Counts.BaselineReady
			s.Expected, s.Evidence = b.Counts.Expected, b.Counts.Evidence
		}
		samples[b.Scope] = s
	}
	return a.opts.History.Write(ctx, samples)
}

// points turns samples into wire points, the held total into the count
// held during each step.
func points(ss []history.Sample) []api.Point {
	out := make([]api.Point, len(ss))
	for i, s := range ss {
		out[i] = api.Point{At: s.At, Window: s.Window, Baseline: s.Baseline, BaselineReady: s.BaselineReady, State: s.State, Expected: s.Expected, Evidence: s.Evidence}
		if i > 0 {
			out[i].Held = max(0, s.HeldTotal-ss[i-1].HeldTotal)
		}
	}
	return out
}

// since reads the since parameter: a positive duration back from now up
// to the history's span; empty means the whole span.
func (a *API) since(w http.ResponseWriter, r *http.Request, allowed ...string) (time.Time, bool) {
	v := r.URL.Query()
	for key := range v {
		if key != "since" && !contains(allowed, key) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q", key))
			return time.Time{}, false
		}
	}
	span := a.opts.History.Span()
	d := span
	if s := v.Get("since"); s != "" {
		var err error
		d, err = time.ParseDuration(s)
		if err != nil || d <= 0 || d > span {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since: want a duration up to %s such as 1h, got %q", span, s))
			return time.Time{}, false
		}
	}
	return time.Now().UTC().Add(-d), true
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (a *API) getHistory(w http.ResponseWriter, r *http.Request) {
	since, ok := a.since(w, r)
	if !ok {
		return
	}
	hs, err := a.opts.History.Read(r.Context(), since)
	if err != nil {
		a.fail(w, r, "read the breaker history", err)
		return
	}
	out := api.History{Step: a.opts.History.StepSince(since).String(), From: since, To: time.Now().UTC(), Scopes: make(map[breaker.Scope][]api.Point, len(hs))}
	for scope, ss := range hs {
		out.Scopes[scope] = points(ss)
	}
	writeJSON(w, http.StatusOK, out)
}

// chart draws a breaker's recent history with the replay report's chart:
// its window count against its thresholds and baseline, its trips and
// resets from the audit trail, and what it held per step.
func (a *API) chart(w http.ResponseWriter, r *http.Request) {
	scope, ok := a.scope(w, r)
	if !ok {
		return
	}
	since, ok := a.since(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	hs, err := a.opts.History.ReadScopes(ctx, []breaker.Scope{scope}, since)
	if err != nil {
		a.fail(w, r, "read the breaker history", err)
		return
	}
	es, err := a.opts.Audit.Query(ctx, audit.Query{Scope: scope, Since: since, Limit: maxAuditLimit})
	if err != nil {
		a.fail(w, r, "query the audit trail", err)
		return
	}
	now := time.Now().UTC()
	step := a.opts.History.StepSince(since)
	// The axis starts at the first figure of the range, not at its start:
	// two minutes of data fill the chart instead of its right edge.
	if ps := hs[scope]; len(ps) > 0 && ps[0].At.After(since) {
		start := ps[0].At
		for _, e := range es {
			if e.At.Before(start) && !e.At.Before(since) {
				start = e.At // a trip or reset before the first figure stays on the chart
			}
		}
		since = start
	}
	origin := since.Truncate(step)
	n := int(now.Sub(origin)/step) + 1
	sc := replay.ScopeSummary{Scope: scope, Policy: a.policy(scope), Series: make([]replay.Slot, n)}
	slot := func(t time.Time) int { return min(max(int(t.Sub(origin)/step), 0), n-1) }
	for _, p := range points(hs[scope]) {
		sl := &sc.Series[slot(p.At)]
		sl.Window = max(sl.Window, p.Window)
		sl.Baseline, sl.BaselineReady = p.Baseline, p.BaselineReady
		sl.Expected, sl.Evidence = p.Expected, max(sl.Evidence, p.Evidence)
		sl.Held += p.Held
		sl.Samples++
		sc.Held += p.Held
		sc.PeakWindow = max(sc.PeakWindow, p.Window)
	}
	for i := len(es) - 1; i >= 0; i-- { // oldest first
		e := es[i]
		if e.At.Before(origin) {
			continue // before the first figure: off the chart
		}
		switch {
		case e.Kind == audit.KindReset:
			sc.Resets = append(sc.Resets, e.At)
		case e.To != nil && e.To.State == breaker.Open && (e.From == nil || e.From.State != breaker.Open):
			// The trip's marker is at the count that tripped it, as the
			// audit entry recorded it; the history's sample of the step is
			// a later, lower reading.
			w := e.Window
			if w == 0 {
				w = sc.Series[slot(e.At)].Window
			}
			sc.Trips = append(sc.Trips, replay.Trip{At: e.At, Reason: e.Reason, Generation: e.To.Generation, Window: w})
			sc.PeakWindow = max(sc.PeakWindow, w)
		}
	}
	svg := report.SVG(replay.Summary{From: origin, To: now, Origin: origin, SlotWidth: step}, sc)
	w.Header().Set("Content-Type", "image/svg+xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = w.Write([]byte(svg))
}

// breakdownPages bounds the held actions one breakdown counts, in pages of
// maxHeldLimit: the first 10,000 held, so that the answer stays quick on a
// large incident.
const breakdownPages = 10

func (a *API) breakdown(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		writeError(w, http.StatusBadRequest, "this endpoint takes no query parameters")
		return
	}
	id := r.PathValue("id")
	if _, err := a.opts.Review.Incident(r.Context(), id); err != nil {
		a.reviewError(w, r, "read incident", err)
		return
	}
	out := api.Breakdown{Incident: id, Action: map[string]int64{}, ModelVersion: map[string]int64{}, Region: map[string]int64{}}
	cursor := ""
	for page := 0; ; page++ {
		if page == breakdownPages {
			out.Truncated = true
			break
		}
		p, err := a.opts.Review.List(r.Context(), review.Filter{Incident: id}, cursor, maxHeldLimit)
		if err != nil {
			a.fail(w, r, "list held actions", err)
			return
		}
		for _, h := range p.Items {
			out.Action[h.Action]++
			out.ModelVersion[h.ModelVersion]++
			out.Region[h.Region]++
			out.Counted++
		}
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	writeJSON(w, http.StatusOK, out)
}

// The pick limits.
const (
	defaultPick = 20
	maxPick     = 200
)

func (a *API) pick(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	for key := range v {
		if key != "n" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q; want n", key))
			return
		}
	}
	n := defaultPick
	if s := v.Get("n"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPick {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("n: want an integer between 1 and %d, got %q", maxPick, s))
			return
		}
	}
	hs, pending, err := a.opts.Review.Pick(r.Context(), r.PathValue("id"), n)
	if err != nil {
		a.reviewError(w, r, "pick held actions", err)
		return
	}
	writeJSON(w, http.StatusOK, api.Pick{Items: a.heldItems(hs), Pending: pending})
}

func (a *API) settings(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, api.Settings{
		ConfirmAbove: a.opts.Config.Admin.ConfirmAbove, HistoryStep: a.opts.History.Step().String(), HistorySpan: a.opts.History.Span().String(), ReleaseAbove: a.opts.Config.Approval.ReleaseAbove,
	})
}

// reviewError answers an error of the review index: 404 for an unknown
// incident, 503 otherwise.
func (a *API) reviewError(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, review.ErrNotFound) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	a.fail(w, r, what, err)
}

package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.uber.org/zap"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/approval"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/reversal"
	"github.com/breakwater/breakwater/review"
)

// Reversals finds, starts and follows reversals (reversal.Service).
type Reversals interface {
	Candidates(ctx context.Context, scope breaker.Scope, w reversal.Window, actions []string) ([]reversal.Item, error)
	Reversed(ctx context.Context, ids []string) ([]bool, error)
	Start(ctx context.Context, j api.Reversal, items []reversal.Item) (api.Reversal, error)
	Get(ctx context.Context, id string) (api.Reversal, error)
	List(ctx context.Context) ([]api.Reversal, error)
}

var _ Reversals = (*reversal.Service)(nil)

// sampleSize is how many candidates a preview shows.
const sampleSize = 20

// The sources of a window's start (api.ReversalPreview.Onset).
const (
	onsetDetector = "detector"
	onsetLookback = "lookback"
)

// span is an incident's candidate window before any narrowing.
type span struct {
	inc   review.Incident
	scope breaker.Scope
	// from is the estimated onset, to the first held action; onset says
	// where from comes from.
	from, to time.Time
	onset    string
}

// window returns the candidates' window of an incident: from the
// estimated onset to the trip. The onset is the detector's (the tripping
// transition's breaker.Status.Onset, in event time) where the audit trail
// or the breaker still has it, else the look-back window (the breaker's
// window before its first held action, in forwarding time).
func (a *API) window(ctx context.Context, id string) (span, error) {
	inc, err := a.opts.Review.Incident(ctx, id)
	if err != nil {
		return span{inc: inc}, err
	}
	scope, err := breaker.ParseScope(inc.Scope)
	if err != nil {
		return span{inc: inc}, fmt.Errorf("%w: incident %s names no breaker", review.ErrNotFound, id)
	}
	sp := span{inc: inc, scope: scope, from: inc.FirstHeldAt.Add(-a.policy(scope).Window), to: inc.FirstHeldAt, onset: onsetLookback}
	onset, err := a.tripOnset(ctx, id, scope)
	if err != nil {
		return sp, err
	}
	if !onset.IsZero() && !onset.After(inc.FirstHeldAt) {
		sp.from, sp.onset = onset, onsetDetector
	}
	return sp, nil
}

// tripOnset returns the estimated onset of the trip that opened incident
// id: the Onset of the automatic transition that made its breaker's
// generation, from the audit trail, or from the breaker itself while it
// is still at that generation. Zero when neither has it (an incident of
// an operator's forced_open, or a transition the audit index no longer
// keeps).
func (a *API) tripOnset(ctx context.Context, id string, scope breaker.Scope) (time.Time, error) {
	i := strings.LastIndexByte(id, '@')
	if i < 0 {
		return time.Time{}, nil
	}
	gen, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil || gen == 0 {
		return time.Time{}, nil
	}
	tripped := func(s *breaker.Status) bool {
		return s != nil && s.Generation == gen && s.Auto == breaker.Open && s.Actor == "" && !s.Onset.IsZero()
	}
	es, err := a.opts.Audit.Query(ctx, audit.Query{Scope: scope, Kind: audit.KindTransition, Limit: 1000})
	if err != nil {
		return time.Time{}, err
	}
	for _, e := range es {
		if tripped(e.To) {
			return e.To.Onset, nil
		}
	}
	st, err := a.opts.Breakers.Status(ctx, scope)
	if err != nil {
		return time.Time{}, err
	}
	if tripped(&st) {
		return st.Onset, nil
	}
	return time.Time{}, nil
}

// filter is the window of a preview or request: narrowed by from and to,
// read as the window reads them (event time for a detector's onset,
// forwarding time for the look-back).
func (sp span) filter(from, to time.Time) reversal.Window {
	if sp.onset == onsetDetector {
		return reversal.Window{From: from.Add(-reversal.Skew), To: to, Since: from}
	}
	return reversal.Window{From: from, To: to}
}

// candidates are the actions a reversal of req would write: the
// incident's scope's forwarded actions in the window narrowed by req, less
// those already reversed, and the window.
func (a *API) candidates(ctx context.Context, id string, req api.ReversalRequest) ([]reversal.Item, int, api.ReversalPreview, error) {
	sp, err := a.window(ctx, id)
	if err != nil {
		return nil, 0, api.ReversalPreview{}, err
	}
	from, to := sp.from, sp.to
	pv := api.ReversalPreview{Incident: id, Scope: string(sp.scope), From: from, To: to, Onset: sp.onset}
	if !req.From.IsZero() {
		if req.From.Before(from) || req.From.After(to) {
			return nil, 0, pv, &failure{code: http.StatusBadRequest, err: fmt.Errorf("from: must be within the window %s to %s", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))}
		}
		pv.From = req.From
	}
	if !req.To.IsZero() {
		if req.To.Before(pv.From) || req.To.After(to) {
			return nil, 0, pv, &failure{code: http.StatusBadRequest, err: fmt.Errorf("to: must be within the window %s to %s", pv.From.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))}
		}
		pv.To = req.To
	}
	items, err := a.opts.Reversals.Candidates(ctx, sp.scope, sp.filter(pv.From, pv.To), req.Actions)
	if err != nil {
		return nil, 0, pv, err
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ActionID
	}
	done, err := a.opts.Reversals.Reversed(ctx, ids)
	if err != nil {
		return nil, 0, pv, err
	}
	kept := items[:0]
	already := 0
	for i, it := range items {
		if done[i] {
			already++
			continue
		}
		kept = append(kept, it)
	}
	return kept, already, pv, nil
}

// reversalError answers an error of a reversal call.
func (a *API) reversalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	var f *failure
	switch {
	case errors.Is(err, review.ErrNotFound), errors.Is(err, reversal.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.As(err, &f):
		a.answer(w, r, nil, err)
	default:
		a.fail(w, r, what, err)
	}
}

func (a *API) previewReversal(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	var req api.ReversalRequest
	for key, vals := range v {
		switch key {
		case "action":
			for _, s := range vals {
				req.Actions = append(req.Actions, strings.Split(s, ",")...)
			}
		case "from", "to":
			t, err := time.Parse(time.RFC3339Nano, vals[0])
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("%s: want an RFC 3339 time, got %q", key, vals[0]))
				return
			}
			if key == "from" {
				req.From = t
			} else {
				req.To = t
			}
		default:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q; want action, from or to", key))
			return
		}
	}
	items, already, pv, err := a.candidates(r.Context(), r.PathValue("id"), req)
	if err != nil {
		a.reversalError(w, r, "find the candidates", err)
		return
	}
	pv.Candidates, pv.AlreadyReversed = len(items), already
	pv.Action, pv.Rule, pv.ModelVersion, pv.Region = map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	pv.Sample = []api.Forwarded{}
	for i, it := range items {
		pv.Action[it.Action]++
		pv.Rule[it.Rule]++
		pv.ModelVersion[it.ModelVersion]++
		pv.Region[it.Region]++
		// Spread the sample over the window.
		if len(items) <= sampleSize || i%(len(items)/sampleSize) == 0 && len(pv.Sample) < sampleSize {
			pv.Sample = append(pv.Sample, api.Forwarded{
				ActionID: it.ActionID, Rule: it.Rule, Action: it.Action, TargetType: it.TargetType, TargetID: it.TargetID,
				OccurredAt: it.OccurredAt, ForwardedAt: it.ForwardedAt, Partition: it.Partition, Offset: it.Offset,
			})
		}
	}
	writeJSON(w, http.StatusOK, pv)
}

func (a *API) requestReversal(w http.ResponseWriter, r *http.Request) {
	req, ok := body(a, w, r, parseReversal)
	if !ok {
		return
	}
	if len(req.IDs) > 0 {
		writeError(w, http.StatusBadRequest, "field \"ids\": the server lists the candidates; narrow them with actions, from and to")
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	items, _, pv, err := a.candidates(ctx, id, req)
	if err != nil {
		a.reversalError(w, r, "find the candidates", err)
		return
	}
	if len(items) == 0 {
		writeError(w, http.StatusConflict, "nothing to reverse: the window has no forwarded action of the scope that is not reversed already")
		return
	}
	req.From, req.To = pv.From, pv.To
	req.IDs = make([]string, len(items))
	for i, it := range items {
		req.IDs[i] = it.ActionID
	}
	breakGlass := req.BreakGlass
	req.BreakGlass = ""
	if len(items) > a.opts.Config.Approval.ReversalAbove {
		payload, _ := json.Marshal(req)
		a.gate(w, r, pending{
			op: api.OpReversal, target: id, payload: payload, role: config.RoleOperator, count: len(items),
			summary:  fmt.Sprintf("reverse %d actions of incident %s forwarded from %s to %s", len(items), id, pv.From.Format(time.RFC3339), pv.To.Format(time.RFC3339)),
			incident: id, breakGlass: breakGlass,
		})
		return
	}
	res, err := a.applyReversal(ctx, id, req, actor{name: principal(r).Name, approval: approval.NewID()})
	a.answer(w, r, res, err)
}

// applyReversal starts the reversal of the actions req names, those of
// them that are still candidates.
func (a *API) applyReversal(ctx context.Context, id string, req api.ReversalRequest, by actor) (api.Reversal, error) {
	sp, err := a.window(ctx, id)
	if err != nil {
		return api.Reversal{}, &failure{code: http.StatusNotFound, err: err}
	}
	items, err := a.opts.Reversals.Candidates(ctx, sp.scope, sp.filter(req.From, req.To), req.Actions)
	if err != nil {
		return api.Reversal{}, &failure{code: http.StatusServiceUnavailable, what: "find the candidates", err: err}
	}
	want := map[string]bool{}
	for _, x := range req.IDs {
		want[x] = true
	}
	var kept []reversal.Item
	for _, it := range items {
		if want[it.ActionID] {
			kept = append(kept, it)
		}
	}
	ids := make([]string, len(kept))
	for i, it := range kept {
		ids[i] = it.ActionID
	}
	done, err := a.opts.Reversals.Reversed(ctx, ids)
	if err != nil {
		return api.Reversal{}, &failure{code: http.StatusServiceUnavailable, what: "read the reversed actions", err: err}
	}
	rest := kept[:0]
	for i, it := range kept {
		if !done[i] {
			rest = append(rest, it)
		}
	}
	j, err := a.opts.Reversals.Start(ctx, api.Reversal{
		ID: by.approval, Incident: id, From: req.From, To: req.To, RequestedBy: by.name, ApprovedBy: by.approver,
		BreakGlass: by.breakGlass, Reason: req.Reason, StartedAt: time.Now().UTC(),
	}, rest)
	if err != nil {
		return api.Reversal{}, &failure{code: http.StatusServiceUnavailable, what: "start the reversal", err: err}
	}
	a.opts.Logger.Info("reversal started", zap.String("reversal", j.ID), zap.String("incident", id), zap.Int("actions", j.Total),
		zap.String("requester", by.name), zap.String("approver", by.approver), zap.Bool("break_glass", by.breakGlass))
	return j, nil
}

func (a *API) listReversals(w http.ResponseWriter, r *http.Request) {
	js, err := a.opts.Reversals.List(r.Context())
	if err != nil {
		a.fail(w, r, "list reversals", err)
		return
	}
	writeJSON(w, http.StatusOK, api.Reversals{Reversals: js})
}

func (a *API) getReversal(w http.ResponseWriter, r *http.Request) {
	j, err := a.opts.Reversals.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.reversalError(w, r, "read the reversal", err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

// The limits of a reversal request.
const (
	maxReversalActions = 100
	maxActionType      = 128
	maxReversalIDs     = 1_000_000
)

// parseReversal decodes and checks a reversal request, or the payload of
// its approval request.
func parseReversal(data []byte) (api.ReversalRequest, error) {
	var req api.ReversalRequest
	if err := decodeStrict(data, &req); err != nil {
		return req, err
	}
	var err error
	if req.Reason, err = checkReason(req.Reason); err != nil {
		return req, err
	}
	if len(req.Actions) > maxReversalActions {
		return req, fmt.Errorf("field \"actions\": at most %d action types, got %d", maxReversalActions, len(req.Actions))
	}
	for i, s := range req.Actions {
		if s == "" || len(s) > maxActionType || strings.IndexFunc(s, unicode.IsControl) >= 0 {
			return req, fmt.Errorf("field \"actions\"[%d]: an action type is 1 to %d characters without control characters", i, maxActionType)
		}
	}
	slices.Sort(req.Actions)
	req.Actions = slices.Compact(req.Actions)
	if !req.From.IsZero() && !req.To.IsZero() && req.To.Before(req.From) {
		return req, errors.New("field \"to\": must not be before \"from\"")
	}
	if len(req.IDs) > maxReversalIDs {
		return req, fmt.Errorf("field \"ids\": at most %d, got %d", maxReversalIDs, len(req.IDs))
	}
	for i, id := range req.IDs {
		if id == "" || len(id) > maxActionID || strings.IndexFunc(id, unicode.IsControl) >= 0 {
			return req, fmt.Errorf("field \"ids\"[%d]: an action id is 1 to %d characters without control characters", i, maxActionID)
		}
	}
	if req.BreakGlass, err = optionalReason(req.BreakGlass); err != nil {
		return req, fmt.Errorf("break_glass: %w", err)
	}
	return req, nil
}

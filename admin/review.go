package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/breakwater/breakwater/alert"
	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/review"
)

// Review is the index of held actions and their decisions (review.Index).
type Review interface {
	Incidents(ctx context.Context) ([]review.Incident, error)
	Incident(ctx context.Context, id string) (review.Incident, error)
	List(ctx context.Context, f review.Filter, cursor string, limit int) (review.Page, error)
	Decide(ctx context.Context, ids []string, d review.Decision) (review.Outcome, error)
	Pending(ctx context.Context, incident string, through int64) ([]string, error)
	Pick(ctx context.Context, incident string, n int) ([]review.Held, int, error)
	LookBack(ctx context.Context, gated string, scope breaker.Scope, from, to time.Time, limit int) (review.LookBack, error)
	Change(ctx context.Context, c review.Change) (review.Incident, error)
	Get(ctx context.Context, actionID string) (review.Held, error)
	Undo(ctx context.Context, ids []string, actor, reason string) (api.UndoResponse, error)
	Related(ctx context.Context, id string, limit int) ([]review.Held, error)
}

var _ Review = (*review.Index)(nil)

// The held listing limits.
const (
	defaultHeldLimit = 100
	maxHeldLimit     = 1000
)

func (a *API) listIncidents(w http.ResponseWriter, r *http.Request) {
	incs, err := a.opts.Review.Incidents(r.Context())
	if err != nil {
		a.fail(w, r, "list incidents", err)
		return
	}
	if incs == nil {
		incs = []review.Incident{}
	}
	writeJSON(w, http.StatusOK, api.Incidents{Incidents: incs})
}

func (a *API) getIncident(w http.ResponseWriter, r *http.Request) {
	inc, err := a.opts.Review.Incident(r.Context(), r.PathValue("id"))
	if errors.Is(err, review.ErrNotFound) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	if err != nil {
		a.fail(w, r, "read incident", err)
		return
	}
	if inc.Sample, err = samplePrecision(r.Context(), a.opts.Audit, inc.ID); err != nil {
		a.fail(w, r, "read the incident's review decisions", err)
		return
	}
	writeJSON(w, http.StatusOK, inc)
}

// The look-back limits.
const (
	maxLookBackWindow = 24 * time.Hour
	defaultLookBack   = 1000
	maxLookBack       = 10000
)

func (a *API) lookBack(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	for key := range v {
		if key != "window" && key != "limit" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q; want window or limit", key))
			return
		}
	}
	inc, err := a.opts.Review.Incident(r.Context(), r.PathValue("id"))
	if errors.Is(err, review.ErrNotFound) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	if err != nil {
		a.fail(w, r, "read incident", err)
		return
	}
	scope, err := breaker.ParseScope(inc.Scope)
	if err != nil {
		writeError(w, http.StatusNotFound, "incident "+inc.ID+" names no breaker")
		return
	}
	window := a.policy(scope).Window
	if s := v.Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > maxLookBackWindow {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("window: want a duration up to %s such as 10m, got %q", maxLookBackWindow, s))
			return
		}
		window = d
	}
	limit, err := queryLimit(v, defaultLookBack, maxLookBack)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	lb, err := a.opts.Review.LookBack(r.Context(), a.opts.Config.Kafka.Topics.Gated, scope, inc.FirstHeldAt.Add(-window), inc.FirstHeldAt, limit)
	if err != nil {
		a.fail(w, r, "read the gated topic", err)
		return
	}
	if lb.Actions == nil {
		lb.Actions = []review.Forwarded{}
	}
	writeJSON(w, http.StatusOK, lb)
}

func (a *API) listHeld(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	for key := range v {
		switch key {
		case "incident", "scope", "action", "model_version", "region", "cursor", "limit":
		default:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q; want incident, scope, action, model_version, region, cursor or limit", key))
			return
		}
	}
	limit, err := queryLimit(v, defaultHeldLimit, maxHeldLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f := review.Filter{Incident: v.Get("incident"), Scope: v.Get("scope"), Action: v.Get("action"), ModelVersion: v.Get("model_version"), Region: v.Get("region")}
	page, err := a.opts.Review.List(r.Context(), f, v.Get("cursor"), limit)
	if err != nil {
		if s := err.Error(); len(s) > 7 && s[:7] == "cursor:" {
			writeError(w, http.StatusBadRequest, s)
			return
		}
		a.fail(w, r, "list held actions", err)
		return
	}
	writeJSON(w, http.StatusOK, api.HeldPage{Items: a.heldItems(page.Items), Next: page.Next})
}

func (a *API) decideIDs(to review.Status) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, ok := body(a, w, r, parseDecide)
		if !ok {
			return
		}
		a.decideOrGate(w, r, to, "", req.IDs, req.Reason, req.BreakGlass, nil)
	}
}

// decideOrGate decides ids, or, for an approval of more than
// approval.release_above actions, asks for a second reviewer's approval
// (or breaks the glass). Rejections never need one.
func (a *API) decideOrGate(w http.ResponseWriter, r *http.Request, to review.Status, incident string, ids []string, reason, breakGlass string, sampled []string) {
	if to == review.Approved && len(ids) > a.opts.Config.Approval.ReleaseAbove {
		payload, _ := json.Marshal(api.DecideRequest{IDs: ids, Reason: reason})
		what := "held actions"
		if incident != "" {
			what = "held actions of incident " + incident
		}
		a.gate(w, r, pending{
			op: api.OpRelease, target: incident, payload: payload, role: config.RoleReviewer, count: len(ids),
			summary:  fmt.Sprintf("release %d %s to the gated topic", len(ids), what),
			incident: incident, breakGlass: breakGlass,
		})
		return
	}
	res, err := a.applyRelease(r.Context(), to, incident, ids, reason, actor{name: principal(r).Name})
	res.Sampled = sampled
	a.answer(w, r, res, err)
}

// applyRelease records the decision to on ids and wakes the releaser.
func (a *API) applyRelease(ctx context.Context, to review.Status, incident string, ids []string, reason string, by actor) (api.DecideResponse, error) {
	o, err := a.opts.Review.Decide(ctx, ids, review.Decision{
		To: to, Reviewer: by.name, Reason: reason, Incident: incident,
		Approval: by.approval, Approver: by.approver, BreakGlass: by.breakGlass,
	})
	switch {
	case errors.Is(err, review.ErrNotFound):
		return api.DecideResponse{}, &failure{code: http.StatusNotFound, err: err}
	case errors.Is(err, review.ErrNotReady):
		return api.DecideResponse{}, &failure{code: http.StatusServiceUnavailable, what: "record the decisions", err: err}
	case err != nil:
		return api.DecideResponse{}, &failure{code: http.StatusServiceUnavailable, what: "record the decisions", err: err}
	}
	if o.Changed > 0 {
		a.opts.Release()
	}
	a.opts.Logger.Info("held actions decided", zap.String("actor", by.name), zap.String("decision", string(to)),
		zap.String("incident", incident), zap.Int("changed", o.Changed), zap.Int("already", o.Already),
		zap.Int("conflicts", len(o.Conflicts)), zap.Int("unknown", len(o.Unknown)),
		zap.String("approval", by.approval), zap.String("approver", by.approver), zap.Bool("break_glass", by.breakGlass))
	return api.DecideResponse{Outcome: api.Outcome(o)}, nil
}

// pendingOf lists the pending actions of an incident (among its first
// through held, if positive), answering the request itself when it cannot.
func (a *API) pendingOf(w http.ResponseWriter, r *http.Request, id string, through int64) ([]string, bool) {
	ids, err := a.opts.Review.Pending(r.Context(), id, through)
	switch {
	case errors.Is(err, review.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
		return nil, false
	case err != nil:
		a.fail(w, r, "list the incident's pending actions", err)
		return nil, false
	}
	return ids, true
}

func (a *API) decideIncident(to review.Status) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, ok := body(a, w, r, parseIncidentDecision)
		if !ok {
			return
		}
		id := r.PathValue("id")
		// The decision covers the actions pending now, by id, among the
		// held actions the reviewer saw (through): an approval request
		// names exactly what it releases, and nothing held later joins it
		// unseen.
		ids, ok := a.pendingOf(w, r, id, req.Through)
		if !ok {
			return
		}
		if len(ids) == 0 {
			writeJSON(w, http.StatusOK, api.DecideResponse{Outcome: api.Outcome{Conflicts: []string{}, Unknown: []string{}}})
			return
		}
		a.decideOrGate(w, r, to, id, ids, req.Reason, req.BreakGlass, nil)
	}
}

func (a *API) sample(w http.ResponseWriter, r *http.Request) {
	req, ok := body(a, w, r, parseSample)
	if !ok {
		return
	}
	id := r.PathValue("id")
	ids, ok := a.pendingOf(w, r, id, 0)
	if !ok {
		return
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	ids = ids[:min(req.N, len(ids))]
	if len(ids) == 0 {
		writeJSON(w, http.StatusOK, api.DecideResponse{Outcome: api.Outcome{Conflicts: []string{}, Unknown: []string{}}, Sampled: []string{}})
		return
	}
	a.decideOrGate(w, r, review.Approved, id, ids, req.Reason, req.BreakGlass, ids)
}

// heldItems are held actions on the wire, with their rule's description
// and their target's link from the configuration.
func (a *API) heldItems(hs []review.Held) []api.Held {
	cfg := a.opts.Config
	out := make([]api.Held, len(hs))
	for i, h := range hs {
		out[i] = h.Held
		out[i].RuleDescription = cfg.Breakers.Rules[h.Rule].Description
		out[i].TargetURL = cfg.Review.TargetLink(h.TargetType, h.TargetID)
	}
	return out
}

// maxRelated bounds the other actions on a target one answer lists.
const maxRelated = 20

func (a *API) related(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		writeError(w, http.StatusBadRequest, "this endpoint takes no query parameters")
		return
	}
	id := r.PathValue("id")
	h, err := a.opts.Review.Get(r.Context(), id)
	if err != nil {
		a.reviewError(w, r, "read the held action", err)
		return
	}
	hs, err := a.opts.Review.Related(r.Context(), id, maxRelated)
	if err != nil {
		a.reviewError(w, r, "list the target's held actions", err)
		return
	}
	writeJSON(w, http.StatusOK, api.Related{Target: h.TargetType + ":" + h.TargetID, Items: a.heldItems(hs)})
}

// changeIncident serves the changes of an incident by a person: parse
// reads the body into a change of kind.
func (a *API) changeIncident(kind string, parse func([]byte) (review.Change, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := body(a, w, r, parse)
		if !ok {
			return
		}
		who := principal(r)
		c.Kind, c.Incident, c.Actor = kind, r.PathValue("id"), who.Name
		if kind == audit.KindStanding && c.Decision == review.Approved && a.opts.Config.Approval.ReleaseAbove > 0 {
			// Releasing more than approval.release_above at once needs a
			// second person; a standing approve would release an unbounded
			// number without one. Rejecting only tightens, and never asks.
			writeError(w, http.StatusConflict, fmt.Sprintf("a standing approve would release any number of actions without a second person "+
				"(approval.release_above is %d); approve the pending actions instead, or set a standing reject", a.opts.Config.Approval.ReleaseAbove))
			return
		}
		inc, err := a.opts.Review.Change(r.Context(), c)
		switch {
		case errors.Is(err, review.ErrNotFound):
			writeError(w, http.StatusNotFound, err.Error())
			return
		case errors.Is(err, review.ErrConflict):
			writeError(w, http.StatusConflict, err.Error())
			return
		case errors.Is(err, review.ErrNotReady):
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		case err != nil:
			a.fail(w, r, "change incident", err)
			return
		}
		a.opts.Logger.Info("incident changed", zap.String("actor", who.Name), zap.String("kind", kind),
			zap.String("incident", c.Incident), zap.String("owner", c.Owner), zap.String("decision", string(c.Decision)))
		switch kind {
		case audit.KindStanding:
			a.opts.Release() // the releaser applies it at once
		case audit.KindAcknowledge:
			if a.opts.Pager != nil {
				// PagerDuty acknowledges the page of the trip. The
				// acknowledgement stands whether or not it hears of it; the
				// failure is logged.
				d := alert.Describer{AdminURL: a.opts.Config.Alerts.AdminURL}
				ev := alert.Acknowledged(breaker.Scope(inc.Scope), inc.ID, inc.AckBy, inc.AckAt, alert.SeverityCritical, d)
				if err := a.opts.Pager.Page(r.Context(), ev); err != nil {
					a.opts.Logger.Error("tell on-call of an acknowledgement", zap.String("incident", inc.ID), zap.Error(err))
				}
			}
		}
		writeJSON(w, http.StatusOK, inc)
	}
}

func standingChange(data []byte) (review.Change, error) {
	req, err := parseStanding(data)
	to := review.Approved
	if req.Decision == "reject" {
		to = review.Rejected
	}
	return review.Change{Decision: to, Text: req.Reason}, err
}

func revokeChange(data []byte) (review.Change, error) {
	reason, err := parseRevoke(data)
	return review.Change{Text: reason}, err
}

func ackChange(data []byte) (review.Change, error) {
	note, err := parseAck(data)
	return review.Change{Text: note}, err
}

func ownerChange(data []byte) (review.Change, error) {
	owner, err := parseOwner(data)
	return review.Change{Owner: owner}, err
}

func noteChange(data []byte) (review.Change, error) {
	text, err := parseNote(data)
	return review.Change{Text: text}, err
}

// undo puts decided actions back to pending before their release.
func (a *API) undo(w http.ResponseWriter, r *http.Request) {
	req, ok := body(a, w, r, parseDecide)
	if !ok {
		return
	}
	who := principal(r)
	out, err := a.opts.Review.Undo(r.Context(), req.IDs, who.Name, req.Reason)
	switch {
	case errors.Is(err, review.ErrNotReady):
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	case err != nil:
		a.fail(w, r, "undo the decisions", err)
		return
	}
	a.opts.Logger.Info("decisions undone", zap.String("actor", who.Name), zap.Int("undone", len(out.Undone)),
		zap.Int("released", len(out.Released)), zap.Int("pending", len(out.Pending)), zap.Int("unknown", len(out.Unknown)))
	writeJSON(w, http.StatusOK, out)
}

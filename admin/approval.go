package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/breakwater/breakwater/alert"
	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/approval"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/review"
)

// Approvals keeps the approval requests (approval.Store).
type Approvals interface {
	Create(ctx context.Context, a api.Approval) error
	Get(ctx context.Context, id string) (api.Approval, error)
	List(ctx context.Context, limit int, now time.Time) ([]api.Approval, error)
	Update(ctx context.Context, id string, fn func(api.Approval) (api.Approval, error)) (api.Approval, error)
}

// Pager pages on-call (the daemon's alert outbox).
type Pager interface {
	Page(ctx context.Context, e alert.Event) error
}

var _ Approvals = (*approval.Store)(nil)

// pending is a change that needs a second person's approval, as a handler
// found it.
type pending struct {
	op       api.Operation
	target   string
	payload  []byte
	role     config.Role
	count    int
	summary  string
	scope    breaker.Scope
	incident string
	// breakGlass, if set, applies the change at once without approval.
	breakGlass string
}

// gate answers a change that needs approval: it stores the request and
// answers 202 with it, or, with a break-glass reason, applies the change at
// once, pages on-call and flags it in the audit trail.
func (a *API) gate(w http.ResponseWriter, r *http.Request, p pending) {
	ctx := r.Context()
	who := principal(r)
	now := time.Now().UTC()
	ap := api.Approval{
		ID: approval.NewID(), Operation: p.op, Target: p.target, Payload: p.payload,
		PayloadSHA256: approval.Hash(p.op, p.target, p.payload), Count: p.count, Summary: p.summary,
		Requester: who.Name, Role: p.role, RequestedAt: now, ExpiresAt: now.Add(a.opts.Config.Approval.ExpireAfter),
		Status: api.ApprovalPending,
	}
	entry := audit.Entry{AuditEntry: api.AuditEntry{
		At: now, Actor: who.Name, Kind: audit.KindApprovalRequest, Scope: p.scope, Incident: p.incident,
		Reason: p.summary, Count: p.count, Approval: ap.ID,
	}, PayloadSHA256: ap.PayloadSHA256}
	if p.breakGlass != "" {
		a.breakGlass(w, r, ap, entry, p.breakGlass)
		return
	}
	// The audit trail has the request before anyone can approve it.
	if err := a.opts.Audit.Write(ctx, entry); err != nil {
		a.fail(w, r, "audit the approval request", err)
		return
	}
	if err := a.opts.Approvals.Create(ctx, ap); err != nil {
		a.fail(w, r, "store the approval request", err)
		return
	}
	a.opts.Logger.Info("approval requested", zap.String("actor", who.Name), zap.String("approval", ap.ID),
		zap.String("operation", string(ap.Operation)), zap.String("target", ap.Target), zap.Int("count", ap.Count))
	w.Header().Set("Location", "/v1/approvals/"+ap.ID)
	writeJSON(w, http.StatusAccepted, ap)
}

// breakGlass applies ap at once for its requester: the request is stored
// as break_glass, on-call is paged and the audit trail flags it, all before
// the change is applied. Without an alert receiver nobody can be paged,
// and the change is refused.
func (a *API) breakGlass(w http.ResponseWriter, r *http.Request, ap api.Approval, entry audit.Entry, reason string) {
	ctx := r.Context()
	if a.opts.Pager == nil {
		writeError(w, http.StatusConflict, "break-glass pages on-call, and no alert receiver is configured (alerts.receivers); ask a second person to approve instead")
		return
	}
	now := ap.RequestedAt
	ap.Status, ap.DecidedBy, ap.DecidedAt, ap.Reason = api.ApprovalBreakGlass, ap.Requester, now, reason
	entry.Kind, entry.BreakGlass, entry.Reason = audit.KindBreakGlass, true, reason+" (to "+ap.Summary+")"
	if err := a.opts.Audit.Write(ctx, entry); err != nil {
		a.fail(w, r, "audit the break-glass change", err)
		return
	}
	if err := a.opts.Pager.Page(ctx, alert.BreakGlass(ap.ID, ap.Requester, reason, ap.Summary, entry.Scope, entry.Incident, now)); err != nil {
		a.fail(w, r, "page on-call of the break-glass change", err)
		return
	}
	if err := a.opts.Approvals.Create(ctx, ap); err != nil {
		a.fail(w, r, "store the break-glass request", err)
		return
	}
	a.opts.Logger.Warn("break-glass change without a second person", zap.String("actor", ap.Requester), zap.String("approval", ap.ID),
		zap.String("operation", string(ap.Operation)), zap.String("target", ap.Target), zap.String("reason", reason))
	res, err := a.applyApproval(ctx, ap, actor{name: ap.Requester, approval: ap.ID, breakGlass: true})
	a.recordApplied(ctx, ap.ID, res, err)
	a.answer(w, r, res, err)
}

// applyApproval applies the payload of an approved (or break-glass)
// request as by.
func (a *API) applyApproval(ctx context.Context, ap api.Approval, by actor) (any, error) {
	switch ap.Operation {
	case api.OpOverride:
		scope, err := breaker.ParseScope(ap.Target)
		if err != nil {
			return nil, &failure{code: http.StatusConflict, err: fmt.Errorf("the request names no breaker: %w", err)}
		}
		o, err := parseOverride(ap.Payload)
		if err != nil {
			return nil, &failure{code: http.StatusConflict, err: fmt.Errorf("the request's payload: %w", err)}
		}
		return a.applyOverride(ctx, scope, o, by, false)
	case api.OpReset:
		scope, err := breaker.ParseScope(ap.Target)
		if err != nil {
			return nil, &failure{code: http.StatusConflict, err: fmt.Errorf("the request names no breaker: %w", err)}
		}
		req, probation, err := resetPayload(ap.Payload)
		if err != nil {
			return nil, &failure{code: http.StatusConflict, err: fmt.Errorf("the request's payload: %w", err)}
		}
		return a.applyReset(ctx, scope, req.Reason, probation, by, false)
	case api.OpRelease:
		req, err := parseRelease(ap.Payload)
		if err != nil {
			return nil, &failure{code: http.StatusConflict, err: fmt.Errorf("the request's payload: %w", err)}
		}
		return a.applyRelease(ctx, review.Approved, ap.Target, req.IDs, req.Reason, by)
	case api.OpReversal:
		req, err := parseReversal(ap.Payload)
		if err != nil || len(req.IDs) == 0 || req.BreakGlass != "" {
			return nil, &failure{code: http.StatusConflict, err: fmt.Errorf("the request's payload: want a reversal naming its ids (%v)", err)}
		}
		return a.applyReversal(ctx, ap.Target, req, by)
	case api.OpAppealsTrip:
		req, err := parseAppealsTrip(ap.Payload)
		if err != nil || req.Enabled || a.opts.Appeals == nil {
			return nil, &failure{code: http.StatusConflict, err: fmt.Errorf("the request's payload: want the appeals trip turned off, with the appeals signal on (%v)", err)}
		}
		return a.applyAppealsTrip(ctx, req, by)
	}
	return nil, &failure{code: http.StatusConflict, err: fmt.Errorf("unknown operation %q", ap.Operation)}
}

// recordApplied records in the request what applying it answered. A
// request whose application failed stays approved, with the error, and its
// approver may approve it again to retry.
func (a *API) recordApplied(ctx context.Context, id string, res any, applyErr error) {
	now := time.Now().UTC()
	_, err := a.opts.Approvals.Update(ctx, id, func(ap api.Approval) (api.Approval, error) {
		if applyErr != nil {
			ap.Error = applyErr.Error()
			return ap, nil
		}
		ap.Result, _ = json.Marshal(res)
		ap.AppliedAt, ap.Error = now, ""
		if ap.Status == api.ApprovalApproved {
			ap.Status = api.ApprovalApplied
		}
		return ap, nil
	})
	if err != nil {
		a.opts.Logger.Error("record the outcome of an approval request", zap.String("approval", id), zap.Error(err))
	}
}

// approvalError answers an error of the approval rules or store.
func (a *API) approvalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, approval.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, approval.ErrSelf), errors.Is(err, approval.ErrRole), errors.Is(err, approval.ErrNotRequester):
		writeError(w, http.StatusForbidden, err.Error())
	case errors.Is(err, approval.ErrStale), errors.Is(err, approval.ErrExpired), errors.Is(err, approval.ErrDecided):
		writeError(w, http.StatusConflict, err.Error())
	default:
		a.fail(w, r, what, err)
	}
}

// The approval listing limits.
const (
	defaultApprovalLimit = 100
	maxApprovalLimit     = 1000
)

func (a *API) listApprovals(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	for key := range v {
		if key != "status" && key != "limit" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q; want status or limit", key))
			return
		}
	}
	status := api.ApprovalStatus(v.Get("status"))
	switch status {
	case "", api.ApprovalPending, api.ApprovalApproved, api.ApprovalApplied, api.ApprovalRefused, api.ApprovalExpired, api.ApprovalBreakGlass:
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("status: want pending, approved, applied, refused, expired or break_glass, got %q", status))
		return
	}
	limit, err := queryLimit(v, defaultApprovalLimit, maxApprovalLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// The store returns the newest; a status filter reads the most it keeps.
	read := limit
	if status != "" {
		read = maxApprovalLimit
	}
	all, err := a.opts.Approvals.List(r.Context(), read, time.Now())
	if err != nil {
		a.fail(w, r, "list approval requests", err)
		return
	}
	out := api.Approvals{Approvals: []api.Approval{}}
	for _, ap := range all {
		if (status == "" || ap.Status == status) && len(out.Approvals) < limit {
			out.Approvals = append(out.Approvals, ap)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getApproval(w http.ResponseWriter, r *http.Request) {
	ap, err := a.opts.Approvals.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.approvalError(w, r, "read the approval request", err)
		return
	}
	ap.Status = approval.Status(ap, time.Now())
	writeJSON(w, http.StatusOK, ap)
}

func (a *API) approveApproval(w http.ResponseWriter, r *http.Request) {
	req, ok := body(a, w, r, parseApprove)
	if !ok {
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	who := principal(r)
	ap, err := a.opts.Approvals.Update(ctx, id, func(ap api.Approval) (api.Approval, error) {
		now := time.Now().UTC()
		if err := approval.CheckApprove(ap, who, req.PayloadSHA256, now); err != nil {
			return ap, err
		}
		if ap.Status == api.ApprovalPending {
			ap.Status, ap.DecidedBy, ap.DecidedAt = api.ApprovalApproved, who.Name, now
		}
		return ap, nil
	})
	if err != nil {
		a.approvalError(w, r, "approve the request", err)
		return
	}
	if err := a.opts.Audit.Write(ctx, audit.Entry{AuditEntry: api.AuditEntry{
		ID: "approval:" + ap.ID + ":approve:" + ap.PayloadSHA256, At: ap.DecidedAt, Actor: who.Name, Kind: audit.KindApprovalApprove,
		Scope: scopeOf(ap), Incident: incidentOf(ap), Reason: ap.Summary + " (requested by " + ap.Requester + ")", Count: ap.Count,
		Approval: ap.ID, Approver: who.Name,
	}, PayloadSHA256: ap.PayloadSHA256}); err != nil {
		// Approved but not applied: approving again applies it.
		a.fail(w, r, "the request is approved but the audit trail failed, so it is not applied; approve it again", err)
		return
	}
	a.opts.Logger.Info("approval granted", zap.String("actor", who.Name), zap.String("approval", ap.ID),
		zap.String("requester", ap.Requester), zap.String("operation", string(ap.Operation)), zap.String("target", ap.Target))
	res, err := a.applyApproval(ctx, ap, actor{name: ap.Requester, approval: ap.ID, approver: who.Name})
	a.recordApplied(ctx, ap.ID, res, err)
	if err != nil {
		a.answer(w, r, nil, err)
		return
	}
	a.getApproval(w, r)
}

// resetPayload decodes the payload of a reset's approval request: a reset
// body naming the probation it was asked under, without break_glass.
func resetPayload(payload []byte) (api.ResetRequest, time.Duration, error) {
	req, err := parseReset(payload)
	if err != nil {
		return req, 0, err
	}
	if req.Probation == "" || req.BreakGlass != "" {
		return req, 0, errors.New("a reset's payload names the probation it was asked under, and no break_glass")
	}
	d, err := time.ParseDuration(req.Probation)
	return req, d, err
}

// scopeOf is the breaker an override or reset request concerns.
func scopeOf(ap api.Approval) breaker.Scope {
	if ap.Operation == api.OpOverride || ap.Operation == api.OpReset {
		return breaker.Scope(ap.Target)
	}
	return ""
}

// incidentOf is the incident a release request concerns.
func incidentOf(ap api.Approval) string {
	if ap.Operation == api.OpRelease || ap.Operation == api.OpReversal {
		return ap.Target
	}
	return ""
}

func (a *API) refuseApproval(w http.ResponseWriter, r *http.Request) {
	reason, ok := body(a, w, r, parseRefuse)
	if !ok {
		return
	}
	ctx := r.Context()
	who := principal(r)
	ap, err := a.opts.Approvals.Update(ctx, r.PathValue("id"), func(ap api.Approval) (api.Approval, error) {
		now := time.Now().UTC()
		if err := approval.CheckRefuse(ap, who, now); err != nil {
			return ap, err
		}
		ap.Status, ap.DecidedBy, ap.DecidedAt, ap.Reason = api.ApprovalRefused, who.Name, now, reason
		return ap, nil
	})
	if err != nil {
		a.approvalError(w, r, "refuse the request", err)
		return
	}
	if err := a.opts.Audit.Write(ctx, audit.Entry{AuditEntry: api.AuditEntry{
		ID: "approval:" + ap.ID + ":refuse", At: ap.DecidedAt, Actor: who.Name, Kind: audit.KindApprovalRefuse,
		Scope: scopeOf(ap), Incident: incidentOf(ap), Reason: reason, Count: ap.Count, Approval: ap.ID,
	}, PayloadSHA256: ap.PayloadSHA256}); err != nil {
		a.fail(w, r, "the request is refused but the audit trail failed", err)
		return
	}
	a.opts.Logger.Info("approval refused", zap.String("actor", who.Name), zap.String("approval", ap.ID), zap.String("reason", reason))
	writeJSON(w, http.StatusOK, ap)
}

func (a *API) editApproval(w http.ResponseWriter, r *http.Request) {
	payload, ok := body(a, w, r, parseEdit)
	if !ok {
		return
	}
	ctx := r.Context()
	who := principal(r)
	id := r.PathValue("id")
	cur, err := a.opts.Approvals.Get(ctx, id)
	if err != nil {
		a.approvalError(w, r, "read the approval request", err)
		return
	}
	canonical, summary, count, err := a.checkPayload(cur, payload)
	if err != nil {
		writeError(w, http.StatusBadRequest, "field \"payload\": "+err.Error())
		return
	}
	ap, err := a.opts.Approvals.Update(ctx, id, func(ap api.Approval) (api.Approval, error) {
		now := time.Now().UTC()
		if err := approval.CheckEdit(ap, who, now); err != nil {
			return ap, err
		}
		return approval.Edit(ap, canonical, summary, count, now, a.opts.Config.Approval.ExpireAfter), nil
	})
	if err != nil {
		a.approvalError(w, r, "edit the request", err)
		return
	}
	if err := a.opts.Audit.Write(ctx, audit.Entry{AuditEntry: api.AuditEntry{
		At: ap.RequestedAt, Actor: who.Name, Kind: audit.KindApprovalEdit, Scope: scopeOf(ap), Incident: incidentOf(ap),
		Reason: ap.Summary, Count: ap.Count, Approval: ap.ID,
	}, PayloadSHA256: ap.PayloadSHA256}); err != nil {
		a.fail(w, r, "the request is edited but the audit trail failed", err)
		return
	}
	a.opts.Logger.Info("approval request edited", zap.String("actor", who.Name), zap.String("approval", ap.ID), zap.Int("edits", ap.Edits))
	writeJSON(w, http.StatusOK, ap)
}

// checkPayload checks a new payload of the request ap and returns it in
// its canonical encoding, with the summary and count it gives the request.
func (a *API) checkPayload(ap api.Approval, payload []byte) ([]byte, string, int, error) {
	switch ap.Operation {
	case api.OpOverride:
		o, err := parseOverride(payload)
		if err != nil {
			return nil, "", 0, err
		}
		if o.breakGlass != "" {
			return nil, "", 0, errors.New("field \"break_glass\": has no place in an approval request's payload")
		}
		return o.payload(), fmt.Sprintf("set breaker %s to %s while it holds", ap.Target, o.state), 0, nil
	case api.OpReset:
		req, _, err := resetPayload(payload)
		if err != nil {
			return nil, "", 0, err
		}
		b, _ := json.Marshal(req)
		return b, resetSummary(breaker.Scope(ap.Target), "") + " (edited)", 0, nil
	case api.OpRelease:
		req, err := parseRelease(payload)
		if err != nil {
			return nil, "", 0, err
		}
		b, _ := json.Marshal(req)
		what := "held actions"
		if ap.Target != "" {
			what = "held actions of incident " + ap.Target
		}
		return b, fmt.Sprintf("release %d %s to the gated topic", len(req.IDs), what), len(req.IDs), nil
	case api.OpReversal:
		req, err := parseReversal(payload)
		if err != nil {
			return nil, "", 0, err
		}
		if len(req.IDs) == 0 || req.BreakGlass != "" {
			return nil, "", 0, errors.New("a reversal's payload names its ids and no break_glass")
		}
		b, _ := json.Marshal(req)
		return b, fmt.Sprintf("reverse %d actions of incident %s (edited)", len(req.IDs), ap.Target), len(req.IDs), nil
	case api.OpAppealsTrip:
		req, err := parseAppealsTrip(payload)
		if err != nil {
			return nil, "", 0, err
		}
		if req.Enabled || req.BreakGlass != "" {
			return nil, "", 0, errors.New("the payload turns the appeals trip off, without break_glass")
		}
		b, _ := json.Marshal(req)
		return b, "turn the appeals trip (overturn_rate) off (edited)", 0, nil
	}
	return nil, "", 0, fmt.Errorf("the request's operation %q cannot be edited", ap.Operation)
}

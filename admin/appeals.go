package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/appeals"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/config"
)

// AppealsSwitch is the switch of the appeals trip (appeals.Store).
type AppealsSwitch interface {
	Switch(ctx context.Context, now time.Time) (api.AppealsTrip, error)
	SetSwitch(ctx context.Context, sw api.AppealsTrip) error
}

// AppealsEstimator gives the appeals signal's estimates (appeals.Service).
type AppealsEstimator interface {
	Estimates(ctx context.Context) (api.AppealsEstimates, error)
}

var _ AppealsEstimator = (*appeals.Service)(nil)

func (a *API) getAppeals(w http.ResponseWriter, r *http.Request) {
	if a.opts.Estimates == nil {
		writeError(w, http.StatusNotFound, "the appeals signal is off (appeals.enabled)")
		return
	}
	es, err := a.opts.Estimates.Estimates(r.Context())
	if err != nil {
		a.fail(w, r, "read the appeals estimates", err)
		return
	}
	writeJSON(w, http.StatusOK, es)
}

// KindAppealsTrip is the audit kind of a change of the appeals trip's
// switch.
const KindAppealsTrip = "appeals_trip"

// maxAppealsOff is the longest a timed turn-off may last.
const maxAppealsOff = 30 * 24 * time.Hour

// parseAppealsTrip reads the body of POST /v1/appeals/trip.
func parseAppealsTrip(data []byte) (api.AppealsTripRequest, error) {
	var req api.AppealsTripRequest
	if err := decodeStrict(data, &req); err != nil {
		return req, err
	}
	var err error
	if req.Reason, err = checkReason(req.Reason); err != nil {
		return req, err
	}
	if req.For != "" {
		if req.Enabled {
			return req, errors.New("field \"for\": only turning the trip off lasts a time")
		}
		d, err := time.ParseDuration(req.For)
		if err != nil || d <= 0 || d > maxAppealsOff {
			return req, fmt.Errorf("field \"for\": want a duration up to %s such as 24h, got %q", maxAppealsOff, req.For)
		}
		req.For = d.String()
	}
	if req.BreakGlass != "" {
		if req.Enabled {
			return req, errors.New("field \"break_glass\": turning the trip on needs no approval")
		}
		if req.BreakGlass, err = checkReason(req.BreakGlass); err != nil {
			return req, fmt.Errorf("break_glass: %w", err)
		}
	}
	return req, nil
}

func (a *API) getAppealsTrip(w http.ResponseWriter, r *http.Request) {
	if a.opts.Appeals == nil {
		writeError(w, http.StatusNotFound, "the appeals signal is off (appeals.enabled)")
		return
	}
	sw, err := a.opts.Appeals.Switch(r.Context(), time.Now())
	if err != nil {
		a.fail(w, r, "read the appeals trip", err)
		return
	}
	writeJSON(w, http.StatusOK, sw)
}

// setAppealsTrip turns the appeals trip on at once, or asks a second
// operator's approval to turn it off (break-glass turns it off at once and
// pages on-call).
func (a *API) setAppealsTrip(w http.ResponseWriter, r *http.Request) {
	if a.opts.Appeals == nil {
		writeError(w, http.StatusNotFound, "the appeals signal is off (appeals.enabled)")
		return
	}
	req, ok := body(a, w, r, parseAppealsTrip)
	if !ok {
		return
	}
	if req.Enabled {
		res, err := a.applyAppealsTrip(r.Context(), req, actor{name: principal(r).Name})
		a.answer(w, r, res, err)
		return
	}
	glass := req.BreakGlass
	req.BreakGlass = ""
	payload, _ := json.Marshal(req)
	summary := "turn the appeals trip (overturn_rate) off"
	if req.For != "" {
		summary += " for " + req.For
	}
	a.gate(w, r, pending{op: api.OpAppealsTrip, target: "appeals", payload: payload, role: config.RoleOperator, summary: summary, breakGlass: glass})
}

// applyAppealsTrip sets the switch as by and audits it.
func (a *API) applyAppealsTrip(ctx context.Context, req api.AppealsTripRequest, by actor) (api.AppealsTrip, error) {
	now := time.Now().UTC()
	sw := api.AppealsTrip{Enabled: req.Enabled, By: by.name, Approver: by.approver, Reason: req.Reason, At: now}
	if !req.Enabled && req.For != "" {
		d, err := time.ParseDuration(req.For)
		if err != nil {
			return sw, &failure{code: http.StatusConflict, err: fmt.Errorf("the request's for: %w", err)}
		}
		sw.Until = now.Add(d)
	}
	if err := a.opts.Appeals.SetSwitch(ctx, sw); err != nil {
		return sw, &failure{code: http.StatusServiceUnavailable, what: "set the appeals trip", err: err}
	}
	state := "on"
	if !sw.Enabled {
		state = "off"
	}
	if err := a.opts.Audit.Write(ctx, audit.Entry{AuditEntry: api.AuditEntry{
		ID: audit.NewID(), At: now, Actor: by.name, Kind: KindAppealsTrip, Reason: "appeals trip " + state + ": " + req.Reason,
		Approval: by.approval, Approver: by.approver, BreakGlass: by.breakGlass,
	}}); err != nil {
		return sw, &failure{code: http.StatusServiceUnavailable, what: "the appeals trip is set but the audit trail failed", err: err}
	}
	a.opts.Logger.Warn("appeals trip changed", zap.String("actor", by.name), zap.Bool("enabled", sw.Enabled),
		zap.String("approver", by.approver), zap.Bool("break_glass", by.breakGlass), zap.String("reason", req.Reason))
	return sw, nil
}

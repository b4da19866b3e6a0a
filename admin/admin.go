// Package admin serves the admin API: the breakers, their overrides and
// resets, and the audit trail, as JSON over HTTP behind bearer tokens with
// roles (viewer < reviewer < operator < admin).
//
// Every replica serves it and reads the breaker states from the shared store,
// so an override made through one replica applies to all of them at their
// next batch.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/consumer"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/review"
	"github.com/breakwater/breakwater/store"
)

// Breakers is the shared breaker state (store.Redis and store.Memory).
type Breakers interface {
	List(ctx context.Context) ([]store.ScopeStatus, error)
	Status(ctx context.Context, scope breaker.Scope) (breaker.Status, error)
	Update(ctx context.Context, scope breaker.Scope, fn func(breaker.Status, time.Time) (breaker.Status, error)) (breaker.Transition, error)
}

// Alerter raises the alerts of breaker transitions (the daemon's outbox);
// held is nil for operator changes.
type Alerter interface {
	Raise(ctx context.Context, ts []breaker.Transition, held map[breaker.Scope]consumer.HeldCounts) error
}

// StateRecorder is the durable record of breaker states (statelog.Log).
type StateRecorder interface {
	Record(ctx context.Context, at time.Time, ts []breaker.Transition) error
}

// Trail is the audit trail (audit.Trail).
type Trail interface {
	Write(ctx context.Context, entries ...audit.Entry) error
	Query(ctx context.Context, q audit.Query) ([]audit.Entry, error)
}

var (
	_ Breakers = (*store.Redis)(nil)
	_ Breakers = (*store.Memory)(nil)
	_ Trail    = (*audit.Trail)(nil)
)

// Options are what the API needs.
type Options struct {
	// Config gives the tokens, body limit and thresholds.
	Config config.Config
	// Breakers is the shared store.
	Breakers Breakers
	// States is the durable record every operator transition is written to.
	States StateRecorder
	// Audit is the audit trail.
	Audit Trail
	// Review is the index of held actions.
	Review Review
	// Release asks the releaser to write new decisions now.
	Release func()
	// Alerts, if set, raises the alerts of operator transitions (an
	// override set, a reset that resolves a trip).
	Alerts Alerter
	// History keeps the recent figures of every breaker for the console.
	History History
	// Restore puts the breaker states back into a store that lost them;
	// an update that meets store.ErrStateLost restores, then retries.
	Restore func(ctx context.Context) error
	// Approvals keeps the requests of changes that need a second person.
	Approvals Approvals
	// Reversals finds, starts and follows reversals.
	Reversals Reversals
	// Appeals, if set (appeals.enabled), is the switch of the appeals
	// trip.
	Appeals AppealsSwitch
	// Estimates, if set (appeals.enabled), gives the appeals signal's
	// estimates per rule and model version.
	Estimates AppealsEstimator
	// Pager, if set, pages on-call when a person breaks the glass, and
	// tells it of an incident's acknowledgement; without
	// it, break-glass is refused.
	Pager Pager
	// Logger logs requests that change something, and failures.
	Logger *zap.Logger
	// People, if set, identifies people signed in through OIDC or a
	// trusted proxy on requests without a bearer token.
	People People
}

func (o Options) validate() error {
	switch {
	case o.Breakers == nil:
		return errors.New("admin: Options.Breakers is nil")
	case o.States == nil:
		return errors.New("admin: Options.States is nil")
	case o.Audit == nil:
		return errors.New("admin: Options.Audit is nil")
	case o.Review == nil:
		return errors.New("admin: Options.Review is nil")
	case o.Release == nil:
		return errors.New("admin: Options.Release is nil")
	case o.History == nil:
		return errors.New("admin: Options.History is nil")
	case o.Restore == nil:
		return errors.New("admin: Options.Restore is nil")
	case o.Logger == nil:
		return errors.New("admin: Options.Logger is nil")
	case o.Approvals == nil:
		return errors.New("admin: Options.Approvals is nil")
	case o.Reversals == nil:
		return errors.New("admin: Options.Reversals is nil")
	case o.Config.Admin.MaxBodyBytes <= 0:
		return errors.New("admin: Options.Config.Admin.MaxBodyBytes must be positive")
	}
	return nil
}

// API is the admin API handler.
type API struct {
	opts Options
	auth *authenticator
	mux  *http.ServeMux

	mu     sync.Mutex // guards counts
	counts map[breaker.Scope]observed
}

// observed is the last counts of a scope this replica saw.
type observed struct {
	counts breaker.Counts
	at     time.Time
}

// Route is one endpoint of the API.
type Route struct {
	// Method and Path are as in net/http patterns ("GET", "/v1/breakers/{scope}").
	Method, Path string
	// Role is the least role that may call it.
	Role config.Role
}

// New returns the API.
func New(opts Options) (*API, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	a := &API{opts: opts, auth: newAuthenticator(opts.Config.Admin.Tokens, opts.People), mux: http.NewServeMux(), counts: map[breaker.Scope]observed{}}
	allowed := map[string][]string{}
	for _, rt := range a.routes() {
		a.mux.HandleFunc(rt.Method+" "+rt.Path, a.auth.withPrincipal(rt.Role, rt.h))
		allowed[rt.Path] = append(allowed[rt.Path], rt.Method)
	}
	for path, methods := range allowed {
		allow := strings.Join(methods, ", ")
		if slices.Contains(methods, "GET") {
			allow += ", HEAD"
		}
		a.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here; use "+allow)
		})
	}
	a.mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return a, nil
}

type route struct {
	Route
	h http.HandlerFunc
}

func (a *API) routes() []route {
	return []route{
		{Route{"GET", "/v1/whoami", config.RoleViewer}, a.whoami},
		{Route{"GET", "/v1/breakers", config.RoleViewer}, a.listBreakers},
		{Route{"GET", "/v1/breakers/{scope}", config.RoleViewer}, a.getBreaker},
		{Route{"POST", "/v1/breakers/{scope}/override", config.RoleOperator}, a.override},
		{Route{"POST", "/v1/breakers/{scope}/reset", config.RoleOperator}, a.reset},
		{Route{"GET", "/v1/audit", config.RoleViewer}, a.queryAudit},
		{Route{"GET", "/v1/incidents", config.RoleViewer}, a.listIncidents},
		{Route{"GET", "/v1/incidents/{id}", config.RoleViewer}, a.getIncident},
		{Route{"GET", "/v1/incidents/{id}/lookback", config.RoleViewer}, a.lookBack},
		{Route{"GET", "/v1/held", config.RoleViewer}, a.listHeld},
		{Route{"POST", "/v1/held/approve", config.RoleReviewer}, a.decideIDs(review.Approved)},
		{Route{"POST", "/v1/held/reject", config.RoleReviewer}, a.decideIDs(review.Rejected)},
		{Route{"POST", "/v1/incidents/{id}/approve", config.RoleReviewer}, a.decideIncident(review.Approved)},
		{Route{"POST", "/v1/incidents/{id}/reject", config.RoleReviewer}, a.decideIncident(review.Rejected)},
		{Route{"POST", "/v1/incidents/{id}/sample", config.RoleReviewer}, a.sample},
		{Route{"GET", "/v1/settings", config.RoleViewer}, a.settings},
		{Route{"GET", "/v1/history", config.RoleViewer}, a.getHistory},
		{Route{"GET", "/v1/breakers/{scope}/chart", config.RoleViewer}, a.chart},
		{Route{"GET", "/v1/incidents/{id}/breakdown", config.RoleViewer}, a.breakdown},
		{Route{"GET", "/v1/incidents/{id}/pick", config.RoleReviewer}, a.pick},
		{Route{"GET", "/v1/approvals", config.RoleViewer}, a.listApprovals},
		{Route{"GET", "/v1/approvals/{id}", config.RoleViewer}, a.getApproval},
		{Route{"PUT", "/v1/approvals/{id}", config.RoleReviewer}, a.editApproval},
		{Route{"POST", "/v1/approvals/{id}/approve", config.RoleReviewer}, a.approveApproval},
		{Route{"POST", "/v1/approvals/{id}/refuse", config.RoleReviewer}, a.refuseApproval},
		{Route{"GET", "/v1/held/{id}/related", config.RoleViewer}, a.related},
		{Route{"POST", "/v1/held/undo", config.RoleReviewer}, a.undo},
		{Route{"POST", "/v1/incidents/{id}/ack", config.RoleReviewer}, a.changeIncident(audit.KindAcknowledge, ackChange)},
		{Route{"POST", "/v1/incidents/{id}/owner", config.RoleReviewer}, a.changeIncident(audit.KindOwner, ownerChange)},
		{Route{"POST", "/v1/incidents/{id}/notes", config.RoleReviewer}, a.changeIncident(audit.KindNote, noteChange)},
		{Route{"POST", "/v1/incidents/{id}/standing", config.RoleReviewer}, a.changeIncident(audit.KindStanding, standingChange)},
		{Route{"POST", "/v1/incidents/{id}/standing/revoke", config.RoleReviewer}, a.changeIncident(audit.KindStandingRevoked, revokeChange)},
		{Route{"GET", "/v1/incidents/{id}/reversal", config.RoleViewer}, a.previewReversal},
		{Route{"POST", "/v1/incidents/{id}/reversal", config.RoleOperator}, a.requestReversal},
		{Route{"GET", "/v1/appeals", config.RoleViewer}, a.getAppeals},
		{Route{"GET", "/v1/appeals/trip", config.RoleViewer}, a.getAppealsTrip},
		{Route{"POST", "/v1/appeals/trip", config.RoleOperator}, a.setAppealsTrip},
		{Route{"GET", "/v1/reversals", config.RoleViewer}, a.listReversals},
		{Route{"GET", "/v1/reversals/{id}", config.RoleViewer}, a.getReversal},
	}
}

// Routes lists the endpoints the API serves.
func (a *API) Routes() []Route {
	rs := a.routes()
	out := make([]Route, len(rs))
	for i, r := range rs {
		out[i] = r.Route
	}
	return out
}

// ServeHTTP serves the API under /v1/.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Observe records the counts of the scopes a batch touched, shown with the
// breakers as the last figures this replica saw. The pipeline calls it
// after each batch.
func (a *API) Observe(at time.Time, scopes []decide.ScopeResult) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range scopes {
		a.counts[s.Scope] = observed{counts: s.Counts, at: at}
	}
}

// counter reads a scope's live counts from the shared store
// (store.Redis and store.Memory).
type counter interface {
	Counts(ctx context.Context, scope breaker.Scope, p breaker.Policy) (breaker.Counts, time.Time, bool, error)
}

// policy returns the configured policy of scope.
func (a *API) policy(scope breaker.Scope) breaker.Policy {
	return decide.ScopePolicy(a.opts.Config, scope)
}

// known lists the scopes the configuration names and those this replica
// has seen counted.
func (a *API) known() []breaker.Scope {
	cfg := a.opts.Config
	out := []breaker.Scope{breaker.Global}
	for rule, r := range cfg.Breakers.Rules {
		out = append(out, breaker.RuleScope(rule))
		for action := range r.Actions {
			out = append(out, breaker.ActionScope(rule, action))
		}
	}
	a.mu.Lock()
	for s := range a.counts {
		out = append(out, s)
	}
	a.mu.Unlock()
	return out
}

// view describes a breaker: its status, thresholds and counts. The counts
// are read from the shared store when it can tell them, so that every
// replica answers alike; otherwise they are the last this replica saw.
func (a *API) view(ctx context.Context, scope breaker.Scope, s breaker.Status) api.Breaker {
	p := a.policy(scope)
	b := api.Breaker{
		Scope: scope, Status: s, Holds: s.Holds(),
		Thresholds: api.Thresholds{
			Window: p.Window.String(), MaxActions: p.MaxActions, Baseline: p.Baseline.String(), Factor: p.Factor,
			MinActions: p.MinActions, AutoCloseAfter: p.AutoCloseAfter.String(), Probation: p.Probation.String(),
			ProbationScale: p.ProbationScale, Disabled: p.Disabled,
		},
	}
	if p.EvidenceOn() {
		b.Thresholds.Evidence = &api.Evidence{
			Bin: p.EvidenceBin.String(), Ratio: p.EvidenceRatio, Threshold: p.EvidenceThreshold,
			MinExpected: p.EvidenceMinExpected, Days: p.EvidenceDays,
		}
	}
	if e, ok := breaker.Explain(p, s); ok {
		b.Explanation = &e
	}
	if c, ok := a.opts.Breakers.(counter); ok {
		counts, at, found, err := c.Counts(ctx, scope, p)
		if err == nil && found {
			b.Counts = &api.Counts{
				Window: counts.Window, Baseline: counts.Baseline, BaselineReady: counts.BaselineReady,
				ObservedAt: time.Now().UTC(), EventTime: at,
			}
			if counts.EvidenceReady {
				b.Counts.Expected, b.Counts.Observed, b.Counts.Evidence = counts.Expected, counts.Observed, counts.Evidence
			}
			return b
		}
	}
	a.mu.Lock()
	if o, ok := a.counts[scope]; ok {
		b.Counts = &api.Counts{Window: o.counts.Window, Baseline: o.counts.Baseline, BaselineReady: o.counts.BaselineReady, ObservedAt: o.at}
	}
	a.mu.Unlock()
	return b
}

func (a *API) whoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, principal(r))
}

func (a *API) listBreakers(w http.ResponseWriter, r *http.Request) {
	out, err := a.breakers(r.Context())
	if err != nil {
		a.fail(w, r, "list breakers", err)
		return
	}
	writeJSON(w, http.StatusOK, api.Breakers{Breakers: out})
}

func sortBreakers(out []api.Breaker) {
	slices.SortFunc(out, func(x, y api.Breaker) int { return strings.Compare(string(x.Scope), string(y.Scope)) })
}

func (a *API) scope(w http.ResponseWriter, r *http.Request) (breaker.Scope, bool) {
	s, err := breaker.ParseScope(r.PathValue("scope"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return "", false
	}
	return s, true
}

func (a *API) getBreaker(w http.ResponseWriter, r *http.Request) {
	scope, ok := a.scope(w, r)
	if !ok {
		return
	}
	st, err := a.opts.Breakers.Status(r.Context(), scope)
	if err != nil {
		a.fail(w, r, "read breaker", err)
		return
	}
	writeJSON(w, http.StatusOK, a.view(r.Context(), scope, st))
}

func (a *API) override(w http.ResponseWriter, r *http.Request) {
	scope, ok := a.scope(w, r)
	if !ok {
		return
	}
	o, ok := body(a, w, r, parseOverride)
	if !ok {
		return
	}
	by := actor{name: principal(r).Name}
	res, err := a.applyOverride(r.Context(), scope, o, by, true)
	var need *needsApproval
	if errors.As(err, &need) {
		a.gate(w, r, pending{
			op: api.OpOverride, target: string(scope), payload: o.payload(), role: config.RoleOperator,
			summary: fmt.Sprintf("set breaker %s to %s while it holds (%s)", scope, o.state, need.state),
			scope:   scope, breakGlass: o.breakGlass,
		})
		return
	}
	a.answer(w, r, res, err)
}

// needsApproval is a change refused because the breaker holds: forcing it
// closed or into shadow, or resetting it in a scope without probation,
// needs a second person.
type needsApproval struct {
	state breaker.State
	what  string
}

func (n *needsApproval) Error() string {
	return "the breaker holds (" + string(n.state) + "): " + n.what + " needs a second person's approval"
}

// applyOverride sets the manual state o on scope. With check, an override
// that loosens a breaker that holds is refused with *needsApproval,
// decided in the same atomic update as the override itself.
func (a *API) applyOverride(ctx context.Context, scope breaker.Scope, o override, by actor, check bool) (api.ChangeResponse, error) {
	return a.change(ctx, scope, audit.KindOverride, o.reason, by, func(s breaker.Status, now time.Time) (breaker.Status, error) {
		if check && s.Holds() && (o.state == breaker.ForcedClosed || o.state == breaker.Shadow) {
			return s, &needsApproval{state: s.State, what: "forcing it closed or into shadow"}
		}
		var until time.Time
		if o.dur > 0 {
			until = now.Add(o.dur)
		}
		return breaker.Override(s, o.state, by.name, o.reason, until, now)
	})
}

func (a *API) reset(w http.ResponseWriter, r *http.Request) {
	scope, ok := a.scope(w, r)
	if !ok {
		return
	}
	req, ok := body(a, w, r, parseReset)
	if !ok {
		return
	}
	if req.Probation != "" {
		writeError(w, http.StatusBadRequest, "field \"probation\": the server fills in the scope's probation; leave it out")
		return
	}
	probation := a.policy(scope).Probation
	res, err := a.applyReset(r.Context(), scope, req.Reason, probation, actor{name: principal(r).Name}, true)
	var need *needsApproval
	if errors.As(err, &need) {
		payload, _ := json.Marshal(api.ResetRequest{Reason: req.Reason, Probation: probation.String()})
		a.gate(w, r, pending{
			op: api.OpReset, target: string(scope), payload: payload, role: config.RoleOperator,
			summary: resetSummary(scope, need.state),
			scope:   scope, breakGlass: req.BreakGlass,
		})
		return
	}
	a.answer(w, r, res, err)
}

// resetSummary describes a reset that needs approval.
func resetSummary(scope breaker.Scope, state breaker.State) string {
	s := fmt.Sprintf("reset breaker %s while it holds", scope)
	if state != "" {
		s += " (" + string(state) + ")"
	}
	return s + ", closing it outright: its scope has no probation"
}

// applyReset resets scope, into probation when the scope has one. The
// reset of a breaker that holds in a scope without probation closes it
// outright, as forcing it closed would: with check it is refused with
// *needsApproval, decided in the same atomic update as the reset itself.
// probation is the scope's probation the reset was asked (and approved)
// under; if the configuration now says otherwise, the reset is refused
// with 409 rather than applied on terms nobody approved.
func (a *API) applyReset(ctx context.Context, scope breaker.Scope, reason string, probation time.Duration, by actor, check bool) (api.ChangeResponse, error) {
	p := a.policy(scope)
	if p.Probation != probation {
		return api.ChangeResponse{}, &failure{code: http.StatusConflict, err: fmt.Errorf(
			"the scope's probation is %s now, the reset was asked under %s: reset it again", p.Probation, probation)}
	}
	return a.change(ctx, scope, audit.KindReset, reason, by, func(s breaker.Status, now time.Time) (breaker.Status, error) {
		if check && p.Probation <= 0 && s.Holds() {
			return s, &needsApproval{state: s.State, what: "resetting it in a scope without probation closes it outright, which"}
		}
		return breaker.Reset(p, s, by.name, reason, now), nil
	})
}

// actor is who makes a change: the person acting, and when the change
// applies an approval request, the request and who approved it, or that
// it was applied without a second person.
type actor struct {
	name       string
	approval   string
	approver   string
	breakGlass bool
}

// failure is an error with the answer it gets: a status code other than
// 503, or 503 with what failed (see API.fail).
type failure struct {
	code int
	what string
	err  error
}

func (f *failure) Error() string { return f.what + ": " + f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// answer writes res, or the answer of err.
func (a *API) answer(w http.ResponseWriter, r *http.Request, res any, err error) {
	var f *failure
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
	case errors.As(err, &f) && f.code != http.StatusServiceUnavailable:
		writeError(w, f.code, f.err.Error())
	case errors.As(err, &f):
		a.fail(w, r, f.what, f.err)
	default:
		a.fail(w, r, "apply the change", err)
	}
}

// change applies fn to the breaker in the shared store, restoring the store
// first if it lost its state, then records the transition on the state
// topic and in the audit trail. An error of fn is returned as it is.
func (a *API) change(ctx context.Context, scope breaker.Scope, kind, reason string, by actor, fn func(breaker.Status, time.Time) (breaker.Status, error)) (api.ChangeResponse, error) {
	var t breaker.Transition
	var err error
	for attempt := 0; ; attempt++ {
		t, err = a.opts.Breakers.Update(ctx, scope, fn)
		if !errors.Is(err, store.ErrStateLost) || attempt == 2 {
			break
		}
		if rerr := a.opts.Restore(ctx); rerr != nil {
			err = fmt.Errorf("%w; restore: %w", err, rerr)
			break
		}
	}
	var need *needsApproval
	switch {
	case errors.As(err, &need):
		return api.ChangeResponse{}, err
	case errors.Is(err, breaker.ErrInvalidState):
		return api.ChangeResponse{}, &failure{code: http.StatusConflict, err: err}
	case err != nil:
		return api.ChangeResponse{}, &failure{code: http.StatusServiceUnavailable, what: "update breaker", err: err}
	}
	if err := a.opts.States.Record(ctx, t.To.Since, []breaker.Transition{t}); err != nil {
		return api.ChangeResponse{}, &failure{code: http.StatusServiceUnavailable, what: "the change is applied but not yet in the state topic; repeat the request", err: err}
	}
	if a.opts.Alerts != nil {
		// The change stands whether or not on-call hears of it: a failure
		// is logged, not answered as an error that would invite a repeat.
		if err := a.opts.Alerts.Raise(ctx, []breaker.Transition{t}, nil); err != nil {
			a.opts.Logger.Error("raise the alert of an operator change", zap.String("scope", string(scope)), zap.Error(err))
		}
	}
	from, to := t.From, t.To
	if err := a.opts.Audit.Write(ctx, audit.Entry{AuditEntry: api.AuditEntry{
		ID: audit.TransitionID(scope, t.To.Generation), At: t.To.Since, Actor: by.name, Kind: kind, Scope: scope, Reason: reason, From: &from, To: &to,
		Approval: by.approval, Approver: by.approver, BreakGlass: by.breakGlass,
	}}); err != nil {
		return api.ChangeResponse{}, &failure{code: http.StatusServiceUnavailable, what: "the change is applied but the audit trail failed", err: err}
	}
	a.opts.Logger.Info("breaker changed by an operator",
		zap.String("actor", by.name), zap.String("kind", kind), zap.String("scope", string(scope)),
		zap.String("from", string(t.From.State)), zap.String("to", string(t.To.State)),
		zap.Uint64("generation", t.To.Generation), zap.String("reason", reason),
		zap.String("approval", by.approval), zap.String("approver", by.approver), zap.Bool("break_glass", by.breakGlass))
	return api.ChangeResponse{Breaker: a.view(ctx, scope, t.To), From: t.From}, nil
}

// The audit query limits.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

func (a *API) queryAudit(w http.ResponseWriter, r *http.Request) {
	q := audit.Query{Limit: defaultAuditLimit}
	v := r.URL.Query()
	for key := range v {
		switch key {
		case "scope", "since", "until", "actor", "kind", "incident", "limit":
		default:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q; want scope, since, until, actor, kind, incident or limit", key))
			return
		}
	}
	q.Actor, q.Kind, q.Incident = v.Get("actor"), v.Get("kind"), v.Get("incident")
	if s := v.Get("until"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("until: want an RFC 3339 time, got %q", s))
			return
		}
		q.Until = t
	}
	if s := v.Get("scope"); s != "" {
		scope, err := breaker.ParseScope(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "scope: "+err.Error())
			return
		}
		q.Scope = scope
	}
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			d, derr := time.ParseDuration(s)
			if derr != nil || d <= 0 {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("since: want an RFC 3339 time or a positive duration such as 1h, got %q", s))
				return
			}
			t = time.Now().Add(-d)
		}
		q.Since = t
	}
	limit, err := queryLimit(v, q.Limit, maxAuditLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q.Limit = limit
	es, err := a.opts.Audit.Query(r.Context(), q)
	if err != nil {
		a.fail(w, r, "query the audit trail", err)
		return
	}
	// The count says how many actions a decision covered; the ids are for
	// rebuilding the review index and stay off the wire.
	out := api.Audit{Entries: make([]api.AuditEntry, len(es))}
	for i, e := range es {
		out.Entries[i] = e.AuditEntry
	}
	writeJSON(w, http.StatusOK, out)
}

// fail answers 503 for a dependency that failed, and logs it. A store that
// lost its data answers 503 "restoring" with Retry-After until the states
// are restored from the state topic: a tripped breaker is never shown as
// closed.
func (a *API) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, store.ErrStateLost) {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, what+": restoring the breaker states after the rate store lost its data; retry shortly")
		return
	}
	a.opts.Logger.Warn("admin request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path),
		zap.String("actor", principal(r).Name), zap.String("what", what), zap.Error(err))
	writeError(w, http.StatusServiceUnavailable, what+": "+err.Error())
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, api.Error{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/breakwater/breakwater/alert"
	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/approval"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/admintest"
	"github.com/breakwater/breakwater/internal/redisconn"
	"github.com/breakwater/breakwater/internal/testbed"
)

// The second person of each role the approval tests need.
const (
	operator2 = "tok-operator-2-0123456789"
	reviewer2 = "tok-reviewer-2-0123456789"
)

// withSeconds returns cfg with a second operator and a second reviewer.
func withSeconds(cfg config.Config) config.Config {
	cfg.Admin.Tokens = append(cfg.Admin.Tokens,
		config.Token{Name: "second-operator", Role: config.RoleOperator, SHA256: config.HashToken(operator2)},
		config.Token{Name: "second-reviewer", Role: config.RoleReviewer, SHA256: config.HashToken(reviewer2)})
	return cfg
}

// pages is an alert webhook that keeps the events it was sent.
type pages struct {
	srv *httptest.Server
	mu  sync.Mutex // guards events
	evs []alert.Event
}

const pagesSecret = "approval-test-secret"

func newPages(t *testing.T) *pages {
	p := &pages{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !alert.Verify([]byte(pagesSecret), body, r.Header.Get(alert.SignatureHeader)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m alert.WebhookPayload
		if err := json.Unmarshal(body, &m); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		p.evs = append(p.evs, m.Events...)
		p.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *pages) yaml() string {
	return fmt.Sprintf("alerts:\n  group_window: 200ms\n  claim_idle: 1s\n  retry: {initial: 100ms, max: 500ms, give_up_after: 1m}\n"+
		"  receivers:\n    - {name: oncall, type: webhook, url: %s, secret: %s}\n", p.srv.URL, pagesSecret)
}

func (p *pages) find(kind alert.Kind) (alert.Event, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.evs {
		if e.Kind == kind {
			return e, true
		}
	}
	return alert.Event{}, false
}

// waitBreakGlass waits up to 30s for a break-glass page whose summary
// contains reason, and returns it.
func (p *pages) waitBreakGlass(t *testing.T, reason string) alert.Event {
	t.Helper()
	var e alert.Event
	admintest.WaitFor(t, 30*time.Second, func() string { return "no break-glass page naming " + strconv.Quote(reason) }, func() bool {
		var ok bool
		e, ok = p.find(alert.KindBreakGlass)
		return ok && strings.Contains(e.Summary, reason)
	})
	return e
}

// breakGlassKinds returns the kinds of the newest limit audit entries
// flagged break-glass, of approval request id when it is not empty.
func breakGlassKinds(t *testing.T, base string, limit int, id string) map[string]bool {
	t.Helper()
	flagged := map[string]bool{}
	for _, e := range auditEntries(t, base, "?limit="+strconv.Itoa(limit)) {
		if e.BreakGlass && (id == "" || e.Approval == id) {
			flagged[e.Kind] = true
		}
	}
	return flagged
}

// approve approves request ap with token, naming sum.
func approve(t *testing.T, base, token string, ap api.Approval, sum string, out any) int {
	t.Helper()
	return call(t, base, "POST", "/v1/approvals/"+ap.ID+"/approve", token, `{"payload_sha256":"`+sum+`"}`, out)
}

// TestApprovalOverride forces a breaker that holds into shadow and closed:
// each asks for a second operator, whose approval names the payload hash.
// The requester cannot approve, nor can a viewer or a reviewer; an edit
// voids an approval of the old payload; an expired or refused request is
// never applied; break-glass applies at once, pages on-call and is flagged
// in the audit trail; forcing open never asks.
func TestApprovalOverride(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	pg := newPages(t)
	cfg, err := config.Parse([]byte(bed.YAML(1000) + pg.yaml()))
	if err != nil {
		t.Fatal(err)
	}
	d := admintest.StartDaemon(t, withSeconds(cfg))
	op, vw, rv := tok(config.RoleOperator), tok(config.RoleViewer), tok(config.RoleReviewer)
	path := "/v1/breakers/" + esc(ruleA) + "/override"

	// Tightening never asks.
	if code := call(t, d.URL, "POST", path, op, `{"state":"forced_open","reason":"kill switch"}`, nil); code != 200 {
		t.Fatalf("forced_open = %d; want 200", code)
	}
	var ap api.Approval
	if code := call(t, d.URL, "POST", path, op, `{"state":"shadow","reason":"watch only"}`, &ap); code != http.StatusAccepted {
		t.Fatalf("shadow while forced_open = %d; want 202", code)
	}
	if ap.Status != api.ApprovalPending || ap.Operation != api.OpOverride || ap.Target != string(ruleA) ||
		ap.Requester != admintest.Name(config.RoleOperator) || ap.Role != config.RoleOperator || len(ap.PayloadSHA256) != 64 {
		t.Fatalf("request = %+v", ap)
	}
	if got := getBreaker(t, d.URL, ruleA); got.State != breaker.ForcedOpen {
		t.Fatalf("breaker after the request = %s; want forced_open until approved", got.State)
	}
	var list api.Approvals
	if code := call(t, d.URL, "GET", "/v1/approvals?status=pending", vw, "", &list); code != 200 || len(list.Approvals) != 1 || list.Approvals[0].ID != ap.ID || list.Approvals[0].Payload != nil {
		t.Fatalf("pending approvals = %d %+v; want the request without its payload", code, list)
	}

	// Nobody but a second operator approves.
	for _, c := range []struct {
		name, token string
		want        int
	}{
		{"the requester", op, http.StatusForbidden},
		{"a viewer", vw, http.StatusForbidden},
		{"a reviewer", rv, http.StatusForbidden},
		{"a second operator naming another hash", operator2, http.StatusConflict},
	} {
		sum := ap.PayloadSHA256
		if c.token == operator2 {
			sum = strings.Repeat("0", 64)
		}
		if code := approve(t, d.URL, c.token, ap, sum, nil); code != c.want {
			t.Errorf("approval by %s = %d; want %d", c.name, code, c.want)
		}
	}

	// An edit voids what was approved of the old payload.
	var edited api.Approval
	if code := call(t, d.URL, "PUT", "/v1/approvals/"+ap.ID, operator2, `{"payload":{"state":"shadow","reason":"x"}}`, nil); code != http.StatusForbidden {
		t.Errorf("edit by another operator = %d; want 403", code)
	}
	if code := call(t, d.URL, "PUT", "/v1/approvals/"+ap.ID, op, `{"payload":{"state":"shadow","reason":"watch only","for":"1h"}}`, &edited); code != 200 {
		t.Fatalf("edit = %d", code)
	}
	if edited.PayloadSHA256 == ap.PayloadSHA256 || edited.Edits != 1 || edited.Status != api.ApprovalPending {
		t.Fatalf("edited request = %+v; want a new hash, one edit, pending", edited)
	}
	if code := approve(t, d.URL, operator2, ap, ap.PayloadSHA256, nil); code != http.StatusConflict {
		t.Fatalf("approval of the old payload = %d; want 409", code)
	}
	if got := getBreaker(t, d.URL, ruleA); got.State != breaker.ForcedOpen {
		t.Fatalf("breaker after a stale approval = %s; want forced_open", got.State)
	}
	var done api.Approval
	if code := approve(t, d.URL, operator2, edited, edited.PayloadSHA256, &done); code != 200 {
		t.Fatalf("approval by a second operator = %d", code)
	}
	got := getBreaker(t, d.URL, ruleA)
	if done.Status != api.ApprovalApplied || done.DecidedBy != "second-operator" || got.State != breaker.Shadow ||
		got.Actor != admintest.Name(config.RoleOperator) || got.Until.IsZero() {
		t.Fatalf("after the approval: request %+v, breaker %+v; want applied, shadow for 1h set by the requester", done, got.Status)
	}
	if code := approve(t, d.URL, operator2, edited, edited.PayloadSHA256, nil); code != http.StatusConflict {
		t.Errorf("a second approval of an applied request = %d; want 409", code)
	}
	es := auditEntries(t, d.URL, "?limit=50")
	kinds := map[string]audit.Entry{}
	for _, e := range es {
		if e.Approval == ap.ID {
			kinds[e.Kind] = audit.Entry{AuditEntry: api.AuditEntry{Actor: e.Actor, Approver: e.Approver}}
		}
	}
	for kind, actor := range map[string]string{
		audit.KindApprovalRequest: admintest.Name(config.RoleOperator), audit.KindApprovalEdit: admintest.Name(config.RoleOperator),
		audit.KindApprovalApprove: "second-operator", audit.KindOverride: admintest.Name(config.RoleOperator),
	} {
		if e, ok := kinds[kind]; !ok || e.Actor != actor {
			t.Errorf("audit entry %s of the request = %+v (found %v); want actor %s", kind, e, ok, actor)
		}
	}
	if e := kinds[audit.KindOverride]; e.Approver != "second-operator" {
		t.Errorf("the override's audit entry names approver %q; want second-operator", e.Approver)
	}

	// An expired request cannot be approved.
	rc, err := redisconn.New(cfg.Redis, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	st, err := approval.NewStore(rc, cfg.Redis.KeyPrefix, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour).UTC()
	payload := []byte(`{"state":"forced_closed","reason":"old"}`)
	stale := api.Approval{
		ID: "expired-request", Operation: api.OpOverride, Target: string(ruleA), Payload: payload,
		PayloadSHA256: approval.Hash(api.OpOverride, string(ruleA), payload), Summary: "old", Requester: admintest.Name(config.RoleOperator),
		Role: config.RoleOperator, RequestedAt: old, ExpiresAt: old.Add(time.Hour), Status: api.ApprovalPending,
	}
	if err := st.Create(context.Background(), stale); err != nil {
		t.Fatal(err)
	}
	if code := approve(t, d.URL, operator2, stale, stale.PayloadSHA256, nil); code != http.StatusConflict {
		t.Errorf("approval of an expired request = %d; want 409", code)
	}
	var shown api.Approval
	if call(t, d.URL, "GET", "/v1/approvals/expired-request", vw, "", &shown); shown.Status != api.ApprovalExpired {
		t.Errorf("expired request shows status %q; want expired", shown.Status)
	}

	// A refused request is never applied.
	if code := call(t, d.URL, "POST", path, op, `{"state":"forced_open","reason":"again"}`, nil); code != 200 {
		t.Fatalf("forced_open = %d", code)
	}
	var closeReq api.Approval
	if code := call(t, d.URL, "POST", path, op, `{"state":"forced_closed","reason":"false alarm"}`, &closeReq); code != http.StatusAccepted {
		t.Fatalf("forced_closed while forced_open = %d; want 202", code)
	}
	if code := call(t, d.URL, "POST", "/v1/approvals/"+closeReq.ID+"/refuse", rv, `{"reason":"no"}`, nil); code != http.StatusForbidden {
		t.Errorf("refusal by a reviewer = %d; want 403", code)
	}
	if code := call(t, d.URL, "POST", "/v1/approvals/"+closeReq.ID+"/refuse", operator2, `{"reason":"it is not a false alarm"}`, nil); code != 200 {
		t.Fatalf("refusal by a second operator = %d", code)
	}
	if code := approve(t, d.URL, operator2, closeReq, closeReq.PayloadSHA256, nil); code != http.StatusConflict {
		t.Errorf("approval of a refused request = %d; want 409", code)
	}
	if got := getBreaker(t, d.URL, ruleA); got.State != breaker.ForcedOpen {
		t.Fatalf("breaker after the refusal = %s; want forced_open", got.State)
	}

	// Break-glass: applied at once, paged, flagged.
	var ch api.ChangeResponse
	body := `{"state":"forced_closed","reason":"false alarm","break_glass":"sev-1 bridge, no second operator reachable"}`
	if code := call(t, d.URL, "POST", path, op, body, &ch); code != 200 || ch.Breaker.State != breaker.ForcedClosed {
		t.Fatalf("break-glass forced_closed = %d %+v; want 200 forced_closed", code, ch.Breaker.Status)
	}
	if e := pg.waitBreakGlass(t, "sev-1 bridge"); e.Severity != alert.SeverityCritical || e.Scope != ruleA {
		t.Errorf("break-glass page = %+v", e)
	}
	if flagged := breakGlassKinds(t, d.URL, 50, ""); !flagged[audit.KindBreakGlass] || !flagged[audit.KindOverride] {
		t.Errorf("audit entries flagged break-glass: %v; want break_glass and override", flagged)
	}
	if code := call(t, d.URL, "GET", "/v1/approvals?status=break_glass", vw, "", &list); code != 200 || len(list.Approvals) != 1 ||
		list.Approvals[0].Reason != "sev-1 bridge, no second operator reachable" {
		t.Errorf("break-glass requests = %+v", list)
	}
}

// TestApprovalRelease approves more held actions than
// approval.release_above at once: a second reviewer approves the request,
// which names every action id, and exactly those are released; the
// requester and a viewer cannot approve, and break-glass is refused when
// nobody can be paged.
func TestApprovalRelease(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	cfg := bed.Config(t, 10)
	cfg.Approval.ReleaseAbove = 5
	d := admintest.StartDaemon(t, withSeconds(cfg))
	rv, vw := tok(config.RoleReviewer), tok(config.RoleViewer)
	now := time.Now()
	var recs []testbed.Record
	for i := range 40 {
		recs = append(recs, admintest.Event(fmt.Sprintf("a-%03d", i), "rule-a", "remove_pin", fmt.Sprintf("t-%d", i), now))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, recs...)
	var inc api.Incident
	deadline := time.Now().Add(30 * time.Second)
	for {
		var l struct{ Incidents []api.Incident }
		call(t, d.URL, "GET", "/v1/incidents", vw, "", &l)
		held := len(bed.Kafka.ReadAll(t, admintest.Topics.Held, 10*time.Second))
		if len(l.Incidents) == 1 && held > 10 && l.Incidents[0].Held == int64(held) {
			inc = l.Incidents[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incidents = %+v; want one with every held action", l.Incidents)
		}
		time.Sleep(100 * time.Millisecond)
	}
	incPath := "/v1/incidents/" + url.PathEscape(inc.ID)
	var page api.HeldPage
	call(t, d.URL, "GET", "/v1/held?limit=9&incident="+url.QueryEscape(inc.ID), vw, "", &page)
	ids := make([]string, len(page.Items))
	for i, h := range page.Items {
		ids[i] = h.ActionID
	}
	// Rejecting never asks, however many; approving up to release_above
	// does not either.
	rej, _ := json.Marshal(api.DecideRequest{IDs: ids[:6]})
	var out api.DecideResponse
	if code := call(t, d.URL, "POST", "/v1/held/reject", rv, string(rej), &out); code != 200 || out.Changed != 6 {
		t.Fatalf("reject 6 (more than release_above) = %d %+v; want 200, 6 changed", code, out)
	}
	few, _ := json.Marshal(api.DecideRequest{IDs: ids[6:9]})
	if code := call(t, d.URL, "POST", "/v1/held/approve", rv, string(few), &out); code != 200 || out.Changed != 3 {
		t.Fatalf("approve 3 (release_above) = %d %+v; want 200, 3 changed", code, out)
	}
	if code := call(t, d.URL, "POST", incPath+"/approve", rv, `{"break_glass":"cannot wait"}`, nil); code != http.StatusConflict {
		t.Errorf("break-glass without an alert receiver = %d; want 409", code)
	}
	var ap api.Approval
	want := int(inc.Held) - 9
	if code := call(t, d.URL, "POST", incPath+"/approve", rv, `{"reason":"the rule was right"}`, &ap); code != http.StatusAccepted ||
		ap.Count != want || ap.Operation != api.OpRelease || ap.Target != inc.ID || ap.Role != config.RoleReviewer {
		t.Fatalf("approve the incident = %d %+v; want 202, a release of %d", code, ap, want)
	}
	var full api.Approval
	call(t, d.URL, "GET", "/v1/approvals/"+ap.ID, vw, "", &full)
	var payload api.DecideRequest
	if err := json.Unmarshal(full.Payload, &payload); err != nil || len(payload.IDs) != want || payload.Reason != "the rule was right" {
		t.Fatalf("the request's payload = %s (%v); want the %d pending ids", full.Payload, err, want)
	}
	for _, c := range []struct {
		name, token string
	}{{"the requester", rv}, {"a viewer", vw}} {
		if code := approve(t, d.URL, c.token, ap, ap.PayloadSHA256, nil); code != http.StatusForbidden {
			t.Errorf("approval by %s = %d; want 403", c.name, code)
		}
	}
	var one api.Incident
	if call(t, d.URL, "GET", incPath, vw, "", &one); one.Pending != int64(want) {
		t.Fatalf("incident before the approval = %+v; want %d pending", one, want)
	}
	var done api.Approval
	if code := approve(t, d.URL, reviewer2, ap, ap.PayloadSHA256, &done); code != 200 || done.Status != api.ApprovalApplied {
		t.Fatalf("approval by a second reviewer = %d %+v", code, done)
	}
	if err := json.Unmarshal(done.Result, &out); err != nil || out.Changed != want {
		t.Fatalf("the approval's result = %s (%v); want %d changed", done.Result, err, want)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		call(t, d.URL, "GET", incPath, vw, "", &one)
		if one.Written == one.Held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incident %+v: not all released within 30s", one)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if one.Approved != int64(want+3) || one.Rejected != 6 || one.Pending != 0 {
		t.Errorf("incident after the approval = %+v; want %d approved, 6 rejected", one, want+3)
	}
	var approvedBy []string
	for _, e := range auditEntries(t, d.URL, "?kind=approve") {
		if e.Approval == ap.ID {
			approvedBy = append(approvedBy, e.Actor+"/"+e.Approver)
		}
	}
	if len(approvedBy) != 1 || approvedBy[0] != admintest.Name(config.RoleReviewer)+"/second-reviewer" {
		t.Errorf("approve entries of the request: %v; want one by %s approved by second-reviewer", approvedBy, admintest.Name(config.RoleReviewer))
	}
}

// TestApprovalReset resets breakers of a scope without probation: the
// reset of a breaker that holds would close it outright, as forcing it
// closed would, so an operator's reset answers 202 with a request naming
// the scope, the reason and the probation in effect, and changes nothing;
// the requester, a viewer and a reviewer cannot approve it; a second
// operator's approval applies it as the requester. A reset of a breaker
// that does not hold, and a reset into probation, apply at once;
// break-glass applies at once, pages on-call and is flagged.
func TestApprovalReset(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	pg := newPages(t)
	cfg, err := config.Parse([]byte(bed.YAML(10) + pg.yaml()))
	if err != nil {
		t.Fatal(err)
	}
	// rule:rule-a has no probation; its ban_account breaker has 10m.
	// (The loader filled the rule's thresholds in from the defaults.)
	cfg.Breakers.Defaults.Probation = 0
	rule := cfg.Breakers.Rules["rule-a"]
	rule.Thresholds.Probation = 0
	ban := rule.Actions["ban_account"]
	ban.Probation = 10 * time.Minute
	rule.Actions["ban_account"] = ban
	cfg.Breakers.Rules["rule-a"] = rule
	d := admintest.StartDaemon(t, withSeconds(cfg))
	op, vw, rv := tok(config.RoleOperator), tok(config.RoleViewer), tok(config.RoleReviewer)
	requester := admintest.Name(config.RoleOperator)
	path := "/v1/breakers/" + esc(ruleA) + "/reset"

	// A breaker that does not hold resets at once.
	var ch api.ChangeResponse
	if code := call(t, d.URL, "POST", path, op, `{"reason":"nothing to hold"}`, &ch); code != 200 || ch.Breaker.State != breaker.Closed {
		t.Fatalf("reset of a closed breaker = %d %+v; want 200 closed", code, ch.Breaker.Status)
	}

	// Trip rule:rule-a: 40 actions over its max_actions of 10.
	now := time.Now()
	var recs []testbed.Record
	for i := range 40 {
		recs = append(recs, admintest.Event(fmt.Sprintf("r-%03d", i), "rule-a", "remove_pin", fmt.Sprintf("t-%d", i), now))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, recs...)
	var before api.Breaker
	deadline := time.Now().Add(30 * time.Second)
	for {
		if before = getBreaker(t, d.URL, ruleA); before.State == breaker.Open {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %+v; want it tripped within 30s", ruleA, before.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The reset asks a second operator and changes nothing.
	if code := call(t, d.URL, "POST", path, op, `{"reason":"r","probation":"1h"}`, nil); code != http.StatusBadRequest {
		t.Errorf("reset naming its own probation = %d; want 400", code)
	}
	var ap api.Approval
	if code := call(t, d.URL, "POST", path, op, `{"reason":"false alarm, rule fixed"}`, &ap); code != http.StatusAccepted {
		t.Fatalf("reset of a tripped breaker without probation = %d; want 202", code)
	}
	if ap.Status != api.ApprovalPending || ap.Operation != api.OpReset || ap.Target != string(ruleA) ||
		ap.Requester != requester || ap.Role != config.RoleOperator || !strings.Contains(ap.Summary, "closing it outright") {
		t.Fatalf("request = %+v", ap)
	}
	var full api.Approval
	if code := call(t, d.URL, "GET", "/v1/approvals/"+ap.ID, vw, "", &full); code != 200 {
		t.Fatalf("GET the request = %d", code)
	}
	var payload api.ResetRequest
	want := api.ResetRequest{Reason: "false alarm, rule fixed", Probation: "0s"}
	canonical, _ := json.Marshal(want)
	if err := json.Unmarshal(full.Payload, &payload); err != nil || payload != want ||
		full.PayloadSHA256 != approval.Hash(api.OpReset, string(ruleA), canonical) {
		t.Fatalf("the request's payload = %s (%v), hash %s; want the reason and probation 0s, hashed", full.Payload, err, full.PayloadSHA256)
	}
	if got := getBreaker(t, d.URL, ruleA); got.State != breaker.Open || got.Generation != before.Generation {
		t.Fatalf("breaker after the request = %s generation %d; want open generation %d until approved", got.State, got.Generation, before.Generation)
	}
	for _, c := range []struct{ name, token string }{{"the requester", op}, {"a viewer", vw}, {"a reviewer", rv}} {
		if code := approve(t, d.URL, c.token, ap, ap.PayloadSHA256, nil); code != http.StatusForbidden {
			t.Errorf("approval by %s = %d; want 403", c.name, code)
		}
	}
	if got := getBreaker(t, d.URL, ruleA); got.State != breaker.Open || got.Generation != before.Generation {
		t.Fatalf("breaker after refused approvals = %s generation %d; want open generation %d", got.State, got.Generation, before.Generation)
	}

	// A second operator's approval applies it, as the requester.
	var done api.Approval
	if code := approve(t, d.URL, operator2, ap, ap.PayloadSHA256, &done); code != 200 || done.Status != api.ApprovalApplied || done.DecidedBy != "second-operator" {
		t.Fatalf("approval by a second operator = %d %+v; want 200 applied", code, done)
	}
	if err := json.Unmarshal(done.Result, &ch); err != nil || ch.From.State != breaker.Open || ch.Breaker.State != breaker.Closed ||
		ch.Breaker.Auto != breaker.Closed || ch.Breaker.Actor != requester || ch.Breaker.Generation <= before.Generation {
		t.Fatalf("the approval's result = %s (%v); want open -> closed by %s", done.Result, err, requester)
	}
	kinds := map[string]api.AuditEntry{}
	for _, e := range auditEntries(t, d.URL, "?limit=100") {
		if e.Approval == ap.ID {
			kinds[e.Kind] = e
		}
	}
	for kind, actor := range map[string]string{
		audit.KindApprovalRequest: requester, audit.KindApprovalApprove: "second-operator", audit.KindReset: requester,
	} {
		if e, ok := kinds[kind]; !ok || e.Actor != actor || e.Scope != ruleA {
			t.Errorf("audit entry %s of the request = %+v (found %v); want actor %s on %s", kind, e, ok, actor, ruleA)
		}
	}
	if e := kinds[audit.KindReset]; e.Approver != "second-operator" || e.To == nil || e.To.State != breaker.Closed {
		t.Errorf("the reset's audit entry = %+v; want approver second-operator, to closed", e)
	}

	// A request asked under another probation than the scope's is not
	// applied: nobody approved a reset on the terms it would have now.
	rc, err := redisconn.New(cfg.Redis, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	st, err := approval.NewStore(rc, cfg.Redis.KeyPrefix, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := json.Marshal(api.ResetRequest{Reason: "asked under 1h", Probation: "1h0m0s"})
	at := time.Now().UTC()
	odd := api.Approval{
		ID: "other-probation", Operation: api.OpReset, Target: string(ruleA), Payload: other,
		PayloadSHA256: approval.Hash(api.OpReset, string(ruleA), other), Summary: "reset", Requester: requester,
		Role: config.RoleOperator, RequestedAt: at, ExpiresAt: at.Add(time.Hour), Status: api.ApprovalPending,
	}
	if err := st.Create(context.Background(), odd); err != nil {
		t.Fatal(err)
	}
	if code := approve(t, d.URL, operator2, odd, odd.PayloadSHA256, nil); code != http.StatusConflict {
		t.Errorf("approval of a reset asked under another probation = %d; want 409", code)
	}
	for _, e := range auditEntries(t, d.URL, "?kind=reset&limit=100") {
		if e.Approval == odd.ID {
			t.Errorf("a reset asked under another probation was applied: %+v", e)
		}
	}

	// Break-glass: applied at once, paged, flagged.
	if code := call(t, d.URL, "POST", "/v1/breakers/"+esc(ruleA)+"/override", op, `{"state":"forced_open","reason":"hold again"}`, nil); code != 200 {
		t.Fatalf("forced_open = %d", code)
	}
	body := `{"reason":"false alarm","break_glass":"sev-1 bridge, no second operator reachable"}`
	if code := call(t, d.URL, "POST", path, op, body, &ch); code != 200 || ch.From.State != breaker.ForcedOpen || ch.Breaker.State != breaker.Closed {
		t.Fatalf("break-glass reset = %d %+v; want 200 forced_open -> closed", code, ch)
	}
	if e := pg.waitBreakGlass(t, "sev-1 bridge"); e.Severity != alert.SeverityCritical || e.Scope != ruleA {
		t.Errorf("break-glass page = %+v", e)
	}
	if flagged := breakGlassKinds(t, d.URL, 100, ""); !flagged[audit.KindBreakGlass] || !flagged[audit.KindReset] {
		t.Errorf("audit entries flagged break-glass: %v; want break_glass and reset", flagged)
	}

	// A scope with probation resets into it at once, while it holds.
	banScope := breaker.ActionScope("rule-a", "ban_account")
	banPath := "/v1/breakers/" + esc(banScope)
	if code := call(t, d.URL, "POST", banPath+"/override", op, `{"state":"forced_open","reason":"hold"}`, nil); code != 200 {
		t.Fatalf("forced_open of %s = %d", banScope, code)
	}
	if code := call(t, d.URL, "POST", banPath+"/reset", op, `{"reason":"all clear"}`, &ch); code != 200 ||
		ch.Breaker.State != breaker.Probation || ch.Breaker.Actor != requester || ch.Breaker.ProbationUntil.IsZero() {
		t.Fatalf("reset of %s with probation 10m = %d %+v; want 200 probation at once", banScope, code, ch.Breaker.Status)
	}
	var pendingList api.Approvals
	if code := call(t, d.URL, "GET", "/v1/approvals?status=pending", vw, "", &pendingList); code != 200 || len(pendingList.Approvals) != 0 {
		t.Errorf("pending requests = %d %+v; want none", code, pendingList.Approvals)
	}
}

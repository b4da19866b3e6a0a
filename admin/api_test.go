package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/admintest"
	"github.com/breakwater/breakwater/internal/testbed"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// call sends one request with token (none when empty) and decodes the JSON
// answer into out when it is not nil.
func call(t *testing.T, base, method, path, token, body string, out any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q; want application/json (body %s)", method, path, ct, data)
	}
	if resp.StatusCode >= 400 {
		var e api.Error
		if err := json.Unmarshal(data, &e); err != nil || e.Error == "" {
			t.Errorf("%s %s = %d %s; want a JSON {\"error\": ...} body", method, path, resp.StatusCode, data)
		}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s = %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

func tok(r config.Role) string { return admintest.Tokens[r] }

var ruleA = breaker.RuleScope("rule-a")

func esc(s breaker.Scope) string { return url.PathEscape(string(s)) }

func getBreaker(t *testing.T, base string, s breaker.Scope) api.Breaker {
	t.Helper()
	var b api.Breaker
	if code := call(t, base, "GET", "/v1/breakers/"+esc(s), tok(config.RoleViewer), "", &b); code != 200 {
		t.Fatalf("GET breaker %s = %d", s, code)
	}
	return b
}

func auditEntries(t *testing.T, base, query string) []api.AuditEntry {
	t.Helper()
	var out struct{ Entries []api.AuditEntry }
	if code := call(t, base, "GET", "/v1/audit"+query, tok(config.RoleViewer), "", &out); code != 200 {
		t.Fatalf("GET /v1/audit%s = %d", query, code)
	}
	return out.Entries
}

// TestRoles calls every endpoint with every role, no token and a wrong
// token: 401 and 403 change nothing.
func TestRoles(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	d := admintest.StartDaemon(t, bed.Config(t, 1000))
	before := getBreaker(t, d.URL, ruleA)

	override := `{"state":"forced_open","reason":"roles test"}`
	reset := `{"reason":"roles test"}`
	type ep struct {
		method, path, body string
		need               config.Role
	}
	eps := []ep{
		{"GET", "/v1/whoami", "", config.RoleViewer},
		{"GET", "/v1/breakers", "", config.RoleViewer},
		{"GET", "/v1/breakers/" + esc(ruleA), "", config.RoleViewer},
		{"GET", "/v1/audit", "", config.RoleViewer},
		{"POST", "/v1/breakers/" + esc(ruleA) + "/override", override, config.RoleOperator},
		{"POST", "/v1/breakers/" + esc(ruleA) + "/reset", reset, config.RoleOperator},
		{"GET", "/v1/incidents", "", config.RoleViewer},
		{"GET", "/v1/held", "", config.RoleViewer},
		{"GET", "/v1/settings", "", config.RoleViewer},
		{"GET", "/v1/history", "", config.RoleViewer},
		{"POST", "/v1/held/approve", `{"ids":["x"]}`, config.RoleReviewer},
		{"POST", "/v1/held/reject", `{"ids":["x"]}`, config.RoleReviewer},
		{"POST", "/v1/incidents/" + url.PathEscape("rule:rule-a@1") + "/approve", `{}`, config.RoleReviewer},
		{"POST", "/v1/incidents/" + url.PathEscape("rule:rule-a@1") + "/reject", `{}`, config.RoleReviewer},
		{"POST", "/v1/incidents/" + url.PathEscape("rule:rule-a@1") + "/sample", `{"n":1}`, config.RoleReviewer},
		{"GET", "/v1/approvals", "", config.RoleViewer},
		{"PUT", "/v1/approvals/x", `{"payload":{}}`, config.RoleReviewer},
		{"POST", "/v1/approvals/x/approve", `{"payload_sha256":"` + strings.Repeat("0", 64) + `"}`, config.RoleReviewer},
		{"POST", "/v1/approvals/x/refuse", `{"reason":"no"}`, config.RoleReviewer},
		{"GET", "/v1/reversals", "", config.RoleViewer},
		{"POST", "/v1/incidents/" + url.PathEscape("rule:rule-a@1") + "/reversal", `{"reason":"r"}`, config.RoleOperator},
	}
	for _, e := range eps {
		for _, token := range []string{"", "not-a-token", tok(config.RoleAdmin) + "x"} {
			if code := call(t, d.URL, e.method, e.path, token, e.body, nil); code != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q = %d; want 401", e.method, e.path, token, code)
			}
		}
		for _, r := range config.Roles {
			if r.Allows(e.need) {
				continue
			}
			if code := call(t, d.URL, e.method, e.path, tok(r), e.body, nil); code != http.StatusForbidden {
				t.Errorf("%s %s as %s = %d; want 403", e.method, e.path, r, code)
			}
		}
	}
	if after := getBreaker(t, d.URL, ruleA); after.Generation != before.Generation || after.State != before.State {
		t.Errorf("after refused requests the breaker is %+v; want unchanged %+v", after.Status, before.Status)
	}
	if es := auditEntries(t, d.URL, ""); len(es) != 0 {
		t.Errorf("after refused requests the audit trail has %d entries; want none", len(es))
	}
	// Every role at or above the need is let in.
	for _, e := range eps {
		for _, r := range config.Roles {
			if !r.Allows(e.need) || e.method != "GET" {
				continue
			}
			if code := call(t, d.URL, e.method, e.path, tok(r), e.body, nil); code != 200 {
				t.Errorf("%s %s as %s = %d; want 200", e.method, e.path, r, code)
			}
		}
	}
	var who api.Principal
	call(t, d.URL, "GET", "/v1/whoami", tok(config.RoleReviewer), "", &who)
	if who.Name != admintest.Name(config.RoleReviewer) || who.Role != config.RoleReviewer {
		t.Errorf("whoami = %+v; want the reviewer", who)
	}
	if code := call(t, d.URL, "GET", "/v1/nothing", tok(config.RoleAdmin), "", nil); code != 404 {
		t.Errorf("GET /v1/nothing = %d; want 404", code)
	}
	if code := call(t, d.URL, "DELETE", "/v1/breakers/"+esc(ruleA), tok(config.RoleAdmin), "", nil); code != 405 {
		t.Errorf("DELETE a breaker = %d; want 405", code)
	}
}

// TestBadBodies sends bodies the API must refuse, with no side effect.
func TestBadBodies(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	d := admintest.StartDaemon(t, bed.Config(t, 1000))
	op := tok(config.RoleOperator)
	path := "/v1/breakers/" + esc(ruleA) + "/override"
	tests := []struct {
		name, path, body string
		want             int
		msg              string
	}{
		{"empty", path, "", 400, "empty"},
		{"not an object", path, `["forced_open"]`, 400, "JSON object"},
		{"unknown field", path, `{"state":"forced_open","reason":"r","force":true}`, 400, `unknown field "force"`},
		{"two values", path, `{"state":"forced_open","reason":"r"}{}`, 400, "one JSON value"},
		{"bad json", path, `{"state":`, 400, "invalid JSON"},
		{"wrong type", path, `{"state":"forced_open","reason":7}`, 400, `field "reason"`},
		{"no reason", path, `{"state":"forced_open"}`, 400, `field "reason": is required`},
		{"blank reason", path, `{"state":"forced_open","reason":"  "}`, 400, `field "reason": is required`},
		{"bad state", path, `{"state":"open","reason":"r"}`, 400, `field "state"`},
		{"bad for", path, `{"state":"shadow","reason":"r","for":"forever"}`, 400, `field "for"`},
		{"negative for", path, `{"state":"shadow","reason":"r","for":"-1h"}`, 400, `field "for"`},
		{"too large", path, `{"state":"shadow","reason":"` + strings.Repeat("x", 4000) + `"}`, 413, "too large"},
		{"reset unknown field", "/v1/breakers/" + esc(ruleA) + "/reset", `{"reason":"r","state":"closed"}`, 400, `unknown field "state"`},
		{"bad scope", "/v1/breakers/nope/override", `{"state":"shadow","reason":"r"}`, 404, "unknown scope"},
		{"no ids", "/v1/held/approve", `{"ids":[]}`, 400, `field "ids"`},
		{"empty id", "/v1/held/reject", `{"ids":["a",""]}`, 400, `field "ids"[1]`},
		{"ids not strings", "/v1/held/approve", `{"ids":[1]}`, 400, `field "ids`},
		{"sample zero", "/v1/incidents/x@1/sample", `{"n":0}`, 400, `field "n"`},
		{"sample unknown field", "/v1/incidents/x@1/sample", `{"n":1,"all":true}`, 400, `unknown field "all"`},
		{"unknown incident", "/v1/incidents/x@1/approve", `{}`, 404, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e api.Error
			code := call(t, d.URL, "POST", tt.path, op, tt.body, &e)
			if code != tt.want || !strings.Contains(e.Error, tt.msg) {
				t.Errorf("POST %s %q = %d %q; want %d and an error containing %q", tt.path, tt.body, code, e.Error, tt.want, tt.msg)
			}
		})
	}
	if b := getBreaker(t, d.URL, ruleA); b.State != breaker.Closed || b.Generation != 0 {
		t.Errorf("after refused bodies the breaker is %+v; want untouched", b.Status)
	}
	if es := auditEntries(t, d.URL, ""); len(es) != 0 {
		t.Errorf("after refused bodies the audit trail has %d entries; want none", len(es))
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?since=yesterday", "?scope=nope", "?colour=red"} {
		if code := call(t, d.URL, "GET", "/v1/audit"+q, op, "", nil); code != 400 {
			t.Errorf("GET /v1/audit%s = %d; want 400", q, code)
		}
	}
}

// TestOverrideAcrossReplicas forces a breaker open through replica A and
// checks that replica B shows it and holds the scope's actions within a
// second, that an expired override reverts, and that a reset goes to
// probation; each change is audited with its actor and reason.
func TestOverrideAcrossReplicas(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	cfg := bed.Config(t, 100000)
	a := admintest.StartDaemon(t, cfg)
	b := admintest.StartDaemon(t, cfg)
	op := tok(config.RoleOperator)

	var ch api.ChangeResponse
	if code := call(t, a.URL, "POST", "/v1/breakers/"+esc(ruleA)+"/override", op, `{"state":"forced_open","reason":"bad model","for":"3s"}`, &ch); code != 200 {
		t.Fatalf("override = %d", code)
	}
	set := time.Now()
	if ch.Breaker.State != breaker.ForcedOpen || ch.Breaker.Actor != admintest.Name(config.RoleOperator) || ch.Breaker.Reason != "bad model" || ch.Breaker.Until.IsZero() {
		t.Errorf("override answer = %+v; want forced_open by the operator with an expiry", ch.Breaker.Status)
	}
	got := getBreaker(t, b.URL, ruleA)
	if got.State != breaker.ForcedOpen || !got.Holds || got.Thresholds.MaxActions != 100000 {
		t.Errorf("replica B shows %+v; want forced_open with the configured thresholds", got)
	}

	// Actions of the rule produced now are held, whichever replica
	// consumes them; another rule's are forwarded.
	now := time.Now()
	var recs []testbed.Record
	for i := range 40 {
		recs = append(recs, admintest.Event(fmt.Sprintf("a-%d", i), "rule-a", "remove_pin", fmt.Sprintf("t-%d", i), now))
		recs = append(recs, admintest.Event(fmt.Sprintf("b-%d", i), "rule-b", "remove_pin", fmt.Sprintf("t-%d", i), now))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, recs...)
	if time.Since(set) > 2*time.Second {
		t.Skipf("the machine is too slow to check the 3s override before it expires")
	}
	held := waitCount(t, bed, admintest.Topics.Held, 40)
	gated := waitCount(t, bed, admintest.Topics.Gated, 40)
	for _, r := range held {
		if !strings.Contains(string(r.Value), `"rule-a"`) {
			t.Errorf("held %s; want only rule-a", r.Value)
		}
	}
	for _, r := range gated {
		if !strings.Contains(string(r.Value), `"rule-b"`) {
			t.Errorf("gated %s; want only rule-b", r.Value)
		}
	}

	// The override expires: both replicas show the automatic state again.
	time.Sleep(time.Until(ch.Breaker.Until) + 100*time.Millisecond)
	for _, u := range []string{a.URL, b.URL} {
		if got := getBreaker(t, u, ruleA); got.State != breaker.Closed || got.Holds {
			t.Errorf("after the expiry %s shows %+v; want closed", u, got.Status)
		}
	}

	// The pipeline expires it too: the scope's actions are forwarded again.
	var again []testbed.Record
	for i := range 10 {
		again = append(again, admintest.Event(fmt.Sprintf("again-%d", i), "rule-a", "remove_pin", fmt.Sprintf("t-%d", i), time.Now()))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, again...)
	waitCount(t, bed, admintest.Topics.Gated, 50)
	if n := len(bed.Kafka.ReadAll(t, admintest.Topics.Held, 10*time.Second)); n != 40 {
		t.Errorf("after the expiry %d actions are held; want still 40", n)
	}

	var rs api.ChangeResponse
	if code := call(t, b.URL, "POST", "/v1/breakers/"+esc(ruleA)+"/reset", tok(config.RoleAdmin), `{"reason":"all clear"}`, &rs); code != 200 {
		t.Fatalf("reset = %d", code)
	}
	if rs.Breaker.State != breaker.Probation || rs.Breaker.Actor != admintest.Name(config.RoleAdmin) {
		t.Errorf("reset answer = %+v; want probation by the admin", rs.Breaker.Status)
	}

	// The override, its expiry (an automatic transition, recorded by the
	// pipeline that saw it) and the reset.
	// The pipeline audits automatic transitions asynchronously.
	es := auditEntries(t, a.URL, "?scope="+url.QueryEscape(string(ruleA)))
	for wait := time.Now().Add(10 * time.Second); len(es) < 3 && time.Now().Before(wait); {
		time.Sleep(50 * time.Millisecond)
		es = auditEntries(t, a.URL, "?scope="+url.QueryEscape(string(ruleA)))
	}
	if len(es) != 3 {
		t.Fatalf("audit of %s = %+v; want the override, its expiry and the reset", ruleA, es)
	}
	if es[0].Kind != audit.KindReset || es[0].Actor != admintest.Name(config.RoleAdmin) || es[0].Reason != "all clear" || es[0].To.State != breaker.Probation {
		t.Errorf("newest entry = %+v; want the reset", es[0])
	}
	// (The pipeline reports this transition without its From status.)
	if es[1].Kind != audit.KindTransition || es[1].Actor != audit.System || es[1].To.State != breaker.Closed || es[1].To.Generation != 2 {
		t.Errorf("middle entry = %+v (from %+v to %+v); want the automatic expiry to closed", es[1], es[1].From, es[1].To)
	}
	if es[2].Kind != audit.KindOverride || es[2].Actor != admintest.Name(config.RoleOperator) || es[2].Reason != "bad model" ||
		es[2].From.State != breaker.Closed || es[2].To.State != breaker.ForcedOpen {
		t.Errorf("oldest entry = %+v; want the override from closed to forced_open", es[2])
	}
	if es := auditEntries(t, a.URL, "?limit=1"); len(es) != 1 || es[0].Kind != audit.KindReset {
		t.Errorf("audit ?limit=1 = %+v; want the reset", es)
	}
	if es := auditEntries(t, a.URL, "?since="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))); len(es) != 0 {
		t.Errorf("audit since an hour ahead = %+v; want none", es)
	}

	// Each replica lists the configured scopes and those it has seen;
	// together they have seen both rules counted. The counts come from the
	// shared store, at the scope's watermark, whichever replica answers.
	scopes := map[breaker.Scope]api.Breaker{}
	counted := map[breaker.Scope]bool{}
	for _, u := range []string{a.URL, b.URL} {
		var list struct{ Breakers []api.Breaker }
		call(t, u, "GET", "/v1/breakers", tok(config.RoleViewer), "", &list)
		for _, x := range list.Breakers {
			scopes[x.Scope] = x
			if x.Counts != nil && x.Counts.Window > 0 {
				counted[x.Scope] = true
				if x.Counts.EventTime.IsZero() {
					t.Errorf("%s lists %s with counts %+v; want them read from the shared store, with their event time", u, x.Scope, x.Counts)
				}
			}
		}
	}
	for _, s := range []breaker.Scope{breaker.Global, ruleA, breaker.ActionScope("rule-a", "ban_account"), breaker.RuleScope("rule-b")} {
		if _, ok := scopes[s]; !ok {
			t.Errorf("GET /v1/breakers lacks %s", s)
		}
	}
	if x := scopes[ruleA]; x.State != breaker.Probation || x.Actor != admintest.Name(config.RoleAdmin) {
		t.Errorf("GET /v1/breakers shows %s as %+v; want probation by the admin", ruleA, x.Status)
	}
	if !counted[breaker.RuleScope("rule-b")] || !counted[ruleA] {
		t.Errorf("counted scopes = %v; want rule-a and rule-b with window counts", counted)
	}
}

// waitCount waits until topic holds n records and returns them.
func waitCount(t *testing.T, bed *admintest.Bed, topic string, n int) []testbed.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		recs := bed.Kafka.ReadAll(t, topic, 10*time.Second)
		if len(recs) >= n {
			if len(recs) > n {
				t.Errorf("%s has %d records; want %d", topic, len(recs), n)
			}
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d records after 30s; want %d", topic, len(recs), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTripIsAudited trips a breaker with traffic and finds the automatic
// transition in the audit trail, by the system actor.
func TestTripIsAudited(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	d := admintest.StartDaemon(t, bed.Config(t, 10))
	now := time.Now()
	var recs []testbed.Record
	for i := range 50 {
		recs = append(recs, admintest.Event(fmt.Sprintf("a-%d", i), "rule-a", "remove_pin", fmt.Sprintf("t-%d", i), now))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, recs...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		es := auditEntries(t, d.URL, "?scope="+url.QueryEscape(string(ruleA)))
		if len(es) > 0 {
			e := es[len(es)-1]
			if e.Kind != audit.KindTransition || e.Actor != audit.System || e.To == nil || e.To.State != breaker.Open || e.Reason != string(breaker.ReasonMaxActions) {
				t.Errorf("audit entry = %+v; want the automatic trip to open", e)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no audit entry for the trip after 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if b := getBreaker(t, d.URL, ruleA); b.State != breaker.Open {
		t.Errorf("breaker = %+v; want open", b.Status)
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func newRequest(method, url, token string) (*http.Request, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return req, nil
}

// TestOverrideAfterRedisLoss overrides a breaker after Redis lost its data:
// the API restores the states from the state topic first, so the generation
// goes on and nothing is undone; the audit index comes back from its topic.
func TestOverrideAfterRedisLoss(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	d := admintest.StartDaemon(t, bed.Config(t, 1000))
	op := tok(config.RoleOperator)
	path := "/v1/breakers/" + esc(ruleA) + "/override"
	if code := call(t, d.URL, "POST", path, op, `{"state":"forced_open","reason":"first"}`, nil); code != 200 {
		t.Fatalf("override = %d", code)
	}
	bed.Redis.Restart(t)
	// Shadow while the restored kill switch holds needs a second person:
	// the API sees the restored state, not the empty store.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code := call(t, d.URL, "POST", path, op, `{"state":"shadow","reason":"not yet"}`, nil)
		if code == http.StatusAccepted {
			break
		}
		if code == 200 || time.Now().After(deadline) {
			t.Fatalf("shadow after the Redis restart = %d; want 202, an approval request", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var ch api.ChangeResponse
	if code := call(t, d.URL, "POST", path, op, `{"state":"forced_open","reason":"second","for":"1h"}`, &ch); code != 200 {
		t.Fatalf("override after the Redis restart = %d", code)
	}
	if ch.From.State != breaker.ForcedOpen || ch.From.Generation != 1 || ch.Breaker.State != breaker.ForcedOpen || ch.Breaker.Generation != 2 {
		t.Errorf("override after the Redis restart: from %+v to %+v; want forced_open@1 restored, then forced_open@2", ch.From, ch.Breaker.Status)
	}
	es := auditEntries(t, d.URL, "?kind=override&scope="+url.QueryEscape(string(ruleA)))
	if len(es) != 2 || es[0].Reason != "second" || es[1].Reason != "first" {
		t.Errorf("audit after the Redis restart = %+v; want both overrides", es)
	}
}

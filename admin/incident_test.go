package admin_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater/breakwater/alert"
	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/admintest"
	"github.com/breakwater/breakwater/internal/testbed"
)

// pagerDuty is a PagerDuty-shaped receiver: it records the events posted.
type pagerDuty struct {
	mu     sync.Mutex // guards events
	events []alert.PagerDutyEvent
}

func (p *pagerDuty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var e alert.PagerDutyEvent
	data, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(data, &e); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	p.events = append(p.events, e)
	p.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// actions returns the event actions received per dedup key.
func (p *pagerDuty) actions() map[string][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]string{}
	for _, e := range p.events {
		out[e.DedupKey] = append(out[e.DedupKey], e.EventAction)
	}
	return out
}

func incident(t *testing.T, base, id string) api.Incident {
	t.Helper()
	var inc api.Incident // fresh: decoding into a used value would keep omitted fields
	if code := call(t, base, "GET", "/v1/incidents/"+url.PathEscape(id), tok(config.RoleViewer), "", &inc); code != 200 {
		t.Fatalf("GET incident %s = %d", id, code)
	}
	return inc
}

func produceRule(t *testing.T, bed *admintest.Bed, prefix string, n int) {
	t.Helper()
	now := time.Now()
	recs := make([]testbed.Record, n)
	for i := range recs {
		recs[i] = admintest.Event(fmt.Sprintf("%s-%03d", prefix, i), "rule-a", "remove_pin", fmt.Sprintf("t-%d", i%13), now)
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, recs...)
}

// TestIncidentLifecycle runs two replicas and follows an incident from its
// trip to closed through the API: a bulk decision limited to what the
// reviewer saw, an acknowledgement that reaches PagerDuty once as an
// acknowledge of the page, an owner and a note, a standing reject that
// keeps up with actions held after it was set and is applied once per
// action although both replicas run it, a reset that contains the incident,
// a re-trip that continues it, and a revoke.
func TestIncidentLifecycle(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	cfg := bed.Config(t, 10)
	pd := &pagerDuty{}
	srv := httptest.NewServer(pd)
	defer srv.Close()
	cfg.Alerts.Receivers = []config.Receiver{{Name: "pd", Type: config.ReceiverPagerDuty, URL: srv.URL, Secret: "routing-key", Timeout: 5 * time.Second}}
	cfg.Alerts.GroupWindow = 100 * time.Millisecond
	a := admintest.StartDaemon(t, cfg)
	b := admintest.StartDaemon(t, cfg)
	rv, op := tok(config.RoleReviewer), tok(config.RoleOperator)

	produceRule(t, bed, "x", 60)
	var list api.Incidents
	admintest.WaitFor(t, 30*time.Second, func() string { return fmt.Sprintf("incidents %+v", list.Incidents) }, func() bool {
		list = api.Incidents{} // decoding into a used value would keep fields the answer omits
		call(t, a.URL, "GET", "/v1/incidents", tok(config.RoleViewer), "", &list)
		return len(list.Incidents) == 1 && list.Incidents[0].Held >= 10
	})
	id := list.Incidents[0].ID
	if inc := list.Incidents[0]; inc.State != api.IncidentActive || inc.Scope != "rule:rule-a" {
		t.Fatalf("the new incident is %+v; want rule:rule-a active", inc)
	}
	base := "/v1/incidents/" + url.PathEscape(id)

	// A bulk decision covers what the reviewer saw, not what arrived since.
	var out api.DecideResponse
	if code := call(t, a.URL, "POST", base+"/approve", rv, `{"reason":"seen","through":3}`, &out); code != 200 || out.Changed != 3 {
		t.Fatalf("approve through 3 = %d %+v; want 3 changed", code, out)
	}
	if code := call(t, a.URL, "POST", base+"/approve", rv, `{"through":-1}`, nil); code != 400 {
		t.Errorf("approve through -1 = %d; want 400", code)
	}

	// The other held actions on an action's target.
	var page api.HeldPage
	call(t, a.URL, "GET", "/v1/held?limit=1&incident="+url.QueryEscape(id), tok(config.RoleViewer), "", &page)
	var rel api.Related
	if code := call(t, a.URL, "GET", "/v1/held/"+url.PathEscape(page.Items[0].ActionID)+"/related", tok(config.RoleViewer), "", &rel); code != 200 ||
		rel.Target != "account:"+page.Items[0].TargetID || len(rel.Items) == 0 {
		t.Errorf("related = %d %+v; want the other actions on %s", code, rel, page.Items[0].TargetID)
	}
	for _, o := range rel.Items {
		if o.ActionID == page.Items[0].ActionID || o.TargetID != page.Items[0].TargetID {
			t.Errorf("related lists %+v; want other actions on %s only", o, page.Items[0].TargetID)
		}
	}
	if code := call(t, a.URL, "GET", "/v1/held/nope/related", tok(config.RoleViewer), "", nil); code != 404 {
		t.Errorf("related of an unknown action = %d; want 404", code)
	}

	// Acknowledge once, take it, write a note.
	var inc api.Incident
	if code := call(t, a.URL, "POST", base+"/ack", rv, `{"note":"on it"}`, &inc); code != 200 || inc.AckBy != admintest.Name(config.RoleReviewer) || inc.AckAt.IsZero() {
		t.Fatalf("ack = %d %+v", code, inc)
	}
	if code := call(t, b.URL, "POST", base+"/ack", op, `{}`, nil); code != 409 {
		t.Errorf("a second ack = %d; want 409", code)
	}
	if code := call(t, b.URL, "POST", base+"/owner", rv, `{"owner":"alice"}`, &inc); code != 200 || inc.Owner != "alice" {
		t.Errorf("owner = %d %+v", code, inc)
	}
	if code := call(t, a.URL, "POST", base+"/notes", rv, `{"text":"model 7 mislabels pins"}`, &inc); code != 200 || len(inc.Notes) != 2 {
		t.Errorf("note = %d %+v; want the ack's note and this one", code, inc.Notes)
	}
	if code := call(t, a.URL, "POST", base+"/notes", tok(config.RoleViewer), `{"text":"x"}`, nil); code != 403 {
		t.Errorf("a viewer's note = %d; want 403", code)
	}
	if code := call(t, a.URL, "POST", base+"/notes", rv, `{"text":"  "}`, nil); code != 400 {
		t.Errorf("an empty note = %d; want 400", code)
	}

	// A standing reject on one replica; both replicas apply standing
	// decisions, and actions held after it was set are rejected too.
	if code := call(t, b.URL, "POST", base+"/standing", rv, `{"decision":"reject","reason":"model 7 is broken"}`, &inc); code != 200 || inc.Standing == nil || inc.Standing.Decision != "reject" {
		t.Fatalf("standing = %d %+v", code, inc)
	}
	if code := call(t, a.URL, "POST", base+"/standing", rv, `{"decision":"reject","reason":"x"}`, nil); code != 409 {
		t.Errorf("a second standing decision = %d; want 409", code)
	}
	// A standing approve would release without a second person.
	var refused api.Error
	if code := call(t, a.URL, "POST", base+"/standing", rv, `{"decision":"approve","reason":"x"}`, &refused); code != 409 || !strings.Contains(refused.Error, "second person") {
		t.Errorf("a standing approve with approval.release_above set = %d %q; want 409 naming the second person", code, refused.Error)
	}
	settled := func(min int64) func() bool {
		return func() bool {
			inc = incident(t, a.URL, id)
			return inc.Held >= min && inc.Pending == 0 && inc.Rejected == inc.Held-3
		}
	}
	what := func() string { return fmt.Sprintf("incident %+v", inc) }
	admintest.WaitFor(t, 30*time.Second, what, settled(10))
	first := inc.Held
	produceRule(t, bed, "y", 80)
	admintest.WaitFor(t, 30*time.Second, what, settled(first+80))
	if inc.State != api.IncidentActive || inc.Standing.Applied != inc.Rejected {
		t.Errorf("after more traffic the incident is %+v; want active, every rejection by the standing decision", inc)
	}
	// The standing decision is one entry of the audit trail, its
	// decisions folded into its progress: their counts add up to the
	// incident's rejected count, each action decided and journaled once
	// although both replicas apply standing decisions.
	var standingEntries []api.AuditEntry
	for _, e := range auditEntries(t, a.URL, "?kind=standing&limit=1000") {
		if e.Incident == id && e.Actor == admintest.Name(config.RoleReviewer) && e.Scope == "rule:rule-a" {
			standingEntries = append(standingEntries, e)
		}
	}
	if len(standingEntries) != 1 || standingEntries[0].Progress == nil || int64(standingEntries[0].Progress.Count) != inc.Rejected ||
		standingEntries[0].ID != inc.Standing.Entry {
		t.Errorf("the audit trail's standing entries of %s are %+v; want one, its progress the incident's %d rejected: each decided and recorded once",
			id, standingEntries, inc.Rejected)
	}
	if p := standingEntries[0].Progress; p != nil {
		t.Logf("the standing decision decided %d actions in %d steps", p.Count, p.Steps)
	}
	kinds := map[string]int{}
	for _, e := range auditEntries(t, a.URL, "?limit=1000") {
		if e.Incident == id {
			kinds[e.Kind]++
		}
	}
	for _, k := range []string{"acknowledge", "owner", "note", "standing", "approve"} {
		if kinds[k] == 0 {
			t.Errorf("the audit trail has no %s entry naming %s: %v", k, id, kinds)
		}
	}
	// The standing decision's steps are not rows of their own.
	if kinds["reject"] != 0 || kinds["standing"] != 1 || kinds["release"] > 1 {
		t.Errorf("the audit trail of %s has %v; want no reject rows (folded into the standing entry) and at most one release", id, kinds)
	}
	// The action's own record says who and what decided it.
	var held api.HeldPage
	call(t, a.URL, "GET", "/v1/held?limit=20&incident="+url.QueryEscape(id), tok(config.RoleViewer), "", &held)
	var byStanding int
	for _, h := range held.Items {
		if h.Status == "rejected" {
			if h.Via != "standing" || h.Reviewer != admintest.Name(config.RoleReviewer) || h.DecidedAt.IsZero() {
				t.Errorf("rejected action %+v; want reviewer %s via standing, with its time", h, admintest.Name(config.RoleReviewer))
			}
			byStanding++
		}
	}
	if byStanding == 0 {
		t.Errorf("no rejected action among the first 20 of %s: %+v", id, held.Items)
	}

	// A reset contains the incident; once every decision is written it is closed.
	if code := call(t, a.URL, "POST", "/v1/breakers/"+esc(ruleA)+"/reset", op, `{"reason":"model rolled back"}`, nil); code != 200 {
		t.Fatalf("reset = %d", code)
	}
	admintest.WaitFor(t, 60*time.Second, what, func() bool {
		inc = incident(t, b.URL, id)
		return inc.State == api.IncidentClosed
	})
	if inc.Written != inc.Held || inc.RejectedWritten != inc.Rejected || inc.ApprovedReleased != inc.Approved || inc.Standing == nil {
		t.Errorf("the closed incident is %+v; want everything released, the standing decision still shown", inc)
	}

	// The acknowledgement reached PagerDuty once, as an acknowledge of the
	// page the trip sent; the resolve after the reset came later.
	var trigger string
	admintest.WaitFor(t, 30*time.Second, func() string { return fmt.Sprintf("pagerduty got %v", pd.actions()) }, func() bool {
		for k, as := range pd.actions() {
			if len(as) > 0 && as[0] == "trigger" && as[len(as)-1] == "resolve" {
				trigger = k
				return true
			}
		}
		return false
	})
	if got := pd.actions()[trigger]; len(got) != 3 || got[1] != "acknowledge" {
		t.Errorf("pagerduty got %v for the page %s; want trigger, acknowledge, resolve", got, trigger)
	}

	// A re-trip right after the reset continues the incident.
	produceRule(t, bed, "z", 60)
	var next api.Incident
	admintest.WaitFor(t, 30*time.Second, func() string { return fmt.Sprintf("incidents %+v", list.Incidents) }, func() bool {
		list = api.Incidents{} // decoding into a used value would keep fields the answer omits
		call(t, a.URL, "GET", "/v1/incidents", tok(config.RoleViewer), "", &list)
		for _, i := range list.Incidents {
			if i.ID != id {
				next = i
				return true
			}
		}
		return false
	})
	if next.Continues != id || next.State != api.IncidentActive || next.Standing != nil {
		t.Errorf("the re-trip's incident is %+v; want it active, continuing %s, without a standing decision", next, id)
	}
	if inc = incident(t, a.URL, id); inc.ContinuedBy != next.ID {
		t.Errorf("%s is continued by %q; want %s", id, inc.ContinuedBy, next.ID)
	}

	// A decision on one action names it, its incident and scope; release
	// entries name their incident, and add up to what it released.
	var nextPage api.HeldPage
	call(t, a.URL, "GET", "/v1/held?limit=1&incident="+url.QueryEscape(next.ID), tok(config.RoleViewer), "", &nextPage)
	one := nextPage.Items[0].ActionID
	if code := call(t, b.URL, "POST", "/v1/held/reject", rv, `{"ids":["`+one+`"]}`, &out); code != 200 || out.Changed != 1 {
		t.Fatalf("reject one = %d %+v", code, out)
	}
	named, released := false, 0
	for _, e := range auditEntries(t, a.URL, "?limit=1000&incident="+url.QueryEscape(next.ID)) {
		if e.Kind == "reject" && e.ActionID == one && e.Scope == "rule:rule-a" && e.Count == 1 {
			named = true
		}
	}
	releases := auditEntries(t, a.URL, "?kind=release&limit=1000&incident="+url.QueryEscape(id))
	for _, e := range releases {
		if e.Scope != "rule:rule-a" {
			t.Errorf("a release entry of %s names scope %q", id, e.Scope)
		}
		if e.Progress != nil {
			released += e.Progress.Count
		}
	}
	if !named {
		t.Errorf("no audit entry names the rejected action %s of %s", one, next.ID)
	}
	if len(releases) != 1 || int64(released) != inc.Held {
		t.Errorf("the release of %s is %d entries, their progress %d actions; want one entry, with the %d it wrote", id, len(releases), released, inc.Held)
	}
	// The standing decision ended once the incident was contained with
	// nothing pending: an entry of its own, and the incident says so.
	var ended []api.AuditEntry
	admintest.WaitFor(t, 30*time.Second, func() string { return fmt.Sprintf("standing_ended entries %+v", ended) }, func() bool {
		ended = auditEntries(t, a.URL, "?kind=standing_ended&limit=1000&incident="+url.QueryEscape(id))
		return len(ended) > 0
	})
	inc = incident(t, a.URL, id)
	if len(ended) != 1 || ended[0].Group != inc.Standing.Entry || int64(ended[0].Count) != inc.Rejected || inc.Standing.Ended.IsZero() {
		t.Errorf("the end of the standing decision on %s: entries %+v, standing %+v; want one naming its entry %s with the %d it decided",
			id, ended, inc.Standing, inc.Standing.Entry, inc.Rejected)
	}

	// Undo: a decided action not yet released goes back to pending; a
	// released one keeps its decision.
	var undo api.UndoResponse
	admintest.WaitFor(t, 30*time.Second, func() string { return fmt.Sprintf("undo %+v", undo) }, func() bool {
		undo = api.UndoResponse{}
		// The reject of one may be released already: then it stands.
		call(t, a.URL, "POST", "/v1/held/undo", rv, `{"ids":["`+one+`","nope"]}`, &undo)
		return len(undo.Unknown) == 1 && (len(undo.Undone) == 1 || len(undo.Released) == 1)
	})
	if len(undo.Undone) == 1 {
		var again api.UndoResponse
		if code := call(t, a.URL, "POST", "/v1/held/undo", rv, `{"ids":["`+one+`"]}`, &again); code != 200 || len(again.Pending) != 1 {
			t.Errorf("a second undo = %d %+v; want it pending", code, again)
		}
	}
	var old api.HeldPage
	call(t, a.URL, "GET", "/v1/held?limit=1&incident="+url.QueryEscape(id), tok(config.RoleViewer), "", &old)
	var stands api.UndoResponse
	if code := call(t, a.URL, "POST", "/v1/held/undo", rv, `{"ids":["`+old.Items[0].ActionID+`"]}`, &stands); code != 200 || len(stands.Released) != 1 {
		t.Errorf("undo of a released action = %d %+v; want its decision to stand", code, stands)
	}

	// Revoke the standing decision: recorded, and only once.
	inc = api.Incident{}
	if code := call(t, a.URL, "POST", base+"/standing/revoke", rv, `{"reason":"incident over"}`, &inc); code != 200 || inc.Standing != nil {
		t.Errorf("revoke = %d %+v", code, inc)
	}
	if code := call(t, b.URL, "POST", base+"/standing/revoke", rv, `{"reason":"again"}`, nil); code != 409 {
		t.Errorf("a second revoke = %d; want 409", code)
	}
}

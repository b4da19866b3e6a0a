package admin_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/admintest"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/review"
)

func header(r testbed.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

// TestReview trips a rule, then lists, filters, rejects, samples and
// approves its held actions through the API: every approved action reaches
// gated once, every rejected one the rejected topic, none both.
func TestReview(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	d := admintest.StartDaemon(t, bed.Config(t, 10))
	rv, vw := tok(config.RoleReviewer), tok(config.RoleViewer)
	now := time.Now()
	var recs []testbed.Record
	for i := range 300 {
		action := "remove_pin"
		if i%2 == 1 {
			action = "warn"
		}
		recs = append(recs, admintest.Event(fmt.Sprintf("a-%03d", i), "rule-a", action, fmt.Sprintf("t-%d", i%20), now))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, recs...)
	heldRecs := waitCountAtLeast(t, bed, admintest.Topics.Held, 1)
	incID := header(heldRecs[0], "breakwater-incident")

	var inc api.Incident
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct{ Incidents []api.Incident }
		call(t, d.URL, "GET", "/v1/incidents", vw, "", &list)
		if len(list.Incidents) == 1 && list.Incidents[0].Held == int64(len(bed.Kafka.ReadAll(t, admintest.Topics.Held, 10*time.Second))) && list.Incidents[0].Held > 250 {
			inc = list.Incidents[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incidents = %+v; want one with every held action", list.Incidents)
		}
		time.Sleep(100 * time.Millisecond)
	}
	checkConsoleEndpoints(t, d.URL, inc)
	if inc.ID != incID || inc.Scope != "rule:rule-a" || inc.Pending != inc.Held {
		t.Errorf("incident = %+v; want %s, all pending", inc, incID)
	}
	var one api.Incident
	if code := call(t, d.URL, "GET", "/v1/incidents/"+url.PathEscape(incID), vw, "", &one); code != 200 || one.ID != incID {
		t.Errorf("GET incident = %d %+v", code, one)
	}
	if code := call(t, d.URL, "GET", "/v1/incidents/nope@1", vw, "", nil); code != 404 {
		t.Errorf("GET unknown incident = %d; want 404", code)
	}

	var page api.HeldPage
	call(t, d.URL, "GET", "/v1/held?limit=5&action=warn&incident="+url.QueryEscape(incID), vw, "", &page)
	if len(page.Items) != 5 || page.Next == "" {
		t.Fatalf("held page = %+v; want 5 items and a cursor", page)
	}
	for _, h := range page.Items {
		if h.Action != "warn" || h.Status != string(review.Pending) {
			t.Errorf("held item %+v; want a pending warn", h)
		}
	}
	var page2 api.HeldPage
	call(t, d.URL, "GET", "/v1/held?limit=5&action=warn&cursor="+page.Next, vw, "", &page2)
	if len(page2.Items) != 5 || page2.Items[0].ActionID == page.Items[0].ActionID {
		t.Errorf("second page = %+v; want the next 5", page2)
	}
	for _, q := range []string{"?limit=0", "?cursor=abc", "?colour=red"} {
		if code := call(t, d.URL, "GET", "/v1/held"+q, vw, "", nil); code != 400 {
			t.Errorf("GET /v1/held%s = %d; want 400", q, code)
		}
	}

	// Reject the first page, sample 10, approve the rest.
	var ids []string
	for _, h := range page.Items {
		ids = append(ids, fmt.Sprintf("%q", h.ActionID))
	}
	var out api.DecideResponse
	if code := call(t, d.URL, "POST", "/v1/held/reject", rv, `{"ids":[`+strings.Join(ids, ",")+`],"reason":"false positive"}`, &out); code != 200 || out.Changed != 5 {
		t.Fatalf("reject = %d %+v", code, out)
	}
	if code := call(t, d.URL, "POST", "/v1/incidents/"+url.PathEscape(incID)+"/sample", rv, `{"n":10}`, &out); code != 200 || out.Changed != 10 || len(out.Sampled) != 10 {
		t.Fatalf("sample = %d %+v", code, out)
	}
	if code := call(t, d.URL, "POST", "/v1/incidents/"+url.PathEscape(incID)+"/approve", rv, `{"reason":"checked"}`, &out); code != 200 || out.Changed != int(inc.Held)-15 {
		t.Fatalf("approve = %d %+v; want %d changed", code, out, inc.Held-15)
	}
	// Approving again is a no-op.
	if code := call(t, d.URL, "POST", "/v1/incidents/"+url.PathEscape(incID)+"/approve", rv, ``, &out); code != 200 || out.Changed != 0 {
		t.Fatalf("approve again = %d %+v; want nothing changed", code, out)
	}

	deadline = time.Now().Add(60 * time.Second)
	for {
		call(t, d.URL, "GET", "/v1/incidents/"+url.PathEscape(incID), vw, "", &one)
		if one.Written == one.Held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incident = %+v; want everything released", one)
		}
		time.Sleep(100 * time.Millisecond)
	}
	onGated, onRejected := map[string]int{}, map[string]int{}
	for _, g := range bed.Kafka.ReadAll(t, admintest.Topics.Gated, 10*time.Second) {
		if header(g, "breakwater-decision") == "approved" {
			onGated[header(g, "breakwater-action-id")]++
			if header(g, "breakwater-reviewer") != admintest.Name(config.RoleReviewer) || header(g, "breakwater-incident") != incID {
				t.Errorf("released headers %+v", g.Headers)
			}
		}
	}
	for _, r := range bed.Kafka.ReadAll(t, admintest.RejectedTopic, 10*time.Second) {
		onRejected[header(r, "breakwater-action-id")]++
	}
	if len(onGated) != int(inc.Held)-5 || len(onRejected) != 5 {
		t.Errorf("%d approved on gated, %d on rejected; want %d and 5", len(onGated), len(onRejected), inc.Held-5)
	}
	for id, n := range onGated {
		if n != 1 || onRejected[id] != 0 {
			t.Errorf("%s: %d times on gated, %d on rejected", id, n, onRejected[id])
		}
	}
	es := auditEntries(t, d.URL, "")
	kinds := map[string]int{}
	for _, e := range es {
		kinds[e.Kind] += e.Count
	}
	if kinds[audit.KindReject] != 5 || kinds[audit.KindApprove] != int(inc.Held)-5 {
		t.Errorf("audited decisions = %v; want 5 rejected and %d approved", kinds, inc.Held-5)
	}
}

func waitCountAtLeast(t *testing.T, bed *admintest.Bed, topic string, n int) []testbed.Record {
	t.Helper()
	return bed.WaitRecords(t, topic, n)
}

// TestLookBack finds the actions of the scope forwarded before the trip.
func TestLookBack(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	d := admintest.StartDaemon(t, bed.Config(t, 10))
	vw := tok(config.RoleViewer)
	now := time.Now()
	var before []testbed.Record
	for i := range 8 {
		before = append(before, admintest.Event(fmt.Sprintf("early-%d", i), "rule-a", "remove_pin", fmt.Sprintf("t-%d", i), now))
		before = append(before, admintest.Event(fmt.Sprintf("other-%d", i), "rule-b", "remove_pin", fmt.Sprintf("t-%d", i), now))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, before...)
	waitCountAtLeast(t, bed, admintest.Topics.Gated, 16)
	time.Sleep(20 * time.Millisecond)
	var after []testbed.Record
	for i := range 50 {
		after = append(after, admintest.Event(fmt.Sprintf("late-%d", i), "rule-a", "remove_pin", fmt.Sprintf("t-%d", i), now))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, after...)
	held := waitCountAtLeast(t, bed, admintest.Topics.Held, 1)
	incID := header(held[0], "breakwater-incident")
	deadline := time.Now().Add(30 * time.Second)
	for {
		var inc api.Incident
		if call(t, d.URL, "GET", "/v1/incidents/"+url.PathEscape(incID), vw, "", &inc) == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the incident was not indexed within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var lb api.LookBack
	if code := call(t, d.URL, "GET", "/v1/incidents/"+url.PathEscape(incID)+"/lookback?window=1h", vw, "", &lb); code != 200 {
		t.Fatalf("lookback = %d", code)
	}
	if len(lb.Actions) != 8 || lb.Truncated {
		t.Fatalf("lookback = %+v; want the 8 early rule-a actions", lb)
	}
	for _, a := range lb.Actions {
		if !strings.HasPrefix(a.ActionID, "early-") {
			t.Errorf("lookback has %s; want only early rule-a actions", a.ActionID)
		}
	}
	call(t, d.URL, "GET", "/v1/incidents/"+url.PathEscape(incID)+"/lookback?window=1h&limit=3", vw, "", &lb)
	if len(lb.Actions) != 3 || !lb.Truncated {
		t.Errorf("lookback limit 3 = %d actions, truncated %v", len(lb.Actions), lb.Truncated)
	}
	for _, q := range []string{"?window=2d", "?limit=0", "?x=1"} {
		if code := call(t, d.URL, "GET", "/v1/incidents/"+url.PathEscape(incID)+"/lookback"+q, vw, "", nil); code != 400 {
			t.Errorf("lookback%s = %d; want 400", q, code)
		}
	}
}

// checkConsoleEndpoints checks the endpoints the console reads for an
// incident of 300 actions, half remove_pin and half warn, none decided yet.
func checkConsoleEndpoints(t *testing.T, base string, inc api.Incident) {
	t.Helper()
	rv, vw := tok(config.RoleReviewer), tok(config.RoleViewer)
	id := url.PathEscape(inc.ID)
	var b api.Breakdown
	if code := call(t, base, "GET", "/v1/incidents/"+id+"/breakdown", vw, "", &b); code != 200 {
		t.Fatalf("GET breakdown = %d", code)
	}
	if b.Counted != inc.Held || b.Truncated || b.Action["remove_pin"]+b.Action["warn"] != inc.Held || b.Action["warn"] == 0 || b.Region[""] != inc.Held {
		t.Errorf("breakdown = %+v; want the %d held counted by action type and region", b, inc.Held)
	}
	if code := call(t, base, "GET", "/v1/incidents/"+url.PathEscape("rule:nope@1")+"/breakdown", vw, "", nil); code != 404 {
		t.Errorf("GET breakdown of an unknown incident = %d; want 404", code)
	}
	var p api.Pick
	if code := call(t, base, "GET", "/v1/incidents/"+id+"/pick?n=5", rv, "", &p); code != 200 {
		t.Fatalf("GET pick = %d", code)
	}
	seen := map[string]bool{}
	for _, h := range p.Items {
		if h.Status != "pending" || h.Incident != inc.ID || seen[h.ActionID] {
			t.Errorf("pick returned %+v; want distinct pending actions of %s", h, inc.ID)
		}
		seen[h.ActionID] = true
	}
	if len(p.Items) != 5 || int64(p.Pending) != inc.Pending {
		t.Errorf("pick n=5 = %d items, %d pending; want 5 and %d", len(p.Items), p.Pending, inc.Pending)
	}
	for q, want := range map[string]int{"?n=0": 400, "?n=201": 400, "?x=1": 400} {
		if code := call(t, base, "GET", "/v1/incidents/"+id+"/pick"+q, rv, "", nil); code != want {
			t.Errorf("GET pick%s = %d; want %d", q, code, want)
		}
	}
	if code := call(t, base, "GET", "/v1/incidents/"+id+"/pick", vw, "", nil); code != 403 {
		t.Errorf("GET pick as a viewer = %d; want 403", code)
	}
	var after api.Incident
	call(t, base, "GET", "/v1/incidents/"+id, vw, "", &after)
	if after.Pending != inc.Pending {
		t.Errorf("after pick the incident has %d pending; want %d (a pick decides nothing)", after.Pending, inc.Pending)
	}
	req, err := http.NewRequest("GET", base+"/v1/breakers/"+url.PathEscape(inc.Scope)+"/chart?since=1h", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+vw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	svg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml; charset=utf-8" ||
		!strings.HasPrefix(string(svg), "<svg") || !strings.Contains(string(svg), `class="trip"`) {
		t.Errorf("GET chart = %s %q %.300s; want an SVG with the trip", resp.Status, resp.Header.Get("Content-Type"), svg)
	}
	if es := auditEntries(t, base, "?kind=transition&actor=breakwater&scope="+url.QueryEscape(inc.Scope)); len(es) == 0 {
		t.Errorf("audit by kind transition and actor breakwater is empty; want the trip")
	}
	if es := auditEntries(t, base, "?kind=reset"); len(es) != 0 {
		t.Errorf("audit by kind reset = %+v; want none yet", es)
	}
	if es := auditEntries(t, base, "?until=2000-01-01T00:00:00Z"); len(es) != 0 {
		t.Errorf("audit until 2000 = %+v; want none", es)
	}
}

package admin_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/admintest"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/reversal"
)

// lateTrip is admintest's LateTrip.
func lateTrip(t *testing.T, bed *admintest.Bed, base string, n, more int) (map[string]string, api.Incident) {
	t.Helper()
	return bed.LateTrip(t, base, n, more)
}

// reversalsOnTopic counts the reversal records per action id and checks
// each record against the contract.
func reversalsOnTopic(t *testing.T, bed *admintest.Bed, forwarded map[string]string, incident string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range bed.Kafka.ReadAll(t, admintest.ReversalsTopic, 30*time.Second) {
		var rec reversal.Record
		if err := json.Unmarshal(r.Value, &rec); err != nil {
			t.Fatalf("reversal record %s: %v", r.Value, err)
		}
		out[rec.ActionID]++
		if want, ok := forwarded[rec.ActionID]; !ok || string(r.Key) != want || rec.Target.ID != want || rec.Incident != incident ||
			rec.ReversalID != "reversal:"+rec.ActionID || rec.RuleID != "rule-a" || rec.Version != 1 || rec.RequestedBy == "" ||
			rec.Original.Topic != admintest.Topics.Gated || header(r, "breakwater-action-id") != rec.ActionID {
			t.Errorf("reversal record key %q %+v; want one of a forwarded rule-a action of %s, keyed by its target", r.Key, rec, incident)
		}
	}
	return out
}

// TestReversal: an incident that trips late has forwarded actions; the
// preview lists exactly those of its scope forwarded before the trip, by
// action type, rule, model version and region; a reversal narrowed to one
// action type needs a second operator (the requester cannot approve it),
// then writes one record per action to the reversals topic, keyed by
// target, reports its progress and completion; a second request finds
// nothing left to reverse.
func TestReversal(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	cfg := withSeconds(bed.Config(t, 10))
	d := admintest.StartDaemon(t, cfg)
	forwarded, inc := lateTrip(t, bed, d.URL, 10, 30)
	op, vw := tok(config.RoleOperator), tok(config.RoleViewer)
	path := "/v1/incidents/" + url.PathEscape(inc.ID) + "/reversal"

	var pv api.ReversalPreview
	if code := call(t, d.URL, "GET", path, vw, "", &pv); code != 200 {
		t.Fatalf("preview = %d", code)
	}
	var got []string
	for _, s := range pv.Sample {
		got = append(got, s.ActionID)
	}
	sort.Strings(got)
	var want []string
	for id := range forwarded {
		want = append(want, id)
	}
	sort.Strings(want)
	if pv.Candidates != 10 || strings.Join(got, ",") != strings.Join(want, ",") || pv.Action["remove_pin"] != 7 || pv.Action["warn"] != 3 ||
		pv.Rule["rule-a"] != 10 || pv.Region[""] != 10 || pv.Onset != "detector" || !pv.To.Equal(inc.FirstHeldAt) {
		t.Fatalf("preview = %+v; want the 10 forwarded rule-a actions (7 pin removals, 3 warnings) up to the trip", pv)
	}
	var narrow api.ReversalPreview
	call(t, d.URL, "GET", path+"?action=remove_pin", vw, "", &narrow)
	if narrow.Candidates != 7 || len(narrow.Action) != 1 {
		t.Errorf("preview of pin removals = %+v; want 7", narrow)
	}

	var ap api.Approval
	if code := call(t, d.URL, "POST", path, op, `{"reason":"the rule misfired","actions":["remove_pin"]}`, &ap); code != 202 ||
		ap.Operation != api.OpReversal || ap.Count != 7 || ap.Role != config.RoleOperator {
		t.Fatalf("reversal request = %d %+v; want 202 and a request for 7", code, ap)
	}
	if code := approve(t, d.URL, op, ap, ap.PayloadSHA256, nil); code != 403 {
		t.Errorf("approval by the requester = %d; want 403", code)
	}
	if code := approve(t, d.URL, tok(config.RoleReviewer), ap, ap.PayloadSHA256, nil); code != 403 {
		t.Errorf("approval by a reviewer = %d; want 403", code)
	}
	var done api.Approval
	if code := approve(t, d.URL, operator2, ap, ap.PayloadSHA256, &done); code != 200 || done.Status != api.ApprovalApplied {
		t.Fatalf("approval by a second operator = %d %+v", code, done)
	}
	var job api.Reversal
	deadline := time.Now().Add(60 * time.Second)
	for {
		call(t, d.URL, "GET", "/v1/reversals/"+ap.ID, vw, "", &job)
		if job.Status == "done" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reversal = %+v; want done within 60s", job)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if job.Total != 7 || job.Written != 7 || job.RequestedBy != admintest.Name(config.RoleOperator) || job.ApprovedBy != "second-operator" {
		t.Errorf("reversal = %+v; want 7 written, requested and approved by two operators", job)
	}
	on := reversalsOnTopic(t, bed, forwarded, inc.ID)
	if len(on) != 7 {
		t.Errorf("%d actions on the reversals topic; want the 7 pin removals", len(on))
	}
	for id, n := range on {
		if n != 1 || !strings.HasPrefix(id, "early-") {
			t.Errorf("%s reversed %d times", id, n)
		}
	}
	// The pin removals are done; the warnings remain.
	call(t, d.URL, "GET", path, vw, "", &pv)
	if pv.Candidates != 3 || pv.AlreadyReversed != 7 {
		t.Errorf("preview after the reversal = %d candidates, %d reversed; want 3 and 7", pv.Candidates, pv.AlreadyReversed)
	}
	if code := call(t, d.URL, "POST", path, op, `{"reason":"again","actions":["remove_pin"]}`, nil); code != 409 {
		t.Errorf("reversing the pin removals again = %d; want 409, nothing left", code)
	}
	kinds := map[string]bool{}
	for _, e := range auditEntries(t, d.URL, "?limit=100") {
		if e.Approval == ap.ID {
			kinds[e.Kind] = true
		}
	}
	for _, k := range []string{"approval_request", "approval_approve", "reversal_start", "reversal_done"} {
		if !kinds[k] {
			t.Errorf("the audit trail has no %s entry of the reversal (has %v)", k, kinds)
		}
	}
}

// TestReversalFromOnset: the candidates run from the detector's estimated
// onset, in event time, to the trip. Actions of rule-a stamped ten minutes
// before the window that tripped, and actions stamped inside it, are all
// forwarded within the breaker's window before the trip (so the look-back
// would list both); the preview lists exactly those from the onset on.
// Held actions the reviewers approved, which reach the gated topic after
// the trip (outside its window: TestReversalLeavesOutReviewersApprovals
// puts them inside one), and another rule's actions are left out.
func TestReversalFromOnset(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	d := admintest.StartDaemon(t, withSeconds(bed.Config(t, 10)))
	vw, rv := tok(config.RoleViewer), tok(config.RoleReviewer)
	now := time.Now().UTC()
	var recs []testbed.Record
	inside := map[string]bool{}
	for i := range 6 {
		recs = append(recs, admintest.Event(fmt.Sprintf("before-%d", i), "rule-a", "remove_pin", fmt.Sprintf("u-%d", i), now.Add(-10*time.Minute)))
	}
	for i := range 8 {
		id := fmt.Sprintf("inside-%d", i)
		inside[id] = true
		recs = append(recs, admintest.Event(id, "rule-a", "remove_pin", fmt.Sprintf("u-%d", i), now))
	}
	for i := range 3 {
		recs = append(recs, admintest.Event(fmt.Sprintf("other-%d", i), "rule-b", "warn", fmt.Sprintf("u-%d", i), now))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, recs...)
	waitCountAtLeast(t, bed, admintest.Topics.Gated, len(recs))
	firstForwarded := time.Now()
	var late []testbed.Record
	for i := range 20 {
		late = append(late, admintest.Event(fmt.Sprintf("late-%d", i), "rule-a", "remove_pin", fmt.Sprintf("u-%d", i), now))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, late...)
	var inc api.Incident
	admintest.WaitFor(t, 60*time.Second, func() string { return fmt.Sprintf("incident %+v", inc) }, func() bool {
		var l struct{ Incidents []api.Incident }
		tryCall(d.URL, "GET", "/v1/incidents", vw, &l)
		if len(l.Incidents) == 1 {
			inc = l.Incidents[0]
		}
		return inc.Held == int64(len(late))
	})
	// The reviewers approve three held actions: they reach the gated
	// topic, as releases, and are no candidates.
	var page api.HeldPage
	call(t, d.URL, "GET", "/v1/held?limit=3&incident="+url.QueryEscape(inc.ID), vw, "", &page)
	ids := make([]string, len(page.Items))
	for i, h := range page.Items {
		ids[i] = h.ActionID
	}
	body, _ := json.Marshal(api.DecideRequest{IDs: ids})
	if code := call(t, d.URL, "POST", "/v1/held/approve", rv, string(body), nil); code != 200 || len(ids) != 3 {
		t.Fatalf("approve %v = %d", ids, code)
	}
	waitCountAtLeast(t, bed, admintest.Topics.Gated, len(recs)+3)

	var pv api.ReversalPreview
	if code := call(t, d.URL, "GET", "/v1/incidents/"+url.PathEscape(inc.ID)+"/reversal", vw, "", &pv); code != 200 {
		t.Fatalf("preview = %d", code)
	}
	got := map[string]bool{}
	for _, s := range pv.Sample {
		got[s.ActionID] = true
	}
	// The trip's window is a minute of event time ending at now's bucket.
	if pv.Onset != "detector" || !pv.From.After(now.Add(-2*time.Minute)) || pv.From.After(now) || !pv.To.Equal(inc.FirstHeldAt) ||
		!pv.From.Before(firstForwarded.Add(-time.Second)) {
		t.Errorf("preview window %s to %s, onset %q; want the detector's onset, within a minute before %s, to the first held action %s",
			pv.From, pv.To, pv.Onset, now, inc.FirstHeldAt)
	}
	want := len(inside)
	if pv.Candidates != want || len(got) != want || pv.Rule["rule-a"] != want {
		t.Errorf("preview = %d candidates %v; want the %d rule-a actions stamped inside the window", pv.Candidates, got, want)
	}
	for id := range got {
		if !inside[id] || slices.Contains(ids, id) {
			t.Errorf("candidate %s: want only actions stamped from the onset on, forwarded before the trip", id)
		}
	}
	for id := range inside {
		if !got[id] {
			t.Errorf("candidate %s is missing", id)
		}
	}
}

// TestReversalSurvivesKillAndWipe reverses 200 actions at 20 a second
// with two replicas running: the one writing them (the holder of the
// writer's lease, from its log) is SIGKILLed a quarter of the way, the
// other takes the lease over and goes on, and Redis is restarted empty
// half-way. Every candidate is on the reversals topic exactly once.
func TestReversalSurvivesKillAndWipe(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon binary; skipped with -short")
	}
	bin := testbed.BuildBinary(t, "github.com/breakwater/breakwater/cmd/breakwater")
	bed := admintest.NewBed(t, 3)
	const taken = "reversal writer lease taken"
	type replica struct {
		p    *testbed.Process
		base string
	}
	start := func() replica {
		listen := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
		cfgPath := filepath.Join(t.TempDir(), "config.yaml")
		y := strings.Replace(bed.YAMLWith(200, listen, 500), "write_timeout: 10s", "write_timeout: 3s", 1) + "reversals:\n  rate: 20\n"
		if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		base := "http://" + listen
		p := testbed.StartProcess(t, bin, []string{"run", "--config", cfgPath}, nil)
		deadline := time.Now().Add(60 * time.Second)
		for {
			var who api.Principal
			if code := tryCall(base, "GET", "/v1/whoami", tok(config.RoleViewer), &who); code == 200 {
				return replica{p, base}
			}
			if p.Exited() || time.Now().After(deadline) {
				t.Fatalf("the daemon did not serve the API:\n%s", p.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	a, b := start(), start()
	forwarded, inc := lateTrip(t, bed, a.base, 200, 50)
	path := "/v1/incidents/" + url.PathEscape(inc.ID) + "/reversal"
	var ap api.Approval
	if code := call(t, a.base, "POST", path, tok(config.RoleOperator), `{"reason":"the rule misfired"}`, &ap); code != 202 || ap.Count != 200 {
		t.Fatalf("reversal request = %d %+v; want 202 for the 200 forwarded", code, ap)
	}
	if code := approve(t, b.base, tok(config.RoleAdmin), ap, ap.PayloadSHA256, nil); code != 200 {
		t.Fatalf("approval = %d", code)
	}
	progress := func(base string, atLeast int, what string) api.Reversal {
		t.Helper()
		deadline := time.Now().Add(120 * time.Second)
		for {
			var j api.Reversal
			tryCall(base, "GET", "/v1/reversals/"+ap.ID, tok(config.RoleViewer), &j)
			if j.Written >= atLeast {
				return j
			}
			if time.Now().After(deadline) {
				t.Fatalf("reversal %+v: %s did not come within 120s", j, what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	j := progress(a.base, 50, "a quarter written")
	if j.Status == "done" {
		t.Fatalf("the reversal finished before the kill: %+v", j)
	}
	writer, other := a, b
	switch {
	case strings.Contains(b.p.Log(), taken) && !strings.Contains(a.p.Log(), taken):
		writer, other = b, a
	case !strings.Contains(a.p.Log(), taken) || strings.Contains(b.p.Log(), taken):
		t.Fatalf("want exactly one replica to log %q; first:\n%s\nsecond:\n%s", taken, a.p.Log(), b.p.Log())
	}
	writer.p.Kill()
	t.Logf("killed the writing replica with %d of %d written", j.Written, j.Total)
	j = progress(other.base, 100, "half written by the other replica")
	if j.Status == "done" {
		t.Fatalf("the reversal finished before the wipe: %+v", j)
	}
	if !strings.Contains(other.p.Log(), taken) {
		t.Errorf("the other replica wrote without logging %q", taken)
	}
	bed.Redis.Restart(t)
	t.Logf("restarted Redis empty with %d of %d written", j.Written, j.Total)
	j = progress(other.base, 200, "every record after the wipe")
	deadline := time.Now().Add(60 * time.Second)
	for j.Status != "done" {
		if time.Now().After(deadline) {
			t.Fatalf("reversal = %+v; want done", j)
		}
		time.Sleep(100 * time.Millisecond)
		tryCall(other.base, "GET", "/v1/reversals/"+ap.ID, tok(config.RoleViewer), &j)
	}
	on := reversalsOnTopic(t, bed, forwarded, inc.ID)
	bad := 0
	for id := range forwarded {
		if on[id] != 1 && bad < 10 {
			bad++
			t.Errorf("%s is on the reversals topic %d times; want once", id, on[id])
		}
	}
	if len(on) != len(forwarded) {
		t.Errorf("%d actions on the reversals topic; want the %d forwarded", len(on), len(forwarded))
	}
}

// segEvent returns a schema v1 action of rule-a with a region and a model
// version (each left out when empty).
func segEvent(id, action, target, region, model string, at time.Time) testbed.Record {
	extra := ""
	if region != "" {
		extra += fmt.Sprintf(`,"region":%q`, region)
	}
	if model != "" {
		extra += fmt.Sprintf(`,"model":{"name":"clf","version":%q}`, model)
	}
	return testbed.KV(target, fmt.Sprintf(`{"action_id":%q,"rule_id":"rule-a","action":%q,"target":{"type":"account","id":%q},"occurred_at":%q%s}`,
		id, action, target, at.UTC().Format(time.RFC3339Nano), extra))
}

// TestReversalOfSegment: the candidates of an incident of a segment
// breaker (rule:rule-a|region:eu, then rule:rule-a|model:v2) are the
// segment's forwarded actions up to the trip, not its rule's others nor
// another rule's with the same value. Each segment is forced open by an
// operator (an incident whose window is the look-back), after actions of
// the segment, of the rule's other segments and of rule-b were forwarded.
func TestReversalOfSegment(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	y := strings.Replace(bed.YAML(100), "breakers:\n", "breakers:\n  segments:\n    model_version: true\n    dimensions: [region]\n", 1)
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatalf("config.Parse:\n%s\n%v", y, err)
	}
	d := admintest.StartDaemon(t, withSeconds(cfg))
	op, vw := tok(config.RoleOperator), tok(config.RoleViewer)
	gated := 0
	// segment forces scope open after forwarding fwd and returns the
	// preview of its incident, which holds the held actions.
	segment := func(scope breaker.Scope, fwd, held []testbed.Record) api.ReversalPreview {
		t.Helper()
		bed.Kafka.Produce(t, admintest.Topics.Input, fwd...)
		gated += len(fwd)
		waitCountAtLeast(t, bed, admintest.Topics.Gated, gated)
		if code := call(t, d.URL, "POST", "/v1/breakers/"+esc(scope)+"/override", op, `{"state":"forced_open","reason":"segment misfires"}`, nil); code != 200 {
			t.Fatalf("force %s open = %d", scope, code)
		}
		bed.Kafka.Produce(t, admintest.Topics.Input, held...)
		var inc api.Incident
		admintest.WaitFor(t, 60*time.Second, func() string { return fmt.Sprintf("incident of %s: %+v", scope, inc) }, func() bool {
			var l struct{ Incidents []api.Incident }
			tryCall(d.URL, "GET", "/v1/incidents", vw, &l)
			for _, i := range l.Incidents {
				if i.Scope == string(scope) {
					inc = i
				}
			}
			return inc.Held == int64(len(held))
		})
		var pv api.ReversalPreview
		if code := call(t, d.URL, "GET", "/v1/incidents/"+url.PathEscape(inc.ID)+"/reversal", vw, "", &pv); code != 200 {
			t.Fatalf("preview of %s = %d", inc.ID, code)
		}
		if pv.Scope != string(scope) || pv.Onset != "lookback" || !pv.To.Equal(inc.FirstHeldAt) {
			t.Errorf("preview of %s: scope %s, onset %q, to %s; want the look-back to the first held action %s", inc.ID, pv.Scope, pv.Onset, pv.To, inc.FirstHeldAt)
		}
		// The incident's look-back lists the same actions.
		var lb api.LookBack
		if code := call(t, d.URL, "GET", "/v1/incidents/"+url.PathEscape(inc.ID)+"/lookback?window=1m", vw, "", &lb); code != 200 {
			t.Fatalf("look-back of %s = %d", inc.ID, code)
		}
		var got []string
		for _, a := range lb.Actions {
			got = append(got, a.ActionID)
		}
		sort.Strings(got)
		var want []string
		for _, s := range pv.Sample {
			want = append(want, s.ActionID)
		}
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("look-back of %s = %v; want the candidates %v", inc.ID, got, want)
		}
		return pv
	}
	ids := func(pv api.ReversalPreview) string {
		var out []string
		for _, s := range pv.Sample {
			out = append(out, s.ActionID)
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	now := time.Now()

	var fwd, held []testbed.Record
	for i := range 6 {
		action := "remove_pin"
		if i%3 == 0 {
			action = "warn"
		}
		fwd = append(fwd, segEvent(fmt.Sprintf("eu-%d", i), action, fmt.Sprintf("u-%d", i), "eu", "v1", now))
	}
	for i := range 4 {
		fwd = append(fwd, segEvent(fmt.Sprintf("us-%d", i), "remove_pin", fmt.Sprintf("u-%d", i), "us", "v1", now))
		fwd = append(fwd, segEvent(fmt.Sprintf("none-%d", i), "remove_pin", fmt.Sprintf("u-%d", i), "", "", now))
		fwd = append(fwd, admintest.Event(fmt.Sprintf("b-%d", i), "rule-b", "warn", fmt.Sprintf("u-%d", i), now))
	}
	for i := range 5 {
		held = append(held, segEvent(fmt.Sprintf("eu-held-%d", i), "remove_pin", fmt.Sprintf("u-%d", i), "eu", "v1", now))
	}
	pv := segment(breaker.SegmentScope("rule-a", breaker.DimRegion, "eu"), fwd, held)
	if want := "eu-0,eu-1,eu-2,eu-3,eu-4,eu-5"; ids(pv) != want || pv.Candidates != 6 || pv.Region["eu"] != 6 || pv.Action["warn"] != 2 {
		t.Errorf("preview of the eu incident = %d candidates %s, by region %v, by action %v; want %s, 2 warnings", pv.Candidates, ids(pv), pv.Region, pv.Action, want)
	}

	fwd, held = nil, nil
	for i := range 4 {
		fwd = append(fwd, segEvent(fmt.Sprintf("v2-%d", i), "remove_pin", fmt.Sprintf("w-%d", i), "us", "v2", now))
		fwd = append(fwd, segEvent(fmt.Sprintf("v1-%d", i), "remove_pin", fmt.Sprintf("w-%d", i), "us", "v1", now))
	}
	for i := range 3 {
		held = append(held, segEvent(fmt.Sprintf("v2-held-%d", i), "remove_pin", fmt.Sprintf("w-%d", i), "us", "v2", now))
	}
	pv = segment(breaker.ModelScope("rule-a", "v2"), fwd, held)
	if want := "v2-0,v2-1,v2-2,v2-3"; ids(pv) != want || pv.Candidates != 4 || pv.ModelVersion["v2"] != 4 {
		t.Errorf("preview of the v2 incident = %d candidates %s, by model version %v; want %s", pv.Candidates, ids(pv), pv.ModelVersion, want)
	}
}

// TestReversalLeavesOutReviewersApprovals: held actions the reviewers
// approved reach the gated topic as releases; a reversal never lists them.
// The first incident of rule-a holds 20 actions and its reviewers approve
// 3, which are released; the breaker is reset and trips again. The second
// incident's window (from its onset to its trip) spans the releases: they
// are rule-a actions stamped after its onset and forwarded before its trip,
// so only their being reviewers' approvals leaves them out. The reversal
// of the second incident, approved by a second operator, writes its
// candidates and none of the released actions; nor does the first's.
func TestReversalLeavesOutReviewersApprovals(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	d := admintest.StartDaemon(t, withSeconds(bed.Config(t, 10)))
	op, rv, vw := tok(config.RoleOperator), tok(config.RoleReviewer), tok(config.RoleViewer)
	_, first := lateTrip(t, bed, d.URL, 10, 20)

	// The reviewers approve three held actions of the first incident.
	var page api.HeldPage
	call(t, d.URL, "GET", "/v1/held?limit=3&incident="+url.QueryEscape(first.ID), vw, "", &page)
	released := map[string]bool{}
	var ids []string
	for _, h := range page.Items {
		released[h.ActionID] = true
		ids = append(ids, h.ActionID)
	}
	body, _ := json.Marshal(api.DecideRequest{IDs: ids})
	if code := call(t, d.URL, "POST", "/v1/held/approve", rv, string(body), nil); code != 200 || len(ids) != 3 {
		t.Fatalf("approve %v = %d", ids, code)
	}
	// Their releases on the gated topic, with the approved header.
	releases := map[string]testbed.Record{}
	admintest.WaitFor(t, 60*time.Second, func() string { return fmt.Sprintf("releases %d of 3", len(releases)) }, func() bool {
		for _, r := range bed.Kafka.ReadAll(t, admintest.Topics.Gated, 10*time.Second) {
			for id := range released {
				if header(r, "breakwater-decision") == "approved" && strings.Contains(string(r.Value), `"`+id+`"`) {
					releases[id] = r
				}
			}
		}
		return len(releases) == 3
	})

	// Reset, then trip again: a second incident of rule-a.
	if code := call(t, d.URL, "POST", "/v1/breakers/"+esc(ruleA)+"/reset", op, `{"reason":"fixed"}`, nil); code != 200 {
		t.Fatalf("reset = %d", code)
	}
	now := time.Now()
	var more []testbed.Record
	for i := range 30 {
		more = append(more, admintest.Event(fmt.Sprintf("again-%04d", i), "rule-a", "remove_pin", fmt.Sprintf("u-%d", i), now))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, more...)
	var second api.Incident
	admintest.WaitFor(t, 60*time.Second, func() string { return fmt.Sprintf("second incident %+v", second) }, func() bool {
		var l struct{ Incidents []api.Incident }
		tryCall(d.URL, "GET", "/v1/incidents", vw, &l)
		for _, i := range l.Incidents {
			if i.ID != first.ID && i.Scope == string(ruleA) {
				second = i
			}
		}
		return second.ID != "" && second.Held > 0
	})
	var pv api.ReversalPreview
	path := "/v1/incidents/" + url.PathEscape(second.ID) + "/reversal"
	if code := call(t, d.URL, "GET", path, vw, "", &pv); code != 200 {
		t.Fatalf("preview of %s = %d", second.ID, code)
	}
	// The releases lie inside the second incident's window, in the times
	// the window reads: only the approved header can leave them out.
	for id, r := range releases {
		var a struct {
			OccurredAt time.Time `json:"occurred_at"`
		}
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatal(err)
		}
		inside := !r.Timestamp.After(pv.To) && !r.Timestamp.Before(pv.From.Add(-reversal.Skew))
		if pv.Onset == "detector" {
			inside = inside && !a.OccurredAt.Before(pv.From)
		} else {
			inside = inside && !r.Timestamp.Before(pv.From)
		}
		if !inside {
			t.Fatalf("release of %s (stamped %s, forwarded %s) is outside the second incident's window %s to %s (onset %s): the test would not show that approvals are left out",
				id, a.OccurredAt, r.Timestamp, pv.From, pv.To, pv.Onset)
		}
	}
	var ap api.Approval
	if code := call(t, d.URL, "POST", path, op, `{"reason":"the rule misfired again"}`, &ap); code != 202 {
		t.Fatalf("reversal request of %s = %d; want 202", second.ID, code)
	}
	var req api.ReversalRequest
	if err := json.Unmarshal(ap.Payload, &req); err != nil {
		t.Fatalf("approval payload %s: %v", ap.Payload, err)
	}
	if len(req.IDs) == 0 || len(req.IDs) != pv.Candidates {
		t.Fatalf("the request names %d actions, the preview %d; want the same, not none", len(req.IDs), pv.Candidates)
	}
	for _, id := range req.IDs {
		if released[id] {
			t.Errorf("the reversal of %s names %s, which its breaker's reviewers approved", second.ID, id)
		}
	}
	if code := approve(t, d.URL, operator2, ap, ap.PayloadSHA256, nil); code != 200 {
		t.Fatalf("approval by a second operator = %d", code)
	}
	admintest.WaitFor(t, 60*time.Second, func() string { return "the reversal is not done" }, func() bool {
		var j api.Reversal
		tryCall(d.URL, "GET", "/v1/reversals/"+ap.ID, vw, &j)
		return j.Status == "done" && j.Written == len(req.IDs)
	})
	on := map[string]bool{}
	for _, r := range bed.Kafka.ReadAll(t, admintest.ReversalsTopic, 30*time.Second) {
		var rec reversal.Record
		if err := json.Unmarshal(r.Value, &rec); err != nil {
			t.Fatalf("reversal record %s: %v", r.Value, err)
		}
		on[rec.ActionID] = true
		if released[rec.ActionID] {
			t.Errorf("%s, approved by the reviewers, is on the reversals topic", rec.ActionID)
		}
	}
	if len(on) != len(req.IDs) {
		t.Errorf("%d actions on the reversals topic; want the %d requested", len(on), len(req.IDs))
	}
	// The first incident's candidates leave them out too.
	if code := call(t, d.URL, "GET", "/v1/incidents/"+url.PathEscape(first.ID)+"/reversal", vw, "", &pv); code != 200 {
		t.Fatalf("preview of %s = %d", first.ID, code)
	}
	for _, s := range pv.Sample {
		if released[s.ActionID] {
			t.Errorf("the first incident's candidates list %s, which its reviewers approved", s.ActionID)
		}
	}
}

// TestReversalBreakGlass: a reversal requested with break_glass starts at
// once without a second person, pages on-call, is flagged in the audit
// trail, and every record it writes says so (break_glass, no approver).
func TestReversalBreakGlass(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	pg := newPages(t)
	cfg, err := config.Parse([]byte(bed.YAML(10) + pg.yaml()))
	if err != nil {
		t.Fatal(err)
	}
	d := admintest.StartDaemon(t, cfg)
	forwarded, inc := lateTrip(t, bed, d.URL, 10, 30)
	path := "/v1/incidents/" + url.PathEscape(inc.ID) + "/reversal"
	var j api.Reversal
	body := `{"reason":"the rule misfired","break_glass":"sev-1, enforcement is banning the wrong accounts now"}`
	if code := call(t, d.URL, "POST", path, tok(config.RoleOperator), body, &j); code != 200 || !j.BreakGlass || j.ApprovedBy != "" || j.Total != 10 {
		t.Fatalf("break-glass reversal = %d %+v; want 200, started at once for the 10 forwarded, no approver", code, j)
	}
	pg.waitBreakGlass(t, "sev-1, enforcement is banning")
	admintest.WaitFor(t, 60*time.Second, func() string { return fmt.Sprintf("reversal %+v; want done", j) }, func() bool {
		tryCall(d.URL, "GET", "/v1/reversals/"+j.ID, tok(config.RoleViewer), &j)
		return j.Status == "done"
	})
	on := reversalsOnTopic(t, bed, forwarded, inc.ID)
	if len(on) != 10 {
		t.Errorf("%d actions on the reversals topic; want the 10 forwarded", len(on))
	}
	for _, r := range bed.Kafka.ReadAll(t, admintest.ReversalsTopic, 10*time.Second) {
		var rec reversal.Record
		if err := json.Unmarshal(r.Value, &rec); err != nil {
			t.Fatal(err)
		}
		if !rec.BreakGlass || rec.ApprovedBy != "" || rec.RequestedBy != admintest.Name(config.RoleOperator) {
			t.Errorf("record of %s: break_glass %v, approved_by %q, requested_by %q; want break-glass by the operator, no approver",
				rec.ActionID, rec.BreakGlass, rec.ApprovedBy, rec.RequestedBy)
		}
	}
	if flagged := breakGlassKinds(t, d.URL, 100, j.ID); !flagged["break_glass"] || !flagged["reversal_start"] {
		t.Errorf("audit entries of the reversal flagged break-glass: %v; want break_glass and reversal_start", flagged)
	}
}

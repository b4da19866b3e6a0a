package admin_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/admintest"
	"github.com/breakwater/breakwater/internal/testbed"
)

// TestReviewSurvivesKill trips a rule, holds 5,000 actions, rejects some,
// approves a sample, then approves the rest in bulk and SIGKILLs the daemon
// half-way through the release. After a restart the release finishes:
// every approved action is on gated exactly once, in original per-key
// order, every rejected one on the rejected topic, none on both.
func TestReviewSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon binary; skipped with -short")
	}
	bin := testbed.BuildBinary(t, "github.com/breakwater/breakwater/cmd/breakwater")
	bed := admintest.NewBed(t, 3)
	listen := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(bed.YAMLWith(10, listen, 20)), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "http://" + listen
	start := func() *testbed.Process {
		p := testbed.StartProcess(t, bin, []string{"run", "--config", cfgPath}, nil)
		deadline := time.Now().Add(60 * time.Second)
		for {
			var who api.Principal
			if code := tryCall(base, "GET", "/v1/whoami", tok(config.RoleViewer), &who); code == 200 {
				return p
			}
			if p.Exited() || time.Now().After(deadline) {
				t.Fatalf("the daemon did not serve the API:\n%s", p.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	p := start()

	const total = 5050
	now := time.Now()
	recs := make([]testbed.Record, total)
	for i := range recs {
		recs[i] = admintest.Event(fmt.Sprintf("a-%05d", i), "rule-a", "remove_pin", fmt.Sprintf("t-%d", i%97), now)
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, recs...)

	// Wait until everything is decided and indexed: one incident.
	var inc api.Incident
	deadline := time.Now().Add(90 * time.Second)
	for {
		var list struct{ Incidents []api.Incident }
		call(t, base, "GET", "/v1/incidents", tok(config.RoleViewer), "", &list)
		held := len(bed.Kafka.ReadAll(t, admintest.Topics.Held, 10*time.Second))
		gated := len(bed.Kafka.ReadAll(t, admintest.Topics.Gated, 10*time.Second))
		if len(list.Incidents) == 1 && held+gated == total && list.Incidents[0].Held == int64(held) {
			inc = list.Incidents[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incidents = %+v, %d held, %d gated; want one incident with every held action", list.Incidents, held, gated)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if inc.Held < 5000 {
		t.Fatalf("incident %+v; want at least 5,000 held", inc)
	}
	forwardedBefore := len(bed.Kafka.ReadAll(t, admintest.Topics.Gated, 10*time.Second))
	rv := tok(config.RoleReviewer)
	incPath := "/v1/incidents/" + url.PathEscape(inc.ID)

	// Reject 100 by id, approve a sample of 50, then the rest in bulk.
	var page api.HeldPage
	call(t, base, "GET", "/v1/held?limit=100&incident="+url.QueryEscape(inc.ID), tok(config.RoleViewer), "", &page)
	ids := make([]string, len(page.Items))
	for i, h := range page.Items {
		ids[i] = h.ActionID
	}
	body, _ := json.Marshal(api.DecideRequest{IDs: ids, Reason: "false positives"})
	var out api.DecideResponse
	if code := call(t, base, "POST", "/v1/held/reject", rv, string(body), &out); code != 200 || out.Changed != 100 {
		t.Fatalf("reject = %d %+v", code, out)
	}
	if code := call(t, base, "POST", incPath+"/sample", rv, `{"n":50}`, &out); code != 200 || out.Changed != 50 {
		t.Fatalf("sample = %d %+v", code, out)
	}
	// Approving more than approval.release_above (1000) at once asks for
	// a second reviewer, who approves the exact request.
	var req api.Approval
	if code := call(t, base, "POST", incPath+"/approve", rv, `{}`, &req); code != 202 || req.Count != int(inc.Held)-150 || req.Status != api.ApprovalPending {
		t.Fatalf("approve = %d %+v; want 202 and a pending request of %d actions", code, req, inc.Held-150)
	}
	var granted api.Approval
	if code := call(t, base, "POST", "/v1/approvals/"+req.ID+"/approve", tok(config.RoleAdmin), `{"payload_sha256":"`+req.PayloadSHA256+`"}`, &granted); code != 200 || granted.Status != api.ApprovalApplied {
		t.Fatalf("approve the request = %d %+v", code, granted)
	}
	if err := json.Unmarshal(granted.Result, &out); err != nil || out.Changed != int(inc.Held)-150 {
		t.Fatalf("approve the request: result %s (%v); want %d changed", granted.Result, err, inc.Held-150)
	}

	// SIGKILL half-way through the release.
	deadline = time.Now().Add(60 * time.Second)
	for {
		var one api.Incident
		call(t, base, "GET", incPath, tok(config.RoleViewer), "", &one)
		if one.Written >= one.Held/4 {
			if one.Written == one.Held {
				t.Fatalf("the release finished before the kill: %+v", one)
			}
			p.Kill()
			t.Logf("killed the daemon with %d of %d written", one.Written, one.Held)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incident %+v: the release did not progress", one)
		}
		time.Sleep(5 * time.Millisecond)
	}

	start()
	// Retrying the bulk approval changes nothing.
	if code := call(t, base, "POST", incPath+"/approve", rv, `{}`, &out); code != 200 || out.Changed != 0 {
		t.Fatalf("approve after the restart = %d %+v; want nothing changed", code, out)
	}
	deadline = time.Now().Add(90 * time.Second)
	for {
		var one api.Incident
		call(t, base, "GET", incPath, tok(config.RoleViewer), "", &one)
		if one.Written == one.Held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incident %+v: the release did not finish after the restart", one)
		}
		time.Sleep(100 * time.Millisecond)
	}

	heldOffset := map[string]int64{}
	for _, h := range bed.Kafka.ReadAll(t, admintest.Topics.Held, 30*time.Second) {
		var a struct {
			ActionID string `json:"action_id"`
		}
		_ = json.Unmarshal(h.Value, &a)
		heldOffset[a.ActionID] = h.Offset
	}
	rejected := map[string]bool{}
	for _, id := range ids {
		rejected[id] = true
	}
	onGated, onRejected := map[string]int{}, map[string]int{}
	last := map[string]int64{}
	lastRec := map[string]testbed.Record{}
	gated := bed.Kafka.ReadAll(t, admintest.Topics.Gated, 30*time.Second)
	for _, g := range gated {
		if header(g, "breakwater-decision") != "approved" {
			continue
		}
		id := header(g, "breakwater-action-id")
		onGated[id]++
		key := string(g.Key)
		if off, ok := last[key]; ok && heldOffset[id] <= off {
			prev := lastRec[key]
			t.Errorf("%s of key %s (held at %d, gated %d/%d) reached gated after %s (held at %d, gated %d/%d): out of its original order",
				id, key, heldOffset[id], g.Partition, g.Offset, header(prev, "breakwater-action-id"), off, prev.Partition, prev.Offset)
		}
		last[key] = heldOffset[id]
		lastRec[key] = g
	}
	for _, r := range bed.Kafka.ReadAll(t, admintest.RejectedTopic, 30*time.Second) {
		onRejected[header(r, "breakwater-action-id")]++
	}
	bad := 0
	for id := range heldOffset {
		want := [2]int{1, 0}
		if rejected[id] {
			want = [2]int{0, 1}
		}
		if got := [2]int{onGated[id], onRejected[id]}; got != want && bad < 10 {
			bad++
			t.Errorf("%s: %d on gated, %d on rejected; want %v", id, got[0], got[1], want)
		}
	}
	if len(onGated) != int(inc.Held)-100 || len(onRejected) != 100 {
		t.Errorf("%d approved on gated, %d rejected; want %d and 100", len(onGated), len(onRejected), inc.Held-100)
	}
	if n := len(gated) - forwardedBefore; n != int(inc.Held)-100 {
		t.Errorf("%d records reached gated after the trip; want exactly the %d approved", n, inc.Held-100)
	}
}

// tryCall is call without failing the test, for polling a starting daemon.
func tryCall(base, method, path, token string, out any) int {
	req, err := newRequest(method, base+path, token)
	if err != nil {
		return 0
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

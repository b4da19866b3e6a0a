package appeals_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/appeals"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/admintest"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/wire"
)

const appealsTopic = "moderation.appeals"

func getBreaker(t *testing.T, base string, s breaker.Scope) api.Breaker {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/v1/breakers/"+url.PathEscape(string(s)), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+admintest.Tokens[config.RoleViewer])
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b api.Breaker
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&b) != nil {
		t.Fatalf("GET breaker %s = %d", s, resp.StatusCode)
	}
	return b
}

func outcome(id string, o appeals.Outcome) testbed.Record {
	return testbed.KV(id, string(appeals.Record{ActionID: id, Outcome: o, DecidedAt: time.Now()}.Encode()))
}

// TestAppealsEndToEnd runs daemons on kfake and a redis-server with the
// appeals signal on: the gated actions of two rules are joined; rule-b's
// normal outcomes (95% upheld) never trip it; rule-a's outcomes do not
// trip it before the outcome at which the judgement first says so, across
// a daemon restart in the middle (the outcomes are in Redis); a malformed record, an unknown action id and a second outcome
// of an action go to the dead-letter topic with their reasons while the
// outcomes after them are still judged; and the trip is in the state
// topic, survives a restart and reads as an overturn_rate explanation.
// While the appeals trip is turned off, the outcome that would trip does
// not; turned on, the next outcome of rule-a trips.
func TestAppealsEndToEnd(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	bed.Kafka.CreateTopic(t, appealsTopic, 1)
	y := bed.YAML(1e6) + "appeals:\n  enabled: true\n  topic: " + appealsTopic + "\n  min_outcomes: 20\n  window: 50\n  precision_floor: 0.8\n"
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	d := admintest.StartDaemon(t, cfg)

	now := time.Now()
	var actions []testbed.Record
	for i := range 60 {
		actions = append(actions, admintest.Event(fmt.Sprintf("a-%03d", i), "rule-a", "ban_account", fmt.Sprintf("u-%d", i), now))
		actions = append(actions, admintest.Event(fmt.Sprintf("b-%03d", i), "rule-b", "warn", fmt.Sprintf("v-%d", i), now))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, actions...)

	// Wait until every action is in the join.
	keys, err := wire.NewKeys("bw-admin")
	if err != nil {
		t.Fatal(err)
	}
	st, err := appeals.NewStore(bed.Redis.Client(t), keys, cfg.Appeals.JoinFor, cfg.Appeals.JoinMax, cfg.Appeals.Window)
	if err != nil {
		t.Fatal(err)
	}
	missing := func() []string {
		var out []string
		for i := range 60 {
			for _, id := range []string{fmt.Sprintf("a-%03d", i), fmt.Sprintf("b-%03d", i)} {
				if _, _, err := st.Lookup(t.Context(), time.Now(), id); err != nil {
					out = append(out, id)
				}
			}
		}
		return out
	}
	admintest.WaitFor(t, 60*time.Second, func() string { return fmt.Sprintf("not joined: %v", missing()) }, func() bool { return len(missing()) == 0 })

	// The outcomes: rule-b 38 upheld and 2 overturned, interleaved with
	// rule-a's 10 upheld then overturned ones; where the judgement first
	// trips rule-a is computed by the same pure function.
	var script []testbed.Record
	var ruleA []appeals.Sample
	tripAt := -1 // index in script of the outcome that must trip rule-a
	for i := range 40 {
		o := appeals.Upheld
		if i == 7 || i == 23 {
			o = appeals.Overturned
		}
		script = append(script, outcome(fmt.Sprintf("b-%03d", i), o))
		if i < 35 {
			o = appeals.Overturned
			if i < 10 {
				o = appeals.Upheld
			}
			script = append(script, outcome(fmt.Sprintf("a-%03d", i), o))
			ruleA = append(ruleA, appeals.Sample{At: now, Overturned: o == appeals.Overturned})
			if tripAt < 0 && appeals.Judge(appeals.PolicyOf(cfg.Appeals), appeals.Key{Rule: "rule-a"}, ruleA).Trip {
				tripAt = len(script) - 1
			}
		}
	}
	if tripAt < 0 {
		t.Fatal("the script never trips rule-a")
	}
	// The bad records, before the trip, each followed by good outcomes.
	bad := []testbed.Record{
		testbed.KV("x", "{not json"),
		outcome("never-forwarded", appeals.Overturned),
		outcome("b-000", appeals.Overturned), // b-000 was upheld already
	}
	half := tripAt / 2
	first := append(append([]testbed.Record{}, script[:half]...), bad...)
	second := script[half:tripAt]

	committed := func() int64 {
		return bed.Kafka.CommittedOffsets(t, "bw-admin-test.appeals", appealsTopic)[0]
	}
	waitCommitted := func(n int64) {
		t.Helper()
		admintest.WaitFor(t, 60*time.Second, func() string { return fmt.Sprintf("committed %d of %d", committed(), n) }, func() bool { return committed() >= n })
	}
	ruleAScope, ruleBScope := breaker.RuleScope("rule-a"), breaker.RuleScope("rule-b")

	bed.Kafka.Produce(t, appealsTopic, first...)
	waitCommitted(int64(len(first)))
	// Restart the daemon: the outcomes so far are in Redis.
	d.Stop(t)
	d = admintest.StartDaemon(t, cfg)
	bed.Kafka.Produce(t, appealsTopic, second...)
	waitCommitted(int64(len(first) + len(second)))
	if b := getBreaker(t, d.URL, ruleAScope); b.State != breaker.Closed {
		t.Fatalf("rule-a is %s (%s) one outcome before the expected trip; want closed", b.State, b.Reason)
	}
	// Turned off, the trip does not happen; turned on again, the next
	// outcome of rule-a trips it.
	if err := st.SetSwitch(t.Context(), api.AppealsTrip{Enabled: false, By: "test", Reason: "off", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	bed.Kafka.Produce(t, appealsTopic, script[tripAt])
	waitCommitted(int64(len(first) + len(second) + 1))
	if b := getBreaker(t, d.URL, ruleAScope); b.State != breaker.Closed {
		t.Fatalf("rule-a is %s (%s) with the appeals trip turned off; want closed", b.State, b.Reason)
	}
	if err := st.SetSwitch(t.Context(), api.AppealsTrip{Enabled: true, By: "test", Reason: "on", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	next := tripAt + 1
	for !strings.Contains(string(script[next].Key), "a-") {
		next++
	}
	bed.Kafka.Produce(t, appealsTopic, script[tripAt+1:next+1]...)
	admintest.WaitFor(t, 60*time.Second, func() string { return fmt.Sprint(getBreaker(t, d.URL, ruleAScope).Status) }, func() bool {
		return getBreaker(t, d.URL, ruleAScope).State == breaker.Open
	})
	b := getBreaker(t, d.URL, ruleAScope)
	if b.Reason != string(breaker.ReasonOverturnRate) || b.Explanation == nil || !strings.Contains(b.Explanation.Text, "appeals overturned") {
		t.Errorf("rule-a: %+v, explanation %+v; want tripped by overturn_rate and explained", b.Status, b.Explanation)
	}
	// The rest of the outcomes are judged; rule-b stays closed.
	bed.Kafka.Produce(t, appealsTopic, script[next+1:]...)
	waitCommitted(int64(len(first) + len(script[half:])))
	if b := getBreaker(t, d.URL, ruleBScope); b.State != breaker.Closed {
		t.Errorf("rule-b (95%% upheld) is %s (%s); want closed", b.State, b.Reason)
	}

	// The bad records are on the dead-letter topic with their reasons.
	dead := map[string]int{}
	for _, r := range bed.Kafka.ReadAll(t, admintest.Topics.DeadLetter, 10*time.Second) {
		for _, h := range r.Headers {
			if h.Key == wire.HeaderReason {
				dead[string(h.Value)]++
			}
		}
	}
	want := map[string]int{appeals.ReasonMalformed: 1, appeals.ReasonUnknown: 1, appeals.ReasonDuplicate: 1}
	if fmt.Sprint(dead) != fmt.Sprint(want) {
		t.Errorf("dead-letter reasons %v; want %v", dead, want)
	}
	// The trip is on the state topic, and a restarted daemon shows it.
	found := false
	for _, r := range bed.Kafka.ReadAll(t, admintest.Topics.State, 10*time.Second) {
		found = found || strings.Contains(string(r.Value), `"overturn_rate"`)
	}
	if !found {
		t.Errorf("the state topic has no overturn_rate trip")
	}
	d.Stop(t)
	d = admintest.StartDaemon(t, cfg)
	if b := getBreaker(t, d.URL, ruleAScope); b.State != breaker.Open || b.Reason != string(breaker.ReasonOverturnRate) {
		t.Errorf("after a restart rule-a is %s (%s); want open by overturn_rate", b.State, b.Reason)
	}
}

// TestAppealsModelVersion: rule-a runs two model versions; v2's appeals
// are overturned and v1's upheld. At the outcome where the pure judgement
// says so (the rule's count reached, v2's fall not shared by v1), the
// overturn_rate trip is v2's breaker's, rule:rule-a|model:v2, not the
// rule's: v2's next action is held, v1's is gated, the rule stays closed,
// and the incident's reversal candidates are v2's forwarded actions.
func TestAppealsModelVersion(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	bed.Kafka.CreateTopic(t, appealsTopic, 1)
	y := bed.YAML(1e6) + "appeals:\n  enabled: true\n  topic: " + appealsTopic + "\n  min_outcomes: 20\n  window: 50\n  precision_floor: 0.8\n"
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Breakers.Segments.ModelVersion {
		t.Fatal("breakers.segments.model_version is off by default; want on")
	}
	d := admintest.StartDaemon(t, cfg)
	now := time.Now()
	event := func(id, model, target string) testbed.Record {
		return testbed.KV(target, fmt.Sprintf(`{"action_id":%q,"rule_id":"rule-a","action":"ban_account","target":{"type":"account","id":%q},"occurred_at":%q,"model":{"name":"clf","version":%q}}`,
			id, target, now.UTC().Format(time.RFC3339Nano), model))
	}
	var actions []testbed.Record
	for i := range 30 {
		actions = append(actions, event(fmt.Sprintf("v1-%03d", i), "v1", fmt.Sprintf("u-%d", i)))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, actions...)
	bed.WaitRecords(t, admintest.Topics.Gated, 30)
	actions = nil
	for i := range 30 {
		actions = append(actions, event(fmt.Sprintf("v2-%03d", i), "v2", fmt.Sprintf("w-%d", i)))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, actions...)
	bed.WaitRecords(t, admintest.Topics.Gated, 60)

	keys, err := wire.NewKeys("bw-admin")
	if err != nil {
		t.Fatal(err)
	}
	st, err := appeals.NewStore(bed.Redis.Client(t), keys, cfg.Appeals.JoinFor, cfg.Appeals.JoinMax, cfg.Appeals.Window)
	if err != nil {
		t.Fatal(err)
	}
	admintest.WaitFor(t, 60*time.Second, func() string { return "v2-029 not joined" }, func() bool {
		_, _, err1 := st.Lookup(t.Context(), time.Now(), "v1-029")
		_, _, err2 := st.Lookup(t.Context(), time.Now(), "v2-029")
		return err1 == nil && err2 == nil
	})

	// v1 upheld, v2 overturned, interleaved; the trip is where Decide
	// first says so.
	var script []testbed.Record
	var rule, v2 []appeals.Sample
	tripAt := -1
	never := func(string, string) time.Time { return time.Time{} }
	for i := range 25 {
		for _, m := range []string{"v1", "v2"} {
			o := appeals.Upheld
			if m == "v2" {
				o = appeals.Overturned
			}
			script = append(script, outcome(fmt.Sprintf("%s-%03d", m, i), o))
			s := appeals.Sample{At: now.Truncate(time.Millisecond), Model: m, Overturned: o == appeals.Overturned}
			rule = append(rule, s)
			if m == "v2" {
				v2 = append(v2, s)
			}
			if tripAt >= 0 {
				continue
			}
			if v, ok := appeals.Decide(appeals.PolicyOf(cfg.Appeals), "rule-a", m, rule, v2, never, func(string) bool { return true }); ok {
				if !v.Version || v.Key.Model != "v2" {
					t.Fatalf("Decide at outcome %d = %+v; want v2's trip", len(script), v)
				}
				tripAt = len(script) - 1
			}
		}
	}
	if tripAt < 0 {
		t.Fatal("the script never trips")
	}
	committed := func() int64 {
		return bed.Kafka.CommittedOffsets(t, "bw-admin-test.appeals", appealsTopic)[0]
	}
	waitCommitted := func(n int) {
		t.Helper()
		admintest.WaitFor(t, 60*time.Second, func() string { return fmt.Sprintf("committed %d of %d", committed(), n) }, func() bool { return committed() >= int64(n) })
	}
	ruleA, modelV2 := breaker.RuleScope("rule-a"), breaker.ModelScope("rule-a", "v2")
	bed.Kafka.Produce(t, appealsTopic, script[:tripAt]...)
	waitCommitted(tripAt)
	for _, s := range []breaker.Scope{ruleA, modelV2} {
		if b := getBreaker(t, d.URL, s); b.State != breaker.Closed {
			t.Fatalf("%s is %s (%s) one outcome before the expected trip; want closed", s, b.State, b.Reason)
		}
	}
	// The estimates so far, per rule and per model version.
	p := appeals.PolicyOf(cfg.Appeals)
	est := estimates(t, d.URL)
	for _, k := range []appeals.Key{{Rule: "rule-a"}, {Rule: "rule-a", Model: "v1"}, {Rule: "rule-a", Model: "v2"}} {
		var ss []appeals.Sample
		for _, s := range rule[:tripAt] {
			if k.Model == "" || s.Model == k.Model {
				ss = append(ss, s)
			}
		}
		want := appeals.Judge(p, k, ss)
		got := est[k]
		if got.Outcomes != want.Outcomes || got.Overturned != want.Overturned || got.LeftOut != 0 || math.Abs(got.Below-want.Below) > 1e-9 || got.Trips != want.Trip {
			t.Errorf("estimate of %s = %+v; want %d outcomes, %d overturned, P(precision < floor) %.6f, trips %v", k, got, want.Outcomes, want.Overturned, want.Below, want.Trip)
		}
	}
	bed.Kafka.Produce(t, appealsTopic, script[tripAt:]...)
	waitCommitted(len(script))
	b := getBreaker(t, d.URL, modelV2)
	if b.State != breaker.Open || b.Reason != string(breaker.ReasonOverturnRate) || b.Explanation == nil || !strings.Contains(b.Explanation.Text, "model v2") {
		t.Fatalf("%s: %+v, explanation %+v; want tripped by overturn_rate, explained by model v2", modelV2, b.Status, b.Explanation)
	}
	if b := getBreaker(t, d.URL, ruleA); b.State != breaker.Closed {
		t.Errorf("%s is %s (%s); want closed: the fall is v2's", ruleA, b.State, b.Reason)
	}

	// After the trip, v2's outcomes are left out: they are the trip's.
	est = estimates(t, d.URL)
	if e := est[appeals.Key{Rule: "rule-a", Model: "v2"}]; e.Outcomes != 0 || e.LeftOut != 25 || e.Scope != string(modelV2) {
		t.Errorf("estimate of v2 after its trip = %+v; want its 25 outcomes left out", e)
	}
	if e := est[appeals.Key{Rule: "rule-a"}]; e.Outcomes != 25 || e.Overturned != 0 || e.LeftOut != 25 || e.Trips {
		t.Errorf("estimate of rule-a after v2's trip = %+v; want v1's 25 upheld judged, v2's 25 left out", e)
	}

	// v2's next action is held, v1's gated.
	bed.Kafka.Produce(t, admintest.Topics.Input, event("v2-next", "v2", "w-next"), event("v1-next", "v1", "u-next"))
	decided := func(topic, id string) bool {
		for _, r := range bed.Kafka.ReadAll(t, topic, 10*time.Second) {
			if strings.Contains(string(r.Value), `"`+id+`"`) {
				return true
			}
		}
		return false
	}
	admintest.WaitFor(t, 60*time.Second, func() string { return "v2-next held and v1-next gated" }, func() bool {
		return decided(admintest.Topics.Held, "v2-next") && decided(admintest.Topics.Gated, "v1-next")
	})
	if decided(admintest.Topics.Gated, "v2-next") || decided(admintest.Topics.Held, "v1-next") {
		t.Errorf("v2-next is gated or v1-next held; want v2's held and v1's gated")
	}

	// The incident's candidates are v2's forwarded actions.
	var l struct{ Incidents []api.Incident }
	var inc api.Incident
	admintest.WaitFor(t, 60*time.Second, func() string { return fmt.Sprintf("incidents %+v", l.Incidents) }, func() bool {
		l.Incidents = nil
		getJSON(t, d.URL, "/v1/incidents", &l)
		for _, i := range l.Incidents {
			if i.Scope == string(modelV2) && i.Held == 1 {
				inc = i
				return true
			}
		}
		return false
	})
	var pv api.ReversalPreview
	getJSON(t, d.URL, "/v1/incidents/"+url.PathEscape(inc.ID)+"/reversal", &pv)
	if pv.Candidates != 30 || pv.ModelVersion["v2"] != 30 || pv.Onset != "detector" {
		t.Errorf("preview of %s = %d candidates by model version %v, onset %q; want the 30 v2 actions from the detector's onset", inc.ID, pv.Candidates, pv.ModelVersion, pv.Onset)
	}
}

// estimates returns GET /v1/appeals by key.
func estimates(t *testing.T, base string) map[appeals.Key]api.AppealsEstimate {
	t.Helper()
	var es api.AppealsEstimates
	getJSON(t, base, "/v1/appeals", &es)
	out := map[appeals.Key]api.AppealsEstimate{}
	for _, e := range es.Estimates {
		out[appeals.Key{Rule: e.Rule, Model: e.ModelVersion}] = e
	}
	if es.Floor != 0.8 || es.MinOutcomes != 20 || es.Window != 50 || !es.Trip.Enabled {
		t.Errorf("GET /v1/appeals = %+v; want the policy (floor 0.8, 20 of 50) and the trip on", es)
	}
	return out
}

// getJSON decodes the answer of GET base+path as a viewer into out.
func getJSON(t *testing.T, base, path string, out any) {
	t.Helper()
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+admintest.Tokens[config.RoleViewer])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

package appeals_test

import (
	"encoding/json"
	"fmt"
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

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/statelog"
	"github.com/breakwater/breakwater/wire"
)

// TestChaosChecker feeds the fault campaign's checker outputs with one
// broken guarantee each, and a correct run, so that every count the
// campaign fails on is known to count.
func TestChaosChecker(t *testing.T) {
	trip := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	spike := breaker.Scope("rule:" + chaosSpikeRule)
	bad := malformed(1)[0]
	in := []testbed.Record{
		chaosRecord(1, "rule-00", "remove_pin", "k1", 1, trip.Add(-2*time.Second)),
		chaosRecord(2, "rule-00", "remove_pin", "k1", 2, trip.Add(-time.Second)),
		chaosRecord(3, chaosSpikeRule, "remove_pin", "k2", 1, trip.Add(-time.Second)),
		chaosRecord(4, chaosSpikeRule, "remove_pin", "k2", 2, trip.Add(time.Second)),
		bad,
	}
	stateRec := func(st breaker.State, gen uint64, at time.Time) testbed.Record {
		v, err := json.Marshal(statelog.Entry{Transition: breaker.Transition{Scope: spike, To: breaker.Status{State: st, Generation: gen}}, At: at})
		if err != nil {
			t.Fatal(err)
		}
		return testbed.Record{Key: []byte(spike), Value: v}
	}
	redelivered := func(r testbed.Record) testbed.Record {
		r.Headers = append(append([]testbed.Header(nil), r.Headers...), testbed.Header{Key: wire.HeaderReason, Value: []byte(decide.ReasonRedelivered)})
		return r
	}
	batch := func(r testbed.Record, id string) testbed.Record {
		r.Headers = append(append([]testbed.Header(nil), r.Headers...), testbed.Header{Key: wire.HeaderBatch, Value: []byte(id)})
		return r
	}
	// good is a correct run: the first three gated in key order, the
	// spiking rule's action after the trip held, the malformed one on
	// dead-letter.
	good := func() map[string][]testbed.Record {
		return map[string][]testbed.Record{
			testTopics.State:      {stateRec(breaker.Open, 1, trip)},
			testTopics.Gated:      {in[0], in[1], in[2]},
			testTopics.Held:       {in[3]},
			testTopics.DeadLetter: {in[4]},
		}
	}
	closedAfter := apiObs{replica: "r1", sent: trip.Add(time.Second), code: 200, state: "closed"}
	cases := []struct {
		name   string
		change func(m map[string][]testbed.Record, r *chaosResult)
		want   string // a violation containing this; "" for none
		check  func(r *chaosResult) bool
	}{
		{name: "correct run", change: func(map[string][]testbed.Record, *chaosResult) {}},
		{name: "redelivered duplicate", change: func(m map[string][]testbed.Record, _ *chaosResult) {
			m[testTopics.Gated] = append(m[testTopics.Gated], redelivered(in[1]))
		}, check: func(r *chaosResult) bool { return r.dups == 1 && r.afresh == 0 && r.unmarked == 0 }},
		{name: "write retried", change: func(m map[string][]testbed.Record, _ *chaosResult) {
			m[testTopics.Gated][1] = batch(in[1], "a-1")
			m[testTopics.Gated] = append(m[testTopics.Gated], batch(in[1], "a-1"))
		}, check: func(r *chaosResult) bool { return r.dups == 1 && r.afresh == 0 && r.unmarked == 1 }},
		{name: "write retried, marked", change: func(m map[string][]testbed.Record, _ *chaosResult) {
			m[testTopics.Gated][1] = batch(in[1], "a-1")
			m[testTopics.Gated] = append(m[testTopics.Gated], redelivered(batch(in[1], "a-1")))
		}, check: func(r *chaosResult) bool { return r.dups == 1 && r.afresh == 0 && r.unmarked == 0 }},
		{name: "duplicate decided afresh", change: func(m map[string][]testbed.Record, _ *chaosResult) {
			m[testTopics.Gated][1] = batch(in[1], "a-1")
			m[testTopics.Gated] = append(m[testTopics.Gated], batch(in[1], "b-7"))
		}, want: "1 second decisions", check: func(r *chaosResult) bool { return r.dups == 1 && r.afresh == 1 }},
		{name: "decided afresh on the other topic", change: func(m map[string][]testbed.Record, _ *chaosResult) {
			m[testTopics.Gated][1] = batch(in[1], "a-1")
			m[testTopics.Held] = append(m[testTopics.Held], batch(in[1], "b-7"))
		}, want: "1 second decisions", check: func(r *chaosResult) bool { return r.both == 1 && r.afresh == 1 }},
		{name: "malformed dead-lettered twice", change: func(m map[string][]testbed.Record, _ *chaosResult) {
			m[testTopics.DeadLetter] = []testbed.Record{batch(in[4], "a-1"), batch(in[4], "b-7")}
		}, check: func(r *chaosResult) bool { return r.dups == 1 && r.afresh == 0 }},
		{name: "lost", change: func(m map[string][]testbed.Record, _ *chaosResult) {
			m[testTopics.Gated] = m[testTopics.Gated][:2]
		}, want: "1 inputs lost"},
		{name: "both", change: func(m map[string][]testbed.Record, _ *chaosResult) {
			m[testTopics.Held] = append(m[testTopics.Held], in[0])
		}, want: "1 inputs on more than one output topic"},
		{name: "malformed gated", change: func(m map[string][]testbed.Record, _ *chaosResult) {
			m[testTopics.DeadLetter] = nil
			m[testTopics.Gated] = append(m[testTopics.Gated], in[4])
		}, want: "1 inputs on the wrong kind of topic"},
		{name: "order", change: func(m map[string][]testbed.Record, _ *chaosResult) {
			m[testTopics.Gated] = []testbed.Record{in[1], in[0], in[2]}
		}, want: "1 per-key order violations"},
		{name: "spiking rule gated after the trip", change: func(m map[string][]testbed.Record, _ *chaosResult) {
			m[testTopics.Held] = nil
			m[testTopics.Gated] = append(m[testTopics.Gated], in[3])
		}, want: "1 spiking-rule actions produced after the trip reached gated"},
		{name: "never tripped", change: func(m map[string][]testbed.Record, _ *chaosResult) {
			m[testTopics.State] = nil
		}, want: "never tripped"},
		{name: "state topic closes the trip", change: func(m map[string][]testbed.Record, _ *chaosResult) {
			m[testTopics.State] = append(m[testTopics.State], stateRec(breaker.Closed, 0, trip.Add(time.Minute)))
		}, want: "1 state topic records showing the tripped breaker not open"},
		{name: "API shows the trip closed", change: func(_ map[string][]testbed.Record, r *chaosResult) {
			r.api = []apiObs{closedAfter}
		}, want: "1 admin API answers showing the tripped breaker closed"},
		{name: "API closed before the trip or refused after it", change: func(_ map[string][]testbed.Record, r *chaosResult) {
			before := closedAfter
			before.sent = trip.Add(-time.Millisecond)
			refused := closedAfter
			refused.code, refused.state = 503, ""
			open := closedAfter
			open.state, open.gen = "open", 1
			r.api = []apiObs{before, refused, open}
		}, check: func(r *chaosResult) bool { return r.apiRefused == 1 && r.apiLag == time.Second }},
		{name: "ready while Redis was frozen", change: func(_ map[string][]testbed.Record, r *chaosResult) {
			r.frozeAt, r.thawAt = trip, trip.Add(time.Minute)
			r.readiness = []readyObs{
				{replica: "r1", sent: trip.Add(5 * time.Second), code: 200},          // before it could notice
				{replica: "r1", sent: trip.Add(20 * time.Second), code: 503},         // paused
				{replica: "r2", sent: trip.Add(30 * time.Second), code: 200},         // a lie
				{replica: "r2", sent: trip.Add(59500 * time.Millisecond), code: 200}, // about the thaw
				{replica: "r2", sent: trip.Add(2 * time.Minute), code: 200},          // after it
			}
		}, want: "1 /readyz answers 200 while Redis was frozen", check: func(r *chaosResult) bool { return r.readyLies == 1 }},
		{name: "self-exit", change: func(_ map[string][]testbed.Record, r *chaosResult) {
			r.selfExits = []string{"bw-r0-1 exited by itself"}
		}, want: "1 replica exits the campaign did not cause"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := &chaosResult{c: campaigns["small"], start: trip.Add(-time.Minute)}
			m := good()
			tc.change(m, res)
			checkRecords(t, res, in, m)
			res.checkAPI()
			res.checkReadiness()
			v := res.violations()
			switch {
			case tc.want == "" && len(v) > 0:
				t.Errorf("violations() = %q; want none", v)
			case tc.want != "" && (len(v) == 0 || !strings.Contains(strings.Join(v, "\n"), tc.want)):
				t.Errorf("violations() = %q; want one with %q", v, tc.want)
			}
			if tc.check != nil && !tc.check(res) {
				t.Errorf("counts: dups %d, afresh %d, unmarked %d, api refused %d, api lag %v", res.dups, res.afresh, res.unmarked, res.apiRefused, res.apiLag)
			}
		})
	}
}

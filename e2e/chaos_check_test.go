package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/statelog"
	"github.com/breakwater/breakwater/wire"
)

// chaosResult is what a fault campaign did and what the checker found.
type chaosResult struct {
	c        campaign
	seed     uint64
	start    time.Time
	duration time.Duration

	// The nemesis.
	kills, wipes, brokerRestarts, added, removed int
	outage                                       time.Duration

	// The outputs.
	produced     int
	notCommitted int64 // input records the group had not committed by the deadline
	gated, held  int   // distinct inputs
	deadLetter   int
	lost         int      // inputs on no output topic
	both         int      // inputs on more than one output topic
	misrouted    int      // valid inputs on dead-letter, malformed ones elsewhere
	dups         int      // copies beyond the first, all topics
	afresh       int      // second decisions: copies not marked redelivered from another batch than the first decision's
	unmarked     int      // copies beyond the first on gated not marked redelivered
	order        int      // per-key order violations on gated
	spikeAfter   int      // spiking-rule inputs produced after the trip that reached gated
	selfExits    []string // replica exits the campaign did not cause
	examples     []string // the first violations, for the failure message

	// The trip, as the state topic recorded it.
	tripped     bool
	tripAt      time.Time // the store's clock when the trip was decided
	tripGen     uint64
	stateClosed int // later state-topic records of the tripped scope that are not open

	// The trip as the admin API answered it.
	api        []apiObs
	apiClosed  int           // answers after the trip reporting it closed (or an older generation)
	apiLag     time.Duration // longest wait, over the replicas polled at the trip, for an open answer
	apiPolled  int
	apiRefused int // non-200 answers after the trip (503 while restoring, outage)

	// Readiness while Redis is frozen.
	frozeAt, thawAt time.Time
	readiness       []readyObs
	readyLies       int // /readyz 200 answers asked from chaosReadyGrace after the freeze until a second before the thaw

	notes []string
}

func (r *chaosResult) example(format string, args ...any) {
	if len(r.examples) < 20 {
		r.examples = append(r.examples, fmt.Sprintf(format, args...))
	}
}

// chaosAction is what the checker reads from a value.
type chaosAction struct {
	ActionID string `json:"action_id"`
	RuleID   string `json:"rule_id"`
	Target   struct {
		ID string `json:"id"`
	} `json:"target"`
	Seq int `json:"seq"`
}

// checkCampaign reads the state topic and every output topic and fills res.
func checkCampaign(t *testing.T, k *testbed.Kafka, res *chaosResult, written []testbed.Record) {
	t.Helper()
	topics := map[string][]testbed.Record{}
	for _, topic := range []string{testTopics.State, testTopics.Gated, testTopics.Held, testTopics.DeadLetter} {
		topics[topic] = k.ReadAll(t, topic, 5*time.Minute)
	}
	checkRecords(t, res, written, topics)
}

// checkRecords fills res from the input as written and the records of the
// state and output topics, each in partition and offset order.
func checkRecords(t *testing.T, res *chaosResult, written []testbed.Record, topics map[string][]testbed.Record) {
	t.Helper()
	// The trip: the first record of the spiking rule's scope moving to
	// open; after it, its scope must never be recorded as anything else.
	scope := breaker.Scope("rule:" + chaosSpikeRule)
	for _, rec := range topics[testTopics.State] {
		var e statelog.Entry
		if err := json.Unmarshal(rec.Value, &e); err != nil {
			t.Fatalf("state topic p%d@%d: %v: %q", rec.Partition, rec.Offset, err, rec.Value)
		}
		if e.Scope != scope {
			if e.To.State != breaker.Closed {
				res.notes = append(res.notes, fmt.Sprintf("scope %s moved to %s (generation %d) at %s", e.Scope, e.To.State, e.To.Generation, e.At.Format(time.RFC3339Nano)))
			}
			continue
		}
		switch {
		case e.To.State == breaker.Open && (!res.tripped || e.To.Generation == res.tripGen):
			// The state topic is compacted: the trip's own record may be
			// gone, replaced by a later record of the same status (one
			// restored after a Redis wipe). The trip time is the status's
			// TrippedAt, else the record's decision time, else its
			// timestamp; the earliest wins.
			at := e.To.TrippedAt
			if at.IsZero() {
				at = e.At
				res.notes = append(res.notes, fmt.Sprintf("state topic p%d@%d: an open status of %s without tripped_at", rec.Partition, rec.Offset, scope))
			}
			if at.IsZero() {
				at = rec.Timestamp
				res.notes = append(res.notes, fmt.Sprintf("state topic p%d@%d: an open status of %s without at", rec.Partition, rec.Offset, scope))
			}
			if !res.tripped || at.Before(res.tripAt) {
				res.tripAt = at
			}
			res.tripped, res.tripGen = true, e.To.Generation
		case res.tripped && (e.To.State != breaker.Open || e.To.Generation < res.tripGen):
			res.stateClosed++
			res.example("state topic p%d@%d: %s recorded %s generation %d after its trip (generation %d)", rec.Partition, rec.Offset, scope, e.To.State, e.To.Generation, res.tripGen)
		}
	}

	in := newInput(t, written)
	perIn := make([]map[string]int, len(written))
	decidedBy := make([]map[string]bool, len(written)) // the batches of the copies not marked redelivered
	unmarkedGated := make([]int, len(written))         // copies on gated not marked redelivered
	type keyPos struct{ seq, in int }
	lastGated := map[string]keyPos{} // key -> last first-copy seq on gated
	for _, topic := range []string{testTopics.Gated, testTopics.Held, testTopics.DeadLetter} {
		for _, rec := range topics[topic] {
			i, ok := in.byValue[string(rec.Value)]
			if !ok {
				res.example("%s p%d@%d: value %q was never produced", topic, rec.Partition, rec.Offset, rec.Value)
				res.misrouted++
				continue
			}
			if perIn[i] == nil {
				perIn[i] = map[string]int{}
			}
			perIn[i][topic]++
			if why, _ := header(rec, wire.HeaderReason); why != decide.ReasonRedelivered && topic == testTopics.Gated {
				unmarkedGated[i]++
			}
			if why, _ := header(rec, wire.HeaderReason); why != decide.ReasonRedelivered && topic != testTopics.DeadLetter {
				// A copy not answered from a first decision: the batch
				// that decided it tells a write retried (the same batch)
				// from a second decision (another one). A dead letter is
				// decided from the input's bytes alone, every time, and
				// is not recorded: a redelivered one is decided again, the
				// same way (on another topic it counts as both).
				if decidedBy[i] == nil {
					decidedBy[i] = map[string]bool{}
				}
				b, _ := header(rec, wire.HeaderBatch)
				if b == "" {
					b = fmt.Sprintf("%s p%d@%d", topic, rec.Partition, rec.Offset) // no batch: a decision of its own
				}
				decidedBy[i][b] = true
			}
			if n := perIn[i][topic]; n > 1 {
				res.dups++
				continue
			}
			if in.bad[i] != (topic == testTopics.DeadLetter) {
				res.misrouted++
				res.example("input p%d@%d (%s) went to %s", in.recs[i].Partition, in.recs[i].Offset, describe(in, i), topic)
			}
			if topic != testTopics.Gated || in.bad[i] {
				continue
			}
			var a chaosAction
			if err := json.Unmarshal(rec.Value, &a); err != nil {
				t.Fatalf("gated p%d@%d: %v", rec.Partition, rec.Offset, err)
			}
			// Per-key order: the first copies of a key's actions on gated
			// come in the order of their sequence numbers (a key is on one
			// partition, read in offset order).
			if last, ok := lastGated[a.Target.ID]; ok && a.Seq < last.seq {
				res.order++
				res.example("key %s: gated seq %d (input p%d@%d) after seq %d (input p%d@%d)", a.Target.ID, a.Seq,
					in.recs[i].Partition, in.recs[i].Offset, last.seq, in.recs[last.in].Partition, in.recs[last.in].Offset)
			}
			lastGated[a.Target.ID] = keyPos{seq: a.Seq, in: i}
			// No action of the spiking rule that entered the input after
			// the trip was decided may be forwarded.
			if a.RuleID == chaosSpikeRule && res.tripped && in.recs[i].Timestamp.After(res.tripAt) {
				res.spikeAfter++
				res.example("spiking-rule action %s produced %v after the trip is on gated (p%d@%d)", a.ActionID,
					in.recs[i].Timestamp.Sub(res.tripAt).Round(time.Millisecond), rec.Partition, rec.Offset)
			}
		}
	}
	for _, n := range unmarkedGated {
		res.unmarked += max(n-1, 0)
	}
	for i, m := range perIn {
		if n := len(decidedBy[i]); n > 1 {
			res.afresh += n - 1
			if res.afresh <= 3 {
				res.notes = append(res.notes, fmt.Sprintf("input p%d@%d (%s) was decided by %d batches: %v", in.recs[i].Partition, in.recs[i].Offset, describe(in, i), n, slices.Sorted(maps.Keys(decidedBy[i]))))
			}
		}
		switch len(m) {
		case 0:
			res.lost++
			res.example("input p%d@%d (%s) is on no output topic", in.recs[i].Partition, in.recs[i].Offset, describe(in, i))
		case 1:
		default:
			res.both++
			res.example("input p%d@%d (%s) is on several output topics %v", in.recs[i].Partition, in.recs[i].Offset, describe(in, i), m)
		}
		for topic := range m {
			switch topic {
			case testTopics.Gated:
				res.gated++
			case testTopics.Held:
				res.held++
			default:
				res.deadLetter++
			}
		}
	}
}

// checkAPI compares what every replica's admin API answered with the trip.
func (r *chaosResult) checkAPI() {
	if !r.tripped {
		return
	}
	first := map[string]time.Time{}  // replica -> first open answer after the trip
	polled := map[string]time.Time{} // replica -> first answer sent after the trip
	type tally struct{ open, closed, refused int }
	tallies := map[string]*tally{}
	var order []string
	for _, o := range r.api {
		if !o.sent.After(r.tripAt) {
			continue
		}
		if _, ok := polled[o.replica]; !ok {
			polled[o.replica] = o.sent
			tallies[o.replica] = &tally{}
			order = append(order, o.replica)
		}
		tl := tallies[o.replica]
		if o.code != 200 {
			r.apiRefused++
			tl.refused++
			continue
		}
		r.apiPolled++
		if o.state != string(breaker.Open) || o.gen < r.tripGen {
			r.apiClosed++
			tl.closed++
			r.example("replica %s answered %s generation %d at +%v, %v after the trip (generation %d)",
				o.replica, o.state, o.gen, o.sent.Sub(r.start).Round(time.Millisecond), o.sent.Sub(r.tripAt).Round(time.Millisecond), r.tripGen)
			continue
		}
		tl.open++
		if _, ok := first[o.replica]; !ok {
			first[o.replica] = o.sent
		}
	}
	// The trip over time as every replica's API answered it.
	var b strings.Builder
	fmt.Fprintf(&b, "the trip (generation %d, +%.1fs) as each replica's admin API answered after it: open/closed/refused answers, first open answer", r.tripGen, r.tripAt.Sub(r.start).Seconds())
	for _, rep := range order {
		tl := tallies[rep]
		fo := "never"
		if f, ok := first[rep]; ok {
			fo = fmt.Sprintf("+%.1fs", f.Sub(r.start).Seconds())
		}
		fmt.Fprintf(&b, "\n  %-10s %4d/%d/%d %s", rep, tl.open, tl.closed, tl.refused, fo)
	}
	r.notes = append(r.notes, b.String())
	// The lag is measured for the replicas that were already asking at the
	// trip (their first answer after it came within two polls).
	for rep, p := range polled {
		if p.Sub(r.tripAt) > 2*chaosPoll+2*time.Second {
			continue
		}
		if f, ok := first[rep]; ok {
			r.apiLag = max(r.apiLag, f.Sub(r.tripAt))
		}
	}
}

// violations lists every broken guarantee.
func (r *chaosResult) violations() []string {
	var v []string
	add := func(n int, what string) {
		if n > 0 {
			v = append(v, fmt.Sprintf("%d %s", n, what))
		}
	}
	if r.notCommitted > 0 {
		v = append(v, fmt.Sprintf("%d input records not committed %v after the traffic ended", r.notCommitted, r.c.catchUp))
	}
	if !r.tripped {
		v = append(v, fmt.Sprintf("the spiking rule's breaker never tripped (no open record of rule:%s on the state topic)", chaosSpikeRule))
	}
	add(r.lost, "inputs lost (on no output topic)")
	add(r.both, "inputs on more than one output topic (never both)")
	add(r.misrouted, "inputs on the wrong kind of topic (valid on dead-letter, malformed elsewhere, or unknown)")
	add(r.afresh, "second decisions of an input (copies not marked redelivered from more than one batch)")
	add(r.order, "per-key order violations on gated")
	add(r.spikeAfter, "spiking-rule actions produced after the trip reached gated")
	add(len(r.selfExits), "replica exits the campaign did not cause:\n"+strings.Join(r.selfExits, "\n"))
	add(r.apiClosed, "admin API answers showing the tripped breaker closed")
	add(r.readyLies, fmt.Sprintf("/readyz answers 200 while Redis was frozen (from %v after the freeze)", chaosReadyGrace))
	add(r.stateClosed, "state topic records showing the tripped breaker not open")
	if len(v) > 0 && len(r.examples) > 0 {
		v = append(v, "first findings:\n  "+strings.Join(r.examples, "\n  "))
	}
	return v
}

// row is the campaign's line of the table.
func (r *chaosResult) row() string {
	trip := "none"
	if r.tripped {
		trip = fmt.Sprintf("+%.1fs g%d", r.tripAt.Sub(r.start).Seconds(), r.tripGen)
	}
	return fmt.Sprintf("%-5s %-20d %7d %7d %6d %4d %4d %5d %6d %5d %8d %6d %5d %5d %5d %5d %5d %6d %-12s %6s %5d %5d %4s %4d %5s %6s",
		r.c.name, r.seed, r.produced, r.gated, r.held, r.deadLetter, r.lost, r.both, r.dups, r.afresh, r.unmarked, r.order,
		r.spikeAfter, len(r.selfExits), r.apiClosed, r.readyLies, r.stateClosed, r.notCommitted, trip, fmt.Sprintf("%.1fs", r.apiLag.Seconds()),
		r.kills, r.wipes, fmt.Sprintf("%.0fs", r.outage.Seconds()), r.brokerRestarts, fmt.Sprintf("%d/%d", r.added, r.removed),
		fmt.Sprintf("%.0fs", r.duration.Seconds()))
}

// chaosReadyGrace is how long after Redis froze a replica may still answer
// /readyz 200: its next store call must time out (redis.timeout 1s) before
// it pauses.
const chaosReadyGrace = 10 * time.Second

// checkReadiness counts the /readyz answers of 200 asked while Redis was
// frozen, from chaosReadyGrace after the freeze until a second before the
// thaw: a paused replica, or one that cannot restore or join, is not ready.
func (r *chaosResult) checkReadiness() {
	if r.frozeAt.IsZero() || r.thawAt.IsZero() {
		return
	}
	from, to := r.frozeAt.Add(chaosReadyGrace), r.thawAt.Add(-time.Second)
	byStatus := map[string]int{}
	for _, o := range r.readiness {
		if o.sent.Before(from) || !o.sent.Before(to) {
			continue
		}
		var b struct {
			Status string `json:"status"`
		}
		_ = json.Unmarshal([]byte(o.body), &b)
		byStatus[fmt.Sprintf("%d %s", o.code, b.Status)]++
		if o.code != 200 {
			continue
		}
		r.readyLies++
		r.example("%s answered /readyz 200 %q %v after Redis froze", o.replica, o.body, o.sent.Sub(r.frozeAt).Round(time.Millisecond))
	}
	r.notes = append(r.notes, fmt.Sprintf("/readyz answers while Redis was frozen (from %v after the freeze until a second before the thaw), by code and status: %v", chaosReadyGrace, byStatus))
}

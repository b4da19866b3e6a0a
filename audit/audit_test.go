package audit_test

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/internal/kafkaconn"
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

type bed struct {
	k *testbed.Kafka
	r *testbed.Redis
}

func newTrail(t *testing.T, b bed, size int) *audit.Trail {
	t.Helper()
	tr, err := audit.New(audit.Options{
		Kafka: kafkaconn.Plain(b.k.Addrs()...), Topic: "moderation.audit", WriteTimeout: 10 * time.Second,
		Redis: b.r.Client(t), Prefix: "bw-test", IndexSize: size,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func newBed(t *testing.T) bed {
	k := testbed.StartKafka(t)
	k.CreateTopic(t, "moderation.audit", 3)
	return bed{k: k, r: testbed.StartRedis(t)}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func transition(scope breaker.Scope, gen uint64, at time.Time) breaker.Transition {
	from := breaker.Initial()
	from.Generation = gen - 1
	to := from
	to.State, to.Auto, to.Generation, to.Since, to.Reason = breaker.Open, breaker.Open, gen, at, string(breaker.ReasonMaxActions)
	return breaker.Transition{Scope: scope, From: from, To: to}
}

func ids(es []audit.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("%s/%s/%s", e.Kind, e.Scope, e.At.Format("15:04"))
	}
	return out
}

func TestWriteQueryRebuild(t *testing.T) {
	b := newBed(t)
	tr := newTrail(t, b, 1000)
	ctx := ctxT(t)
	a, r := breaker.RuleScope("a"), breaker.RuleScope("b")
	if err := tr.Record(ctx, []breaker.Transition{transition(a, 1, t0), transition(r, 1, t0.Add(time.Minute))}); err != nil {
		t.Fatal(err)
	}
	to := breaker.Initial()
	to.State = breaker.ForcedOpen
	if err := tr.Write(ctx, audit.Entry{AuditEntry: api.AuditEntry{At: t0.Add(2 * time.Minute), Actor: "alice", Kind: audit.KindOverride, Scope: a, Reason: "bad model", To: &to}}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		q    audit.Query
		want []string
	}{
		{"all", audit.Query{Limit: 10}, []string{"override/rule:a/10:02", "transition/rule:b/10:01", "transition/rule:a/10:00"}},
		{"limit", audit.Query{Limit: 1}, []string{"override/rule:a/10:02"}},
		{"scope", audit.Query{Scope: a, Limit: 10}, []string{"override/rule:a/10:02", "transition/rule:a/10:00"}},
		{"since", audit.Query{Since: t0.Add(time.Minute), Limit: 10}, []string{"override/rule:a/10:02", "transition/rule:b/10:01"}},
		{"none", audit.Query{Scope: "global", Limit: 10}, []string{}},
	}
	check := func(when string) {
		t.Helper()
		for _, tt := range tests {
			got, err := tr.Query(ctx, tt.q)
			if err != nil {
				t.Fatalf("%s: Query(%s) = %v", when, tt.name, err)
			}
			if fmt.Sprint(ids(got)) != fmt.Sprint(tt.want) {
				t.Errorf("%s: Query(%s) = %v; want %v", when, tt.name, ids(got), tt.want)
			}
		}
	}
	check("fresh")
	got, _ := tr.Query(ctx, audit.Query{Scope: a, Limit: 1})
	if got[0].Actor != "alice" || got[0].Reason != "bad model" || got[0].To == nil || got[0].To.State != breaker.ForcedOpen {
		t.Errorf("override entry = %+v; want actor, reason and the status after", got[0])
	}

	// Redis loses everything: the index comes back from the topic.
	b.r.Restart(t)
	check("after a Redis restart")

	// A second rebuild (another replica) adds nothing.
	n, err := tr.Rebuild(ctx)
	if err != nil || n != 3 {
		t.Fatalf("Rebuild() = %d, %v; want 3 entries read", n, err)
	}
	check("after a second rebuild")
}

func TestIndexIsCapped(t *testing.T) {
	b := newBed(t)
	tr := newTrail(t, b, 5)
	ctx := ctxT(t)
	var ts []breaker.Transition
	for i := range 12 {
		ts = append(ts, transition(breaker.RuleScope("a"), uint64(i+1), t0.Add(time.Duration(i)*time.Minute)))
	}
	if err := tr.Record(ctx, ts); err != nil {
		t.Fatal(err)
	}
	got, err := tr.Query(ctx, audit.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || !got[0].At.Equal(t0.Add(11*time.Minute)) || !got[4].At.Equal(t0.Add(7*time.Minute)) {
		t.Errorf("Query() = %v; want the 5 newest", ids(got))
	}
	b.r.Restart(t)
	got, err = tr.Query(ctx, audit.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || !got[0].At.Equal(t0.Add(11*time.Minute)) {
		t.Errorf("after a rebuild Query() = %v; want the 5 newest", ids(got))
	}
}

func TestOptionsValidate(t *testing.T) {
	if _, err := audit.New(audit.Options{}); err == nil {
		t.Error("New(Options{}) = nil error; want one naming a field")
	}
}

// TestStepsFoldIntoOneEntry: a standing decision that decides over many
// steps and a release in many batches are one entry each in the index,
// with their progress, so that an incident's own entries (an
// acknowledgement, an owner, a note) stay among its newest; the journal
// keeps every step. The same holds after a rebuild and when a step is
// indexed twice.
func TestStepsFoldIntoOneEntry(t *testing.T) {
	b := newBed(t)
	tr := newTrail(t, b, 1000)
	ctx := ctxT(t)
	scope, inc := breaker.RuleScope("a"), "rule:a@1"
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	entry := func(s int, kind string) audit.Entry {
		return audit.Entry{AuditEntry: api.AuditEntry{At: at(s), Actor: "alice", Kind: kind, Scope: scope, Incident: inc}}
	}
	standing := entry(0, audit.KindStanding)
	standing.ID, standing.Decision, standing.Count = audit.NewID(), "reject", 40
	head := []audit.Entry{entry(1, audit.KindAcknowledge), entry(2, audit.KindOwner), entry(3, audit.KindNote), standing}
	if err := tr.Write(ctx, head...); err != nil {
		t.Fatal(err)
	}
	const steps = 30
	var journal []audit.Entry
	for i := range steps {
		d := entry(10+i, audit.KindReject)
		d.ID, d.Via, d.Group, d.Count, d.IDs = audit.NewID(), audit.ViaStanding, standing.ID, 20+i%7, []string{fmt.Sprintf("x-%d", i)}
		r := entry(10+i, audit.KindRelease)
		r.ID, r.Actor, r.Group, r.Count, r.IDs = audit.NewID(), audit.System, audit.ReleaseGroup(inc), 20+i%7, []string{fmt.Sprintf("x-%d", i)}
		journal = append(journal, d, r)
		if err := tr.Write(ctx, d, r); err != nil {
			t.Fatal(err)
		}
	}
	// A retried write indexes its step once.
	if err := tr.Write(ctx, journal[4], journal[5]); err != nil {
		t.Fatal(err)
	}
	wantCount := 0
	for i := range steps {
		wantCount += 20 + i%7
	}
	check := func(when string) {
		t.Helper()
		got, err := tr.Query(ctx, audit.Query{Incident: inc, Limit: 6})
		if err != nil {
			t.Fatalf("%s: Query = %v", when, err)
		}
		kinds := map[string]int{}
		for _, e := range got {
			kinds[e.Kind]++
			switch e.Kind {
			case audit.KindStanding:
				if p := e.Progress; p == nil || p.Count != wantCount || p.Steps != steps || !p.First.Equal(at(10)) || !p.Last.Equal(at(10+steps-1)) {
					t.Errorf("%s: the standing entry's progress = %+v; want %d actions in %d steps, %s to %s", when, p, wantCount, steps, at(10), at(10+steps-1))
				}
			case audit.KindRelease:
				if p := e.Progress; p == nil || p.Count != wantCount || p.Steps != steps || !e.At.Equal(at(10)) {
					t.Errorf("%s: the release entry = %+v, progress %+v; want its first batch with %d actions in %d batches", when, e.AuditEntry, p, wantCount, steps)
				}
			}
		}
		want := map[string]int{audit.KindAcknowledge: 1, audit.KindOwner: 1, audit.KindNote: 1, audit.KindStanding: 1, audit.KindRelease: 1}
		if fmt.Sprint(kinds) != fmt.Sprint(want) {
			t.Errorf("%s: the incident's entries are %v (%v); want one of each: %v", when, kinds, ids(got), want)
		}
	}
	check("fresh")
	// The topic keeps every step: the review index is rebuilt from them.
	n := 0
	if err := tr.Scan(ctx, func(e audit.Entry) error {
		if e.Group != "" {
			n++
		}
		return nil
	}); err != nil || n != 2*steps+2 {
		t.Errorf("Scan found %d steps, %v; want %d (every write, the retried one too)", n, err, 2*steps+2)
	}
	b.r.Restart(t)
	check("after a Redis restart")
	if _, err := tr.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	check("after a second rebuild")
}

// TestEntryBuildsOnAPI: an audit entry is the admin API's (api.AuditEntry,
// the one definition of its fields) plus what only the journal keeps,
// under JSON names of their own: nothing is mirrored.
func TestEntryBuildsOnAPI(t *testing.T) {
	apiNames := map[string]bool{}
	for f := range reflect.TypeFor[api.AuditEntry]().Fields() {
		apiNames[strings.Split(f.Tag.Get("json"), ",")[0]] = true
	}
	embedded := false
	for f := range reflect.TypeFor[audit.Entry]().Fields() {
		if f.Anonymous && f.Type == reflect.TypeFor[api.AuditEntry]() {
			embedded = true
			continue
		}
		if name := strings.Split(f.Tag.Get("json"), ",")[0]; apiNames[name] || name == "" {
			t.Errorf("audit.Entry's field %s (json %q) mirrors or hides a field of api.AuditEntry", f.Name, name)
		}
	}
	if !embedded {
		t.Error("audit.Entry does not embed api.AuditEntry")
	}
}

// TestRetriedWriteIndexedOnce: a write retried after its answer was lost
// puts a second copy of the same entry (same id, same bytes) on the audit
// topic; the index, fresh and rebuilt from the topic, holds it once. (A
// retried step is folded once: TestStepsFoldIntoOneEntry.)
func TestRetriedWriteIndexedOnce(t *testing.T) {
	b := newBed(t)
	tr := newTrail(t, b, 1000)
	ctx := ctxT(t)
	to := breaker.Initial()
	to.State = breaker.ForcedOpen
	e := audit.Entry{AuditEntry: api.AuditEntry{ID: audit.NewID(), At: t0, Actor: "alice", Kind: audit.KindOverride, Scope: breaker.RuleScope("a"), Reason: "bad model", To: &to}}
	for range 2 {
		if err := tr.Write(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	copies := 0
	if err := tr.Scan(ctx, func(got audit.Entry) error {
		if got.ID == e.ID {
			copies++
		}
		return nil
	}); err != nil || copies != 2 {
		t.Fatalf("Scan found %d copies of the entry, %v; want 2 on the topic", copies, err)
	}
	check := func(when string) {
		t.Helper()
		got, err := tr.Query(ctx, audit.Query{Limit: 10})
		if err != nil {
			t.Fatalf("%s: Query = %v", when, err)
		}
		if len(got) != 1 || got[0].ID != e.ID {
			t.Errorf("%s: Query = %v; want the entry once", when, ids(got))
		}
	}
	check("fresh")
	b.r.Restart(t)
	check("after a Redis restart (rebuilt from the topic)")
}

package alert

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/breakwater/breakwater/breaker"
)

func TestFromTransition(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	closed := breaker.Status{State: breaker.Closed, Auto: breaker.Closed, Generation: 4}
	open := breaker.Status{State: breaker.Open, Auto: breaker.Open, Generation: 5, Since: at, TrippedAt: at, Reason: "max_actions"}
	forcedOpen := breaker.Status{State: breaker.ForcedOpen, Auto: breaker.Closed, Generation: 6, Since: at, Actor: "bob", Reason: "bad model", Until: at.Add(time.Hour)}
	probation := breaker.Status{State: breaker.Probation, Auto: breaker.Probation, Generation: 6, Since: at, Actor: "alice"}
	shadowTrip := breaker.Status{State: breaker.Shadow, Auto: breaker.Open, Generation: 5, Since: at, Actor: "", Reason: "baseline_factor"}
	shadow := breaker.Status{State: breaker.Shadow, Auto: breaker.Closed, Generation: 4}
	forcedClosed := breaker.Status{State: breaker.ForcedClosed, Auto: breaker.Open, Generation: 6, Since: at, Actor: "carol", Reason: "known spike"}
	for _, tc := range []struct {
		name     string
		from, to breaker.Status
		ok       bool
		kind     Kind
		id       string
		incident string
		severity Severity
	}{
		{"trip", closed, open, true, KindTripped, "trip/rule:r/5", "rule:r@5", SeverityCritical},
		{"trip in shadow", shadow, shadowTrip, true, KindTripped, "trip/rule:r/5", "rule:r@5", SeverityWarning},
		{"reset after trip", open, probation, true, KindResolved, "resolve/rule:r/6", "rule:r@5", SeverityCritical},
		{"forced closed over a trip", open, forcedClosed, true, KindResolved, "resolve/rule:r/6", "rule:r@5", SeverityCritical},
		{"kill switch", closed, forcedOpen, true, KindOverrideSet, "override/rule:r/6", "rule:r@6", SeverityWarning},
		{"kill switch lifted", forcedOpen, probation, true, KindResolved, "resolve/rule:r/6", "rule:r@6", SeverityCritical},
		{"probation ends", probation, closed, false, "", "", "", ""},
		{"nothing changes", closed, closed, false, "", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := breaker.Transition{Scope: breaker.RuleScope("r"), From: tc.from, To: tc.to, Counts: breaker.Counts{Window: 10, Baseline: 1}}
			e, ok := FromTransition(tr, describer)
			if ok != tc.ok {
				t.Fatalf("FromTransition(%s) ok = %v; want %v", tc.name, ok, tc.ok)
			}
			if !ok {
				return
			}
			if e.Kind != tc.kind || e.ID != tc.id || e.Incident != tc.incident || e.Severity != tc.severity {
				t.Errorf("FromTransition(%s) = kind %s id %s incident %s severity %s; want %s %s %s %s",
					tc.name, e.Kind, e.ID, e.Incident, e.Severity, tc.kind, tc.id, tc.incident, tc.severity)
			}
			if e.DedupKey != DedupKey(e.Incident) || e.Link != "https://bw.example.com/v1/incidents/"+e.Incident {
				t.Errorf("dedup %q link %q; want the incident's", e.DedupKey, e.Link)
			}
			if err := e.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}

// TestTargetedTrip checks that the trip of a global breaker that holds only
// the rules driving it names them, in the figures, the summary and Slack.
func TestTargetedTrip(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	held := []breaker.Scope{breaker.RuleScope("a"), breaker.RuleScope("b")}
	tr := breaker.Transition{
		Scope: breaker.Global,
		From:  breaker.Status{State: breaker.Closed, Auto: breaker.Closed},
		To:    breaker.Status{State: breaker.Open, Auto: breaker.Open, Generation: 1, Since: at, TrippedAt: at, Reason: "baseline_factor", HeldScopes: held},
	}
	e, ok := FromTransition(tr, describer)
	if !ok || e.Kind != KindTripped {
		t.Fatalf("FromTransition = %+v, %v; want a trip", e, ok)
	}
	if len(e.Figures.HeldScopes) != 2 || !strings.Contains(e.Summary, "the actions of rule:a, rule:b are held") {
		t.Errorf("figures %v, summary %q; want the held rules named", e.Figures.HeldScopes, e.Summary)
	}
	if text := slackEvent(e); !strings.Contains(text, "holding only rule:a, rule:b") {
		t.Errorf("Slack facts %q; want the held rules", text)
	}
	tr.To.HeldScopes = nil
	if e, _ := FromTransition(tr, describer); len(e.Figures.HeldScopes) != 0 || !strings.Contains(e.Summary, "its actions are held") {
		t.Errorf("a global trip holding everything: figures %v, summary %q", e.Figures.HeldScopes, e.Summary)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 10 ", 10 * time.Second},
		{"-1", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"99999999", 24 * time.Hour},
	} {
		if got := retryAfter(tc.in, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %s; want %s", tc.in, got, tc.want)
		}
	}
}

// slackWithin checks a message against Slack's limits.
func slackWithin(t *testing.T, m SlackMessage) {
	t.Helper()
	if len(m.Blocks) > slackMaxBlocks {
		t.Errorf("%d blocks; Slack allows %d", len(m.Blocks), slackMaxBlocks)
	}
	total := 0
	for i, b := range m.Blocks {
		if b.Text != nil {
			n := utf8.RuneCountInString(b.Text.Text)
			total += n
			if b.Type == "header" && n > slackHeaderText || n > slackSection {
				t.Errorf("block %d (%s) has %d characters", i, b.Type, n)
			}
			if !utf8.ValidString(b.Text.Text) {
				t.Errorf("block %d is not valid UTF-8", i)
			}
		}
	}
	if total > slackTotal+slackHeaderText+slackSection || utf8.RuneCountInString(m.Text) > slackText {
		t.Errorf("message has %d characters in blocks, %d in text", total, utf8.RuneCountInString(m.Text))
	}
}

func TestSlackLimits(t *testing.T) {
	long := strings.Repeat("é<&>", 2000)
	var evs []Event
	for i := range 200 {
		evs = append(evs, Event{
			ID: long, Kind: KindTripped, Scope: breaker.Scope(long), Summary: long, Incident: "x@1",
			Figures: Figures{Reason: long, TopActions: []Count{{long, i}}},
		})
	}
	m := SlackMessageOf(Notification{Key: "k", Kind: KindTripped, Severity: SeverityCritical, Events: evs})
	slackWithin(t, m)
	if !strings.Contains(m.Blocks[len(m.Blocks)-1].Elements[0].Text, "more not shown") {
		t.Errorf("last block = %+v; want how many events are not shown", m.Blocks[len(m.Blocks)-1])
	}
	if strings.Contains(m.Blocks[1].Text.Text, "<&>") {
		t.Errorf("section text is not escaped for mrkdwn")
	}
}

// FuzzSlackMessage lays out arbitrary summaries and checks the limits hold.
func FuzzSlackMessage(f *testing.F) {
	f.Add("breaker rule:a tripped", "rule:a", 1)
	f.Add(strings.Repeat("ü", 5000), "<b>", 60)
	f.Add("\xff\xfe", "", 0)
	f.Fuzz(func(t *testing.T, summary, scope string, n int) {
		n = min(max(n, 0), 120)
		evs := make([]Event, n)
		for i := range evs {
			evs[i] = Event{ID: "e", Kind: KindTripped, Scope: breaker.Scope(scope), Summary: summary}
		}
		m := SlackMessageOf(Notification{Key: "k", Kind: KindTripped, Severity: SeverityWarning, Events: evs})
		if _, err := json.Marshal(m); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(summary) && utf8.ValidString(scope) {
			slackWithin(t, m)
		}
	})
}

// FuzzRetryAfter parses arbitrary Retry-After headers.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "Wed, 21 Oct 2026 07:28:00 GMT", "-5", "1e9"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		if d := retryAfter(s, now); d < 0 || d > 24*time.Hour {
			t.Fatalf("retryAfter(%q) = %s; want within [0, 24h]", s, d)
		}
	})
}

// FuzzEventJSON decodes stored events as the dispatcher does.
func FuzzEventJSON(f *testing.F) {
	e, _ := FromTransition(tripOf("global", 2, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), describer)
	b, _ := json.Marshal(e)
	f.Add(b)
	f.Add([]byte(`{"id":"x","kind":"nope"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Event
		if err := jsonUnmarshal(data, &e); err != nil {
			return
		}
		if e.Validate() != nil {
			return
		}
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("re-encode a valid event: %v", err)
		}
		var back Event
		if err := jsonUnmarshal(again, &back); err != nil || back.ID != e.ID || back.Kind != e.Kind {
			t.Fatalf("round trip = %+v, %v; want %+v", back, err, e)
		}
	})
}

// TestGroupSummaryNamesIncidents checks that a group holding two trips of
// one breaker (a reset and a re-trip within one group window) names both
// incidents rather than the scope twice.
func TestGroupSummaryNamesIncidents(t *testing.T) {
	tests := []struct {
		name   string
		events []Event
		want   string
	}{
		{"two trips of one breaker", []Event{
			{Scope: "rule:rule-02", Incident: "rule:rule-02@1"},
			{Scope: "rule:rule-02", Incident: "rule:rule-02@3"},
		}, "2 breakers tripped: rule:rule-02@1, rule:rule-02@3"},
		{"no incident", []Event{{Scope: "global"}, {ID: "lag/1"}}, "2 breakers tripped: global, lag/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := Notification{Kind: KindTripped, Events: tt.events}
			if got := groupSummary(n, 200); got != tt.want {
				t.Errorf("groupSummary(%+v) = %q; want %q", tt.events, got, tt.want)
			}
		})
	}
}

// TestTripExplains: a trip's event carries its explanation (detector,
// observed against expected, S and h, the estimated onset) in its figures
// and its summary.
func TestTripExplains(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	onset := at.Add(-40 * time.Minute)
	closed := breaker.Status{State: breaker.Closed, Auto: breaker.Closed, Generation: 4}
	open := breaker.Status{
		State: breaker.Open, Auto: breaker.Open, Generation: 5, Since: at, TrippedAt: at, Reason: string(breaker.ReasonEvidence),
		Onset: onset, Trip: breaker.Trip{Counts: breaker.Counts{Evidence: 10.4, Expected: 8.3, Observed: 15, EvidenceReady: true}},
	}
	d := describer
	d.Policy = func(breaker.Scope) breaker.Policy {
		return breaker.Policy{Window: time.Minute, EvidenceBin: 5 * time.Minute, EvidenceRatio: 1.5, EvidenceThreshold: 10, EvidenceDays: 7}
	}
	e, ok := FromTransition(breaker.Transition{Scope: breaker.RuleScope("r"), From: closed, To: open}, d)
	if !ok || e.Figures.Explanation == nil {
		t.Fatalf("FromTransition(evidence trip) = %+v, %v; want an event with an explanation", e, ok)
	}
	x := *e.Figures.Explanation
	if x.Detector != breaker.ReasonEvidence || x.Observed != 15 || x.Expected != 8.3 || x.Evidence != 10.4 || x.Threshold != 10 || !x.Onset.Equal(onset) || x.Window != "5m0s" {
		t.Errorf("explanation %+v; want evidence, 15 against 8.3 in 5m0s, S 10.4, h 10, onset %v", x, onset)
	}
	for _, want := range []string{"evidence S 10.40 reached h 10", "15 actions so far", "8.3 expected", "estimated onset 2026-11-23T09:20:00Z"} {
		if !strings.Contains(e.Summary, want) {
			t.Errorf("summary %q lacks %q", e.Summary, want)
		}
	}
}

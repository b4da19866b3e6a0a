package alert

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/breakwater/breakwater/breaker"
)

// TestTriggerThenResolve sends a trip and its reset to one receiver of each
// type and checks the payloads against the published formats.
func TestTriggerThenResolve(t *testing.T) {
	g := newRig(t, 0)
	s := newSinks(t)
	o := g.outbox(nil)
	start(t, g.dispatcher("r1", nil, nil, s.routes(t)...))

	at := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	trip := tripOf(breaker.RuleScope("spam-links"), 7, at)
	if n, err := o.Raise(context.Background(), event(t, trip)); err != nil || n != 1 {
		t.Fatalf("Raise(trip) = %d, %v; want 1, nil", n, err)
	}
	for name, k := range s.all() {
		waitFor(t, name+" trigger", 10*time.Second, func() bool { return len(k.requests()) == 1 })
	}
	if n, err := o.Raise(context.Background(), event(t, resetOf(trip, at.Add(time.Hour)))); err != nil || n != 1 {
		t.Fatalf("Raise(resolve) = %d, %v; want 1, nil", n, err)
	}
	for name, k := range s.all() {
		waitFor(t, name+" resolve", 10*time.Second, func() bool { return len(k.requests()) == 2 })
	}

	t.Run("pagerduty", func(t *testing.T) {
		rs := s.pagerduty.requests()
		var trig, res PagerDutyEvent
		decode(t, rs[0], &trig)
		decode(t, rs[1], &res)
		if trig.EventAction != "trigger" || res.EventAction != "resolve" {
			t.Fatalf("event_action = %q then %q; want trigger then resolve", trig.EventAction, res.EventAction)
		}
		if trig.DedupKey == "" || trig.DedupKey != res.DedupKey {
			t.Errorf("dedup_key = %q then %q; want the same non-empty key", trig.DedupKey, res.DedupKey)
		}
		if trig.RoutingKey != "pd-routing-key-0123" {
			t.Errorf("routing_key = %q; want the configured key", trig.RoutingKey)
		}
		p := trig.Payload
		if p == nil || p.Severity != "critical" || p.Source == "" || p.Summary == "" || len(p.Summary) > 1024 {
			t.Fatalf("trigger payload = %+v; want summary, source and severity critical", p)
		}
		if _, err := time.Parse(time.RFC3339, p.Timestamp); err != nil {
			t.Errorf("payload.timestamp = %q: %v", p.Timestamp, err)
		}
		if p.Component != "rule:spam-links" || p.Class != "tripped" {
			t.Errorf("component, class = %q, %q; want rule:spam-links, tripped", p.Component, p.Class)
		}
		evs, _ := p.CustomDetails["events"].([]any)
		if len(evs) != 1 {
			t.Fatalf("custom_details.events = %v; want one event", p.CustomDetails["events"])
		}
		fig := evs[0].(map[string]any)["figures"].(map[string]any)
		for _, k := range []string{"reason", "window_count", "baseline", "max_actions", "factor", "held", "top_actions", "top_models"} {
			if _, ok := fig[k]; !ok {
				t.Errorf("custom_details figures lack %q: %v", k, fig)
			}
		}
		if fig["window"] != "1m0s" {
			t.Errorf("custom_details window = %v; want \"1m0s\"", fig["window"])
		}
		if len(trig.Links) != 1 || trig.Links[0].Href != "https://bw.example.com/v1/incidents/rule:spam-links@7" {
			t.Errorf("links = %+v; want the incident in the admin API", trig.Links)
		}
		if res.Payload == nil || res.Payload.CustomDetails["events"] == nil {
			t.Errorf("resolve payload = %+v; want the full details on resolve as well", res.Payload)
		}
	})

	t.Run("webhook", func(t *testing.T) {
		rs := s.webhook.requests()
		for i, r := range rs {
			if !Verify([]byte(hookSecret), r.Body, r.Header.Get(SignatureHeader)) {
				t.Errorf("request %d: signature %q does not verify", i, r.Header.Get(SignatureHeader))
			}
			if Verify([]byte("wrong"), r.Body, r.Header.Get(SignatureHeader)) {
				t.Errorf("request %d: signature verifies under the wrong secret", i)
			}
		}
		var a, b WebhookPayload
		decode(t, rs[0], &a)
		decode(t, rs[1], &b)
		if rs[0].Header.Get(IdempotencyHeader) != a.Key || a.Key == "" || a.Key == b.Key {
			t.Errorf("idempotency keys %q, %q for keys %q, %q; want the notification key, distinct", rs[0].Header.Get(IdempotencyHeader), rs[1].Header.Get(IdempotencyHeader), a.Key, b.Key)
		}
		if a.Status != "firing" || b.Status != "resolved" || a.Events[0].DedupKey != b.Events[0].DedupKey {
			t.Errorf("webhook = %s / %s, dedup %q / %q; want firing then resolved under one dedup key", a.Status, b.Status, a.Events[0].DedupKey, b.Events[0].DedupKey)
		}
		if len(b.Resolves) != 1 || b.Resolves[0].Incident != "rule:spam-links@7" || !b.Resolves[0].GroupClosed || b.Resolves[0].TripKey != a.Key {
			t.Errorf("resolves = %+v; want the trip rule:spam-links@7 of %s, closed", b.Resolves, a.Key)
		}
	})

	t.Run("alertmanager", func(t *testing.T) {
		rs := s.alertmanager.requests()
		var a, b AlertmanagerMessage
		decode(t, rs[0], &a)
		decode(t, rs[1], &b)
		if a.Version != "4" || a.Status != "firing" || b.Status != "resolved" || a.Receiver != "am" {
			t.Fatalf("messages = %+v / %+v; want version 4, firing then resolved, receiver am", a, b)
		}
		if len(a.Alerts) != 1 || len(b.Alerts) != 1 {
			t.Fatalf("alerts = %d, %d; want 1 each", len(a.Alerts), len(b.Alerts))
		}
		fa, fb := a.Alerts[0], b.Alerts[0]
		if fa.Fingerprint != fb.Fingerprint || fa.Labels["incident"] != "rule:spam-links@7" || fa.Labels["alertname"] != "BreakwaterBreakerTripped" {
			t.Errorf("labels %v / %v, fingerprints %s / %s; want one alert identity", fa.Labels, fb.Labels, fa.Fingerprint, fb.Fingerprint)
		}
		if !fa.EndsAt.IsZero() || fb.EndsAt.IsZero() || fa.StartsAt.IsZero() {
			t.Errorf("startsAt %v endsAt %v / %v; want endsAt only on the resolved alert", fa.StartsAt, fa.EndsAt, fb.EndsAt)
		}
		if a.CommonLabels["alertname"] != "BreakwaterBreakerTripped" || a.GroupKey == "" {
			t.Errorf("commonLabels %v groupKey %q", a.CommonLabels, a.GroupKey)
		}
	})

	t.Run("slack", func(t *testing.T) {
		var m SlackMessage
		decode(t, s.slack.requests()[0], &m)
		if m.Text == "" || len(m.Blocks) < 2 || m.Blocks[0].Type != "header" {
			t.Fatalf("slack message = %+v; want text and a header block", m)
		}
		if !strings.Contains(m.Blocks[1].Text.Text, "<https://bw.example.com/v1/incidents/rule:spam-links@7|") {
			t.Errorf("section = %q; want a link to the incident", m.Blocks[1].Text.Text)
		}
	})
}

// TestTwoReplicas raises the same events from two outboxes at the same
// moment, with dispatchers in both replicas: one delivery per receiver.
func TestTwoReplicas(t *testing.T) {
	g := newRig(t, 0)
	s := newSinks(t)
	o1, o2 := g.outbox(nil), g.outbox(nil)
	routes := s.routes(t)
	start(t, g.dispatcher("r1", nil, nil, routes...))
	start(t, g.dispatcher("r2", nil, nil, routes...))

	const events = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	raised := 0
	begin := make(chan struct{})
	for _, o := range []*Outbox{o1, o2} {
		wg.Go(func() {
			<-begin
			for i := range events {
				n, err := o.Raise(context.Background(), event(t, tripOf(breaker.RuleScope(fmt.Sprint("r", i)), 1, time.Now())))
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				raised += n
				mu.Unlock()
			}
		})
	}
	close(begin)
	wg.Wait()
	if raised != events {
		t.Fatalf("Raise reported %d new events from two replicas; want %d", raised, events)
	}
	for name, k := range s.all() {
		waitFor(t, name, 10*time.Second, func() bool { return len(k.requests()) >= events })
	}
	time.Sleep(time.Second) // time for a duplicate to show
	for name, k := range s.all() {
		if n := len(k.requests()); n != events {
			t.Errorf("receiver %s got %d requests; want %d (one per event)", name, n, events)
		}
	}
}

// blocking is a notifier that never answers until its context ends.
type blocking struct{ calls chan struct{} }

func (b *blocking) Notify(ctx context.Context, _ Notification) error {
	b.calls <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

// TestCrashBeforeSend cancels a worker while it sends; a new worker in
// another replica, and a restarted one with the same name, deliver once.
func TestCrashBeforeSend(t *testing.T) {
	for _, tc := range []struct {
		name, restarted string
	}{
		{"other replica claims", "r2"},
		{"same replica restarts", "r1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, 0)
			o := g.outbox(nil)
			b := &blocking{calls: make(chan struct{}, 1)}
			stop := start(t, g.dispatcher("r1", nil, nil, Route{Name: "hook", Notifier: b}))
			if _, err := o.Raise(context.Background(), event(t, tripOf("global", 3, time.Now()))); err != nil {
				t.Fatal(err)
			}
			select {
			case <-b.calls:
			case <-time.After(10 * time.Second):
				t.Fatal("the first worker never tried to send")
			}
			stop() // the replica dies with the group pending

			k := newSink(t)
			wh, _ := NewWebhook(k.srv.URL, hookSecret, http.DefaultClient)
			start(t, g.dispatcher(tc.restarted, nil, nil, Route{Name: "hook", Notifier: wh}))
			waitFor(t, "delivery after restart", 10*time.Second, func() bool { return len(k.requests()) == 1 })
			time.Sleep(1500 * time.Millisecond) // past ClaimIdle twice: no second claim
			if n := len(k.requests()); n != 1 {
				t.Fatalf("deliveries after restart = %d; want 1", n)
			}
		})
	}
}

// TestRetries checks the retry policy per answer of the receiver.
func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answers  []int
		retry    string // Retry-After on failures
		want     int    // requests
		outcome  string // metric outcome of the final result
		minDelay time.Duration
	}{
		{"500 then 200", []int{500, 200}, "", 2, "sent", 0},
		{"503 twice then 200", []int{503, 503, 200}, "", 3, "sent", 0},
		{"429 honours Retry-After", []int{429, 200}, "1", 2, "sent", time.Second},
		{"408 is retried", []int{408, 200}, "", 2, "sent", 0},
		{"400 is not retried", []int{400}, "", 1, "failed", 0},
		{"404 is not retried", []int{404}, "", 1, "failed", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, 0)
			m, _ := newMetrics()
			core, logs := observer.New(zapcore.InfoLevel)
			k := newSink(t, tc.answers...)
			if tc.retry != "" {
				k.header.Set("Retry-After", tc.retry)
			}
			wh, _ := NewWebhook(k.srv.URL, hookSecret, http.DefaultClient)
			start(t, g.dispatcher("r1", zap.New(core), m, Route{Name: "hook", Notifier: wh}))
			began := time.Now()
			if _, err := g.outbox(nil).Raise(context.Background(), event(t, tripOf("global", 1, time.Now()))); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "final outcome", 10*time.Second, func() bool {
				return value(m.Notifications.WithLabelValues("hook", tc.outcome)) == 1
			})
			elapsed := time.Since(began)
			time.Sleep(300 * time.Millisecond)
			rs := k.requests()
			if len(rs) != tc.want {
				t.Fatalf("requests = %d; want %d", len(rs), tc.want)
			}
			if elapsed < tc.minDelay {
				t.Errorf("delivered after %s; want at least %s (Retry-After)", elapsed, tc.minDelay)
			}
			if got := value(m.Notifications.WithLabelValues("hook", "retried")); int(got) != tc.want-1 && tc.outcome == "sent" {
				t.Errorf("retried = %v; want %d", got, tc.want-1)
			}
			for i := 1; i < len(rs); i++ {
				if rs[i].Header.Get(IdempotencyHeader) != rs[0].Header.Get(IdempotencyHeader) {
					t.Errorf("retry %d has idempotency key %q; want %q", i, rs[i].Header.Get(IdempotencyHeader), rs[0].Header.Get(IdempotencyHeader))
				}
			}
			if tc.outcome == "failed" {
				es := logs.FilterMessage("alert delivery failed; not retried").All()
				if len(es) != 1 || es[0].ContextMap()["receiver"] != "hook" || !strings.Contains(fmt.Sprint(es[0].ContextMap()["error"]), fmt.Sprint(tc.answers[0])) {
					t.Errorf("failure logs = %+v; want one error naming the receiver and the status", es)
				}
			}
		})
	}
}

// TestReceiverDownDoesNotBlock keeps one receiver failing and checks that
// the others get every notification meanwhile.
func TestReceiverDownDoesNotBlock(t *testing.T) {
	g := newRig(t, 0)
	down := newSink(t, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503)
	up := newSink(t)
	c := &http.Client{Timeout: time.Second}
	wd, _ := NewWebhook(down.srv.URL, hookSecret, c)
	wu, _ := NewWebhook(up.srv.URL, hookSecret, c)
	start(t, g.dispatcher("r1", nil, nil, Route{Name: "down", Notifier: wd}, Route{Name: "up", Notifier: wu}))
	o := g.outbox(nil)
	for i := range 5 {
		if _, err := o.Raise(context.Background(), event(t, tripOf(breaker.RuleScope(fmt.Sprint("r", i)), 1, time.Now()))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the healthy receiver", 5*time.Second, func() bool { return len(up.requests()) == 5 })
}

// TestStorm trips 50 rules within the group window: one grouped page per
// receiver; their resolves close the page once the last incident closes.
func TestStorm(t *testing.T) {
	g := newRig(t, 1500*time.Millisecond)
	s := newSinks(t)
	o := g.outbox(nil)
	start(t, g.dispatcher("r1", nil, nil, s.routes(t)...))
	now := time.Now()
	var trips []breaker.Transition
	for i := range 50 {
		tr := tripOf(breaker.RuleScope(fmt.Sprintf("rule-%02d", i)), 1, now)
		trips = append(trips, tr)
		if _, err := o.Raise(context.Background(), event(t, tr)); err != nil {
			t.Fatal(err)
		}
	}
	for name, k := range s.all() {
		waitFor(t, name+" page", 10*time.Second, func() bool { return len(k.requests()) >= 1 })
	}
	time.Sleep(500 * time.Millisecond)
	for name, k := range s.all() {
		if n := len(k.requests()); n != 1 {
			t.Fatalf("receiver %s got %d requests for the storm; want 1", name, n)
		}
	}
	var pd PagerDutyEvent
	decode(t, s.pagerduty.requests()[0], &pd)
	if evs := pd.Payload.CustomDetails["events"].([]any); len(evs) != 50 || !strings.HasPrefix(pd.Payload.Summary, "50 breakers tripped: ") {
		t.Errorf("PagerDuty page lists %d events, summary %q; want 50", len(evs), pd.Payload.Summary)
	}
	var sl SlackMessage
	decode(t, s.slack.requests()[0], &sl)
	if len(sl.Blocks) > slackMaxBlocks || !strings.Contains(sl.Blocks[len(sl.Blocks)-1].Elements[0].Text, "and 30 more") {
		t.Errorf("slack blocks = %d, last %+v; want at most 50 and a count of those not shown", len(sl.Blocks), sl.Blocks[len(sl.Blocks)-1])
	}
	var am AlertmanagerMessage
	decode(t, s.alertmanager.requests()[0], &am)
	if len(am.Alerts) != 50 {
		t.Errorf("alertmanager alerts = %d; want 50", len(am.Alerts))
	}

	// All but one resolve: the page stays open at PagerDuty.
	later := now.Add(time.Hour)
	for _, tr := range trips[:49] {
		if _, err := o.Raise(context.Background(), event(t, resetOf(tr, later))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "grouped resolves", 10*time.Second, func() bool { return len(s.webhook.requests()) == 2 })
	time.Sleep(300 * time.Millisecond)
	if n := len(s.pagerduty.requests()); n != 1 {
		t.Errorf("PagerDuty requests after 49 of 50 resolves = %d; want 1 (the group stays open)", n)
	}
	if _, err := o.Raise(context.Background(), event(t, resetOf(trips[49], later))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the group's resolve", 10*time.Second, func() bool { return len(s.pagerduty.requests()) == 2 })
	var res PagerDutyEvent
	decode(t, s.pagerduty.requests()[1], &res)
	if res.EventAction != "resolve" || res.DedupKey != pd.DedupKey {
		t.Errorf("PagerDuty resolve = %s %q; want resolve %q", res.EventAction, res.DedupKey, pd.DedupKey)
	}
}

// TestSecretsNotLogged delivers to failing receivers whose URLs and secrets
// are distinctive and checks that no log entry shows them.
func TestSecretsNotLogged(t *testing.T) {
	g := newRig(t, 0)
	core, logs := observer.New(zapcore.DebugLevel)
	const slackPath = "/services/T0SECRET/B0SECRET/slackTokenXyz"
	const routing = "pd-secret-routing-key-42"
	k500 := newSink(t, 500, 500, 400)
	k400 := newSink(t, 400)
	// A port nobody listens on: the transport error names the address.
	dead := newSink(t)
	deadURL := dead.srv.URL + "/hook?token=deadSecretToken"
	dead.srv.Close()
	c := &http.Client{Timeout: time.Second}
	sl, _ := NewSlack(k500.srv.URL+slackPath, c)
	pd, _ := NewPagerDuty(k400.srv.URL+"/v2/enqueue", routing, c)
	wh, _ := NewWebhook(deadURL, hookSecret, c)
	m, _ := newMetrics()
	d, err := NewDispatcher(DispatcherOptions{
		Client: g.client, KeyPrefix: g.prefix, Consumer: "r1", Logger: zap.New(core), Metrics: m,
		Backoff: Backoff{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond, GiveUpAfter: 300 * time.Millisecond},
		Routes:  []Route{{Name: "slack", Notifier: sl}, {Name: "pd", Notifier: pd}, {Name: "hook", Notifier: wh}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	start(t, d)
	if _, err := g.outbox(nil).Raise(context.Background(), event(t, tripOf("global", 1, time.Now()))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three failures", 10*time.Second, func() bool {
		return value(m.Notifications.WithLabelValues("slack", "failed"))+
			value(m.Notifications.WithLabelValues("pd", "failed"))+
			value(m.Notifications.WithLabelValues("hook", "failed")) == 3
	})
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	var all strings.Builder
	for _, e := range logs.All() {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(buf.Bytes())
		buf.Free()
	}
	out := all.String()
	if !strings.Contains(out, `"receiver":"hook"`) || !strings.Contains(out, "gave up") {
		t.Fatalf("logs do not show the failures:\n%s", out)
	}
	for _, secret := range []string{
		slackPath, "slackTokenXyz", routing, hookSecret, deadURL, "deadSecretToken",
		k500.srv.URL, k400.srv.URL, strings.TrimPrefix(dead.srv.URL, "http://"),
	} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q:\n%s", secret, out)
		}
	}
}

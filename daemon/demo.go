package daemon

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/alert"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/consumer"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/store"
	"github.com/breakwater/breakwater/traffic"
)

// demo is what the embedded mode adds to the production wiring: the
// built-in classifier, a periodic summary, and a local webhook receiver
// that logs the alerts.
type demo struct {
	kafka    *kafkaconn.Endpoint // the embedded broker
	log      *zap.Logger
	scenario traffic.Scenario
	hot      int
	summary  *summary

	webhook  *http.Server // nil unless the demo receives the alerts
	listener net.Listener

	// reviewToken is the bearer token of the demo's own reviewer (an
	// operator added to the configuration), empty when it does not review.
	reviewToken string
}

// newDemo builds the demo of cfg. When no receiver is configured and
// demo.alert_webhook is on, it adds its local webhook receiver to cfg.
func newDemo(cfg *config.Config, log *zap.Logger) (*demo, error) {
	d := cfg.Demo
	hot := min(2, d.Rules-1)
	sc := traffic.Scenario{
		Start: time.Now(), Duration: 100 * 365 * 24 * time.Hour, Rules: d.Rules, Rate: float64(d.Rate),
		Skew: 0.3, Noise: 0.05, Seed: d.Seed,
	}
	if d.IncidentAfter >= 0 {
		spike := d.IncidentFor
		if spike == 0 {
			spike = 99 * 365 * 24 * time.Hour
		}
		sc.Incidents = []traffic.Incident{{Kind: traffic.Spike, Rule: hot, At: d.IncidentAfter, For: spike, Factor: d.IncidentFactor}}
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("demo classifier: %w", err)
	}
	dm := &demo{log: log, scenario: sc, hot: hot, summary: newSummary()}
	if d.AlertWebhook && len(cfg.Alerts.Receivers) == 0 {
		r, err := dm.listenWebhook()
		if err != nil {
			return nil, err
		}
		cfg.Alerts.Receivers = []config.Receiver{r}
		log.Info("demo: alerts go to a local webhook receiver that logs them",
			zap.String("real_receivers", "set alerts.receivers in the config file (--config)"))
	}
	if d.ReviewAfter > 0 {
		key := make([]byte, 16)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		dm.reviewToken = hex.EncodeToString(key)
		sum := sha256.Sum256([]byte(dm.reviewToken))
		cfg.Admin.Tokens = append(cfg.Admin.Tokens, config.Token{Name: demoReviewer, Role: config.RoleOperator, SHA256: hex.EncodeToString(sum[:])})
	}
	return dm, nil
}

// demoReviewer is the actor of the demo's own reviews.
const demoReviewer = "demo-reviewer"

// close closes the webhook's listener if it never served.
func (d *demo) close() {
	if d.listener != nil {
		_ = d.listener.Close()
	}
}

// start runs the demo's members in g; api is the admin API the demo's
// reviewer calls.
func (d *demo) start(g *group, cfg config.Config, st lister, api http.Handler) {
	if d.reviewToken != "" {
		g.Go("demo reviewer", func(ctx context.Context) error {
			d.review(ctx, api, cfg.Demo.ReviewAfter, min(15*time.Second, max(cfg.Demo.ReviewAfter/10, time.Second)))
			return nil
		})
	}
	g.Go("demo classifier", func(ctx context.Context) error {
		d.classify(ctx, cfg)
		return nil
	})
	g.Go("demo summary", func(ctx context.Context) error {
		d.summary.run(ctx, d.log, st, 5*time.Second)
		return nil
	})
	if d.webhook != nil {
		g.Go("demo alert webhook", func(ctx context.Context) error { return serve(ctx, d.webhook, d.listener) })
	}
}

// classify plays the built-in classifier into the input topic until ctx
// ends.
func (d *demo) classify(ctx context.Context, cfg config.Config) {
	tr := d.kafka.Transport()
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr: d.kafka.Addr(), Transport: tr, Topic: cfg.Kafka.Topics.Input, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 100 * time.Microsecond, BatchSize: 1000,
	}
	defer closeLogged(d.log, "demo producer", w)
	c := cfg.Demo
	sc := d.scenario
	sc.Start = time.Now()
	g := traffic.NewLive(sc)
	d.log.Info("demo classifier started",
		zap.Int("rules", c.Rules), zap.Int("rate_per_second", c.Rate),
		zap.String("incident_rule", traffic.RuleID(d.hot)),
		zap.Duration("incident_after", c.IncidentAfter), zap.Float64("incident_factor", c.IncidentFactor))
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	announced := false
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if !announced && c.IncidentAfter >= 0 && now.Sub(sc.Start) >= c.IncidentAfter {
				announced = true
				d.log.Warn("demo: incident begins: one rule starts acting far more than normal",
					zap.String("rule", traffic.RuleID(d.hot)), zap.Float64("factor", c.IncidentFactor))
			}
			evs := g.Until(now)
			msgs := make([]kafka.Message, len(evs))
			for i, e := range evs {
				msgs[i] = kafka.Message{Key: e.Key, Value: e.Value}
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil && ctx.Err() == nil {
				d.log.Warn("demo: produce", zap.Error(err))
			}
		}
	}
}

// listenWebhook listens on the loopback interface for a webhook receiver
// that checks signatures and logs each notification, and returns its
// configuration.
func (d *demo) listenWebhook() (config.Receiver, error) {
	key := make([]byte, 16)
	if _, err := rand.Read(key); err != nil {
		return config.Receiver{}, err
	}
	secret := hex.EncodeToString(key)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return config.Receiver{}, fmt.Errorf("listen for the demo alert webhook: %w", err)
	}
	log := d.log
	mux := http.NewServeMux()
	mux.HandleFunc("POST /alerts", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || !alert.Verify([]byte(secret), body, r.Header.Get(alert.SignatureHeader)) {
			log.Warn("demo: alert with a bad signature rejected")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p alert.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		log.Warn("demo: alert received", zap.String("status", p.Status), zap.String("kind", string(p.Kind)),
			zap.String("severity", string(p.Severity)), zap.Int("events", len(p.Events)), zap.String("summary", p.Summary),
			zap.String("key", p.Key))
		w.WriteHeader(http.StatusNoContent)
	})
	d.webhook = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	d.listener = l
	return config.Receiver{
		Name: "demo-webhook", Type: config.ReceiverWebhook, URL: "http://" + l.Addr().String() + "/alerts",
		Secret: secret, Severities: append([]string(nil), config.AlertSeverities...), Timeout: 5 * time.Second,
	}, nil
}

// summary aggregates committed batches for the demo's periodic log line.
type summary struct {
	mu      sync.Mutex // guards the fields below
	perRule map[string]int
	total   map[decide.Decision]int
}

func newSummary() *summary {
	return &summary{perRule: map[string]int{}, total: map[decide.Decision]int{}}
}

func (s *summary) add(r consumer.BatchReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range r.PerRule {
		s.perRule[k] += v
	}
	for k, v := range r.Actions {
		s.total[k] += v
	}
}

type lister interface {
	List(ctx context.Context) ([]store.ScopeStatus, error)
}

func (s *summary) run(ctx context.Context, log *zap.Logger, st lister, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		rules := make([]string, 0, len(s.perRule))
		for r := range s.perRule {
			rules = append(rules, r)
		}
		sort.Strings(rules)
		var rates []string
		for _, r := range rules {
			rates = append(rates, fmt.Sprintf("%s=%.1f/s", r, float64(s.perRule[r])/every.Seconds()))
		}
		gated, held, dead := s.total[decide.Gated], s.total[decide.Held], s.total[decide.DeadLetter]
		s.perRule = map[string]int{}
		s.mu.Unlock()
		var open []string
		if ss, err := st.List(ctx); err == nil {
			for _, x := range ss {
				if x.Status.State != breaker.Closed {
					open = append(open, fmt.Sprintf("%s:%s", x.Scope, x.Status.State))
				}
			}
		}
		sort.Strings(open)
		log.Info("demo summary",
			zap.String("rates", strings.Join(rates, " ")),
			zap.Int("gated_total", gated), zap.Int("held_total", held), zap.Int("dead_letter_total", dead),
			zap.Strings("breakers_not_closed", open))
	}
}

// review reviews, every every, each incident whose first action was held
// longer than after ago and that still has pending actions: through the
// admin API, as an operator would, it rejects them (the releaser writes
// them to the rejected topic) and resets the incident's breaker. The
// embedded Redis then keeps a bounded number of held actions: after the
// demo's spike (demo.incident_for), nothing is held any more.
func (d *demo) review(ctx context.Context, api http.Handler, after, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var list struct {
			Incidents []struct {
				ID          string    `json:"id"`
				Scope       string    `json:"scope"`
				Pending     int64     `json:"pending"`
				FirstHeldAt time.Time `json:"first_held_at"`
			} `json:"incidents"`
		}
		if code, err := d.call(ctx, api, http.MethodGet, "/v1/incidents", "", &list); err != nil || code != http.StatusOK {
			continue // the API says why (restoring, Redis down) on its own
		}
		for _, inc := range list.Incidents {
			if inc.Pending == 0 || time.Since(inc.FirstHeldAt) < after {
				continue
			}
			reason := fmt.Sprintf("the demo reviews its incidents %s after their first held action (demo.review_after)", after)
			code, err := d.call(ctx, api, http.MethodPost, "/v1/incidents/"+url.PathEscape(inc.ID)+"/reject", `{"reason":"`+reason+`"}`, nil)
			if err != nil || code != http.StatusOK {
				d.log.Warn("demo: reject incident", zap.String("incident", inc.ID), zap.Int("status", code), zap.Error(err))
				continue
			}
			code, err = d.call(ctx, api, http.MethodPost, "/v1/breakers/"+url.PathEscape(inc.Scope)+"/reset", `{"reason":"`+reason+`"}`, nil)
			if err != nil || code != http.StatusOK {
				d.log.Warn("demo: reset breaker", zap.String("scope", inc.Scope), zap.Int("status", code), zap.Error(err))
			}
			d.log.Warn("demo: the demo reviewed an incident itself: rejected its pending actions and reset its breaker",
				zap.String("incident", inc.ID), zap.Int64("rejected", inc.Pending),
				zap.Duration("review_after", after), zap.String("keep_for_people", "set demo.review_after: 0"))
		}
	}
}

// call sends one request to the admin API in-process as the demo's
// reviewer, and decodes a 200 answer into out.
func (d *demo) call(ctx context.Context, api http.Handler, method, path, body string, out any) (int, error) {
	r, err := http.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	r.Header.Set("Authorization", "Bearer "+d.reviewToken)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	api.ServeHTTP(w, r)
	if w.Code == http.StatusOK && out != nil {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			return w.Code, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	if w.Code != http.StatusOK {
		return w.Code, fmt.Errorf("%s %s: %s", method, path, strings.TrimSpace(w.Body.String()))
	}
	return w.Code, nil
}

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater/breakwater/alert"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/internal/testbed"
)

const webhookSecret = "e2e-webhook-secret"

// webhook is an alert receiver on loopback that checks signatures and
// keeps what it accepted; it answers 503 while failing is set.
type webhook struct {
	srv      *httptest.Server
	failing  atomic.Bool
	attempts atomic.Int64

	mu       sync.Mutex
	accepted []alert.WebhookPayload
	keys     map[string]int
	badSig   int
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{keys: map[string]int{}}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.attempts.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		if w.failing.Load() {
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if !alert.Verify([]byte(webhookSecret), body, r.Header.Get(alert.SignatureHeader)) {
			w.badSig++
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p alert.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		w.accepted = append(w.accepted, p)
		w.keys[r.Header.Get("Idempotency-Key")]++
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// config is the alerts section that sends every severity to the webhook.
func (w *webhook) config() string {
	return fmt.Sprintf(`alerts:
  group_window: 500ms
  claim_idle: 1s
  retry: {initial: 100ms, max: 500ms, give_up_after: 10m}
  receivers:
    - name: e2e
      type: webhook
      url: %s
      secret: %s
`, w.srv.URL, webhookSecret)
}

// trips returns how many trip events of scope the webhook accepted, and
// the accepted notifications' keys with their counts.
func (w *webhook) trips(scope breaker.Scope) (n int, keys map[string]int, badSig int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.accepted {
		for _, e := range p.Events {
			if e.Kind == alert.KindTripped && e.Scope == scope {
				n++
			}
		}
	}
	keys = map[string]int{}
	for k, c := range w.keys {
		keys[k] = c
	}
	return n, keys, w.badSig
}

// checkOnePage waits for the trip of the spiking rule to reach the
// webhook, then for any duplicate, and checks it came exactly once.
func checkOnePage(t *testing.T, w *webhook, alive func() error) {
	t.Helper()
	scope := breaker.RuleScope(spikeRule)
	waitFor(t, 30*time.Second, func() string { return "the trip of " + string(scope) + " at the webhook" }, alive,
		func() bool { n, _, _ := w.trips(scope); return n > 0 })
	time.Sleep(3 * time.Second) // group window, retries, and claims of other replicas
	n, keys, bad := w.trips(scope)
	if n != 1 || bad != 0 {
		t.Errorf("the webhook accepted %d trip events of %s (and %d with a bad signature); want exactly one", n, scope, bad)
	}
	for k, c := range keys {
		if c != 1 || k == "" {
			t.Errorf("notification key %q accepted %d times; want each key once", k, c)
		}
	}
	t.Logf("webhook: %d attempts, accepted keys %v", w.attempts.Load(), keys)
}

// TestAlertOncePerTrip runs two replicas that share the spike's partitions:
// the replica whose script trips the breaker raises the alert, the outbox
// keeps it once, and one page reaches the receiver.
func TestAlertOncePerTrip(t *testing.T) {
	b := newBed(t, 4)
	w := newWebhook(t)
	recs, _ := spikeInput(t, b)
	s := spikeSettings
	s.extra = w.config()
	cfg := b.config(t, s)
	ra := startReplica(t, "a", cfg)
	rb := startReplica(t, "b", cfg)
	b.k.Produce(t, testTopics.Input, recs...)
	alive := replicasAlive(ra, rb)
	b.waitCommitted(t, 90*time.Second, alive)
	checkOnePage(t, w, alive)
	// The page says what the rule was doing: the actions the tripping batch
	// held, by type and model.
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.accepted {
		for _, e := range p.Events {
			if e.Kind != alert.KindTripped {
				continue
			}
			f := e.Figures
			if f.Held <= 0 || len(f.TopActions) == 0 || f.TopActions[0].Count <= 0 {
				t.Errorf("trip event figures %+v; want the held count and the top action types", f)
			}
			t.Logf("trip figures: held %d, top actions %v, top models %v", f.Held, f.TopActions, f.TopModels)
		}
	}
}

// TestAlertSurvivesKill trips the breaker while the receiver is down, so
// the alert waits in the outbox; the daemon is SIGKILLed, the receiver
// comes back, and the restarted daemon delivers the alert, once.
func TestAlertSurvivesKill(t *testing.T) {
	bin := testbed.BuildBinary(t, "github.com/breakwater/breakwater/cmd/breakwater")
	b := newBed(t, 2)
	w := newWebhook(t)
	w.failing.Store(true)
	recs, _ := spikeInput(t, b)
	s := spikeSettings
	s.extra = w.config()
	path := filepath.Join(t.TempDir(), "breakwater.yaml")
	if err := os.WriteFile(path, []byte(b.yaml(s)), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func() (*testbed.Process, func() error) { return startBinary(t, bin, path) }
	p1, alive := start()
	b.k.Produce(t, testTopics.Input, recs...)
	b.waitCommitted(t, 90*time.Second, alive)
	// The trip is decided; its notification is failing.
	waitFor(t, 30*time.Second, func() string { return "a failed delivery attempt" }, alive,
		func() bool { return w.attempts.Load() > 0 })
	if n, _, _ := w.trips(breaker.RuleScope(spikeRule)); n != 0 {
		t.Fatalf("the failing webhook accepted %d trips", n)
	}
	p1.Kill()
	<-p1.Done()
	if strings.Contains(p1.Log(), w.srv.URL) || strings.Contains(p1.Log(), webhookSecret) {
		t.Errorf("the daemon logged the receiver's URL or secret")
	}
	w.failing.Store(false)
	p2, alive2 := start()
	checkOnePage(t, w, alive2)
	if err := p2.Stop(10 * time.Second); err != nil {
		t.Errorf("stop the restarted daemon: %v", err)
	}
}

package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/embedded"
)

// TestDemoTokens runs the embedded demo as `breakwater run` does, with the
// broker on a free port, and checks that it announces the console with
// both public tokens, and that the viewer token reads but may not change
// a breaker.
func TestDemoTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the embedded demo")
	}
	cfg, err := config.Parse(embedded.DemoConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Demo.KafkaPort = 0
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Demo.AlertWebhook = false
	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Logger: zap.New(core), Ready: func(a Addrs) { ready <- a }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v; want nil after shutdown", err)
		}
	}()
	var addrs Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("Run returned %v before it was ready", err)
	case <-time.After(time.Minute):
		t.Fatal("the demo was not ready within a minute")
	}
	var announced map[string]any
	for deadline := time.Now().Add(10 * time.Second); announced == nil; time.Sleep(20 * time.Millisecond) {
		if es := logs.FilterMessageSnippet("console: open the url").All(); len(es) > 0 {
			announced = es[0].ContextMap()
		} else if time.Now().After(deadline) {
			t.Fatal("the demo did not announce the console")
		}
	}
	if announced["admin_token"] != "demo-operator" || announced["viewer_token"] != "demo-viewer" {
		t.Errorf("console announcement = %v; want admin_token demo-operator and viewer_token demo-viewer", announced)
	}
	base := "http://" + addrs.HTTP
	call := func(method, path, token string) (*http.Response, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp, body
	}
	if resp, who := call("GET", "/v1/whoami", "demo-viewer"); resp.StatusCode != 200 || who["role"] != "viewer" {
		t.Errorf("GET /v1/whoami with demo-viewer = %d %v; want 200 and role viewer", resp.StatusCode, who)
	}
	if resp, body := call("POST", "/v1/breakers/global/reset", "demo-viewer"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST reset with demo-viewer = %d %v; want 403", resp.StatusCode, body)
	}
}

// TestDemoReviewsItsIncident: with demo.review_after the demo rejects the
// pending actions of its incident itself and resets the breaker, so the
// embedded stores stop collecting held actions once the spike is over.
func TestDemoReviewsItsIncident(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the embedded demo")
	}
	cfg, err := config.Parse(embedded.DemoConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Demo.KafkaPort = 0
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Demo.AlertWebhook = false
	cfg.Demo.IncidentAfter, cfg.Demo.IncidentFor, cfg.Demo.ReviewAfter = 2*time.Second, 10*time.Second, 10*time.Second
	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Logger: zap.New(core), Ready: func(a Addrs) { ready <- a }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v; want nil after shutdown", err)
		}
	}()
	var addrs Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("Run returned %v before it was ready", err)
	case <-time.After(time.Minute):
		t.Fatal("the demo was not ready within a minute")
	}
	var reviewed map[string]any
	for deadline := time.Now().Add(90 * time.Second); reviewed == nil; time.Sleep(100 * time.Millisecond) {
		if es := logs.FilterMessageSnippet("the demo reviewed an incident itself").All(); len(es) > 0 {
			reviewed = es[0].ContextMap()
		} else if time.Now().After(deadline) {
			t.Fatalf("the demo did not review its incident within 90s")
		}
	}
	if n, _ := reviewed["rejected"].(int64); n <= 0 {
		t.Errorf("the review rejected %v actions; want some", reviewed["rejected"])
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addrs.HTTP+"/v1/incidents/"+reviewed["incident"].(string), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer demo-operator")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var inc struct {
		Pending, Rejected int64
	}
	if err := json.NewDecoder(resp.Body).Decode(&inc); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the incident: %d %v", resp.StatusCode, err)
	}
	if inc.Rejected <= 0 {
		t.Errorf("incident %v after the review: %+v; want rejected actions", reviewed["incident"], inc)
	}
	if es := logs.FilterMessageSnippet("demo: reset breaker").All(); len(es) > 0 {
		t.Errorf("the demo could not reset the breaker: %v", es[0].ContextMap())
	}
}

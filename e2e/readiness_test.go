package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/daemon"
	"github.com/breakwater/breakwater/internal/testbed"
)

// TestReadyOnlyOnceRestoredAndJoined: a replica started while Redis is
// down answers /readyz 503 "starting", reason "restoring: rate store
// unreachable", and breakwater_readiness says the same, until Redis is
// back; it answers 200 only once it restored the breaker states and holds
// its partitions of the group.
func TestReadyOnlyOnceRestoredAndJoined(t *testing.T) {
	b := newBed(t, 4)
	b.r.Kill(t)
	base, alive, logs := runDaemon(t, b.config(t, spikeSettings))
	type readyz struct {
		code           int
		status, reason string
	}
	get := func() readyz {
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer rcancel()
		body, code, err := httpGet(rctx, base+"/readyz")
		if err != nil {
			return readyz{}
		}
		var v struct{ Status, Reason string }
		_ = json.Unmarshal([]byte(body), &v)
		return readyz{code, v.Status, v.Reason}
	}
	const want = "restoring: rate store unreachable"
	var r readyz
	waitFor(t, 60*time.Second, func() string { return fmt.Sprintf("/readyz saying %q (last %+v)", want, r) }, alive, func() bool {
		r = get()
		return r.code == http.StatusServiceUnavailable && r.status == "starting" && r.reason == want
	})
	mctx, mcancel := context.WithTimeout(context.Background(), 5*time.Second)
	metrics, _, err := httpGet(mctx, base+"/metrics")
	mcancel()
	if err != nil || !strings.Contains(metrics, `breakwater_readiness{reason="`+want+`",status="starting"} 1`) {
		t.Errorf("/metrics does not say %q (%v):\n%s", want, err, metrics)
	}
	// For as long as Redis stays down (ten seconds of polling), not ready.
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if r = get(); r.code == http.StatusOK {
			t.Fatalf("/readyz = %+v while Redis is down", r)
		}
	}
	b.r.Restart(t)
	seen := map[string]bool{}
	waitFor(t, 90*time.Second, func() string { return fmt.Sprintf("/readyz 200 (last %+v)", r) }, alive, func() bool {
		r = get()
		seen[r.status+": "+r.reason] = true
		return r.code == http.StatusOK
	})
	// Ready means restored and a member holding partitions.
	if !strings.Contains(logs.String(), "breaker states restored") {
		t.Errorf("ready before the breaker states were restored")
	}
	assigned, _ := b.describeGroup(t)
	n := 0
	for _, ps := range assigned {
		n += len(ps)
	}
	if n != b.parts {
		t.Errorf("ready with %d of %d partitions assigned in the group: %v", n, b.parts, assigned)
	}
	t.Logf("readiness seen after Redis came back: %v", seen)
}

// TestPauseOnUnacknowledgedWritesLogged: with redis.min_replicas_acked: 1
// and the replica cut off, the pipeline pauses and logs why (the replicas
// not acknowledging), then, once the replica is back, that the rate store
// is reachable again; everything is committed in the end.
func TestPauseOnUnacknowledgedWritesLogged(t *testing.T) {
	sen, b, recs, _, rep := sentinelBed(t, "  min_replicas_acked: 1\n")
	alive := replicasAlive(rep)
	half := len(recs) / 2
	b.k.Produce(t, testTopics.Input, recs[:half]...)
	b.waitCommitted(t, 90*time.Second, alive)

	sen.CutReplica(t)
	b.k.Produce(t, testTopics.Input, recs[half:]...)
	const cause = "the Redis replicas did not acknowledge the write in time"
	waitFor(t, 60*time.Second, func() string { return "a pause logged with its cause" }, alive, func() bool {
		for _, line := range strings.Split(rep.logs.String(), "\n") {
			if strings.Contains(line, "consumption paused") || strings.Contains(line, "pausing consumption") {
				if strings.Contains(line, cause) {
					return true
				}
			}
		}
		return false
	})
	sen.MendReplica(t)
	waitFor(t, 90*time.Second, func() string { return "the end of the pause logged" }, alive, func() bool {
		return strings.Contains(rep.logs.String(), "rate store reachable again")
	})
	b.waitCommitted(t, 90*time.Second, alive)
	for _, line := range strings.Split(rep.logs.String(), "\n") {
		if strings.Contains(line, "rate store") {
			t.Log(line)
		}
	}
}

// runDaemon runs a daemon with cfg, its HTTP listener on a free port, and
// returns the listener's base URL, an alive check and its logs; the daemon
// stops at the end of the test, which fails if it does not stop cleanly.
func runDaemon(t *testing.T, cfg config.Config) (string, func() error, *logBuffer) {
	t.Helper()
	cfg.HTTP.Listen = fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	logs := &logBuffer{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zap.InfoLevel))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, daemon.Options{Config: cfg, Logger: log}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon.Run = %v", err)
			}
		case <-time.After(45 * time.Second):
			t.Errorf("daemon.Run did not return within 45s of cancellation")
		}
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	alive := func() error {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("daemon.Run returned: %v", err)
		default:
			return nil
		}
	}
	return "http://" + cfg.HTTP.Listen, alive, logs
}

// getWithin asks url with a bound of limit on the whole answer.
func getWithin(url string, limit time.Duration) (code int, status, reason, body string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	body, code, err = httpGet(ctx, url)
	var v struct{ Status, Reason string }
	_ = json.Unmarshal([]byte(body), &v)
	return code, v.Status, v.Reason, body, err
}

// TestReadyzAnswersWhileRedisFrozen: with the Redis server stopped
// (SIGSTOP: connections open, no answer), every /readyz answers within
// 300ms, and within seconds answers 503 (the store probe's last answer too
// old, or the pipeline paused), never 200, until Redis answers again;
// then 200 again.
func TestReadyzAnswersWhileRedisFrozen(t *testing.T) {
	b := newBed(t, 4)
	base, alive, _ := runDaemon(t, b.config(t, spikeSettings))
	var last string
	waitFor(t, 90*time.Second, func() string { return "/readyz 200 (last " + last + ")" }, alive, func() bool {
		code, _, _, body, _ := getWithin(base+"/readyz", 5*time.Second)
		last = body
		return code == http.StatusOK
	})
	b.r.Freeze(t)
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			b.r.Thaw(t)
		}
	}
	t.Cleanup(thaw)
	frozeAt := time.Now()
	const limit = 300 * time.Millisecond
	seen := map[string]int{}
	var first503 time.Duration
	for time.Since(frozeAt) < 8*time.Second {
		t0 := time.Now()
		code, status, reason, body, err := getWithin(base+"/readyz", limit)
		if err != nil {
			t.Fatalf("%s after the freeze: GET /readyz: %v after %s; want an answer within %s", time.Since(frozeAt).Round(time.Millisecond), err, time.Since(t0).Round(time.Millisecond), limit)
		}
		seen[fmt.Sprintf("%d %s: %s", code, status, reason)]++
		switch {
		case code == http.StatusServiceUnavailable && first503 == 0:
			first503 = time.Since(frozeAt)
		case code == http.StatusOK && first503 > 0:
			t.Fatalf("%s after the freeze, after a 503: GET /readyz = 200 %s", time.Since(frozeAt).Round(time.Millisecond), body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("answers while Redis was frozen: %v; first 503 after %s", seen, first503.Round(time.Millisecond))
	if first503 == 0 || first503 > 5*time.Second {
		t.Fatalf("/readyz answered no 503 within 5s of the freeze (first after %s): %v", first503, seen)
	}
	thaw()
	waitFor(t, 90*time.Second, func() string { return "/readyz 200 after the thaw (last " + last + ")" }, alive, func() bool {
		code, _, _, body, _ := getWithin(base+"/readyz", 5*time.Second)
		last = body
		return code == http.StatusOK
	})
}

// TestListenerOpensBeforeKafkaAnswers: a replica whose brokers do not
// answer yet serves /healthz 200 and /readyz 503 "starting" naming the
// stage, and answers the admin API 503 with the stage, from its first
// seconds.
func TestListenerOpensBeforeKafkaAnswers(t *testing.T) {
	b := newBed(t, 4)
	cfg := b.config(t, spikeSettings)
	cfg.Kafka.Brokers = []string{fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))} // nothing listens there
	base, alive, _ := runDaemon(t, cfg)
	var code int
	var status, reason, body string
	var err error
	waitFor(t, 10*time.Second, func() string { return fmt.Sprintf("/readyz answering (last %d %s %v)", code, body, err) }, alive, func() bool {
		code, status, reason, body, err = getWithin(base+"/readyz", 2*time.Second)
		return err == nil
	})
	if code != http.StatusServiceUnavailable || status != "starting" || reason != "connecting to Kafka" {
		t.Errorf("GET /readyz = %d %s; want 503 starting, connecting to Kafka", code, body)
	}
	if code, status, _, body, err = getWithin(base+"/healthz", 2*time.Second); err != nil || code != http.StatusOK || status != "ok" {
		t.Errorf("GET /healthz = %d %s %v; want 200 ok", code, body, err)
	}
	if code, _, _, body, err = getWithin(base+"/v1/breakers", 2*time.Second); err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, `"error":"starting: connecting to Kafka"`) {
		t.Errorf("GET /v1/breakers = %d %s %v; want 503 naming the stage", code, body, err)
	}
}

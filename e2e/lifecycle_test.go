package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/breakwater/breakwater/alert"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/traffic"
)

// The lifecycle of the daemon under faults:
//
//   - TestLongRedisOutage: a Redis outage longer than the drain timeout
//     pauses the pipeline (visible in /readyz and breakwater_paused, while
//     /healthz stays live), never ends the process, resumes by itself, and
//     pages once each way.
//   - TestPipelineFailureExits: a Kafka error that waiting cannot cure ends
//     the process with a non-zero status within seconds, and a signal ends
//     it with status 0.
//   - TestRedisWipeNeverShowsClosed: while Redis loses its data under a
//     running daemon, the admin API never answers a tripped breaker as
//     closed, and has it open again without waiting for a batch.

// TestLongRedisOutage stops Redis for 45 seconds, longer than the 30-second
// drain timeout that once ended every replica, with a receiver configured.
func TestLongRedisOutage(t *testing.T) {
	const outage = 45 * time.Second
	b := newBed(t, 2)
	w := newWebhook(t)
	recs, _ := spikeInput(t, b)
	s := spikeSettings
	s.extra = w.config()
	r := startReplica(t, "solo", b.config(t, s))
	alive := replicasAlive(r)
	ctx := t.Context()
	b.k.Produce(t, testTopics.Input, recs[:2000]...)
	b.waitCommitted(t, 60*time.Second, alive)
	b.r.Kill(t)
	killed := time.Now()
	b.k.Produce(t, testTopics.Input, recs[2000:4000]...)
	kinds := func() map[alert.Kind]int {
		w.mu.Lock()
		defer w.mu.Unlock()
		m := map[alert.Kind]int{}
		for _, p := range w.accepted {
			for _, e := range p.Events {
				m[e.Kind]++
			}
		}
		return m
	}
	waitFor(t, 30*time.Second, func() string { return fmt.Sprintf("a store_unreachable alert (got %v)", kinds()) }, alive,
		func() bool { return kinds()[alert.KindStoreUnreachable] > 0 })

	// Through the outage: paused and not ready, but live, and running.
	committed := b.committedSum(t)
	var last string
	for time.Since(killed) < outage {
		if err := alive(); err != nil {
			t.Fatalf("%v into the outage: %v", time.Since(killed).Round(time.Second), err)
		}
		body, code, err := httpGet(ctx, "http://"+r.addrs.HTTP+"/readyz")
		if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, `"status":"paused"`) {
			t.Errorf("/readyz %v into the outage: %d %s, %v; want 503 paused", time.Since(killed).Round(time.Second), code, body, err)
		}
		if body, code, err := httpGet(ctx, "http://"+r.addrs.HTTP+"/healthz"); err != nil || code != http.StatusOK {
			t.Errorf("/healthz %v into the outage: %d %s, %v; want 200", time.Since(killed).Round(time.Second), code, body, err)
		}
		if p, err := r.metric(ctx, "breakwater_paused"); err != nil || p != 1 {
			t.Errorf("breakwater_paused %v into the outage = %v, %v; want 1", time.Since(killed).Round(time.Second), p, err)
		}
		last = body
		if t.Failed() {
			break
		}
		time.Sleep(time.Second)
	}
	if now := b.committedSum(t); now != committed {
		t.Errorf("commits moved while Redis was down: %d, then %d", committed, now)
	}
	t.Logf("after %v of outage /readyz says %s", time.Since(killed).Round(time.Second), strings.TrimSpace(last))

	b.r.Restart(t)
	b.waitCommitted(t, 60*time.Second, alive)
	waitFor(t, 30*time.Second, func() string { return fmt.Sprintf("a store_reachable alert (got %v)", kinds()) }, alive,
		func() bool { return kinds()[alert.KindStoreReachable] > 0 })
	waitFor(t, 30*time.Second, func() string { return "/readyz ready" }, alive, func() bool {
		_, code, err := httpGet(ctx, "http://"+r.addrs.HTTP+"/readyz")
		return err == nil && code == http.StatusOK
	})
	if p, err := r.metric(ctx, "breakwater_paused"); err != nil || p != 0 {
		t.Errorf("breakwater_paused after the outage = %v, %v; want 0", p, err)
	}
	time.Sleep(2 * time.Second) // any duplicate
	if k := kinds(); k[alert.KindStoreUnreachable] != 1 || k[alert.KindStoreReachable] != 1 {
		t.Errorf("alerts by kind %v; want one store_unreachable and one store_reachable", k)
	}
	t.Logf("alerts by kind: %v", kinds())
}

// TestPipelineFailureExits runs the built binary. First a SIGINT to its
// process group, as Ctrl-C in a terminal sends: it drains and exits 0.
// Then the broker starts refusing the input topic (topic authorisation
// failed, which no retry cures): the process must exit non-zero within
// seconds, not hang or keep reporting ready.
func TestPipelineFailureExits(t *testing.T) {
	bin := testbed.BuildBinary(t, "github.com/breakwater/breakwater/cmd/breakwater")
	b := newBed(t, 2)
	path := filepath.Join(t.TempDir(), "breakwater.yaml")
	if err := os.WriteFile(path, []byte(b.yaml(settings{window: "1m", maxActions: 1e6})), 0o644); err != nil {
		t.Fatal(err)
	}
	recs := eventRecords(traffic.New(10, 1000, -1, 1, 9).Events(epoch, time.Minute, 400))
	start := func() (*testbed.Process, func() error) { return startBinary(t, bin, path) }

	p, alive := start()
	b.k.Produce(t, testTopics.Input, recs[:200]...)
	b.waitCommitted(t, 60*time.Second, alive)
	_ = syscall.Kill(-p.Pid(), syscall.SIGINT)
	if err := p.Wait(waitCtx(t, 60*time.Second)); err != nil {
		t.Fatalf("after SIGINT: %v; want exit status 0\n%s", err, tail(p.Log(), 8<<10))
	}
	if !strings.Contains(p.Log(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log:\n%s", tail(p.Log(), 4<<10))
	}

	p, alive = start()
	b.k.Produce(t, testTopics.Input, recs[200:]...)
	b.waitCommitted(t, 60*time.Second, alive)
	refuseFetches(b.k, testTopics.Input)
	refused := time.Now()
	b.k.Produce(t, testTopics.Input, recs[:50]...) // something to fetch
	err := p.Wait(waitCtx(t, 60*time.Second))
	took := time.Since(refused)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("after the broker refused the input topic: %v; want a non-zero exit status\n%s", err, tail(p.Log(), 8<<10))
	}
	if took > 30*time.Second {
		t.Errorf("exited %v after the broker refused the input topic; want within seconds", took)
	}
	log := p.Log()
	if !strings.Contains(log, "TOPIC_AUTHORIZATION_FAILED") && !strings.Contains(log, "Topic Authorization Failed") {
		t.Errorf("the log does not name the cause:\n%s", tail(log, 4<<10))
	}
	t.Logf("exited with status %d %v after the first refused fetch", exit.ExitCode(), took.Round(time.Millisecond))
}

// refuseFetches makes the broker answer every fetch of topic with
// TOPIC_AUTHORIZATION_FAILED from now on.
func refuseFetches(k *testbed.Kafka, topic string) {
	c := k.Cluster()
	c.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.FetchRequest)
		ours := false
		for _, rt := range req.Topics {
			ours = ours || rt.Topic == topic
		}
		if !ours {
			return nil, nil, false
		}
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

func waitCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestRedisWipeNeverShowsClosed trips a breaker, stops the input, then
// makes Redis lose its data twice (FLUSHALL, then a restart empty) while
// two readers poll the admin API: every answer must show the breaker open
// or say 503 (restoring), never closed, and the API must show it open
// again without a batch arriving.
func TestRedisWipeNeverShowsClosed(t *testing.T) {
	const token = "e2e-viewer-token"
	spiking := traffic.RuleID(2)
	scope := breaker.RuleScope(spiking)
	b := newBed(t, 2)
	s := settings{window: "1m", maxActions: 400}
	s.extra = fmt.Sprintf("admin:\n  tokens:\n    - {name: viewer, role: viewer, token_sha256: %s}\n", config.HashToken(token))
	rep := startReplica(t, "solo", b.config(t, s))
	alive := replicasAlive(rep)
	g := traffic.New(10, 1000, 0, 10, 5)
	b.producePaced(t, eventRecords(g.Events(epoch, 5*time.Minute, 4000)), 250, 500, alive)
	b.waitCommitted(t, 60*time.Second, alive)
	before := b.status(t, scope)
	if before.State != breaker.Open {
		t.Fatalf("the traffic did not trip %s: %+v", scope, before)
	}

	base := "http://" + rep.addrs.HTTP + "/v1/breakers"
	get := func(ctx context.Context, url string, v any) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			err = json.NewDecoder(resp.Body).Decode(v)
		}
		return resp.StatusCode, err
	}
	type view struct {
		Scope      breaker.Scope `json:"scope"`
		State      breaker.State `json:"state"`
		Generation uint64        `json:"generation"`
	}
	var (
		mu       sync.Mutex
		answers  = map[string]int{} // "200 open", "503", ...
		wrong    []string
		lastOpen time.Time
		lastBusy time.Time // the last 503
	)
	note := func(code int, v *view, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			answers["error"]++
		case code != http.StatusOK:
			answers[fmt.Sprint(code)]++
			lastBusy = time.Now()
		case v == nil:
			answers["200 without the scope"]++
			wrong = append(wrong, "the list leaves the tripped breaker out")
		default:
			answers["200 "+string(v.State)]++
			if v.State != breaker.Open || v.Generation < before.Generation {
				wrong = append(wrong, fmt.Sprintf("%s %s generation %d", v.Scope, v.State, v.Generation))
			} else {
				lastOpen = time.Now()
			}
		}
	}
	pollCtx, stopPolling := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for pollCtx.Err() == nil {
			var v view
			code, err := get(pollCtx, base+"/"+string(scope), &v)
			if pollCtx.Err() != nil {
				return
			}
			note(code, &v, err)
		}
	})
	wg.Go(func() {
		for pollCtx.Err() == nil {
			var list struct {
				Breakers []view `json:"breakers"`
			}
			code, err := get(pollCtx, base, &list)
			if pollCtx.Err() != nil {
				return
			}
			var v *view
			for i := range list.Breakers {
				if list.Breakers[i].Scope == scope {
					v = &list.Breakers[i]
				}
			}
			if code != http.StatusOK || err != nil {
				v = &view{}
			}
			note(code, v, err)
		}
	})
	openAgain := func(what string, since time.Time) {
		waitFor(t, 20*time.Second, func() string { return "the API to show " + string(scope) + " open after " + what }, alive,
			func() bool {
				mu.Lock()
				defer mu.Unlock()
				return lastOpen.After(since.Add(time.Second))
			})
		mu.Lock()
		defer mu.Unlock()
		if lastBusy.After(since) {
			t.Logf("after %s the API answered 503 for %v, then %s open again", what, lastBusy.Sub(since).Round(10*time.Millisecond), scope)
		} else {
			t.Logf("after %s the API showed %s open again; no 503 was seen", what, scope)
		}
	}
	time.Sleep(time.Second)
	wiped := time.Now()
	if err := b.r.Client(t).FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	openAgain("FLUSHALL", wiped)
	restarted := time.Now()
	b.r.Restart(t)
	openAgain("a restart empty", restarted)
	stopPolling()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("answers: %v", answers)
	if len(wrong) > 0 {
		t.Errorf("%d answers showed the tripped breaker otherwise than open, first %q", len(wrong), wrong[0])
	}
	if answers["200 open"] == 0 {
		t.Errorf("no answer showed the breaker open")
	}
}

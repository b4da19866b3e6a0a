package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/breakwater/breakwater/internal/testbed"
)

// The fault campaign: TestChaos runs three replicas of the built daemon on a
// three-broker cluster in its own process and a real redis-server, produces
// a stream with per-key sequence numbers and one spiking rule, and while it
// flows a nemesis kills replicas, wipes Redis, freezes it for a long outage,
// restarts the brokers and changes the number of replicas. The checker then
// reads every output topic, the state topic and what every replica's admin
// API answered, and fails on any broken guarantee. `make test` runs the
// small campaign; `make chaos` runs the full one and prints its table.
var (
	chaosSize  = flag.String("chaos.size", "small", "fault campaign size: small (make test) or full (make chaos)")
	chaosTable = flag.String("chaos.table", "", "append the fault campaign's result row to this file (make chaos)")
	chaosSeed  = flag.Uint64("chaos.seed", 0, "seed of the fault campaign's traffic and nemesis; 0 picks one from the clock")
)

// campaign is the shape of one fault campaign.
type campaign struct {
	name       string
	actions    int           // input records, malformed ones included
	produceFor time.Duration // the traffic's span, produced in real time
	spikeAt    float64       // fraction of produceFor when the spiking rule starts acting 20x
	killEvery  time.Duration // a replica is SIGKILLed this often while traffic flows
	killDown   time.Duration // and restarted this long after
	wipes      []float64     // fractions of produceFor when Redis is restarted empty
	outageAt   float64       // fraction of produceFor when Redis freezes
	outage     time.Duration // for this long
	brokersAt  float64       // fraction of produceFor when the brokers restart
	addAt      float64       // a fourth replica joins
	removeAt   float64       // one replica is stopped (SIGTERM) for good
	catchUp    time.Duration // how long the group may take to commit everything after the traffic
}

var campaigns = map[string]campaign{
	"small": {
		name: "small", actions: 20_000, produceFor: 100 * time.Second, spikeAt: 0.2,
		killEvery: 9 * time.Second, killDown: time.Second,
		wipes:    []float64{0.15, 0.85},
		outageAt: 0.3, outage: 45 * time.Second,
		brokersAt: 0.8, addAt: 0.25, removeAt: 0.7,
		catchUp: 3 * time.Minute,
	},
	"full": {
		name: "full", actions: 200_000, produceFor: 240 * time.Second, spikeAt: 0.25,
		killEvery: 5 * time.Second, killDown: time.Second,
		wipes:    []float64{0.15, 0.4, 0.75, 0.9},
		outageAt: 0.45, outage: 60 * time.Second,
		brokersAt: 0.82, addAt: 0.3, removeAt: 0.65,
		catchUp: 8 * time.Minute,
	},
}

// The campaign's names and thresholds.
const (
	chaosGroup     = "breakwater-chaos"
	chaosPrefix    = "bw-chaos"
	chaosParts     = 12
	chaosRules     = 10 // normal rules besides the spiking one
	chaosSpikeRule = "rule-spike"
	chaosSpikeX    = 20
	chaosKeys      = 4000
	chaosWindow    = 10 * time.Second
	chaosSession   = 4 * time.Second
	chaosToken     = "chaos-viewer-token"
	chaosPoll      = 50 * time.Millisecond
)

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault campaign runs for minutes; not in -short mode")
	}
	c, ok := campaigns[*chaosSize]
	if !ok {
		t.Fatalf("-chaos.size=%q: want small or full", *chaosSize)
	}
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("fault campaign %s, seed %d (rerun with -chaos.seed=%d)", c.name, seed, seed)
	res := runCampaign(t, c, seed)
	row := res.row()
	t.Logf("\n%s\n%s", chaosHeader(), row)
	if *chaosTable != "" {
		f, err := os.OpenFile(*chaosTable, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := f.Stat(); err == nil && fi.Size() == 0 {
			fmt.Fprintln(f, chaosHeader())
		}
		fmt.Fprintln(f, row)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range res.violations() {
		t.Error("violation: " + v)
	}
	for _, n := range res.notes {
		t.Log(n)
	}
}

// ---------------------------------------------------------------------------
// Replicas: the built daemon as subprocesses.

// incarnation is one run of a replica's process. Its program name, which
// kafka-go puts into its client id, names it uniquely, so that the group's
// members can be traced back to the process that joined.
type incarnation struct {
	name     string
	proc     *testbed.Process
	http     string
	started  time.Time
	expected bool // the campaign killed or stopped it
	cancel   context.CancelFunc
	polled   chan struct{} // closed when its poller returned
}

// fleet runs the replicas and remembers every incarnation.
type fleet struct {
	t       *testing.T
	bin     string
	dir     string
	yaml    func(httpAddr string) string
	pollers *apiLog
	janitor *janitor

	slots    []*incarnation // nil: the slot was removed
	all      []*incarnation
	runs     int
	selfExit []string
	unclean  []string // non-zero exits after SIGTERM
}

func (f *fleet) start(slot int) {
	t := f.t
	t.Helper()
	f.runs++
	name := fmt.Sprintf("bw-r%d-%d", slot, f.runs)
	link := filepath.Join(f.dir, name)
	if err := os.Symlink(f.bin, link); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	path := filepath.Join(f.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(f.yaml(addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := testbed.StartProcessQuietly(t, link, []string{"run", "--config", path},
		[]string{"BREAKWATER_ADMIN_TOKENS=chaos:viewer:" + chaosToken})
	ctx, cancel := context.WithCancel(context.Background())
	inc := &incarnation{name: name, proc: p, http: addr, started: time.Now(), cancel: cancel, polled: make(chan struct{})}
	go func() {
		defer close(inc.polled)
		f.pollers.poll(ctx, inc)
	}()
	for len(f.slots) <= slot {
		f.slots = append(f.slots, nil)
	}
	f.slots[slot] = inc
	f.all = append(f.all, inc)
}

// kill SIGKILLs the replica in slot and tells the janitor.
func (f *fleet) kill(slot int) {
	inc := f.slots[slot]
	inc.expected = true
	inc.proc.Kill()
	inc.cancel()
	f.janitor.dead(inc.name)
}

// stop SIGTERMs the replica in slot and waits for it to exit; a non-zero
// exit is noted.
func (f *fleet) stop(slot int) {
	inc := f.slots[slot]
	inc.expected = true
	if err := inc.proc.Stop(60 * time.Second); err != nil {
		f.unclean = append(f.unclean, fmt.Sprintf("%s exited %v after SIGTERM; last errors:\n%s", inc.name, err, lastErrors(inc.proc.Log(), 3)))
	}
	inc.cancel()
	f.janitor.dead(inc.name)
}

// lastErrors returns the last n log lines of level error (or worse) and
// panics of a daemon's output, or its last line if there are none.
func lastErrors(log string, n int) string {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		l := lines[i]
		if strings.Contains(l, `"level":"error"`) || strings.Contains(l, `"level":"fatal"`) || strings.HasPrefix(l, "panic") {
			out = append([]string{l}, out...)
		}
	}
	if len(out) == 0 && len(lines) > 0 {
		out = lines[len(lines)-1:]
	}
	return "  " + strings.Join(out, "\n  ")
}

// stuck describes why the group did not commit everything: the partitions
// behind, the group as the coordinator describes it, and what each running
// replica says about itself.
func (f *fleet) stuck(ends, com map[int32]int64) string {
	var b strings.Builder
	b.WriteString("the group did not catch up; partitions behind (end/committed):")
	for p := range int32(len(ends)) {
		if ends[p] != com[p] {
			fmt.Fprintf(&b, " p%d %d/%d", p, ends[p], com[p])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b.WriteString("\n  group: " + f.janitor.describe(ctx))
	for _, slot := range f.live() {
		inc := f.slots[slot]
		body, code, err := httpGet(ctx, "http://"+inc.http+"/readyz")
		fmt.Fprintf(&b, "\n  %s: /readyz %d %q %v; last warnings and errors:", inc.name, code, strings.TrimSpace(body), err)
		lines := strings.Split(strings.TrimSpace(inc.proc.Log()), "\n")
		var warn []string
		for i := len(lines) - 1; i >= 0 && len(warn) < 6; i-- {
			if l := lines[i]; (strings.Contains(l, `"level":"warn"`) || strings.Contains(l, `"level":"error"`)) && !strings.Contains(l, `"logger":"admin"`) {
				warn = append([]string{l}, warn...)
			}
		}
		for _, l := range warn {
			b.WriteString("\n    " + l)
		}
	}
	return b.String()
}

// live returns the slots whose replica runs.
func (f *fleet) live() []int {
	var out []int
	for i, inc := range f.slots {
		if inc != nil && !inc.proc.Exited() {
			out = append(out, i)
		}
	}
	return out
}

// reap notes and restarts every replica that exited on its own.
func (f *fleet) reap() {
	for i, inc := range f.slots {
		if inc == nil || inc.expected || !inc.proc.Exited() {
			continue
		}
		inc.expected = true
		inc.cancel()
		f.janitor.dead(inc.name)
		f.selfExit = append(f.selfExit, fmt.Sprintf("%s exited by itself after %v: %v; last errors:\n%s",
			inc.name, time.Since(inc.started).Round(time.Millisecond), inc.proc.ExitErr(), lastErrors(inc.proc.Log(), 3)))
		f.start(i)
	}
}

// ---------------------------------------------------------------------------
// The admin API as every replica answered it.

// apiObs is one answer of a replica's admin API about the spiking rule's
// breaker.
type apiObs struct {
	replica string
	sent    time.Time
	code    int // 0: no answer
	state   string
	gen     uint64
}

type apiLog struct {
	scope  string
	client *http.Client // its own transport, whose idle connections are closed at the end
	mu     sync.Mutex   // guards obs and ready
	obs    []apiObs
	ready  []readyObs
}

// readyObs is one answer of a replica's /readyz.
type readyObs struct {
	replica string
	sent    time.Time
	code    int // 0: no answer
	body    string
}

func (l *apiLog) poll(ctx context.Context, inc *incarnation) {
	u := "http://" + inc.http + "/v1/breakers/" + url.PathEscape(l.scope)
	tick := time.NewTicker(chaosPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		o := apiObs{replica: inc.name, sent: time.Now()}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+chaosToken)
		resp, err := l.client.Do(req)
		if err == nil {
			o.code = resp.StatusCode
			if resp.StatusCode == http.StatusOK {
				var b struct {
					State      string `json:"state"`
					Generation uint64 `json:"generation"`
				}
				if json.NewDecoder(resp.Body).Decode(&b) == nil {
					o.state, o.gen = b.State, b.Generation
				} else {
					o.code = -1
				}
			}
			_ = resp.Body.Close()
		}
		cancel()
		if ctx.Err() != nil {
			return // killed while asking: the answer says nothing
		}
		ro := l.readyz(ctx, inc)
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		l.obs = append(l.obs, o)
		l.ready = append(l.ready, ro)
		l.mu.Unlock()
	}
}

// readyz asks inc's /readyz once. The daemon gives its probe of the rate
// store 2 seconds; a request that gets no answer within 3 is noted as
// "no answer", one refused (the process is not listening yet) as
// "refused".
func (l *apiLog) readyz(ctx context.Context, inc *incarnation) readyObs {
	o := readyObs{replica: inc.name, sent: time.Now()}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, "http://"+inc.http+"/readyz", nil)
	resp, err := l.client.Do(req)
	if err != nil {
		o.body = `{"status":"no answer"}`
		if errors.Is(err, syscall.ECONNREFUSED) {
			o.body = `{"status":"refused"}`
		}
		return o
	}
	defer func() { _ = resp.Body.Close() }()
	o.code = resp.StatusCode
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	o.body = strings.TrimSpace(string(b))
	return o
}

// ---------------------------------------------------------------------------
// The janitor: kfake's group coordinator can keep a member whose JoinGroup
// answer went to a client that was killed, and restarts the rebalance timer
// on every join, so under frequent kills the group can sit in
// PreparingRebalance for minutes. A real coordinator expires such a member
// after its session timeout. The janitor does what it would: a session
// timeout after a replica was killed, it removes the members that process
// joined with (traced by the program name in their client id) through
// LeaveGroup with member identities.

type janitor struct {
	cl *kgo.Client

	mu      sync.Mutex           // guards killed and removed
	killed  map[string]time.Time // incarnation name -> when it was killed
	removed int
}

func (j *janitor) dead(name string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.killed[name] = time.Now()
}

func (j *janitor) run(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		j.sweep(ctx)
	}
}

// describe returns the group's state and members, with the program name
// of the process behind each and its input partitions.
func (j *janitor) describe(ctx context.Context) string {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{chaosGroup}
	resp, err := req.RequestWith(ctx, j.cl)
	if err != nil {
		return "describe: " + err.Error()
	}
	if len(resp.Groups) != 1 {
		return fmt.Sprintf("describe: %d groups", len(resp.Groups))
	}
	g := resp.Groups[0]
	var b strings.Builder
	fmt.Fprintf(&b, "state %s (%v), %d members:", g.State, kerr.ErrorForCode(g.ErrorCode), len(g.Members))
	for _, m := range g.Members {
		prog, _, _ := strings.Cut(m.ClientID, "@")
		var a kmsg.ConsumerMemberAssignment
		var parts []int32
		if a.ReadFrom(m.MemberAssignment) == nil {
			for _, tp := range a.Topics {
				parts = append(parts, tp.Partitions...)
			}
		}
		j.mu.Lock()
		_, dead := j.killed[prog]
		j.mu.Unlock()
		fmt.Fprintf(&b, " %s(dead=%v)%v", prog, dead, parts)
	}
	return b.String()
}

func (j *janitor) sweep(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{chaosGroup}
	resp, err := req.RequestWith(ctx, j.cl)
	if err != nil || len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
		return
	}
	var gone []kmsg.LeaveGroupRequestMember
	j.mu.Lock()
	for _, m := range resp.Groups[0].Members {
		prog, _, _ := strings.Cut(m.ClientID, "@")
		if at, ok := j.killed[prog]; ok && time.Since(at) > chaosSession {
			lm := kmsg.NewLeaveGroupRequestMember()
			lm.MemberID = m.MemberID
			lm.Reason = kmsg.StringPtr("process " + prog + " was killed")
			gone = append(gone, lm)
		}
	}
	j.mu.Unlock()
	if len(gone) == 0 {
		return
	}
	lreq := kmsg.NewPtrLeaveGroupRequest()
	lreq.Group = chaosGroup
	lreq.Members = gone
	lresp, err := lreq.RequestWith(ctx, j.cl)
	if err != nil {
		return
	}
	n := 0
	for _, m := range lresp.Members {
		if m.ErrorCode == 0 {
			n++
		}
	}
	if kerr.ErrorForCode(lresp.ErrorCode) == nil {
		j.mu.Lock()
		j.removed += n
		j.mu.Unlock()
	}
}

// ---------------------------------------------------------------------------
// Traffic.

// chaosGen makes the input: normal rules at a steady rate, the spiking rule
// at the same rate and chaosSpikeX times it from the spike on, a malformed
// record every thousand, every value unique, each key's actions numbered.
type chaosGen struct {
	rng      *rand.Rand
	c        campaign
	base     float64 // actions per second of one rule
	n        int
	seq      map[string]int
	spikeOn  bool
	malforms int
}

func newChaosGen(c campaign, seed uint64) *chaosGen {
	// Before the spike chaosRules+1 rules act at base; after it,
	// chaosRules at base and one at chaosSpikeX times base.
	secs := c.produceFor.Seconds()
	perBase := c.spikeAt*float64(chaosRules+1) + (1-c.spikeAt)*float64(chaosRules+chaosSpikeX)
	return &chaosGen{
		rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), c: c,
		base: float64(c.actions) / secs / perBase, seq: map[string]int{},
	}
}

// maxActions is the rules' window limit: four times a normal rule's window
// count, a fifth of the spiking rule's.
func (g *chaosGen) maxActions() float64 {
	return float64(int(4 * g.base * chaosWindow.Seconds()))
}

// next returns the records due by elapsed time since the start, and whether
// the traffic is complete.
func (g *chaosGen) next(elapsed time.Duration) ([]testbed.Record, bool) {
	frac := elapsed.Seconds() / g.c.produceFor.Seconds()
	g.spikeOn = frac >= g.c.spikeAt
	var out []testbed.Record
	// The count due by now: chaosRules+1 rules at base before the spike,
	// the equivalent of chaosRules+chaosSpikeX after it.
	secs := min(elapsed.Seconds(), g.c.produceFor.Seconds())
	spikeSecs := g.c.spikeAt * g.c.produceFor.Seconds()
	due := g.base * (float64(chaosRules+1)*min(secs, spikeSecs) + float64(chaosRules+chaosSpikeX)*max(0, secs-spikeSecs))
	want := min(int(due), g.c.actions)
	now := time.Now().UTC()
	for g.n < want || (frac >= 1 && g.n < g.c.actions) {
		out = append(out, g.one(now))
	}
	return out, g.n >= g.c.actions
}

func (g *chaosGen) one(now time.Time) testbed.Record {
	g.n++
	if g.n%1000 == 500 {
		g.malforms++
		r := malformed(g.malforms)[g.malforms-1]
		r.Key = fmt.Appendf(nil, "malformed-%d", g.n)
		r.Value = append(r.Value, fmt.Sprintf(" #%d", g.n)...)
		r.Timestamp = now
		return r
	}
	rule := fmt.Sprintf("rule-%02d", g.rng.IntN(chaosRules))
	if g.spikeOn {
		if g.rng.IntN(chaosRules+chaosSpikeX) < chaosSpikeX {
			rule = chaosSpikeRule
		}
	} else if g.rng.IntN(chaosRules+1) == 0 {
		rule = chaosSpikeRule
	}
	action := "remove_pin"
	if g.rng.IntN(2) == 0 && rule != chaosSpikeRule {
		action = "limit_distribution"
	}
	key := fmt.Sprintf("u-%05d", g.rng.IntN(chaosKeys))
	g.seq[key]++
	return chaosRecord(g.n, rule, action, key, g.seq[key], now)
}

// chaosRecord is the n-th input record: an action of rule on key, the
// key's seq-th, written at now.
func chaosRecord(n int, rule, action, key string, seq int, now time.Time) testbed.Record {
	v := fmt.Sprintf(`{"action_id":"chaos-%d","rule_id":%q,"action":%q,"target":{"type":"account","id":%q},"occurred_at":%q,"seq":%d}`,
		n, rule, action, key, now.Format(time.RFC3339Nano), seq)
	return testbed.Record{
		Partition: testbed.AnyPartition, Key: []byte(key), Value: []byte(v), Timestamp: now,
		Headers: []testbed.Header{{Key: "x-trace-id", Value: fmt.Appendf(nil, "chaos-%d", n)}},
	}
}

// ---------------------------------------------------------------------------
// The campaign.

// step is one nemesis action at a moment of the campaign.
type step struct {
	at   time.Duration
	name string
	do   func()
}

func runCampaign(t *testing.T, c campaign, seed uint64) *chaosResult {
	bin := testbed.BuildBinary(t, "github.com/breakwater/breakwater/cmd/breakwater")
	k := testbed.StartKafka(t, testbed.OwnProcess(), testbed.Brokers(3),
		testbed.DataDir(filepath.Join(t.TempDir(), "kafka")), testbed.MinSessionTimeout(time.Second))
	r := testbed.StartRedis(t)
	for _, name := range []string{testTopics.Input, testTopics.Gated, testTopics.Held, testTopics.DeadLetter, auditTopic, rejectedTopic} {
		k.CreateTopic(t, name, chaosParts)
	}
	k.CreateCompactedTopic(t, testTopics.State, 1)

	gen := newChaosGen(c, seed)
	scope := "rule:" + chaosSpikeRule
	yaml := func(httpAddr string) string {
		var w strings.Builder
		fmt.Fprintf(&w, "kafka:\n  brokers: [%s]\n  group_id: %s\n", strings.Join(k.Addrs(), ", "), chaosGroup)
		fmt.Fprintf(&w, "  topics:\n    input: %s\n    gated: %s\n    held: %s\n    dead_letter: %s\n    state: %s\n",
			testTopics.Input, testTopics.Gated, testTopics.Held, testTopics.DeadLetter, testTopics.State)
		fmt.Fprintf(&w, "  batch_size: 500\n  batch_wait: 5ms\n  write_timeout: 10s\n  session_timeout: %s\n", chaosSession)
		fmt.Fprintf(&w, "redis:\n  addr: %s\n  key_prefix: %s\n  timeout: 1s\n", r.Addr(), chaosPrefix)
		fmt.Fprintf(&w, "http:\n  listen: %s\n", httpAddr)
		fmt.Fprintf(&w, "breakers:\n  defaults:\n    window: %s\n    max_actions: %v\n    factor: 0\n", chaosWindow, gen.maxActions())
		fmt.Fprintf(&w, "  global:\n    window: %s\n    disabled: true\n", chaosWindow)
		fmt.Fprintf(&w, "log:\n  level: info\n  format: json\n")
		return w.String()
	}

	jctx, jstop := context.WithCancel(context.Background())
	jan := &janitor{cl: k.NewClient(t), killed: map[string]time.Time{}}
	jdone := make(chan struct{})
	go func() { defer close(jdone); jan.run(jctx) }()
	f := &fleet{t: t, bin: bin, dir: t.TempDir(), yaml: yaml, pollers: &apiLog{scope: scope, client: &http.Client{Transport: &http.Transport{}}}, janitor: jan}
	t.Cleanup(func() {
		jstop()
		<-jdone
		for _, inc := range f.all {
			inc.proc.Kill()
			inc.cancel()
			<-inc.polled
		}
		f.pollers.client.CloseIdleConnections()
	})
	for i := range 3 {
		f.start(i)
	}

	res := &chaosResult{c: c, seed: seed}
	rng := rand.New(rand.NewPCG(seed, 7))
	span := c.produceFor
	at := func(frac float64) time.Duration { return time.Duration(frac * float64(span)) }
	var steps []step
	for d := c.killEvery; d < span; d += c.killEvery {
		steps = append(steps, step{at: d, name: "kill", do: func() {
			live := f.live()
			if len(live) == 0 {
				return
			}
			slot := live[rng.IntN(len(live))]
			f.kill(slot)
			res.kills++
			steps = append(steps, step{at: time.Duration(0), name: "restart", do: func() { f.start(slot) }})
		}})
	}
	for _, w := range c.wipes {
		steps = append(steps, step{at: at(w), name: "redis wipe", do: func() { r.Restart(t); res.wipes++ }})
	}
	steps = append(steps,
		step{at: at(c.outageAt), name: "redis freeze", do: func() { r.Freeze(t); res.frozeAt = time.Now() }},
		step{at: at(c.outageAt) + c.outage, name: "redis thaw", do: func() { res.thawAt = time.Now(); r.Thaw(t); res.outage = c.outage }},
		step{at: at(c.brokersAt), name: "broker restart", do: func() {
			began := time.Now()
			k.Restart(t)
			res.brokerRestarts++
			res.notes = append(res.notes, fmt.Sprintf("brokers restarted in %v", time.Since(began).Round(time.Millisecond)))
		}},
		step{at: at(c.addAt), name: "add replica", do: func() { f.start(len(f.slots)); res.added++ }},
		step{at: at(c.removeAt), name: "remove replica", do: func() {
			live := f.live()
			if len(live) > 1 {
				slot := live[rng.IntN(len(live))]
				f.stop(slot)
				f.slots[slot] = nil
				res.removed++
			}
		}},
	)

	start := time.Now()
	res.start = start
	var written []testbed.Record
	done := false
	for !done || len(steps) > 0 {
		elapsed := time.Since(start)
		if !done {
			var recs []testbed.Record
			recs, done = gen.next(elapsed)
			if len(recs) > 0 {
				written = append(written, k.Produce(t, testTopics.Input, recs...)...)
			}
		}
		// Restarts are due killDown after the kill that queued them.
		sort.SliceStable(steps, func(i, j int) bool { return steps[i].at < steps[j].at })
		for len(steps) > 0 && steps[0].at <= time.Since(start) {
			s := steps[0]
			steps = steps[1:]
			if s.name == "kill" {
				n := len(steps)
				s.do()
				for i := n; i < len(steps); i++ {
					steps[i].at = time.Since(start) + c.killDown
				}
				continue
			}
			s.do()
		}
		f.reap()
		time.Sleep(100 * time.Millisecond)
	}
	res.produced = len(written)
	t.Logf("traffic and nemesis done after %v: %d records, %d kills, %d Redis wipes", time.Since(start).Round(time.Second), len(written), res.kills, res.wipes)

	// Catch up: every input offset committed, replicas watched.
	deadline := time.Now().Add(c.catchUp)
	lastProgress := time.Now()
	for {
		f.reap()
		ends := k.EndOffsets(t, testTopics.Input)
		com := k.CommittedOffsets(t, chaosGroup, testTopics.Input)
		behind := int64(0)
		for p, e := range ends {
			behind += e - com[p]
		}
		if behind == 0 {
			break
		}
		if time.Now().After(deadline) {
			res.notCommitted = behind
			res.notes = append(res.notes, f.stuck(ends, com))
			break
		}
		if time.Since(lastProgress) > 30*time.Second {
			t.Logf("catching up: %d input records not committed yet, %d replicas running", behind, len(f.live()))
			lastProgress = time.Now()
		}
		time.Sleep(500 * time.Millisecond)
	}
	res.duration = time.Since(start)
	for _, slot := range f.live() {
		f.stop(slot)
	}
	f.reap()
	jstop()
	<-jdone
	for _, inc := range f.all {
		<-inc.polled
	}
	f.pollers.client.CloseIdleConnections()
	res.selfExits = f.selfExit
	res.notes = append(res.notes, fmt.Sprintf("%d incarnations of replicas ran; %d group members of killed or stopped processes were removed a session timeout after their end", len(f.all), jan.removed))
	for _, u := range f.unclean {
		res.notes = append(res.notes, "not a clean stop: "+u)
	}

	checkCampaign(t, k, res, written)
	res.api = f.pollers.obs
	res.checkAPI()
	res.readiness = f.pollers.ready
	res.checkReadiness()
	return res
}

// chaosHeader is the header of the campaign table.
func chaosHeader() string {
	return fmt.Sprintf("%-5s %-20s %7s %7s %6s %4s %4s %5s %6s %5s %8s %6s %5s %5s %5s %5s %5s %6s %-12s %6s %5s %5s %4s %4s %5s %6s",
		"size", "seed", "actions", "gated", "held", "dlq", "lost", "both", "dups", "fresh", "unmarked", "order", "spike", "exits",
		"api", "ready", "state", "behind", "trip", "apilag", "kills", "wipes", "out", "brk", "+/-", "time")
}

package bench

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/traffic"
)

const (
	defaultActions = 1_000_000
	partitions     = 12
	rules          = 10
	// eventRate is the event-time rate of the generated actions: the
	// 1,000,000 default actions cover 100 s of event time.
	eventRate    = 10_000
	produceChunk = 20_000
	inputTopic   = "bench.actions"
	runTimeout   = 20 * time.Minute
	// clockTick is the unit of utime and stime in /proc/PID/stat.
	clockTick = 10 * time.Millisecond
)

// stage is one part of a lane's wall time.
type stage struct {
	name string
	d    time.Duration
}

// runResult is one measured run of either side.
type runResult struct {
	variant string
	round   int
	actions int
	batches int
	// span runs from the first batch in hand to the commit of the last
	// one, on the measured process's own clock: the group join is
	// excluded. total runs from the process's start to that commit, as
	// the bench saw it.
	span, total time.Duration
	// lanes are where the span went, stage by stage, per lane: the
	// passthrough has one (fetch, encode, write, commit), the breaker three
	// that overlap (decide: fetch, store, decide, encode, handoff; write:
	// wait, write, handoff; commit: wait, commit, account) and the
	// decoding of its partition readers, which overlaps with them.
	lanes map[string][]stage
	// CPU time of each process over the whole run (start, join and
	// shutdown included), and the measured process's peak RSS.
	cpu, brokerCPU, redisCPU time.Duration
	peakRSS                  uint64
	// requests are those the broker received over the same time as
	// brokerCPU, by API (the bench's own polling of the committed offsets
	// during a breaker run included: OffsetFetch).
	requests map[string]testbed.RequestCount

	// The breaker only.
	scripts   int64 // INFO commandstats evalsha+eval calls, reset before the run
	luaUsec   int64 // INFO commandstats usec of evalsha: time inside redis-server
	redisUsed int64 // INFO memory used_memory after the run
	decisions map[string]float64
}

func (r runResult) rate() float64 { return float64(r.actions) / r.span.Seconds() }

func (r runResult) perAction(d time.Duration) float64 {
	return float64(d.Nanoseconds()) / 1000 / float64(r.actions)
}

// bed is what every run shares: the broker process, redis-server, the
// built binaries and the input.
type bed struct {
	k           *testbed.Kafka
	rs          *testbed.Redis
	admin       *redis.Client
	breakwater  string // binary
	passthrough string // binary
	n, batch    int
	wait        time.Duration
	trip        bool
	dir         string // configuration files
	profile     string // where the profiled breaker run writes its CPU profile; empty: no such run
	passProfile string
}

// BenchmarkThroughput measures Breakwater's throughput as a ratio of a raw
// batched kafka-go passthrough, each the built binary in its own process,
// run alternately against the same broker process and redis-server; see
// the package documentation for the invocation.
func BenchmarkThroughput(b *testing.B) {
	n := envInt(b, "BENCH_ACTIONS", defaultActions)
	batch := envInt(b, "BENCH_BATCH", config.Default().Kafka.BatchSize)
	rounds := envInt(b, "BENCH_ROUNDS", 3)

	bd := &bed{
		breakwater:  testbed.BuildBinary(b, "github.com/breakwater/breakwater/cmd/breakwater"),
		passthrough: testbed.BuildBinary(b, "github.com/breakwater/breakwater/bench/passthrough"),
		n:           n, batch: batch, wait: 10 * time.Millisecond,
		trip:    os.Getenv("BENCH_TRIP") == "1",
		dir:     b.TempDir(),
		profile: os.Getenv("BENCH_PROFILE"),
	}
	if bd.profile != "" {
		bd.passProfile = strings.TrimSuffix(bd.profile, filepath.Ext(bd.profile)) + "-passthrough" + filepath.Ext(bd.profile)
	}
	bd.k = testbed.StartKafka(b, testbed.OwnProcess(), testbed.CountRequests())
	bd.rs = testbed.StartRedis(b)
	bd.admin = bd.rs.Client(b)
	bd.k.CreateTopic(b, inputTopic, partitions)
	t0 := time.Now()
	meanValue := produceInput(b, bd.k, inputTopic, n)
	produced := time.Since(t0)
	loadStart := loadAvg()

	var results []runResult
	seq := 0
	for b.Loop() {
		for round := 1; round <= rounds; round++ {
			seq++
			results = append(results, bd.runPassthrough(b, seq, round, ""))
			seq++
			results = append(results, bd.runBreaker(b, seq, round, ""))
		}
		if bd.profile != "" {
			// Profiled runs apart from the measured ones, so that the
			// profiler's cost is in none of the figures.
			seq++
			bd.runPassthrough(b, seq, 0, bd.passProfile)
			seq++
			bd.runBreaker(b, seq, 0, bd.profile)
		}
	}
	b.StopTimer()
	report(b, reportInput{
		bed: bd, meanValue: meanValue, produced: produced, results: results, loadStart: loadStart,
	})
}

// yaml is the breaker's configuration for run seq, read by the real
// loader. Thresholds are far above the traffic so that nothing trips,
// except rule-02 with BENCH_TRIP=1.
func (bd *bed) yaml(seq int, listen string) string {
	rulesYAML := ""
	if bd.trip {
		// rule-02 acts about 1,000 times a second of event time with a
		// mean weight of about 1.8: it passes 20,000 after about 11 s.
		rulesYAML = "  rules:\n    rule-02: {max_actions: 20000}\n"
	}
	return fmt.Sprintf(`kafka:
  brokers: [%s]
  group_id: bench-brk-%d
  topics: {input: %q, gated: out.%d.gated, held: out.%d.held, dead_letter: out.%d.dead, state: out.%d.state}
  batch_size: %d
  batch_wait: %s
redis:
  addr: %q
  key_prefix: bench
http:
  listen: %s
admin:
  audit_topic: out.%d.audit
log:
  level: warn
  format: json
breakers:
  defaults: {max_actions: 1000000000}
  global: {max_actions: 1000000000}
%s`, strings.Join(bd.k.Addrs(), ", "), seq, inputTopic, seq, seq, seq, seq, bd.batch, bd.wait, bd.rs.Addr(), listen, seq, rulesYAML)
}

// runPassthrough runs the passthrough binary once over the whole input.
func (bd *bed) runPassthrough(b *testing.B, seq, round int, profile string) runResult {
	b.Helper()
	group := fmt.Sprintf("bench-pass-%d", seq)
	out := fmt.Sprintf("bench.pass.%d", seq)
	createTopics(b, bd.k.Addrs(), false, out)
	args := []string{"-brokers", strings.Join(bd.k.Addrs(), ","), "-group", group, "-topic", inputTopic, "-out", out,
		"-n", strconv.Itoa(bd.n), "-batch", strconv.Itoa(bd.batch), "-wait", bd.wait.String()}
	if profile != "" {
		args = append(args, "-cpuprofile", profile)
	}
	broker0, redis0, req0 := procCPU(b, bd.k.Pid()), redisCPU(b, bd.admin), bd.k.Requests(b)
	start := time.Now()
	p := testbed.StartProcessQuietly(b, bd.passthrough, args, nil)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		b.Fatalf("passthrough run %d: %v\n%s", seq, err, p.Log())
	}
	total := time.Since(start)
	res := runResult{variant: "passthrough", round: round, total: total}
	res.brokerCPU, res.redisCPU = procCPU(b, bd.k.Pid())-broker0, redisCPU(b, bd.admin)-redis0
	res.requests = requestsSince(req0, bd.k.Requests(b))
	res.cpu, res.peakRSS, _ = p.Usage()
	var raw struct {
		Actions int   `json:"actions"`
		Batches int   `json:"batches"`
		Span    int64 `json:"span_ns"`
		Fetch   int64 `json:"fetch_ns"`
		Encode  int64 `json:"encode_ns"`
		Write   int64 `json:"write_ns"`
		Commit  int64 `json:"commit_ns"`
	}
	log := p.Log()
	line := log[strings.LastIndex(strings.TrimSpace(log), "\n")+1:]
	if err := json.Unmarshal([]byte(line), &raw); err != nil {
		b.Fatalf("passthrough run %d: reading its figures: %v\n%s", seq, err, log)
	}
	res.actions, res.batches, res.span = raw.Actions, raw.Batches, time.Duration(raw.Span)
	res.lanes = map[string][]stage{"pass": {
		{"fetch", time.Duration(raw.Fetch)}, {"encode", time.Duration(raw.Encode)},
		{"write", time.Duration(raw.Write)}, {"commit", time.Duration(raw.Commit)},
	}}
	if got := sum(bd.k.EndOffsets(b, out)); got != int64(bd.n) {
		b.Fatalf("passthrough run %d wrote %d records, want %d", seq, got, bd.n)
	}
	if got := sum(bd.k.CommittedOffsets(b, group, inputTopic)); got != int64(bd.n) {
		b.Fatalf("passthrough run %d committed %d offsets, want %d", seq, got, bd.n)
	}
	deleteTopics(b, bd.k.Addrs(), out)
	return res
}

// runBreaker runs the breakwater binary over the whole input, from an
// empty Redis, and stops it once every input offset is committed.
func (bd *bed) runBreaker(b *testing.B, seq, round int, profile string) runResult {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	if err := bd.admin.FlushAll(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	if err := bd.admin.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	pre := fmt.Sprintf("out.%d.", seq)
	outs := []string{pre + "gated", pre + "held", pre + "dead"}
	createTopics(b, bd.k.Addrs(), false, outs...)
	// The audit trail is also the review journal: without it the review
	// index cannot finish its first build and reads the whole held topic
	// again at every poll, on new connections.
	createTopics(b, bd.k.Addrs(), true, pre+"state", pre+"audit")
	listen := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(b))
	path := filepath.Join(bd.dir, fmt.Sprintf("breakwater-%d.yaml", seq))
	if err := os.WriteFile(path, []byte(bd.yaml(seq, listen)), 0o644); err != nil {
		b.Fatal(err)
	}
	args := []string{"run", "--config", path}
	if profile != "" {
		args = append(args, "--cpuprofile", profile)
	}
	group := fmt.Sprintf("bench-brk-%d", seq)
	broker0, redis0, req0 := procCPU(b, bd.k.Pid()), redisCPU(b, bd.admin), bd.k.Requests(b)
	start := time.Now()
	p := testbed.StartProcessQuietly(b, bd.breakwater, args, nil)
	// Done once every input offset is committed: the commit follows the
	// acknowledged writes of the batch.
	for {
		if p.Exited() {
			b.Fatalf("breaker run %d: breakwater exited: %v\n%s", seq, p.ExitErr(), p.Log())
		}
		if ctx.Err() != nil {
			b.Fatalf("breaker run %d: not done after %v\n%s", seq, runTimeout, p.Log())
		}
		if sum(bd.k.CommittedOffsets(b, group, inputTopic)) == int64(bd.n) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	total := time.Since(start)
	m := scrape(b, "http://"+listen+"/metrics")
	broker1, redis1, req1 := procCPU(b, bd.k.Pid()), redisCPU(b, bd.admin), bd.k.Requests(b)
	if err := p.Stop(30 * time.Second); err != nil {
		b.Fatalf("breaker run %d: stop: %v\n%s", seq, err, p.Log())
	}
	res := runResult{variant: "breaker", round: round, total: total, decisions: map[string]float64{}}
	res.cpu, res.peakRSS, _ = p.Usage()
	res.brokerCPU, res.redisCPU = broker1-broker0, redis1-redis0
	res.requests = requestsSince(req0, req1)
	secs := func(lane, st string) time.Duration {
		return time.Duration(m.get("breakwater_pipeline_stage_seconds_total", "lane", lane, "stage", st) * float64(time.Second))
	}
	res.lanes = map[string][]stage{}
	for _, l := range []struct {
		name   string
		stages []string
	}{
		{"decide", []string{"fetch", "store", "decide", "encode", "handoff"}},
		{"write", []string{"wait", "write", "handoff"}},
		{"commit", []string{"wait", "commit", "account"}},
		{"read", []string{"decode"}},
	} {
		for _, st := range l.stages {
			res.lanes[l.name] = append(res.lanes[l.name], stage{st, secs(l.name, st)})
		}
	}
	// The commit lane runs from the first batch in hand to the last
	// commit (and the accounting after it): the span.
	for _, st := range res.lanes["commit"] {
		res.span += st.d
	}
	res.batches = int(m.get("breakwater_batch_actions_count"))
	for _, d := range []string{"gated", "held", "dead_letter"} {
		res.decisions[d] = m.sum("breakwater_actions_total", "decision", d)
		res.actions += int(res.decisions[d])
	}
	if res.actions != bd.n {
		b.Fatalf("breaker run %d decided %d actions, want %d", seq, res.actions, bd.n)
	}
	stats := redisInfo(b, bd.admin, "commandstats")
	res.scripts = infoField(stats["cmdstat_evalsha"], "calls") + infoField(stats["cmdstat_eval"], "calls")
	res.luaUsec = infoField(stats["cmdstat_evalsha"], "usec")
	mem := redisInfo(b, bd.admin, "memory")
	res.redisUsed, _ = strconv.ParseInt(mem["used_memory"], 10, 64)
	written := int64(0)
	for _, t := range outs {
		written += sum(bd.k.EndOffsets(b, t))
	}
	if written != int64(bd.n) {
		b.Fatalf("breaker run %d wrote %d records, want %d", seq, written, bd.n)
	}
	deleteTopics(b, bd.k.Addrs(), append(outs, pre+"state", pre+"audit")...)
	return res
}

// metricsText is a scraped Prometheus text exposition.
type metricsText []string

func scrape(b *testing.B, url string) metricsText {
	b.Helper()
	resp, err := http.Get(url)
	if err != nil {
		b.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("scrape %s: %d %v", url, resp.StatusCode, err)
	}
	var out metricsText
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// sum adds the samples of name whose labels include every label="value"
// pair of kv.
func (m metricsText) sum(name string, kv ...string) float64 {
	var t float64
	for _, l := range m {
		series, v, ok := strings.Cut(l, " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		match := true
		for i := 0; i+1 < len(kv); i += 2 {
			if !strings.Contains(series, kv[i]+"=\""+kv[i+1]+"\"") {
				match = false
			}
		}
		if match {
			f, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			t += f
		}
	}
	return t
}

func (m metricsText) get(name string, kv ...string) float64 { return m.sum(name, kv...) }

// procCPU returns the CPU time (user and system) process pid has used.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("read the CPU time of process %d: %v", pid, err)
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * clockTick
}

type reportInput struct {
	bed       *bed
	meanValue float64
	produced  time.Duration
	results   []runResult
	loadStart string
}

func report(b *testing.B, in reportInput) {
	bd := in.bed
	var pass, brk []runResult
	for _, r := range in.results {
		if r.variant == "passthrough" {
			pass = append(pass, r)
		} else {
			brk = append(brk, r)
		}
	}
	med := func(rs []runResult, f func(runResult) float64) float64 {
		out := make([]float64, len(rs))
		for i, r := range rs {
			out[i] = f(r)
		}
		return median(out)
	}
	rate := func(r runResult) float64 { return r.rate() }
	pr, br := med(pass, rate), med(brk, rate)
	ratio := br / pr
	self := func(r runResult) float64 { return r.perAction(r.cpu) }
	broker := func(r runResult) float64 { return r.perAction(r.brokerCPU) }
	redisC := func(r runResult) float64 { return r.perAction(r.redisCPU) }
	pc, bc := med(pass, self), med(brk, self)
	cpuRatio := bc / pc
	var batches int
	var scripts, luaUsec, used int64
	decisions := map[string]float64{}
	for _, r := range brk {
		batches += r.batches
		scripts += r.scripts
		luaUsec += r.luaUsec
		used = max(used, r.redisUsed)
		for d, c := range r.decisions {
			decisions[d] += c
		}
	}
	met := map[bool]string{true: "met", false: "NOT met"}

	var w strings.Builder
	fmt.Fprintf(&w, "\n==== Breakwater throughput: breakwater binary vs raw kafka-go passthrough binary ====\n")
	fmt.Fprintf(&w, "actions per run              %d (values mean %.0f B, keys = target ids, %d partitions, %d rules)\n",
		bd.n, in.meanValue, partitions, rules)
	fmt.Fprintf(&w, "processes                    broker (kafkad, kfake), redis-server, and the measured binary: each its own\n")
	fmt.Fprintf(&w, "batch size / batch wait      %d / %s (both sides)\n", bd.batch, bd.wait)
	fmt.Fprintf(&w, "trip variant                 %v\n", bd.trip)
	fmt.Fprintf(&w, "input pre-produced in        %s (not timed)\n", in.produced.Round(time.Millisecond))
	fmt.Fprintf(&w, "load average                 %s at the start, %s at the end (2 cores; other load makes the rates noisy)\n", in.loadStart, loadAvg())
	for _, r := range in.results {
		fmt.Fprintf(&w, "  run %-11s round %d  %8.0f actions/s  span %8s (start to done %8s)  batches %4d  peak RSS %s\n",
			r.variant, r.round, r.rate(), r.span.Round(time.Millisecond), r.total.Round(time.Millisecond), r.batches, mib(r.peakRSS))
		fmt.Fprintf(&w, "      CPU µs per action: %.2f itself, %.2f broker, %.2f redis-server\n", self(r), broker(r), redisC(r))
		fmt.Fprintf(&w, "      broker requests per 1,000 actions: %s\n", requestLine(perThousand(r.requests, r.actions)))
		for _, name := range []string{"pass", "decide", "write", "commit", "read"} {
			st, ok := r.lanes[name]
			if !ok {
				continue
			}
			var parts []string
			var tot time.Duration
			for _, s := range st {
				parts = append(parts, fmt.Sprintf("%s %s", s.name, per(s.d, r.batches)))
				tot += s.d
			}
			switch name {
			case "read":
				fmt.Fprintf(&w, "      per batch, %-6s lane: %s (summed over the partition readers; overlaps the others)\n", name, strings.Join(parts, " + "))
			default:
				fmt.Fprintf(&w, "      per batch, %-6s lane: %s = %s of span %s\n", name, strings.Join(parts, " + "), per(tot, r.batches), per(r.span, r.batches))
			}
		}
	}
	fmt.Fprintf(&w, "passthrough actions/s        %.0f (median of %d)\n", pr, len(pass))
	fmt.Fprintf(&w, "breaker actions/s            %.0f (median of %d)\n", br, len(brk))
	fmt.Fprintf(&w, "ratio breaker/passthrough    %.3f (goal >= 0.900: %s)\n", ratio, met[ratio >= 0.9])
	fmt.Fprintf(&w, "CPU µs per action (median)   passthrough %.2f (broker %.2f); breaker %.2f (broker %.2f, redis-server %.2f)\n",
		pc, med(pass, broker), bc, med(brk, broker), med(brk, redisC))
	for _, side := range []struct {
		name string
		rs   []runResult
	}{{"passthrough", pass}, {"breaker", brk}} {
		fmt.Fprintf(&w, "broker requests per 1,000 actions, %s (median): %s\n", side.name, requestLine(medianRequests(side.rs)))
	}
	fmt.Fprintf(&w, "CPU breaker/passthrough      %.2fx (goal <= 1.50x: %s)\n", cpuRatio, met[cpuRatio <= 1.5])
	fmt.Fprintf(&w, "Redis script calls per batch %.3f (INFO commandstats evalsha+eval: %d over %d batches; the decisions, plus the frontier keep-alive's 4 a second)\n",
		float64(scripts)/float64(max(batches, 1)), scripts, batches)
	fmt.Fprintf(&w, "Lua time inside redis-server %.3f ms per call\n", float64(luaUsec)/1000/float64(max(scripts, 1)))
	fmt.Fprintf(&w, "breaker decisions            gated %.0f, held %.0f, dead_letter %.0f (all breaker runs)\n",
		decisions["gated"], decisions["held"], decisions["dead_letter"])
	fmt.Fprintf(&w, "Redis used_memory            %s after a breaker run (max)\n", mib(uint64(used)))
	if bd.profile != "" {
		fmt.Fprintf(&w, "CPU profiles                 %s (breakwater), %s (passthrough): extra runs, not in the figures\n", bd.profile, bd.passProfile)
	}
	fmt.Fprintf(&w, "======================================================================\n")
	fmt.Print(w.String())

	b.ReportMetric(ratio, "breaker/passthrough")
	b.ReportMetric(pr, "passthrough-actions/s")
	b.ReportMetric(br, "breaker-actions/s")
	b.ReportMetric(cpuRatio, "cpu-breaker/passthrough")
}

// requestsSince returns the requests of after that came after before.
func requestsSince(before, after map[string]testbed.RequestCount) map[string]testbed.RequestCount {
	out := map[string]testbed.RequestCount{}
	for name, a := range after {
		p := before[name]
		if d := (testbed.RequestCount{
			Requests: a.Requests - p.Requests, RequestBytes: a.RequestBytes - p.RequestBytes, ResponseBytes: a.ResponseBytes - p.ResponseBytes,
		}); d.Requests > 0 {
			out[name] = d
		}
	}
	return out
}

// reqRate is one API's requests per 1,000 actions, and their kilobytes
// sent to the broker and answered.
type reqRate struct{ n, in, out float64 }

// perThousand scales a run's request counts to 1,000 actions.
func perThousand(reqs map[string]testbed.RequestCount, actions int) map[string]reqRate {
	k := 1000 / float64(max(actions, 1))
	out := map[string]reqRate{}
	for name, c := range reqs {
		out[name] = reqRate{float64(c.Requests) * k, float64(c.RequestBytes) * k / 1000, float64(c.ResponseBytes) * k / 1000}
	}
	return out
}

// medianRequests returns, for each API, the medians of runs' requests per
// 1,000 actions.
func medianRequests(rs []runResult) map[string]reqRate {
	var runs []map[string]reqRate
	names := map[string]bool{}
	for _, r := range rs {
		runs = append(runs, perThousand(r.requests, r.actions))
		for n := range r.requests {
			names[n] = true
		}
	}
	out := map[string]reqRate{}
	for n := range names {
		var reqs, in, outB []float64
		for _, r := range runs {
			reqs, in, outB = append(reqs, r[n].n), append(in, r[n].in), append(outB, r[n].out)
		}
		out[n] = reqRate{median(reqs), median(in), median(outB)}
	}
	return out
}

// requestLine prints requests per 1,000 actions by API, the most frequent
// first, with their kilobytes.
func requestLine(rates map[string]reqRate) string {
	names := slices.Collect(maps.Keys(rates))
	slices.SortFunc(names, func(a, b string) int {
		if c := cmp.Compare(rates[b].n, rates[a].n); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	var parts []string
	var total float64
	for _, n := range names {
		r := rates[n]
		total += r.n
		parts = append(parts, fmt.Sprintf("%s %.2f (%.1f/%.1f kB)", n, r.n, r.in, r.out))
	}
	return fmt.Sprintf("%.2f in all: %s (kB sent to the broker / answered)", total, strings.Join(parts, ", "))
}

// produceInput writes n generated events (keys = target ids) to topic in
// chunks, so that the generator's output never all sits in memory, and
// returns the mean value size.
func produceInput(b *testing.B, k *testbed.Kafka, topic string, n int) float64 {
	b.Helper()
	g := traffic.New(rules, eventRate, -1, 1, 1)
	per := time.Second / eventRate
	start := time.Now().Add(-time.Duration(n) * per).Truncate(time.Second)
	bytes := 0
	for done := 0; done < n; {
		c := min(produceChunk, n-done)
		evs := g.Events(start.Add(time.Duration(done)*per), time.Duration(c)*per, c)
		recs := make([]testbed.Record, len(evs))
		for i, e := range evs {
			recs[i] = testbed.Record{Partition: testbed.AnyPartition, Key: e.Key, Value: e.Value}
			bytes += len(e.Value)
		}
		k.Produce(b, topic, recs...)
		done += c
	}
	if got := sum(k.EndOffsets(b, topic)); got != int64(n) {
		b.Fatalf("input topic holds %d records, want %d", got, n)
	}
	return float64(bytes) / float64(n)
}

func per(d time.Duration, n int) string {
	return fmt.Sprintf("%.2fms", d.Seconds()*1000/float64(max(n, 1)))
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func sum(m map[int32]int64) int64 {
	var t int64
	for _, v := range m {
		t += v
	}
	return t
}

func mib(v uint64) string {
	if v == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MiB", float64(v)/(1<<20))
}

func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// createTopics creates topics through kafka-go's default transport, which
// then refreshes its cached metadata at once: the writers share that
// transport, and a topic created behind its back (with franz-go) stays
// unknown to them until the next periodic refresh.
func createTopics(b *testing.B, brokers []string, compacted bool, topics ...string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		tc := kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: 1}
		if compacted {
			tc.NumPartitions = 1
			tc.ConfigEntries = []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}
		}
		req.Topics = append(req.Topics, tc)
	}
	resp, err := c.CreateTopics(ctx, req)
	if err != nil {
		b.Fatalf("create topics %v: %v", topics, err)
	}
	for name, err := range resp.Errors {
		if err != nil {
			b.Fatalf("create topic %s: %v", name, err)
		}
	}
}

func deleteTopics(b *testing.B, brokers []string, topics ...string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	resp, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		b.Fatalf("delete topics %v: %v", topics, err)
	}
	for name, err := range resp.Errors {
		if err != nil {
			b.Fatalf("delete topic %s: %v", name, err)
		}
	}
}

// redisInfo returns the key:value lines of one INFO section.
func redisInfo(b *testing.B, c *redis.Client, section string) map[string]string {
	b.Helper()
	s, err := c.Info(context.Background(), section).Result()
	if err != nil {
		b.Fatalf("redis INFO %s: %v", section, err)
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out
}

// infoCalls reads calls=N from a commandstats value.
func infoCalls(v string) int64 { return infoField(v, "calls") }

// infoField reads name=N from a commandstats value.
func infoField(v, name string) int64 {
	for f := range strings.SplitSeq(v, ",") {
		if n, ok := strings.CutPrefix(f, name+"="); ok {
			c, _ := strconv.ParseInt(n, 10, 64)
			return c
		}
	}
	return 0
}

// loadAvg returns the 1-minute load average of the machine.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "n/a"
	}
	return f[0]
}

// redisCPU returns the CPU time redis-server has used (INFO cpu).
func redisCPU(b *testing.B, c *redis.Client) time.Duration {
	info := redisInfo(b, c, "cpu")
	u, _ := strconv.ParseFloat(info["used_cpu_user"], 64)
	s, _ := strconv.ParseFloat(info["used_cpu_sys"], 64)
	return time.Duration((u + s) * float64(time.Second))
}

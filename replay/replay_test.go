package replay_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/replay"
	"github.com/breakwater/breakwater/store"
	"github.com/breakwater/breakwater/traffic"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var epoch = time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)

// testConfig has short windows so that small scenarios trip quickly.
const testConfig = `
breakers:
  defaults:
    window: 1m
    max_actions: 2000
    baseline: 30m
    factor: 5
    min_actions: 60
  global:
    window: 1m
    baseline: 30m
    factor: 2.5
    min_actions: 400
`

func loadConfig(t testing.TB, yaml string) config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func scenarioLines(t testing.TB, sc traffic.Scenario) []byte {
	t.Helper()
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	sim := traffic.NewSimulation(sc)
	var buf bytes.Buffer
	for line, ok := sim.Next(nil); ok; line, ok = sim.Next(line[:0]) {
		buf.Write(line)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

func run(t testing.TB, opts replay.Options, data []byte) replay.Summary {
	t.Helper()
	src, err := replay.NewLines(bytes.NewReader(data), "test")
	if err != nil {
		t.Fatal(err)
	}
	r, err := replay.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Run(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goldenTrip is the part of a trip the golden files pin.
type goldenTrip struct {
	Scope      string    `json:"scope"`
	At         time.Time `json:"at"`
	Reason     string    `json:"reason"`
	Generation uint64    `json:"generation"`
}

type golden struct {
	Actions    int64        `json:"actions"`
	Gated      int64        `json:"gated"`
	Held       int64        `json:"held"`
	DeadLetter int64        `json:"dead_letter"`
	Trips      []goldenTrip `json:"trips"`
}

func TestScenarios(t *testing.T) {
	cfg := loadConfig(t, testConfig)
	base := traffic.Scenario{Start: epoch, Duration: 150 * time.Minute, Rules: 8, Rate: 15, Diurnal: 0.5, Noise: 0.1, Seed: 42}
	tests := []struct {
		name      string
		incidents []traffic.Incident
		reset     time.Duration
		// wantTrips are the scopes that must trip, each within two windows
		// of event time after the incident begins (the trip time is the
		// watermark at the end of the deciding batch); mayTrip may trip too.
		wantTrips map[breaker.Scope]time.Duration
		mayTrip   []breaker.Scope
	}{
		{name: "normal"},
		{
			name: "spike", incidents: []traffic.Incident{{Kind: traffic.Spike, Rule: 3, At: 90 * time.Minute, For: 20 * time.Minute, Factor: 10}},
			wantTrips: map[breaker.Scope]time.Duration{"rule:rule-03": 90 * time.Minute},
		},
		{
			name: "broad", incidents: []traffic.Incident{{Kind: traffic.Broad, At: 90 * time.Minute, For: 20 * time.Minute, Factor: 3}},
			wantTrips: map[breaker.Scope]time.Duration{breaker.Global: 90 * time.Minute}, mayTrip: []breaker.Scope{"rule:rule-00", "rule:rule-01"},
		},
		{
			name: "new_rule", incidents: []traffic.Incident{{Kind: traffic.NewRule, At: 90 * time.Minute, For: 20 * time.Minute, Factor: 20}},
			wantTrips: map[breaker.Scope]time.Duration{breaker.RuleScope(traffic.NewRuleID): 90 * time.Minute}, mayTrip: []breaker.Scope{breaker.Global},
		},
		{name: "malformed", incidents: []traffic.Incident{{Kind: traffic.Malformed, At: time.Hour, For: 10 * time.Minute, Factor: 0.2}}},
		{
			name: "spike_reset", reset: 10 * time.Minute, incidents: []traffic.Incident{{Kind: traffic.Spike, Rule: 3, At: 90 * time.Minute, For: 40 * time.Minute, Factor: 10}},
			wantTrips: map[breaker.Scope]time.Duration{"rule:rule-03": 90 * time.Minute},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := base
			sc.Incidents = tt.incidents
			data := scenarioLines(t, sc)
			// The batch size is pinned: the golden files do not follow the
			// default.
			s := run(t, replay.Options{Config: cfg, BatchSize: 500, AssumeResetAfter: tt.reset}, data)
			got := golden{Actions: s.Actions, Gated: s.Gated, Held: s.Held, DeadLetter: s.DeadLetter, Trips: []goldenTrip{}}
			for _, ss := range s.Scopes {
				for _, tr := range ss.Trips {
					got.Trips = append(got.Trips, goldenTrip{Scope: string(ss.Scope), At: tr.At.UTC(), Reason: tr.Reason, Generation: tr.Generation})
				}
			}
			if got.Actions != int64(bytes.Count(data, []byte{'\n'})) || got.Gated+got.Held+got.DeadLetter != got.Actions {
				t.Errorf("totals %+v do not add up to %d lines", got, bytes.Count(data, []byte{'\n'}))
			}
			// Independent of the golden file: the expected scopes trip in
			// the first window of their incident, and nothing else trips.
			tripped := map[breaker.Scope]bool{}
			for _, tr := range got.Trips {
				at, ok := tt.wantTrips[breaker.Scope(tr.Scope)]
				if !ok && slices.Contains(tt.mayTrip, breaker.Scope(tr.Scope)) {
					continue
				}
				if !ok {
					t.Errorf("%s tripped at %s (%s); want no trip", tr.Scope, tr.At, tr.Reason)
					continue
				}
				if !tripped[breaker.Scope(tr.Scope)] {
					if lo, hi := epoch.Add(at), epoch.Add(at+2*time.Minute); tr.At.Before(lo) || tr.At.After(hi) {
						t.Errorf("%s tripped at %s; want between %s and %s", tr.Scope, tr.At, lo, hi)
					}
				}
				tripped[breaker.Scope(tr.Scope)] = true
			}
			for sc := range tt.wantTrips {
				if !tripped[sc] {
					t.Errorf("%s did not trip", sc)
				}
			}
			if len(tt.wantTrips) == 0 && got.Held != 0 {
				t.Errorf("held %d with no trip", got.Held)
			}
			if tt.name == "malformed" && got.DeadLetter == 0 {
				t.Error("no dead letter in the malformed scenario")
			}
			if tt.name == "spike_reset" && len(got.Trips) < 2 {
				t.Errorf("trips %v; want the breaker to trip again after the assumed reset, the spike still running", got.Trips)
			}
			path := filepath.Join("testdata", tt.name+".golden.json")
			b, _ := json.MarshalIndent(got, "", "  ")
			b = append(b, '\n')
			if *update {
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(b, want) {
				t.Errorf("summary differs from %s:\n%s\nwant:\n%s", path, b, want)
			}
		})
	}
}

func TestDecisionsFile(t *testing.T) {
	cfg := loadConfig(t, testConfig)
	good := scenarioLines(t, traffic.Scenario{Start: epoch, Duration: 2 * time.Minute, Rules: 3, Rate: 5, Seed: 1})
	lines := strings.Split(strings.TrimSuffix(string(good), "\n"), "\n")
	bad := []string{
		`{"action_id":"bad-1","rule_id":"r"}`, // missing fields, readable id
		`not json`,
		``,
		`{"action_id":"bad-2","rule_id":"r","action":"warn","target":{"type":"a","id":"b"},"occurred_at":"yesterday"}`,
	}
	// Interleave the bad lines at known places.
	var in []string
	badAt := map[int]string{}
	for i, l := range lines {
		if i%7 == 3 && len(bad) > 0 {
			in = append(in, bad[0])
			badAt[len(in)] = bad[0]
			bad = bad[1:]
		}
		in = append(in, l)
	}
	data := []byte(strings.Join(in, "\r\n") + "\r\n")
	var out bytes.Buffer
	dw := replay.NewDecisionWriter(&out)
	s := run(t, replay.Options{Config: cfg, BatchSize: 10, OnDecision: dw.Write}, data)
	if err := dw.Flush(); err != nil {
		t.Fatal(err)
	}
	if s.DeadLetter != 4 || s.Actions != int64(len(in)) {
		t.Fatalf("summary %d actions, %d dead letters; want %d and 4", s.Actions, s.DeadLetter, len(in))
	}
	sc := bufio.NewScanner(&out)
	n := 0
	for sc.Scan() {
		n++
		var d struct {
			Line     int    `json:"line"`
			ActionID string `json:"action_id"`
			Scope    string `json:"scope"`
			Decision string `json:"decision"`
		}
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("decision line %d: %v: %s", n, err, sc.Bytes())
		}
		if d.Line != n {
			t.Fatalf("decision line %d has line %d", n, d.Line)
		}
		if src, ok := badAt[n]; ok {
			wantID := ""
			if strings.Contains(src, `"bad-`) {
				wantID = src[strings.Index(src, "bad-") : strings.Index(src, "bad-")+5]
			}
			if d.Decision != "dead_letter" || d.ActionID != wantID || d.Scope != "" {
				t.Errorf("line %d (%q) = %+v; want dead_letter with action_id %q", n, src, d, wantID)
			}
			continue
		}
		var ev struct {
			ActionID string `json:"action_id"`
			RuleID   string `json:"rule_id"`
		}
		if err := json.Unmarshal([]byte(in[n-1]), &ev); err != nil {
			t.Fatal(err)
		}
		if d.Decision != "gated" || d.ActionID != ev.ActionID || d.Scope != "rule:"+ev.RuleID {
			t.Errorf("line %d = %+v; want gated %s in rule:%s", n, d, ev.ActionID, ev.RuleID)
		}
	}
	if n != len(in) {
		t.Errorf("%d decision lines; want %d", n, len(in))
	}
}

// TestMemoryMatchesRedis replays the same input in the same, irregular
// batches through the in-process store and through the Redis store, and
// compares the decision of every action.
func TestMemoryMatchesRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	cfg := loadConfig(t, testConfig)
	data := scenarioLines(t, traffic.Scenario{
		Start: epoch, Duration: 3 * time.Hour, Rules: 6, Rate: 5, Diurnal: 0.5, Noise: 0.2, Seed: 9,
		Incidents: []traffic.Incident{
			{Kind: traffic.Spike, Rule: 1, At: 2 * time.Hour, For: 20 * time.Minute, Factor: 12},
			{Kind: traffic.Malformed, At: time.Hour, For: 5 * time.Minute, Factor: 0.1},
		},
	})
	if n := bytes.Count(data, []byte{'\n'}); n < 50000 {
		t.Fatalf("%d actions; want at least 50000", n)
	}
	// Irregular batches, as a live run makes them.
	rng := rand.New(rand.NewPCG(3, 1))
	var sizes []int
	for range 2000 {
		sizes = append(sizes, 1+rng.IntN(700))
	}
	decide := func(st replay.Store) ([]string, replay.Summary) {
		var got []string
		s := run(t, replay.Options{Config: cfg, Store: st, Batches: replay.Sizes(sizes), OnDecision: func(seq int64, id string, it *decide.Item) error {
			got = append(got, id+" "+string(it.Decision)+" "+string(it.Scope)+" "+it.Incident())
			return nil
		}}, data)
		return got, s
	}
	mem, ms := decide(nil)

	srv := testbed.StartRedis(t)
	rs, err := store.NewRedis(srv.Client(t), store.RedisOptions{Prefix: "bw", RecordTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Restore(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	red, rsum := decide(rs)
	if len(mem) != len(red) {
		t.Fatalf("memory decided %d actions, Redis %d", len(mem), len(red))
	}
	diff := 0
	for i := range mem {
		if mem[i] != red[i] {
			if diff < 5 {
				t.Errorf("line %d: memory %q, Redis %q", i+1, mem[i], red[i])
			}
			diff++
		}
	}
	if diff > 0 {
		t.Fatalf("%d of %d decisions differ", diff, len(mem))
	}
	if ms.Held == 0 || ms.DeadLetter == 0 || ms.Held != rsum.Held {
		t.Errorf("held %d (Redis %d), dead letters %d; want both held alike and some dead letters", ms.Held, rsum.Held, ms.DeadLetter)
	}
}

// TestMemoryFlat checks that the replay's own state does not grow with the
// input: a ten times longer input leaves the same number of chart slots.
func TestChartBounded(t *testing.T) {
	cfg := loadConfig(t, testConfig)
	short := run(t, replay.Options{Config: cfg, ChartSlots: 64}, scenarioLines(t, traffic.Scenario{Start: epoch, Duration: 20 * time.Minute, Rules: 3, Rate: 5, Seed: 1}))
	long := run(t, replay.Options{Config: cfg, ChartSlots: 64}, scenarioLines(t, traffic.Scenario{Start: epoch, Duration: 200 * time.Minute, Rules: 3, Rate: 5, Seed: 1}))
	for _, s := range []replay.Summary{short, long} {
		for _, sc := range s.Scopes {
			if len(sc.Series) > 64 {
				t.Errorf("%s has %d slots; want at most 64", sc.Scope, len(sc.Series))
			}
			var n int64
			for _, sl := range sc.Series {
				n += sl.Actions
			}
			if n != sc.Actions {
				t.Errorf("%s: slots hold %d actions; want %d", sc.Scope, n, sc.Actions)
			}
		}
	}
	if long.SlotWidth <= short.SlotWidth {
		t.Errorf("slot width %v for the long input, %v for the short; want wider", long.SlotWidth, short.SlotWidth)
	}
}

package replay_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/appeals"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/replay"
	"github.com/breakwater/breakwater/traffic"
)

// appealsOf simulates sc and writes its events and the appeals of a fifth
// of them, decided an hour later: overturned when the incident made the
// action (or, for 5% of the others, at random).
func appealsOf(t *testing.T, sc traffic.Scenario, seed uint64) (events, outcomes []byte) {
	t.Helper()
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	sim := traffic.NewSimulation(sc)
	rng := rand.New(rand.NewPCG(seed, 3))
	var ev, ap bytes.Buffer
	var buf []byte
	for {
		var ok bool
		buf, ok = sim.Next(buf[:0])
		if !ok {
			break
		}
		ev.Write(buf)
		ev.WriteByte('\n')
		wrong := sim.Label().Incident > 0 || rng.Float64() < 0.05
		if rng.Float64() < 0.2 {
			out := appeals.Upheld
			if wrong {
				out = appeals.Overturned
			}
			ap.Write(appeals.Record{ActionID: sim.ActionID(), Outcome: out, DecidedAt: sim.At().Add(time.Hour)}.Encode())
			ap.WriteByte('\n')
		}
	}
	return ev.Bytes(), ap.Bytes()
}

func replayAppeals(t *testing.T, cfg config.Config, events, outcomes []byte) replay.Summary {
	t.Helper()
	af, err := replay.ReadAppeals(bytes.NewReader(outcomes))
	if err != nil {
		t.Fatal(err)
	}
	r, err := replay.New(replay.Options{Config: cfg, BatchSize: 20, Appeals: af, AppealsPolicy: appeals.PolicyOf(cfg.Appeals)})
	if err != nil {
		t.Fatal(err)
	}
	src, err := replay.NewLines(bytes.NewReader(events), "input")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := r.Run(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestReplayAppeals: a rule whose precision falls from 95% to 40% at the
// same volume trips overturn_rate once the appeals of its new actions come
// in (an hour after them), with the onset near the fall; on normal traffic
// nothing trips; outcomes of actions held, unknown or given twice, and
// malformed lines are counted apart.
func TestReplayAppeals(t *testing.T) {
	cfg := loadConfig(t, testConfig)
	at := 8 * time.Hour
	for seed := range uint64(3) {
		sc := traffic.Scenario{
			Start: epoch, Duration: 16 * time.Hour, Rules: 5, Rate: 0.5, Seed: int64(seed) + 1, Noise: 0.1,
			Incidents: []traffic.Incident{{Kind: traffic.Misfire, Rule: 1, At: at, For: 8 * time.Hour, Factor: 0.6}},
		}
		events, outcomes := appealsOf(t, sc, seed)
		// Malformed, unknown and duplicate outcomes on top.
		first := bytes.SplitN(outcomes, []byte("\n"), 2)[0]
		extra := "not json\n" + `{"action_id":"never-forwarded","outcome":"upheld","decided_at":"2026-11-23T07:00:00Z"}` + "\n" + string(first) + "\n"
		sum := replayAppeals(t, cfg, events, append(outcomes, extra...))
		a := sum.Appeals
		if a == nil || a.Malformed != 1 || a.Unknown < 1 || a.Duplicate != 1 || a.Joined == 0 || a.Trips != 1 {
			t.Fatalf("seed %d: appeals %+v; want 1 malformed, the unknown, 1 duplicate, 1 trip", seed, a)
		}
		rule := breaker.RuleScope(traffic.RuleID(1))
		var trip *replay.Trip
		for _, s := range sum.Scopes {
			for i, tr := range s.Trips {
				if tr.Reason != string(breaker.ReasonOverturnRate) {
					continue
				}
				if s.Scope != rule {
					t.Errorf("seed %d: %s tripped overturn_rate; only %s should", seed, s.Scope, rule)
				}
				trip = &s.Trips[i]
			}
		}
		if trip == nil {
			t.Fatalf("seed %d: no overturn_rate trip", seed)
		}
		// The rule acts about 100 times an hour, a fifth appealed, an hour
		// later: the fall's outcomes come from 9:00 on, and 20 of them by
		// about 10:00.
		fall := epoch.Add(at)
		if d := trip.At.Sub(fall); d < time.Hour || d > 3*time.Hour {
			t.Errorf("seed %d: tripped %s after the fall; want between 1h and 3h", seed, d)
		}
		if d := trip.Onset.Sub(fall); d < -30*time.Minute || d > 30*time.Minute {
			t.Errorf("seed %d: onset %s from the fall; want within 30m", seed, d)
		}
	}
	// The same traffic without the misfire: no trip.
	for seed := range uint64(3) {
		sc := traffic.Scenario{Start: epoch, Duration: 16 * time.Hour, Rules: 5, Rate: 0.5, Seed: int64(seed) + 1, Noise: 0.1}
		events, outcomes := appealsOf(t, sc, seed)
		sum := replayAppeals(t, cfg, events, outcomes)
		if sum.Appeals.Trips != 0 || sum.Appeals.Joined == 0 {
			t.Errorf("seed %d, normal: appeals %+v; want outcomes joined and no trip", seed, sum.Appeals)
		}
	}
}

func TestReadAppealsOrders(t *testing.T) {
	in := strings.Join([]string{
		`{"action_id":"b","outcome":"upheld","decided_at":"2026-05-01T12:00:02Z"}`,
		`{"action_id":"a","outcome":"overturned","decided_at":"2026-05-01T12:00:01Z"}`,
		``,
		`{"action_id":"c","outcome":"maybe","decided_at":"2026-05-01T12:00:00Z"}`,
	}, "\n")
	f, err := replay.ReadAppeals(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	n, errs := f.Malformed()
	if f.Len() != 2 || n != 1 || len(errs) != 1 || !strings.Contains(errs[0], "line 4") {
		t.Fatalf("ReadAppeals: %d outcomes, %d malformed %v; want 2 and line 4", f.Len(), n, errs)
	}
	got := f.Due(time.Date(2026, 5, 1, 12, 0, 1, 0, time.UTC))
	if len(got) != 1 || got[0].ActionID != "a" {
		t.Errorf("Due(12:00:01) = %v; want a", got)
	}
	if got := fmt.Sprint(len(f.Due(time.Time{}))); got != "1" {
		t.Errorf("Due(the rest) = %s outcomes; want 1", got)
	}
}

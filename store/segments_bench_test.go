package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/decide"
)

// BenchmarkDecideGate decides batches of 2,000 actions as the pipeline
// builds them (decide.Gate: 20 rules, a ban breaker on each, one model
// version per rule, four regions) on Redis, under three configurations:
// no segments, model versions (the default), and model versions with
// every rule split by region. Compare the three side by side.
func BenchmarkDecideGate(b *testing.B) {
	for _, c := range []struct {
		name  string
		model bool
		dims  []string
	}{
		{"rules", false, nil},
		{"model", true, nil},
		{"model+region", true, []string{"region"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := config.Default()
			cfg.Breakers.Segments.ModelVersion = c.model
			cfg.Breakers.Segments.Dimensions = c.dims
			cfg.Breakers.Rules = map[string]config.Rule{}
			for r := range 20 {
				t := cfg.Breakers.Defaults
				cfg.Breakers.Rules[fmt.Sprint("rule-", r)] = config.Rule{Thresholds: t, Actions: map[string]config.Thresholds{"ban_account": t}}
			}
			if err := cfg.Validate(); err != nil {
				b.Fatal(err)
			}
			benchGate(b, cfg)
		})
	}
}

func benchGate(b *testing.B, cfg config.Config) {
	ctx := context.Background()
	e := newRedis(b, true)
	g := decide.New(cfg)
	rnd := rand.New(rand.NewPCG(9, 10))
	const actions = 2000
	regions := []string{"us", "eu", "br", "in"}
	evt := time.UnixMilli(evt0)
	var off int64
	batch := func() decide.Batch {
		its := make([]decide.Item, actions)
		pending := make([]int, actions)
		for i := range its {
			evt = evt.Add(time.Duration(rnd.Int64N(20)) * time.Millisecond)
			action := "remove_pin"
			if rnd.IntN(20) == 0 {
				action = "ban_account"
			}
			v := fmt.Sprintf(`{"action_id":"a%d","rule_id":"rule-%d","action":%q,"target":{"type":"pin","id":"p%d"},"occurred_at":%q,"model":{"version":"2025.04.1"},"region":%q}`,
				off, rnd.IntN(20), action, off, evt.Format(time.RFC3339Nano), regions[rnd.IntN(4)])
			g.Classify(&its[i], decide.Position{Topic: "in", Offset: off}, []byte(v))
			if its[i].Bad != nil {
				b.Fatal(its[i].Bad)
			}
			pending[i] = i
			off++
		}
		return g.Batch(its, pending, func(string, int) int64 { return -1 })
	}
	batches := make([]decide.Batch, 16)
	for i := range batches {
		batches[i] = batch()
	}
	if err := e.rc.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		bt := batches[i%len(batches)]
		if i >= len(batches) {
			// Later rounds are redeliveries unless they take new offsets;
			// their event times are the first round's.
			bt.Partitions = []decide.Range{rangeOf("in", 0, int64(i)*actions, int64(i+1)*actions-1, int64(i)*actions)}
		}
		if _, err := e.st.Decide(ctx, bt); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(len(batches[0].Scopes)), "scopes")
	// The time inside redis-server per call, apart from the client's.
	info, err := e.rc.Info(ctx, "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:"); ok {
			for f := range strings.SplitSeq(v, ",") {
				if n, ok := strings.CutPrefix(f, "usec_per_call="); ok {
					us, _ := strconv.ParseFloat(n, 64)
					b.ReportMetric(us/1000, "lua-ms/call")
				}
			}
		}
	}
}

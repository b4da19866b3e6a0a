package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/breakwater/breakwater/eval"
)

func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f replayFlags
	fs.StringVar(&f.config, "config", "", "base YAML configuration (empty: the built-in defaults); suggest tunes it from the normal days")
	var opts eval.Options
	fs.Int64Var(&opts.Seed, "seed", 101, "random seed of the traffic")
	fs.IntVar(&opts.Rules, "rules", 20, "number of rules")
	fs.Float64Var(&opts.Rate, "rate", 10, "mean actions per second across all rules")
	fs.IntVar(&opts.Days, "days", 4, "days of traffic per scenario; the incidents begin at 10:00 on the fourth")
	fs.IntVar(&opts.NormalDays, "normal-days", 2, "days of normal traffic suggest learns from")
	fs.DurationVar(&opts.ResetAfter, "assume-reset-after", time.Hour, "a person resets each trip this long (event time) after it")
	fs.IntVar(&opts.BatchSize, "batch", 100, "events decided together in the replays (the live pipeline decides what arrived within kafka.batch_wait: a few seconds of traffic at this rate)")
	fs.IntVar(&opts.Parallel, "parallel", runtime.GOMAXPROCS(0), "scenarios run at once")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: breakwater eval [--seed N] [--config FILE]\n\n"+
			"Runs the labelled scenario suite: per scenario, days of simulated traffic with an\n"+
			"incident, thresholds suggested from the normal days, a replay with a reset an hour\n"+
			"after each trip, scored against the labels. Prints one table.\n\n")
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	tuneGC()
	cfg, err := f.loadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "breakwater eval: invalid configuration:\n%v\n", err)
		return 1
	}
	opts.Config = cfg
	began := time.Now()
	results, tuned, err := eval.Run(ctx, opts, eval.Suite())
	if err != nil {
		fmt.Fprintf(stderr, "breakwater eval: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Seed %d, %d rules at %g actions/s, batches of %d, %d days per scenario, thresholds suggested from the first %d (global max_actions %g, factor %g; defaults max_actions %g; new_rules max_actions %g, learning %s), reset %s after each trip.\n\n",
		opts.Seed, opts.Rules, opts.Rate, opts.BatchSize, opts.Days, opts.NormalDays, tuned.Breakers.Global.MaxActions, tuned.Breakers.Global.Factor,
		tuned.Breakers.Defaults.MaxActions, tuned.Breakers.NewRules.MaxActions, tuned.Breakers.NewRules.Learning, opts.ResetAfter)
	if err := eval.Print(stdout, opts, results); err != nil {
		fmt.Fprintf(stderr, "breakwater eval: %v\n", err)
		return 1
	}
	missed := 0
	for _, r := range results {
		if len(r.Misses()) > 0 {
			missed++
		}
	}
	fmt.Fprintf(stdout, "\n%d of %d scenarios meet every goal (%s).\n", len(results)-missed, len(results), time.Since(began).Round(time.Second))
	return 0
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/breakwater/breakwater/eval"
)

func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f replayFlags
	fs.StringVar(&f.config, "config", "", "base YAML configuration (empty: the built-in defaults); suggest tunes it from the normal days")
	var opts eval.Options
	seeds := fs.String("seeds", "101,202,303,404,505", "random seeds of the traffic, comma-separated: one run of every scenario and size per seed")
	sizes := fs.String("sizes", "small=0.4,large=2", "traffic sizes, comma-separated NAME=RATE (mean actions per second across all rules)")
	only := fs.String("scenarios", "", "run only the scenarios whose name contains one of these comma-separated strings")
	fs.IntVar(&opts.Rules, "rules", 20, "number of rules (at least 10)")
	fs.IntVar(&opts.Days, "days", 4, "days of traffic per scenario; the incidents begin at 10:00 on the fourth")
	fs.IntVar(&opts.NormalDays, "normal-days", 2, "days of normal traffic suggest learns from")
	fs.DurationVar(&opts.ResetAfter, "assume-reset-after", time.Hour, "a person resets each trip this long (event time) after it")
	fs.DurationVar(&opts.BatchSpan, "batch-span", 2*time.Second, "the replays decide together what arrives in this much time at the size's mean rate (the live pipeline decides what arrived within kafka.batch_wait)")
	fs.IntVar(&opts.BatchSize, "batch", 0, "fixed batch size of the replays instead of --batch-span")
	fs.IntVar(&opts.Parallel, "parallel", runtime.GOMAXPROCS(0), "runs at once")
	trips := fs.Bool("trips", false, "also list every run's trips outside incidents (the false trips)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: breakwater eval [--seeds N,...] [--sizes NAME=RATE,...] [--config FILE]\n\n"+
			"Runs the labelled scenario suite: per seed, size and scenario, days of simulated traffic\n"+
			"with an incident, thresholds suggested from the normal days, a replay with a reset an hour\n"+
			"after each trip, scored against the labels. Prints per scenario and size the median and\n"+
			"the worst run against the goals, then per goal the scenarios that miss it.\n\n")
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "breakwater eval: "+format+"\n", a...)
		return 1
	}
	for s := range strings.SplitSeq(*seeds, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fail("--seeds: %q is not a number", s)
		}
		opts.Seeds = append(opts.Seeds, n)
	}
	for s := range strings.SplitSeq(*sizes, ",") {
		name, rate, ok := strings.Cut(strings.TrimSpace(s), "=")
		r, err := strconv.ParseFloat(rate, 64)
		if !ok || name == "" || err != nil || !(r > 0 && r <= 1e5) {
			return fail("--sizes: %q is not NAME=RATE with a rate above 0 and at most 100000", s)
		}
		opts.Sizes = append(opts.Sizes, eval.Size{Name: name, Rate: r})
	}
	if opts.Rules < 10 || opts.Rules > 10000 {
		return fail("--rules: must be between 10 and 10000, got %d", opts.Rules)
	}
	suite := eval.Suite(opts.Rules)
	if *only != "" {
		suite = slices.DeleteFunc(suite, func(sc eval.Scenario) bool {
			for s := range strings.SplitSeq(*only, ",") {
				if s != "" && strings.Contains(sc.Name, s) {
					return false
				}
			}
			return true
		})
		if len(suite) == 0 {
			return fail("--scenarios: no scenario matches %q", *only)
		}
	}
	tuneGC()
	cfg, err := f.loadConfig()
	if err != nil {
		return fail("invalid configuration:\n%v", err)
	}
	opts.Config = cfg
	began := time.Now()
	results, err := eval.Run(ctx, opts, suite)
	if err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(stdout, "Seeds %s; %d rules with a daily cycle; %d days per run, incidents from 10:00 on day %d; thresholds from suggest on the first %d normal days; a person resets each trip %s after it.\n",
		*seeds, opts.Rules, opts.Days, opts.Days, opts.NormalDays, opts.ResetAfter)
	for _, s := range opts.Sizes {
		lo, hi := eval.RuleVolumes(opts, s)
		fmt.Fprintf(stdout, "Size %s: %g actions/s in all, rules of %.0f to %.0f actions an hour (daily mean), replayed in batches of %d.\n", s.Name, s.Rate, lo, hi, opts.Batch(s))
	}
	fmt.Fprintln(stdout, "Per scenario and size: median and worst of the runs. detect: time from the incident's start to its first held action (per rule for")
	fmt.Fprintln(stdout, "incidents of many rules: the last rule held); units held: fewest units held in a run; leaked: share of incident actions gated.")
	fmt.Fprintln(stdout)
	if err := eval.Print(stdout, results); err != nil {
		return fail("%v", err)
	}
	if *trips {
		fmt.Fprintln(stdout, "\nTrips outside incidents:")
		if err := eval.PrintTrips(stdout, results); err != nil {
			return fail("%v", err)
		}
	}
	classes := eval.Classes(results)
	missed := 0
	for _, c := range classes {
		if len(c.Misses()) > 0 {
			missed++
		}
	}
	fmt.Fprintf(stdout, "\n%d of %d scenario classes meet every goal (%d runs, %s).\n", len(classes)-missed, len(classes), len(results), time.Since(began).Round(time.Second))
	return 0
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/replay"
	"github.com/breakwater/breakwater/report"
	"github.com/breakwater/breakwater/suggest"
)

func runSuggest(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("suggest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f replayFlags
	f.register(fs)
	var opts suggest.Options
	fs.Float64Var(&opts.Headroom, "headroom", 1.5, "multiply the observed peaks by this")
	fs.Float64Var(&opts.Quantile, "quantile", 1, "take this quantile of the observed window counts as the normal peak (below 1 to ignore short bursts)")
	fs.Float64Var(&opts.Floor, "floor", 20, "least max_actions to suggest")
	fs.DurationVar(&opts.ActionWindow, "action-window", suggest.DefaultActionWindow, "window of the breaker suggested per rule for each irreversible action type (bans)")
	fs.Float64Var(&opts.FalseTripsPerWeek, "false-trips-per-week", 1, "set the evidence detectors' thresholds so that traffic like the input's trips them this often a week in all (negative: leave them as configured)")
	fs.DurationVar(&f.assumeReset, "assume-reset-after", 0, "for the comparison: simulate a human reset this long after each trip")
	fs.StringVar(&f.report, "report", "", "write the HTML report of the suggested configuration on this input to this file")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: breakwater suggest [--config FILE] [--input FILE|-] [--report FILE.html] > snippet.yaml\n\n"+
			"Proposes per-rule thresholds from recorded traffic (the normal peak with headroom),\n"+
			"and for every rule a breaker of each irreversible action type (bans) on a longer window,\n"+
			"prints them as a configuration snippet, and replays the input under the current\n"+
			"and the suggested configuration to show what each would have done.\n\n")
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	tuneGC()
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "breakwater suggest: "+format+"\n", a...)
		return 1
	}
	cfg, err := f.loadConfig()
	if err != nil {
		return fail("invalid configuration:\n%v", err)
	}
	if f.input == "-" && f.fromTopic == "" {
		// The input is read three times: keep standard input in a file.
		tmp, err := os.CreateTemp("", "breakwater-suggest-*.jsonl")
		if err != nil {
			return fail("%v", err)
		}
		defer func() { _ = os.Remove(tmp.Name()) }()
		_, err = io.Copy(tmp, stdin)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fail("read stdin: %v", err)
		}
		f.input = tmp.Name()
	}
	pass := func(c config.Config, on func(replay.Options) replay.Options) (replay.Summary, string, error) {
		src, name, closeSrc, err := f.source(ctx, c, stdin, stderr)
		if err != nil {
			return replay.Summary{}, "", err
		}
		defer closeSrc()
		show, done := progress(stderr, f.noProgress)
		r, err := replay.New(on(replay.Options{Config: c, BatchSize: f.batch, AssumeResetAfter: f.assumeReset, Progress: show}))
		if err != nil {
			return replay.Summary{}, "", err
		}
		s, err := r.Run(ctx, src)
		done()
		return s, name, err
	}
	var seen replay.Summary
	var name string
	sgs, err := suggest.Observe(cfg, opts, func(c config.Config, obs *suggest.Observer) error {
		s, n, err := pass(c, func(o replay.Options) replay.Options {
			o.OnCounts, o.OnBucket, o.AssumeResetAfter = obs.Observe, obs.Bucket, 0
			return o
		})
		if name == "" {
			seen, name = s, n
		}
		return err
	})
	if err != nil {
		return fail("%v", err)
	}
	if len(sgs) == 0 {
		return fail("no decodable action in %s (%d lines)", name, seen.Actions)
	}
	next, err := suggest.Apply(cfg, sgs)
	if err != nil {
		return fail("%v", err)
	}
	keep := func(o replay.Options) replay.Options { return o }
	before, _, err := pass(cfg, keep)
	if err != nil {
		return fail("%v", err)
	}
	after, _, err := pass(next, keep)
	if err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(stdout, "# Suggested by breakwater suggest from %s: %d actions, event time %s to %s.\n",
		name, seen.Actions, seen.From.UTC().Format("2006-01-02T15:04:05Z"), seen.To.UTC().Format("2006-01-02T15:04:05Z"))
	opts.NewRules = cfg.Breakers.NewRules
	if err := suggest.WriteYAML(stdout, sgs, opts); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintln(stdout, "#")
	fmt.Fprintln(stdout, "# What each configuration would have done on this input:")
	for _, x := range []struct {
		label string
		s     replay.Summary
	}{{"current", before}, {"suggested", after}} {
		fmt.Fprintf(stdout, "#   %-9s %d held of %d, %d breakers tripped", x.label, x.s.Held, x.s.Actions, len(x.s.Tripped()))
		for i, sc := range x.s.Tripped() {
			if i == 5 {
				fmt.Fprintf(stdout, ", ...")
				break
			}
			fmt.Fprintf(stdout, ", %s at %s", sc.Scope, sc.Trips[0].At.UTC().Format("15:04:05"))
		}
		fmt.Fprintln(stdout)
	}
	if f.report != "" {
		if err := writeReport(f.report, after, report.Options{Title: "Breakwater replay: suggested thresholds", Input: name, Config: "suggested"}); err != nil {
			return fail("--report: %v", err)
		}
		fmt.Fprintf(stderr, "report written to %s\n", f.report)
	}
	return 0
}

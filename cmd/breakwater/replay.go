package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/breakwater/breakwater/appeals"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/replay"
	"github.com/breakwater/breakwater/report"
)

// replayFlags are the flags replay and suggest share.
type replayFlags struct {
	config, input      string
	batch              int
	fromTopic, brokers string
	startOffset        int64
	startTime, endTime string
	assumeReset        time.Duration
	jsonOut            bool
	decisions, report  string
	labels             string
	appeals            string
	noProgress         bool
}

func (f *replayFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "YAML configuration file, the same the daemon uses (empty: the built-in defaults)")
	fs.StringVar(&f.input, "input", "-", "JSON Lines file of recorded action events, in recorded order; - for stdin; gzip is detected")
	fs.IntVar(&f.batch, "batch", 0, "events decided together, as the daemon's kafka.batch_size (0: the config's)")
	fs.StringVar(&f.fromTopic, "from-topic", "", "read the events from this Kafka topic instead of --input (no consumer group is joined)")
	fs.StringVar(&f.brokers, "brokers", "", "Kafka bootstrap brokers for --from-topic, comma separated (default: the config's kafka.brokers)")
	fs.Int64Var(&f.startOffset, "start-offset", -2, "with --from-topic: first offset of every partition (-2: the earliest)")
	fs.StringVar(&f.startTime, "start-time", "", "with --from-topic: start at the first message at or after this RFC 3339 time")
	fs.StringVar(&f.endTime, "end-time", "", "with --from-topic: stop at messages after this RFC 3339 time (default: the end of each partition when replay starts)")
	fs.BoolVar(&f.noProgress, "quiet", false, "no progress line on stderr")
}

func (f *replayFlags) loadConfig() (config.Config, error) {
	if f.config == "" {
		return config.Default(), nil
	}
	return config.LoadWithEnv(f.config, os.LookupEnv)
}

// source opens the input named by the flags.
func (f *replayFlags) source(ctx context.Context, cfg config.Config, stdin io.Reader, stderr io.Writer) (replay.Source, string, func(), error) {
	if f.fromTopic == "" {
		src, c, err := replay.Open(f.input, stdin)
		if err != nil {
			return nil, "", nil, err
		}
		name := f.input
		if name == "-" {
			name = "stdin"
		}
		return src, name, func() { _ = c.Close() }, nil
	}
	if f.brokers != "" {
		cfg.Kafka.Brokers = strings.Split(f.brokers, ",")
	}
	kc, err := cliKafka(cfg, stderr)
	if err != nil {
		return nil, "", nil, err
	}
	opts := replay.TopicOptions{Kafka: kc, Topic: f.fromTopic, StartOffset: f.startOffset}
	if f.startTime != "" {
		if opts.StartTime, err = time.Parse(time.RFC3339Nano, f.startTime); err != nil {
			return nil, "", nil, fmt.Errorf("--start-time: %w", err)
		}
	}
	if f.endTime != "" {
		if opts.EndTime, err = time.Parse(time.RFC3339Nano, f.endTime); err != nil {
			return nil, "", nil, fmt.Errorf("--end-time: %w", err)
		}
	}
	src, err := replay.OpenTopic(ctx, opts)
	if err != nil {
		return nil, "", nil, err
	}
	return src, "topic " + f.fromTopic, func() { _ = src.Close() }, nil
}

// progress prints a progress line on stderr once a replay runs longer than
// two seconds.
func progress(w io.Writer, quiet bool) (func(replay.Progress), func()) {
	if quiet {
		return nil, func() {}
	}
	shown := false
	return func(p replay.Progress) {
			if p.Elapsed < 2*time.Second {
				return
			}
			shown = true
			fmt.Fprintf(w, "\rreplay: %d events, %.0f/s, event time %s ", p.Events,
				float64(p.Events)/p.Elapsed.Seconds(), p.Watermark.UTC().Format("2006-01-02 15:04:05"))
		}, func() {
			if shown {
				fmt.Fprintln(w)
			}
		}
}

func runReplay(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f replayFlags
	f.register(fs)
	fs.DurationVar(&f.assumeReset, "assume-reset-after", 0, "simulate a human reset this long (event time) after each trip; 0: tripped breakers stay open, as in the daemon")
	fs.BoolVar(&f.jsonOut, "json", false, "print the summary as JSON on stdout")
	fs.StringVar(&f.decisions, "decisions", "", "write one JSON line per input event to this file: {line, action_id, scope, decision}")
	fs.StringVar(&f.report, "report", "", "write a self-contained HTML report with charts to this file")
	fs.StringVar(&f.appeals, "appeals", "", "JSON Lines file of appeal outcomes ({action_id, outcome: overturned|upheld, decided_at}, docs/appeals.md): joined to the actions the replay gates and judged in event time under the config's appeals section, they trip a rule whose precision fell (overturn_rate)")
	fs.StringVar(&f.labels, "labels", "", "score the replay against the labels breakwater simulate --labels wrote for this input (incident actions gated before and after detection, time to detect, collateral, false holds, trips outside incidents)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: breakwater replay [--config FILE] [--input FILE|-] [--appeals FILE] [--json] [--decisions FILE] [--report FILE.html] [--labels FILE]\n\n"+
			"Runs recorded action events through the daemon's decision code in event time,\n"+
			"with an in-process store, and reports what the breakers would have done.\n\n")
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	tuneGC()
	cfg, err := f.loadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "breakwater replay: invalid configuration:\n%v\n", err)
		return 1
	}
	src, name, closeSrc, err := f.source(ctx, cfg, stdin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "breakwater replay: %v\n", err)
		return 1
	}
	defer closeSrc()
	opts := replay.Options{Config: cfg, BatchSize: f.batch, AssumeResetAfter: f.assumeReset}
	if f.appeals != "" {
		af, err := os.Open(f.appeals)
		if err != nil {
			fmt.Fprintf(stderr, "breakwater replay: --appeals: %v\n", err)
			return 1
		}
		outcomes, err := replay.ReadAppeals(af)
		_ = af.Close()
		if err != nil {
			fmt.Fprintf(stderr, "breakwater replay: --appeals: %v\n", err)
			return 1
		}
		if n, errs := outcomes.Malformed(); n > 0 {
			fmt.Fprintf(stderr, "breakwater replay: --appeals: %d malformed lines skipped (the daemon dead-letters them):\n  %s\n", n, strings.Join(errs, "\n  "))
		}
		opts.Appeals, opts.AppealsPolicy, opts.AppealsJoinMax = outcomes, appeals.PolicyOf(cfg.Appeals), cfg.Appeals.JoinMax
	}
	var dw *replay.DecisionWriter
	var decisionsFile *os.File
	if f.decisions != "" {
		out, err := os.Create(f.decisions)
		if err != nil {
			fmt.Fprintf(stderr, "breakwater replay: --decisions: %v\n", err)
			return 1
		}
		defer func() { _ = out.Close() }() // after an error; Close below otherwise
		decisionsFile = out
		dw = replay.NewDecisionWriter(out)
		opts.OnDecision = dw.Write
	}
	var scorer *replay.Scorer
	if f.labels != "" {
		lf, err := os.Open(f.labels)
		if err != nil {
			fmt.Fprintf(stderr, "breakwater replay: --labels: %v\n", err)
			return 1
		}
		defer func() { _ = lf.Close() }()
		labels, next := replay.NewLabelReader(lf), opts.OnDecision
		scorer = replay.NewScorer()
		opts.OnDecision = func(seq int64, id string, it *decide.Item) error {
			lb, err := labels.Next(seq)
			if err == nil {
				err = scorer.Add(lb, it)
			}
			if err == nil && next != nil {
				err = next(seq, id, it)
			}
			return err
		}
	}
	show, done := progress(stderr, f.noProgress)
	opts.Progress = show
	r, err := replay.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "breakwater replay: %v\n", err)
		return 1
	}
	sum, err := r.Run(ctx, src)
	done()
	if err == nil && dw != nil {
		err = dw.Flush()
		if cerr := decisionsFile.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("--decisions: %w", cerr)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "breakwater replay: %v\n", err)
		return 1
	}
	if scorer != nil {
		ls := scorer.Summary(sum)
		sum.Labels = &ls
	}
	if f.report != "" {
		if err := writeReport(f.report, sum, report.Options{Input: name, Config: f.config}); err != nil {
			fmt.Fprintf(stderr, "breakwater replay: --report: %v\n", err)
			return 1
		}
	}
	if f.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			fmt.Fprintf(stderr, "breakwater replay: %v\n", err)
			return 1
		}
	} else {
		printSummary(stdout, sum)
	}
	if f.report != "" {
		fmt.Fprintf(stderr, "report written to %s\n", f.report)
	}
	return 0
}

func orNone(s string) string {
	if s == "" {
		return "never"
	}
	return s
}

func writeReport(path string, s replay.Summary, opts report.Options) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := report.Write(out, s, opts); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

func printSummary(w io.Writer, s replay.Summary) {
	fmt.Fprintf(w, "%d actions: %d gated, %d held, %d dead letter (event time %s to %s)\n",
		s.Actions, s.Gated, s.Held, s.DeadLetter, s.From.UTC().Format(time.RFC3339), s.To.UTC().Format(time.RFC3339))
	tripped := s.Tripped()
	if len(tripped) == 0 {
		fmt.Fprintln(w, "no breaker tripped")
	}
	for _, sc := range tripped {
		fmt.Fprintf(w, "  %-40s held %d of %d", sc.Scope, sc.Held, sc.Actions)
		for _, t := range sc.Trips {
			fmt.Fprintf(w, "; tripped %s (%s, window %.0f, baseline %.1f)", t.At.UTC().Format(time.RFC3339), t.Reason, t.Window, t.Baseline)
		}
		fmt.Fprintln(w)
	}
	if a := s.Appeals; a != nil {
		fmt.Fprintf(w, "  appeals: %d outcomes (%d overturned), %d joined to gated actions, %d unknown, %d duplicate, %d malformed; %d overturn_rate trips\n",
			a.Outcomes, a.Overturned, a.Joined, a.Unknown, a.Duplicate, a.Malformed, a.Trips)
	}
	if l := s.Labels; l != nil {
		for _, in := range l.Incidents {
			fmt.Fprintf(w, "  incident %d (%s): %d actions, %d held, %d gated before detection, %d after; detected after %s by %s\n",
				in.Incident, in.Kind, in.Actions, in.Held, in.GatedBefore, in.GatedAfter, orNone(in.DetectAfter), orNone(in.Scope))
		}
		fmt.Fprintf(w, "  ordinary actions held: %d while an incident ran (%.2f per incident action), %d outside; %d trips outside incidents; malformed %d, %d to dead-letter\n",
			l.Collateral, l.CollateralRatio, l.FalseHolds, l.TripsOutside, l.Malformed, l.MalformedDeadLetter)
	}
	fmt.Fprintf(w, "replayed %d events in %.2fs: %.0f events/s\n", s.Actions, s.Seconds, s.EventsPerSecond)
}

// tuneGC lets the heap grow to five times the live data between
// collections unless GOGC says otherwise: a replay's live data is small and
// flat, and it allocates per event in the decoder.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(400)
	}
}

// parse parses the flags and reports whether to go on; if not, code is the
// exit code.
func parse(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "breakwater %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}

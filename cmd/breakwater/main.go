// Command breakwater is the safety circuit breaker daemon for automated
// content moderation.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/daemon"
	"github.com/breakwater/breakwater/embedded"
	"github.com/breakwater/breakwater/internal/kafkaconn"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `breakwater: a safety circuit breaker between a moderation classifier and enforcement.

Usage:
  breakwater run [--config FILE]   consume, count, gate or hold (see run --help)
  breakwater check --config FILE   check Kafka, Redis and the configuration before the first run
  breakwater simulate [flags]      write synthetic classifier traffic as JSON Lines
  breakwater replay [flags]        run recorded traffic through the breakers, in event time
  breakwater suggest [flags]       propose per-rule thresholds from recorded traffic
  breakwater eval [flags]          run the labelled scenario suite and print its table
  breakwater help                  this text

With no --config and no BREAKWATER_KAFKA_BROKERS, run starts the embedded
demo: an in-process Kafka-protocol broker and Redis, and a classifier that
turns bad on one rule after 20 seconds.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "run":
		return runDaemon(args[1:], stdout, stderr)
	case "check":
		return withSignals(func(ctx context.Context) int { return runCheck(ctx, args[1:], stdout, stderr) })
	case "replay":
		return withSignals(func(ctx context.Context) int { return runReplay(ctx, args[1:], os.Stdin, stdout, stderr) })
	case "simulate":
		return withSignals(func(ctx context.Context) int { return runSimulate(ctx, args[1:], stdout, stderr) })
	case "suggest":
		return withSignals(func(ctx context.Context) int { return runSuggest(ctx, args[1:], os.Stdin, stdout, stderr) })
	case "eval":
		return withSignals(func(ctx context.Context) int { return runEval(ctx, args[1:], stdout, stderr) })
	default:
		fmt.Fprintf(stderr, "breakwater: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// withSignals runs fn with a context that ends on SIGINT or SIGTERM.
func withSignals(fn func(ctx context.Context) int) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return fn(ctx)
}

func runDaemon(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration file (see config/example.yaml); empty: the embedded demo unless BREAKWATER_KAFKA_BROKERS is set")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (for go tool pprof)")
	memProfile := fs.String("memprofile", "", "write the allocation profile of the whole run (every allocation sampled since the start, by bytes and objects) to this file at exit (for go tool pprof)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: breakwater run [--config FILE]\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nEnvironment overrides (an empty value is ignored):\n")
		for _, e := range config.EnvVars() {
			fmt.Fprintf(stderr, "  %-36s %s\n", e.Name, e.Key)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "breakwater run: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var cfg config.Config
	var err error
	if *path == "" {
		if _, set := os.LookupEnv("BREAKWATER_KAFKA_BROKERS"); !set {
			cfg, err = config.Parse(embedded.DemoConfig)
		} else {
			cfg = config.Default()
		}
		if err == nil {
			cfg.ApplyEnv(os.LookupEnv)
			err = cfg.Validate()
		}
	} else {
		cfg, err = config.LoadWithEnv(*path, os.LookupEnv)
	}
	if err != nil {
		fmt.Fprintf(stderr, "breakwater: invalid configuration:\n%v\n", err)
		return 1
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "breakwater: %v\n", err)
		return 1
	}
	defer func() { _ = log.Sync() }()
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "breakwater: %v\n", err)
			return 1
		}
		defer stopProfile()
	}
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			fmt.Fprintf(stderr, "breakwater: memory profile: %v\n", err)
			return 1
		}
		defer func() {
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				fmt.Fprintf(stderr, "breakwater: memory profile: %v\n", err)
			}
			_ = f.Close()
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := daemon.Run(ctx, daemon.Options{Config: cfg, Logger: log}); err != nil {
		log.Error("breakwater stopped with an error", zap.Error(err))
		return 1
	}
	return 0
}

// startCPUProfile profiles the process into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// cliKafka returns the Kafka endpoint of cfg for a command line tool: its
// warnings (such as kafka.tls.insecure_skip_verify) go to stderr.
func cliKafka(cfg config.Config, stderr io.Writer) (*kafkaconn.Endpoint, error) {
	log, err := newLogger(config.Log{Level: "warn", Format: "console"}, stderr)
	if err != nil {
		return nil, err
	}
	return kafkaconn.New(cfg.Kafka, log)
}

func newLogger(c config.Log, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if c.Format == "console" {
		ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		enc = zapcore.NewJSONEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), lvl)), nil
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/breakwater/breakwater/check"
	"github.com/breakwater/breakwater/config"
)

// runCheck connects to Kafka and Redis as the daemon would, prints a table
// of what it found, and returns 1 if anything failed.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration file of the daemon (required; environment overrides apply as for run)")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on each network check")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: breakwater check --config FILE\n\n"+
			"Connects to Kafka and Redis as the daemon would and checks, writing nothing\n"+
			"but scratch Redis keys it deletes: the brokers are reachable and accept the\n"+
			"credentials; every topic exists, the state topic is compacted; the user may\n"+
			"read and commit the group's offsets, read the input, held, state and audit\n"+
			"topics and write every output; Redis answers, its version, maxmemory-policy\n"+
			"noeviction, the hash tag's slot on a Cluster, the ACL user may run every\n"+
			"command the daemon runs on its keys; alert receivers and admin tokens are\n"+
			"configured. Exits 1 if a check fails, naming what to grant.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	cfg, err := config.LoadWithEnv(*path, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "breakwater check: invalid configuration:\n%v\n", err)
		return 1
	}
	log, err := newLogger(config.Log{Level: "warn", Format: "console"}, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "breakwater check: %v\n", err)
		return 1
	}
	r := check.Run(ctx, check.Options{Config: cfg, Logger: log, Timeout: *timeout})
	if err := r.Print(stdout); err != nil {
		fmt.Fprintf(stderr, "breakwater check: %v\n", err)
		return 1
	}
	if r.Failed() {
		return 1
	}
	return 0
}

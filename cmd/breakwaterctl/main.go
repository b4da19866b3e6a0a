// Command breakwaterctl is the command line client of the Breakwater admin
// API: breakers, overrides, resets and the audit trail.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/breakwater/breakwater/ctl"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return ctl.Run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
}

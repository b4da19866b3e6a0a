// Package ctl is breakwaterctl, the command line client of the admin API.
// It speaks only to the API: everything it shows or changes goes through
// the same authenticated endpoints, roles and audit trail as any client.
package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The environment variables the CLI reads.
const (
	// EnvServer is the API's base URL, when --server is not given.
	EnvServer = "BREAKWATER_SERVER"
	// EnvToken is the bearer token, when --token is not given.
	EnvToken = "BREAKWATER_TOKEN"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// errUsage marks a usage error (exit 2); the message was printed.
var errUsage = errors.New("usage")

const usage = `breakwaterctl: the command line client of the Breakwater admin API.

Usage:
  breakwaterctl [global flags] <command> [flags] [arguments]

Commands:
  whoami                                  the name and role of your token
  breakers                                every breaker: state, generation, who set it, until when
  breaker show SCOPE                      one breaker with its thresholds and last counts
  override open|close|shadow SCOPE --reason R [--for 2h] [--break-glass WHY]
                                          set a manual state (forced_open, forced_closed, shadow);
                                          closing or shadowing a breaker that holds asks a second
                                          operator to approve, unless --break-glass (pages on-call)
  override reset SCOPE --reason R [--break-glass WHY]
                                          reset a breaker into probation; where its scope has no
                                          probation, resetting a breaker that holds closes it
                                          outright and asks a second operator, like closing it
  audit [--scope S] [--actor A] [--kind K] [--since 1h] [--until T] [--limit N]
                                          the audit trail, newest first
  incidents [ID]                          the incidents (one per trip) and their review progress
  incidents ID --lookback [--window 10m]  the scope's actions forwarded just before the trip
  incident ack ID [--note N]              acknowledge an incident (PagerDuty gets an acknowledge)
  incident owner ID NAME | --release      take an incident, give it to NAME, or leave it unowned
  incident note ID TEXT                   write a note on an incident
  incident standing ID approve|reject --reason R
                                          decide everything the incident holds, now and until its
                                          breaker stops holding under it
  incident revoke ID --reason R           revoke the standing decision
  held list [--incident ID] [--scope S] [--action A] [--model-version V] [--region R] [--limit N] [--cursor C]
                                          held actions, in held order
  held approve|reject ID... | --incident ID | --ids-from FILE [--reason R]
                                          approve (release to gated) or reject (to the rejected topic)
  held undo ID... | --ids-from FILE [--reason R]
                                          put decided actions back to pending while they are not yet
                                          released (a decision on one action waits 10 s for it)
  held sample --incident ID -n N          approve N pending actions of an incident at random
                                          (approving more than approval.release_above at once asks a
                                          second reviewer, unless --break-glass WHY)
  approvals [list] [--status S]           requests that need a second person's approval
  approvals show|approve ID               one request; approve it (not your own)
  approvals refuse ID --reason R          refuse a request, or withdraw your own
  reversal INCIDENT [--action A] [--from T] [--to T]
                                          preview what a reversal would undo: the scope's actions
                                          forwarded from the estimated onset to the trip
  reversal INCIDENT --reason R [--action A] [--from T] [--to T] [--break-glass WHY]
                                          request it (a second operator approves)
  reversals [ID]                          reversals and their progress
  appeals                                 the appeals estimates per rule and model version: outcomes,
                                          overturned, P(precision < floor), and the trip's switch
  appeals trip off|on --reason R [--for 24h] [--break-glass WHY]
                                          turn the overturn_rate trip off (a second operator approves,
                                          unless --break-glass, which pages on-call) or on (at once)

Global flags (accepted anywhere):
  --server URL   the API, e.g. http://breakwater:8080 (default $BREAKWATER_SERVER)
  --token T      the bearer token (default $BREAKWATER_TOKEN)
  -o FORMAT      table (default) or json
  --timeout D    bound on one request (default 30s)

A scope is global, rule:<rule_id>, rule:<rule_id>|action:<type> or a segment,
rule:<rule_id>|model:<version> or rule:<rule_id>|region:<value>.
Run 'breakwaterctl <command> --help' for a command's flags.
`

// Env looks up an environment variable (os.LookupEnv in main).
type Env func(string) (string, bool)

// Run runs the CLI with args (without the program name) and returns the
// exit code.
func Run(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	g := &globals{env: env}
	// Global flags may come before the command.
	pre := flag.NewFlagSet("breakwaterctl", flag.ContinueOnError)
	pre.SetOutput(io.Discard)
	g.register(pre)
	if err := pre.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		fmt.Fprintf(stderr, "breakwaterctl: %v\n\n%s", err, usage)
		return exitUsage
	}
	args = pre.Args()
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "whoami":
		err = g.whoami(ctx, rest, stdout, stderr)
	case "breakers":
		err = g.breakers(ctx, rest, stdout, stderr)
	case "breaker":
		err = g.breaker(ctx, rest, stdout, stderr)
	case "override":
		err = g.override(ctx, rest, stdout, stderr)
	case "audit":
		err = g.audit(ctx, rest, stdout, stderr)
	case "incidents":
		err = g.incidents(ctx, rest, stdout, stderr)
	case "held":
		err = g.held(ctx, rest, stdout, stderr)
	case "approvals":
		err = g.approvals(ctx, rest, stdout, stderr)
	case "incident":
		err = g.incident(ctx, rest, stdout, stderr)
	case "reversal":
		err = g.reversal(ctx, rest, stdout, stderr)
	case "reversals":
		err = g.reversals(ctx, rest, stdout, stderr)
	case "appeals":
		err = g.appeals(ctx, rest, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "breakwaterctl: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	default:
		fmt.Fprintf(stderr, "breakwaterctl %s: %v\n", cmd, err)
		return exitError
	}
}

// globals are the flags every command accepts.
type globals struct {
	env     Env
	server  string
	token   string
	output  string
	timeout time.Duration
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.server, "server", g.server, "the admin API's base URL (default $"+EnvServer+")")
	fs.StringVar(&g.token, "token", g.token, "the bearer token (default $"+EnvToken+")")
	fs.StringVar(&g.output, "o", orDefault(g.output, "table"), "output format: table or json")
	fs.DurationVar(&g.timeout, "timeout", orDefaultDur(g.timeout, 30*time.Second), "bound on one request")
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func orDefaultDur(v, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v
}

// command parses the flags and arguments of one command. Flags may come
// before, between or after the arguments. It prints help and returns
// flag.ErrHelp for --help, and errUsage after printing a usage error.
func (g *globals) command(name, synopsis string, args []string, stdout, stderr io.Writer, setup func(*flag.FlagSet)) ([]string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	if setup != nil {
		setup(fs)
	}
	help := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: breakwaterctl %s\n\nFlags:\n", synopsis)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				help(stdout)
				return nil, flag.ErrHelp
			}
			fmt.Fprintf(stderr, "breakwaterctl %s: %v\n", name, err)
			help(stderr)
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if g.output != "table" && g.output != "json" {
		fmt.Fprintf(stderr, "breakwaterctl %s: -o must be table or json, got %q\n", name, g.output)
		return nil, errUsage
	}
	return pos, nil
}

// wantArgs checks the number of positional arguments.
func wantArgs(name, synopsis string, pos []string, n int, stderr io.Writer) error {
	if len(pos) != n {
		fmt.Fprintf(stderr, "breakwaterctl %s: want %d argument(s), got %d\nUsage: breakwaterctl %s\n", name, n, len(pos), synopsis)
		return errUsage
	}
	return nil
}

// client returns the API client of the global flags.
func (g *globals) client() (*client, error) {
	server, token := g.server, g.token
	if server == "" && g.env != nil {
		server, _ = g.env(EnvServer)
	}
	if token == "" && g.env != nil {
		token, _ = g.env(EnvToken)
	}
	server = strings.TrimRight(strings.TrimSpace(server), "/")
	if server == "" {
		return nil, fmt.Errorf("no server: give --server URL or set %s", EnvServer)
	}
	if !strings.HasPrefix(server, "http://") && !strings.HasPrefix(server, "https://") {
		return nil, fmt.Errorf("--server must start with http:// or https://, got %q", server)
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, fmt.Errorf("no token: give --token or set %s", EnvToken)
	}
	return &client{base: server, token: token, http: &http.Client{Timeout: g.timeout}}, nil
}

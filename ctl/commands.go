package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/breaker"
)

// call runs one request with the global timeout.
func (g *globals) call(ctx context.Context, method, path string, body, out any) (json.RawMessage, error) {
	c, err := g.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	return c.do(ctx, method, path, body, out)
}

// printJSON writes the API's answer, indented.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

func (g *globals) whoami(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const syn = "whoami"
	pos, err := g.command("whoami", syn, args, stdout, stderr, nil)
	if err != nil {
		return err
	}
	if err := wantArgs("whoami", syn, pos, 0, stderr); err != nil {
		return err
	}
	var p api.Principal
	raw, err := g.call(ctx, "GET", "/v1/whoami", nil, &p)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return printJSON(stdout, raw)
	}
	_, err = fmt.Fprintf(stdout, "%s (%s)\n", p.Name, p.Role)
	return err
}

func (g *globals) breakers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const syn = "breakers [-o table|json]"
	pos, err := g.command("breakers", syn, args, stdout, stderr, nil)
	if err != nil {
		return err
	}
	if err := wantArgs("breakers", syn, pos, 0, stderr); err != nil {
		return err
	}
	var out struct {
		Breakers []api.Breaker `json:"breakers"`
	}
	raw, err := g.call(ctx, "GET", "/v1/breakers", nil, &out)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return printJSON(stdout, raw)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tSTATE\tAUTO\tGEN\tSINCE\tWINDOW\tMAX\tSET BY\tUNTIL\tREASON")
	for _, b := range out.Breakers {
		window := "-"
		if b.Counts != nil {
			window = strconv.FormatFloat(b.Counts.Window, 'f', -1, 64)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Scope, b.State, b.Auto, b.Generation, when(b.Since),
			window, limit(b.Thresholds.MaxActions), dash(b.Actor), when(b.Until), dash(short(b.Reason, 40)))
	}
	return tw.Flush()
}

func (g *globals) breaker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const syn = "breaker show SCOPE [-o table|json]"
	pos, err := g.command("breaker", syn, args, stdout, stderr, nil)
	if err != nil {
		return err
	}
	if len(pos) == 0 || pos[0] != "show" {
		fmt.Fprintf(stderr, "breakwaterctl breaker: want the subcommand show\nUsage: breakwaterctl %s\n", syn)
		return errUsage
	}
	if err := wantArgs("breaker show", syn, pos[1:], 1, stderr); err != nil {
		return err
	}
	var b api.Breaker
	raw, err := g.call(ctx, "GET", "/v1/breakers/"+url.PathEscape(pos[1]), nil, &b)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return printJSON(stdout, raw)
	}
	return printBreaker(stdout, b)
}

func printBreaker(w io.Writer, b api.Breaker) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("scope", string(b.Scope))
	row("state", string(b.State))
	row("automatic state", string(b.Auto))
	row("holds", strconv.FormatBool(b.Holds))
	row("generation", strconv.FormatUint(b.Generation, 10))
	row("since", when(b.Since))
	row("tripped at", when(b.TrippedAt))
	row("set by", dash(b.Actor))
	row("until", when(b.Until))
	row("probation until", when(b.ProbationUntil))
	row("reason", dash(b.Reason))
	th := b.Thresholds
	row("thresholds", fmt.Sprintf("window %s, max_actions %s, baseline %s, factor %s, min_actions %s, probation %s x%s, auto_close_after %s, disabled %t",
		th.Window, limit(th.MaxActions), th.Baseline, limit(th.Factor), strconv.FormatFloat(th.MinActions, 'f', -1, 64),
		th.Probation, strconv.FormatFloat(th.ProbationScale, 'f', -1, 64), th.AutoCloseAfter, th.Disabled))
	if c := b.Counts; c != nil {
		row("counts", fmt.Sprintf("window %s, baseline %s (ready %t), seen %s",
			strconv.FormatFloat(c.Window, 'f', -1, 64), strconv.FormatFloat(c.Baseline, 'f', 2, 64), c.BaselineReady, when(c.ObservedAt)))
	} else {
		row("counts", "- (not counted by this replica yet)")
	}
	return tw.Flush()
}

// overrideStates maps the CLI's verbs to states.
var overrideStates = map[string]string{"open": "forced_open", "close": "forced_closed", "shadow": "shadow"}

func (g *globals) override(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const syn = "override open|close|shadow SCOPE --reason R [--for 2h] [--break-glass WHY]\n       breakwaterctl override reset SCOPE --reason R [--break-glass WHY]"
	var reason, breakGlass string
	var dur time.Duration
	pos, err := g.command("override", syn, args, stdout, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&reason, "reason", "", "why (required; recorded in the audit trail)")
		fs.DurationVar(&dur, "for", 0, "how long a manual state lasts, e.g. 2h (default: until reset or another override)")
		fs.StringVar(&breakGlass, "break-glass", "", "why closing or shadowing a breaker that holds, or resetting it where its scope has no probation, cannot wait for a second operator: applies at once and pages on-call")
	})
	if err != nil {
		return err
	}
	if err := wantArgs("override", syn, pos, 2, stderr); err != nil {
		return err
	}
	verb, scope := pos[0], pos[1]
	if strings.TrimSpace(reason) == "" {
		fmt.Fprintf(stderr, "breakwaterctl override: --reason is required\nUsage: breakwaterctl %s\n", syn)
		return errUsage
	}
	var path string
	var body any
	switch state, ok := overrideStates[verb]; {
	case ok:
		req := api.OverrideRequest{State: stateOf(state), Reason: reason, BreakGlass: breakGlass}
		if dur < 0 {
			fmt.Fprintf(stderr, "breakwaterctl override: --for must be positive, got %s\n", dur)
			return errUsage
		}
		if dur > 0 {
			req.For = dur.String()
		}
		path, body = "/v1/breakers/"+url.PathEscape(scope)+"/override", req
	case verb == "reset":
		if dur != 0 {
			fmt.Fprintf(stderr, "breakwaterctl override reset: --for does not apply to a reset\n")
			return errUsage
		}
		path, body = "/v1/breakers/"+url.PathEscape(scope)+"/reset", api.ResetRequest{Reason: reason, BreakGlass: breakGlass}
	default:
		fmt.Fprintf(stderr, "breakwaterctl override: want open, close, shadow or reset, got %q\nUsage: breakwaterctl %s\n", verb, syn)
		return errUsage
	}
	return g.change(ctx, path, body, stdout, func(raw json.RawMessage) error {
		if g.output == "json" {
			return printJSON(stdout, raw)
		}
		var resp api.ChangeResponse
		if err := json.Unmarshal(raw, &resp); err != nil {
			return fmt.Errorf("the answer is not a breaker change: %w", err)
		}
		until := ""
		if !resp.Breaker.Until.IsZero() {
			until = " until " + when(resp.Breaker.Until)
		}
		_, err := fmt.Fprintf(stdout, "%s: %s -> %s%s (generation %d, by %s)\n", resp.Breaker.Scope, resp.From.State,
			resp.Breaker.State, until, resp.Breaker.Generation, resp.Breaker.Actor)
		return err
	})
}

func (g *globals) audit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const syn = "audit [--scope SCOPE] [--incident ID] [--actor NAME] [--kind KIND] [--since 1h|RFC3339] [--until RFC3339] [--limit N] [-o table|json]"
	var scope, since, until, actor, kind, incident string
	var limitN int
	pos, err := g.command("audit", syn, args, stdout, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&scope, "scope", "", "only this breaker's entries")
		fs.StringVar(&since, "since", "", "only entries since this time (RFC 3339) or this long ago (1h)")
		fs.StringVar(&until, "until", "", "only entries before this time (RFC 3339)")
		fs.StringVar(&actor, "actor", "", "only this actor's entries (a token name, or breakwater)")
		fs.StringVar(&kind, "kind", "", "only entries of this kind: transition, override, reset, approve, reject, release, acknowledge, owner, note, standing, standing_revoked or standing_ended")
		fs.StringVar(&incident, "incident", "", "only entries that name this incident")
		fs.IntVar(&limitN, "limit", 50, "the most entries shown (1..1000)")
	})
	if err != nil {
		return err
	}
	if err := wantArgs("audit", syn, pos, 0, stderr); err != nil {
		return err
	}
	q := url.Values{}
	if scope != "" {
		q.Set("scope", scope)
	}
	for k, v := range map[string]string{"since": since, "until": until, "actor": actor, "kind": kind, "incident": incident} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", strconv.Itoa(limitN))
	var out struct {
		Entries []api.AuditEntry `json:"entries"`
	}
	raw, err := g.call(ctx, "GET", "/v1/audit?"+q.Encode(), nil, &out)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return printJSON(stdout, raw)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tACTOR\tKIND\tSCOPE\tINCIDENT\tFROM\tTO\tGEN\tWHAT\tREASON")
	for _, e := range out.Entries {
		from, to, gen := "-", "-", "-"
		if e.From != nil {
			from = string(e.From.State)
		}
		if e.To != nil {
			to, gen = string(e.To.State), strconv.FormatUint(e.To.Generation, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", when(e.At), e.Actor, e.Kind, dash(string(e.Scope)), dash(e.Incident),
			from, to, gen, dash(auditWhat(e)), dash(short(e.Reason, 60)))
	}
	return tw.Flush()
}

// auditWhat says in a few words what an entry covered: its count, the
// decision of a standing decision, the owner, the window count of a trip.
func auditWhat(e api.AuditEntry) string {
	var parts []string
	if e.Decision != "" {
		parts = append(parts, e.Decision+" everything")
	}
	switch {
	case e.Kind == "standing":
		parts = append(parts, strconv.Itoa(e.Count)+" pending when set")
	case e.Kind == "standing_revoked" || e.Kind == "standing_ended":
		parts = append(parts, strconv.Itoa(e.Count)+" decided by it")
	case e.Kind == "release" && e.Progress != nil:
		// The incident's release batches, folded into this entry.
		parts = append(parts, fmt.Sprintf("%d actions written in %d batches, the last at %s", e.Progress.Count, e.Progress.Steps, when(e.Progress.Last)))
	case e.Count > 0:
		parts = append(parts, strconv.Itoa(e.Count)+" actions")
	}
	if e.Kind == "standing" && e.Progress != nil {
		// The decisions it made, folded into this entry.
		parts = append(parts, fmt.Sprintf("decided %d in %d steps, the last at %s", e.Progress.Count, e.Progress.Steps, when(e.Progress.Last)))
	}
	if e.Via != "" {
		parts = append(parts, "by the "+e.Via+" decision")
	}
	if e.ActionID != "" {
		parts = append(parts, "action "+e.ActionID)
	}
	if e.Kind == "owner" {
		parts = append(parts, "owner "+dash(e.Owner))
	}
	if e.Window > 0 {
		parts = append(parts, "window count "+strconv.FormatFloat(e.Window, 'f', -1, 64))
	}
	return strings.Join(parts, ", ")
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func limit(v float64) string {
	if v == 0 {
		return "off"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func stateOf(s string) breaker.State { return breaker.State(s) }

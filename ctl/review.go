package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/breakwater/breakwater/api"
)

func (g *globals) incidents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const syn = "incidents [ID [--lookback [--window 10m]]] [-o table|json]"
	var lookback bool
	var window time.Duration
	pos, err := g.command("incidents", syn, args, stdout, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&lookback, "lookback", false, "with ID: the scope's actions forwarded to gated in a window before the trip")
		fs.DurationVar(&window, "window", 0, "with --lookback: the window (default the scope's breaker window)")
	})
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return wantArgs("incidents", syn, pos, 1, stderr)
	}
	if lookback {
		if len(pos) != 1 {
			fmt.Fprintf(stderr, "breakwaterctl incidents: --lookback needs an incident ID\n")
			return errUsage
		}
		return g.lookBack(ctx, pos[0], window, stdout)
	}
	if len(pos) == 1 {
		var inc api.Incident
		raw, err := g.call(ctx, "GET", "/v1/incidents/"+url.PathEscape(pos[0]), nil, &inc)
		if err != nil {
			return err
		}
		if g.output == "json" {
			return printJSON(stdout, raw)
		}
		return printIncident(stdout, inc)
	}
	var out struct {
		Incidents []api.Incident `json:"incidents"`
	}
	raw, err := g.call(ctx, "GET", "/v1/incidents", nil, &out)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return printJSON(stdout, raw)
	}
	return printIncidents(stdout, out.Incidents)
}

func (g *globals) lookBack(ctx context.Context, id string, window time.Duration, stdout io.Writer) error {
	q := url.Values{}
	if window > 0 {
		q.Set("window", window.String())
	}
	var lb api.LookBack
	raw, err := g.call(ctx, "GET", "/v1/incidents/"+url.PathEscape(id)+"/lookback?"+q.Encode(), nil, &lb)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return printJSON(stdout, raw)
	}
	fmt.Fprintf(stdout, "forwarded to gated from %s to %s: %d\n", when(lb.From), when(lb.To), len(lb.Actions))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION ID\tRULE\tACTION\tTARGET\tOCCURRED\tFORWARDED")
	for _, a := range lb.Actions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s:%s\t%s\t%s\n", a.ActionID, a.Rule, a.Action, a.TargetType, a.TargetID, when(a.OccurredAt), when(a.ForwardedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if lb.Truncated {
		fmt.Fprintln(stdout, "(truncated: only the newest are shown)")
	}
	return nil
}

func printIncidents(w io.Writer, incs []api.Incident) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	// RELEASED counts approved actions released to the gated topic;
	// WRITTEN every decided action written to its topic (approved to
	// gated, rejected to rejected).
	fmt.Fprintln(tw, "INCIDENT\tSTATE\tSCOPE\tHELD\tPENDING\tAPPROVED\tRELEASED\tREJECTED\tWRITTEN\tACK\tOWNER\tSTANDING\tFIRST HELD\tLAST HELD")
	for _, i := range incs {
		standing := "-"
		if i.Standing != nil {
			standing = i.Standing.Decision
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", i.ID, i.State, i.Scope, i.Held, i.Pending,
			i.Approved, i.ApprovedReleased, i.Rejected, i.Written,
			dash(i.AckBy), dash(i.Owner), standing, when(i.FirstHeldAt), when(i.LastHeldAt))
	}
	return tw.Flush()
}

const heldSynopsis = `held list [--incident ID] [--scope S] [--action A] [--model-version V] [--region R] [--limit N] [--cursor C]
       breakwaterctl held approve|reject ID... | --incident ID [--wait] | --ids-from FILE [--reason R] [--break-glass WHY]
       breakwaterctl held sample --incident ID -n N [--reason R] [--break-glass WHY]
       breakwaterctl held undo ID... | --ids-from FILE [--reason R]`

func (g *globals) held(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f heldFilter
	var cursor, reason, idsFrom, breakGlass string
	var limitN, n int
	var wait bool
	pos, err := g.command("held", heldSynopsis, args, stdout, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&wait, "wait", false, "approve, reject with --incident: follow the release until every decided action is written, with a progress line on stderr")
		fs.StringVar(&f.Incident, "incident", "", "the incident (list, sample, or approve/reject all of its pending actions)")
		fs.StringVar(&f.Scope, "scope", "", "list: only this breaker's actions")
		fs.StringVar(&f.Action, "action", "", "list: only this action type")
		fs.StringVar(&f.ModelVersion, "model-version", "", "list: only this model version")
		fs.StringVar(&f.Region, "region", "", "list: only this region")
		fs.IntVar(&limitN, "limit", 50, "list: the most actions shown (1..1000)")
		fs.StringVar(&cursor, "cursor", "", "list: the next_cursor of an earlier page")
		fs.StringVar(&reason, "reason", "", "approve, reject, sample, undo: why (recorded in the audit trail)")
		fs.StringVar(&idsFrom, "ids-from", "", "approve, reject, undo: read action ids from this file, one a line (- for stdin)")
		fs.IntVar(&n, "n", 0, "sample: how many pending actions to approve at random")
		fs.StringVar(&breakGlass, "break-glass", "", "approve, sample: why a release above approval.release_above cannot wait for a second reviewer: applies at once and pages on-call")
	})
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fmt.Fprintf(stderr, "breakwaterctl held: want list, approve, reject, sample or undo\nUsage: breakwaterctl %s\n", heldSynopsis)
		return errUsage
	}
	verb, rest := pos[0], pos[1:]
	switch verb {
	case "list":
		if err := wantArgs("held list", heldSynopsis, rest, 0, stderr); err != nil {
			return err
		}
		return g.heldList(ctx, f, cursor, limitN, stdout)
	case "sample":
		if err := wantArgs("held sample", heldSynopsis, rest, 0, stderr); err != nil {
			return err
		}
		if f.Incident == "" || n < 1 {
			fmt.Fprintf(stderr, "breakwaterctl held sample: --incident and -n (at least 1) are required\n")
			return errUsage
		}
		return g.change(ctx, "/v1/incidents/"+url.PathEscape(f.Incident)+"/sample", api.SampleRequest{N: n, Reason: reason, BreakGlass: breakGlass}, stdout, func(raw json.RawMessage) error {
			return g.printDecision(stdout, "approved", raw)
		})
	case "approve", "reject":
		ids := rest
		if idsFrom != "" {
			more, err := readIDs(idsFrom)
			if err != nil {
				return err
			}
			ids = append(ids, more...)
		}
		var path string
		var body any
		switch {
		case f.Incident != "" && len(ids) > 0:
			fmt.Fprintf(stderr, "breakwaterctl held %s: give action ids or --incident, not both\n", verb)
			return errUsage
		case verb == "reject" && breakGlass != "":
			fmt.Fprintf(stderr, "breakwaterctl held reject: rejecting never needs a second person; drop --break-glass\n")
			return errUsage
		case f.Incident != "":
			path, body = "/v1/incidents/"+url.PathEscape(f.Incident)+"/"+verb, api.IncidentDecisionRequest{Reason: reason, BreakGlass: breakGlass}
		case len(ids) > 0:
			path, body = "/v1/held/"+verb, api.DecideRequest{IDs: ids, Reason: reason, BreakGlass: breakGlass}
		default:
			fmt.Fprintf(stderr, "breakwaterctl held %s: give action ids, --ids-from FILE or --incident ID\n", verb)
			return errUsage
		}
		return g.change(ctx, path, body, stdout, func(raw json.RawMessage) error {
			if err := g.printDecision(stdout, strings.TrimSuffix(verb, "e")+"ed", raw); err != nil {
				return err
			}
			if wait && f.Incident != "" {
				return g.waitReleased(ctx, f.Incident, stderr)
			}
			return nil
		})
	case "undo":
		ids := rest
		if idsFrom != "" {
			more, err := readIDs(idsFrom)
			if err != nil {
				return err
			}
			ids = append(ids, more...)
		}
		switch {
		case f.Incident != "" || breakGlass != "" || wait:
			fmt.Fprintf(stderr, "breakwaterctl held undo: undo takes action ids (or --ids-from) and --reason only\n")
			return errUsage
		case len(ids) == 0:
			fmt.Fprintf(stderr, "breakwaterctl held undo: give the action ids whose decision to undo, or --ids-from FILE\n")
			return errUsage
		}
		return g.change(ctx, "/v1/held/undo", api.DecideRequest{IDs: ids, Reason: reason}, stdout, func(raw json.RawMessage) error {
			return g.printUndo(stdout, raw)
		})
	default:
		fmt.Fprintf(stderr, "breakwaterctl held: want list, approve, reject, sample or undo, got %q\nUsage: breakwaterctl %s\n", verb, heldSynopsis)
		return errUsage
	}
}

func (g *globals) heldList(ctx context.Context, f heldFilter, cursor string, limitN int, stdout io.Writer) error {
	q := url.Values{}
	for k, v := range map[string]string{
		"incident": f.Incident, "scope": f.Scope, "action": f.Action,
		"model_version": f.ModelVersion, "region": f.Region, "cursor": cursor,
	} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", strconv.Itoa(limitN))
	var page api.HeldPage
	raw, err := g.call(ctx, "GET", "/v1/held?"+q.Encode(), nil, &page)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return printJSON(stdout, raw)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION ID\tINCIDENT\tRULE\tACTION\tTARGET\tMODEL\tREGION\tOCCURRED\tSTATUS\tRELEASED\tREVIEWER")
	for _, h := range page.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s:%s\t%s\t%s\t%s\t%s\t%t\t%s\n", h.ActionID, h.Incident, h.Rule, h.Action, h.TargetType, h.TargetID,
			dash(h.ModelVersion), dash(h.Region), when(h.OccurredAt), h.Status, h.Released, dash(h.Reviewer))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.Next != "" {
		fmt.Fprintf(stdout, "more: --cursor %s\n", page.Next)
	}
	return nil
}

func (g *globals) printDecision(w io.Writer, verb string, raw []byte) error {
	if g.output == "json" {
		return printJSON(w, raw)
	}
	var r api.DecideResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("the answer is not a decision: %w", err)
	}
	fmt.Fprintf(w, "%s %d, already %s %d", verb, r.Changed, verb, r.Already)
	if len(r.Conflicts) > 0 {
		fmt.Fprintf(w, ", %d carry the other decision (%s)", len(r.Conflicts), short(strings.Join(r.Conflicts, " "), 200))
	}
	if len(r.Unknown) > 0 {
		fmt.Fprintf(w, ", %d unknown (%s)", len(r.Unknown), short(strings.Join(r.Unknown, " "), 200))
	}
	_, err := fmt.Fprintln(w)
	return err
}

// printUndo says what an undo did: the decisions undone (the actions are
// pending again), those that stand because their action is already
// released, and the ids that had no decision or are unknown.
func (g *globals) printUndo(w io.Writer, raw []byte) error {
	if g.output == "json" {
		return printJSON(w, raw)
	}
	var r api.UndoResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("the answer is not an undo: %w", err)
	}
	fmt.Fprintf(w, "undone %d (pending again)", len(r.Undone))
	if len(r.Released) > 0 {
		fmt.Fprintf(w, ", %d already released: their decision stands (%s)", len(r.Released), short(strings.Join(r.Released, " "), 200))
	}
	if len(r.Pending) > 0 {
		fmt.Fprintf(w, ", %d had no decision (%s)", len(r.Pending), short(strings.Join(r.Pending, " "), 200))
	}
	if len(r.Unknown) > 0 {
		fmt.Fprintf(w, ", %d unknown (%s)", len(r.Unknown), short(strings.Join(r.Unknown, " "), 200))
	}
	_, err := fmt.Fprintln(w)
	return err
}

// readIDs reads action ids, one a line; blank lines and # comments are skipped.
func readIDs(path string) ([]string, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--ids-from: %w", err)
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	var ids []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			ids = append(ids, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--ids-from %s: %w", path, err)
	}
	return ids, nil
}

// waitReleased follows the release of an incident's decided actions until
// all of them are written, printing a progress line to stderr about every
// second.
func (g *globals) waitReleased(ctx context.Context, id string, stderr io.Writer) error {
	start := time.Now()
	for {
		var inc api.Incident
		if _, err := g.call(ctx, "GET", "/v1/incidents/"+url.PathEscape(id), nil, &inc); err != nil {
			return err
		}
		decided := inc.Approved + inc.Rejected
		fmt.Fprintf(stderr, "\rwritten %d of %d decided to their topic (%d approved released, %d rejected recorded; %d pending review), %s",
			inc.Written, decided, inc.ApprovedReleased, inc.RejectedWritten, inc.Pending, time.Since(start).Truncate(time.Second))
		if inc.Written >= decided {
			fmt.Fprintln(stderr)
			return nil
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(stderr)
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// heldFilter selects held actions for held list; empty fields match everything.
type heldFilter struct {
	Incident, Scope, Action, ModelVersion, Region string
}

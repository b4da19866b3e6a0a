package ctl

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/breakwater/breakwater/api"
)

// send runs one request with the global timeout and returns the status
// code of a successful answer with it.
func (g *globals) send(ctx context.Context, method, path string, body, out any) (int, json.RawMessage, error) {
	c, err := g.client()
	if err != nil {
		return 0, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	return c.send(ctx, method, path, body, out)
}

// change sends a request that may need a second person's approval: on 202
// it prints the approval request, and otherwise hands the answer to done.
func (g *globals) change(ctx context.Context, path string, body any, stdout io.Writer, done func(raw json.RawMessage) error) error {
	code, raw, err := g.send(ctx, "POST", path, body, nil)
	if err != nil {
		return err
	}
	if code != http.StatusAccepted {
		return done(raw)
	}
	if g.output == "json" {
		return printJSON(stdout, raw)
	}
	var ap api.Approval
	if err := json.Unmarshal(raw, &ap); err != nil {
		return fmt.Errorf("the answer is not an approval request: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "approval requested: %s\n  %s\n  a different person with the %s role approves it before %s with:\n    breakwaterctl approvals approve %s\n",
		ap.ID, ap.Summary, ap.Role, when(ap.ExpiresAt), ap.ID)
	return err
}

const approvalsSynopsis = `approvals [list] [--status S] [--limit N]
       breakwaterctl approvals show ID
       breakwaterctl approvals approve ID [--sha256 HASH]
       breakwaterctl approvals refuse ID --reason R`

func (g *globals) approvals(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var status, reason, sum string
	var limitN int
	pos, err := g.command("approvals", approvalsSynopsis, args, stdout, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&status, "status", "", "list: only requests of this status: pending, approved, applied, refused, expired or break_glass")
		fs.IntVar(&limitN, "limit", 50, "list: the most requests shown (1..1000)")
		fs.StringVar(&reason, "reason", "", "refuse: why (required; recorded in the audit trail)")
		fs.StringVar(&sum, "sha256", "", "approve: the payload_sha256 you reviewed (default: the one shown now)")
	})
	if err != nil {
		return err
	}
	verb := "list"
	if len(pos) > 0 {
		verb, pos = pos[0], pos[1:]
	}
	switch verb {
	case "list":
		if err := wantArgs("approvals list", approvalsSynopsis, pos, 0, stderr); err != nil {
			return err
		}
		q := url.Values{"limit": {strconv.Itoa(limitN)}}
		if status != "" {
			q.Set("status", status)
		}
		var out api.Approvals
		raw, err := g.call(ctx, "GET", "/v1/approvals?"+q.Encode(), nil, &out)
		if err != nil {
			return err
		}
		if g.output == "json" {
			return printJSON(stdout, raw)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tOPERATION\tTARGET\tCOUNT\tREQUESTER\tROLE\tDECIDED BY\tEXPIRES\tSUMMARY")
		for _, a := range out.Approvals {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Status, a.Operation, dash(a.Target), a.Count,
				a.Requester, a.Role, dash(a.DecidedBy), when(a.ExpiresAt), short(a.Summary, 70))
		}
		return tw.Flush()
	case "show":
		if err := wantArgs("approvals show", approvalsSynopsis, pos, 1, stderr); err != nil {
			return err
		}
		var a api.Approval
		raw, err := g.call(ctx, "GET", "/v1/approvals/"+url.PathEscape(pos[0]), nil, &a)
		if err != nil {
			return err
		}
		if g.output == "json" {
			return printJSON(stdout, raw)
		}
		return printApproval(stdout, a)
	case "approve":
		if err := wantArgs("approvals approve", approvalsSynopsis, pos, 1, stderr); err != nil {
			return err
		}
		path := "/v1/approvals/" + url.PathEscape(pos[0])
		if sum == "" {
			// Approve what is shown now: the server refuses if it changes
			// between this read and the approval.
			var a api.Approval
			if _, err := g.call(ctx, "GET", path, nil, &a); err != nil {
				return err
			}
			sum = a.PayloadSHA256
			if g.output != "json" {
				fmt.Fprintf(stdout, "approving %s: %s (requested by %s, payload %.12s)\n", a.ID, a.Summary, a.Requester, sum)
			}
		}
		var a api.Approval
		raw, err := g.call(ctx, "POST", path+"/approve", api.ApproveRequest{PayloadSHA256: strings.ToLower(sum)}, &a)
		if err != nil {
			return err
		}
		if g.output == "json" {
			return printJSON(stdout, raw)
		}
		return printApproval(stdout, a)
	case "refuse":
		if err := wantArgs("approvals refuse", approvalsSynopsis, pos, 1, stderr); err != nil {
			return err
		}
		if strings.TrimSpace(reason) == "" {
			fmt.Fprintf(stderr, "breakwaterctl approvals refuse: --reason is required\nUsage: breakwaterctl %s\n", approvalsSynopsis)
			return errUsage
		}
		var a api.Approval
		raw, err := g.call(ctx, "POST", "/v1/approvals/"+url.PathEscape(pos[0])+"/refuse", api.RefuseRequest{Reason: reason}, &a)
		if err != nil {
			return err
		}
		if g.output == "json" {
			return printJSON(stdout, raw)
		}
		return printApproval(stdout, a)
	default:
		fmt.Fprintf(stderr, "breakwaterctl approvals: want list, show, approve or refuse, got %q\nUsage: breakwaterctl %s\n", verb, approvalsSynopsis)
		return errUsage
	}
}

func printApproval(w io.Writer, a api.Approval) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("id", a.ID)
	row("status", string(a.Status))
	row("summary", a.Summary)
	row("operation", string(a.Operation))
	row("target", dash(a.Target))
	row("requested by", a.Requester)
	row("approver role", string(a.Role))
	row("requested at", when(a.RequestedAt))
	row("expires at", when(a.ExpiresAt))
	row("payload sha256", a.PayloadSHA256)
	if len(a.Payload) > 0 {
		row("payload", short(string(a.Payload), 300))
	}
	row("decided by", dash(a.DecidedBy))
	row("decided at", when(a.DecidedAt))
	row("reason", dash(a.Reason))
	row("applied at", when(a.AppliedAt))
	if len(a.Result) > 0 {
		row("result", short(string(a.Result), 300))
	}
	if a.Error != "" {
		row("error", a.Error)
	}
	return tw.Flush()
}

const reversalSynopsis = `reversal INCIDENT [--action A]... [--from T] [--to T]            preview
       breakwaterctl reversal INCIDENT --reason R [--action A]... [--from T] [--to T] [--break-glass WHY]   request
       breakwaterctl reversals [ID]                                                   progress`

// actionList collects repeated --action flags.
type actionList []string

func (a *actionList) String() string     { return strings.Join(*a, ",") }
func (a *actionList) Set(v string) error { *a = append(*a, strings.Split(v, ",")...); return nil }

func (g *globals) reversal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var actions actionList
	var from, to, reason, breakGlass string
	pos, err := g.command("reversal", reversalSynopsis, args, stdout, stderr, func(fs *flag.FlagSet) {
		fs.Var(&actions, "action", "only this action type (repeat, or comma separated)")
		fs.StringVar(&from, "from", "", "narrow the window's start (RFC 3339, within the preview's window)")
		fs.StringVar(&to, "to", "", "narrow the window's end (RFC 3339)")
		fs.StringVar(&reason, "reason", "", "request the reversal, with why (recorded on every record and in the audit trail)")
		fs.StringVar(&breakGlass, "break-glass", "", "why the reversal cannot wait for a second operator: starts at once and pages on-call")
	})
	if err != nil {
		return err
	}
	if err := wantArgs("reversal", reversalSynopsis, pos, 1, stderr); err != nil {
		return err
	}
	path := "/v1/incidents/" + url.PathEscape(pos[0]) + "/reversal"
	if strings.TrimSpace(reason) == "" {
		if breakGlass != "" {
			fmt.Fprintf(stderr, "breakwaterctl reversal: --break-glass needs --reason\n")
			return errUsage
		}
		q := url.Values{}
		for _, a := range actions {
			q.Add("action", a)
		}
		if from != "" {
			q.Set("from", from)
		}
		if to != "" {
			q.Set("to", to)
		}
		var pv api.ReversalPreview
		raw, err := g.call(ctx, "GET", path+"?"+q.Encode(), nil, &pv)
		if err != nil {
			return err
		}
		if g.output == "json" {
			return printJSON(stdout, raw)
		}
		fmt.Fprintf(stdout, "incident %s (%s): %d actions forwarded from %s to %s (onset: %s); %d already reversed\n",
			pv.Incident, pv.Scope, pv.Candidates, when(pv.From), when(pv.To), pv.Onset, pv.AlreadyReversed)
		for _, m := range []struct {
			name   string
			counts map[string]int
		}{{"action", pv.Action}, {"rule", pv.Rule}, {"model version", pv.ModelVersion}, {"region", pv.Region}} {
			keys := make([]string, 0, len(m.counts))
			for k := range m.counts {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			parts := make([]string, len(keys))
			for i, k := range keys {
				parts[i] = fmt.Sprintf("%s %d", dash(k), m.counts[k])
			}
			fmt.Fprintf(stdout, "  by %s: %s\n", m.name, strings.Join(parts, ", "))
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ACTION ID\tRULE\tACTION\tTARGET\tOCCURRED\tFORWARDED")
		for _, f := range pv.Sample {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s:%s\t%s\t%s\n", f.ActionID, f.Rule, f.Action, f.TargetType, f.TargetID, when(f.OccurredAt), when(f.ForwardedAt))
		}
		return tw.Flush()
	}
	req := api.ReversalRequest{Reason: reason, Actions: actions, BreakGlass: breakGlass}
	for _, p := range []struct {
		s   string
		dst *time.Time
	}{{from, &req.From}, {to, &req.To}} {
		if p.s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, p.s)
		if err != nil {
			fmt.Fprintf(stderr, "breakwaterctl reversal: --from and --to want RFC 3339 times, got %q\n", p.s)
			return errUsage
		}
		*p.dst = t
	}
	return g.change(ctx, path, req, stdout, func(raw json.RawMessage) error {
		if g.output == "json" {
			return printJSON(stdout, raw)
		}
		var j api.Reversal
		if err := json.Unmarshal(raw, &j); err != nil {
			return fmt.Errorf("the answer is not a reversal: %w", err)
		}
		_, err := fmt.Fprintf(stdout, "reversal %s started: %d actions; follow it with breakwaterctl reversals %s\n", j.ID, j.Total, j.ID)
		return err
	})
}

func (g *globals) reversals(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const syn = "reversals [ID] [-o table|json]"
	pos, err := g.command("reversals", syn, args, stdout, stderr, nil)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return wantArgs("reversals", syn, pos, 1, stderr)
	}
	var list []api.Reversal
	var raw json.RawMessage
	if len(pos) == 1 {
		var j api.Reversal
		raw, err = g.call(ctx, "GET", "/v1/reversals/"+url.PathEscape(pos[0]), nil, &j)
		list = []api.Reversal{j}
	} else {
		var out api.Reversals
		raw, err = g.call(ctx, "GET", "/v1/reversals", nil, &out)
		list = out.Reversals
	}
	if err != nil {
		return err
	}
	if g.output == "json" {
		return printJSON(stdout, raw)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tINCIDENT\tSTATUS\tWRITTEN\tREQUESTED BY\tAPPROVED BY\tSTARTED\tFINISHED\tREASON")
	for _, j := range list {
		approver := dash(j.ApprovedBy)
		if j.BreakGlass {
			approver = "BREAK-GLASS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Incident, j.Status, j.Written, j.Total,
			j.RequestedBy, approver, when(j.StartedAt), when(j.FinishedAt), short(j.Reason, 50))
	}
	return tw.Flush()
}

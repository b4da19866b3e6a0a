package ctl

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

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

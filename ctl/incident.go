package ctl

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/breakwater/breakwater/api"
)

const incidentSynopsis = `incident ack ID [--note N]
       breakwaterctl incident owner ID NAME | --release
       breakwaterctl incident note ID TEXT
       breakwaterctl incident standing ID approve|reject --reason R
       breakwaterctl incident revoke ID --reason R`

// incident changes an incident: acknowledge it, take it, write a note on
// it, set or revoke its standing decision.
func (g *globals) incident(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var note, reason string
	var release bool
	pos, err := g.command("incident", incidentSynopsis, args, stdout, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&note, "note", "", "ack: a note added to the incident")
		fs.StringVar(&reason, "reason", "", "standing, revoke: why (required; recorded in the audit trail)")
		fs.BoolVar(&release, "release", false, "owner: leave the incident without an owner")
	})
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		fmt.Fprintf(stderr, "breakwaterctl incident: want a verb and an incident ID\nUsage: breakwaterctl %s\n", incidentSynopsis)
		return errUsage
	}
	verb, id, rest := pos[0], pos[1], pos[2:]
	base := "/v1/incidents/" + url.PathEscape(id)
	var path string
	var body any
	switch verb {
	case "ack":
		if err := wantArgs("incident ack", incidentSynopsis, rest, 0, stderr); err != nil {
			return err
		}
		path, body = base+"/ack", api.AckRequest{Note: note}
	case "owner":
		switch {
		case release && len(rest) == 0:
			path, body = base+"/owner", api.OwnerRequest{}
		case !release && len(rest) == 1:
			path, body = base+"/owner", api.OwnerRequest{Owner: rest[0]}
		default:
			fmt.Fprintf(stderr, "breakwaterctl incident owner: give a NAME or --release\nUsage: breakwaterctl %s\n", incidentSynopsis)
			return errUsage
		}
	case "note":
		if len(rest) == 0 {
			fmt.Fprintf(stderr, "breakwaterctl incident note: give the note's TEXT\nUsage: breakwaterctl %s\n", incidentSynopsis)
			return errUsage
		}
		path, body = base+"/notes", api.NoteRequest{Text: strings.Join(rest, " ")}
	case "standing":
		if len(rest) != 1 || (rest[0] != "approve" && rest[0] != "reject") || strings.TrimSpace(reason) == "" {
			fmt.Fprintf(stderr, "breakwaterctl incident standing: want approve or reject, and --reason\nUsage: breakwaterctl %s\n", incidentSynopsis)
			return errUsage
		}
		path, body = base+"/standing", api.StandingRequest{Decision: rest[0], Reason: reason}
	case "revoke":
		if len(rest) != 0 || strings.TrimSpace(reason) == "" {
			fmt.Fprintf(stderr, "breakwaterctl incident revoke: want --reason and nothing else\nUsage: breakwaterctl %s\n", incidentSynopsis)
			return errUsage
		}
		path, body = base+"/standing/revoke", api.ResetRequest{Reason: reason}
	default:
		fmt.Fprintf(stderr, "breakwaterctl incident: want ack, owner, note, standing or revoke, got %q\nUsage: breakwaterctl %s\n", verb, incidentSynopsis)
		return errUsage
	}
	var inc api.Incident
	raw, err := g.call(ctx, "POST", path, body, &inc)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return printJSON(stdout, raw)
	}
	return printIncident(stdout, inc)
}

// printIncident prints one incident in full: its counts, lifecycle, who
// has it, its standing decision, links and notes.
func printIncident(w io.Writer, i api.Incident) error {
	if err := printIncidents(w, []api.Incident{i}); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nstate: %s (%s)\n", i.State, i.StateReason)
	fmt.Fprintf(w, "approved %d, of them %d released to the gated topic; rejected %d, of them %d written to the rejected topic\n",
		i.Approved, i.ApprovedReleased, i.Rejected, i.RejectedWritten)
	if i.AckBy != "" {
		fmt.Fprintf(w, "acknowledged by %s at %s\n", i.AckBy, when(i.AckAt))
	}
	if i.Owner != "" {
		fmt.Fprintf(w, "owner: %s\n", i.Owner)
	}
	if s := i.Standing; s != nil {
		still := "still deciding"
		if !s.Ended.IsZero() {
			still = "ended " + when(s.Ended)
		}
		fmt.Fprintf(w, "standing decision: %s everything it holds (%s, %s: %s); %d decided by it, %s\n", s.Decision, s.Actor, when(s.At), s.Reason, s.Applied, still)
	}
	if i.Continues != "" {
		fmt.Fprintf(w, "continues %s (tripped again soon after it)\n", i.Continues)
	}
	if i.ContinuedBy != "" {
		fmt.Fprintf(w, "continued by %s\n", i.ContinuedBy)
	}
	for _, n := range i.Notes {
		fmt.Fprintf(w, "note %s %s: %s\n", when(n.At), n.Actor, n.Text)
	}
	return nil
}

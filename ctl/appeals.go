package ctl

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/breakwater/breakwater/api"
)

const appealsSynopsis = `appeals                                                  the estimates per rule and model version
       breakwaterctl appeals trip off --reason R [--for 24h] [--break-glass WHY]   turn the overturn_rate trip off (a second operator approves)
       breakwaterctl appeals trip on --reason R                                    turn it on again (at once)`

func (g *globals) appeals(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var reason, forD, breakGlass string
	pos, err := g.command("appeals", appealsSynopsis, args, stdout, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&reason, "reason", "", "trip: why (required; recorded in the audit trail)")
		fs.StringVar(&forD, "for", "", "trip off: how long, e.g. 24h (default until turned on)")
		fs.StringVar(&breakGlass, "break-glass", "", "trip off: why it cannot wait for a second operator: applies at once and pages on-call")
	})
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		var es api.AppealsEstimates
		raw, err := g.call(ctx, "GET", "/v1/appeals", nil, &es)
		if err != nil {
			return err
		}
		if g.output == "json" {
			return printJSON(stdout, raw)
		}
		return printEstimates(stdout, es)
	}
	if pos[0] != "trip" || len(pos) != 2 || (pos[1] != "on" && pos[1] != "off") {
		fmt.Fprintf(stderr, "breakwaterctl appeals: want no argument, or trip on|off\nUsage: breakwaterctl %s\n", appealsSynopsis)
		return errUsage
	}
	if strings.TrimSpace(reason) == "" {
		fmt.Fprintf(stderr, "breakwaterctl appeals trip: --reason is required\nUsage: breakwaterctl %s\n", appealsSynopsis)
		return errUsage
	}
	on := pos[1] == "on"
	if on && (forD != "" || breakGlass != "") {
		fmt.Fprintf(stderr, "breakwaterctl appeals trip on: --for and --break-glass are for turning it off\n")
		return errUsage
	}
	req := api.AppealsTripRequest{Enabled: on, Reason: reason, For: forD, BreakGlass: breakGlass}
	return g.change(ctx, "/v1/appeals/trip", req, stdout, func(raw json.RawMessage) error {
		if g.output == "json" {
			return printJSON(stdout, raw)
		}
		var sw api.AppealsTrip
		if err := json.Unmarshal(raw, &sw); err != nil {
			return fmt.Errorf("the answer is not the trip's switch: %w", err)
		}
		return printSwitch(stdout, sw)
	})
}

// printSwitch says whether the appeals trip is on.
func printSwitch(w io.Writer, sw api.AppealsTrip) error {
	if sw.Enabled && sw.By == "" {
		_, err := fmt.Fprintln(w, "appeals trip: on")
		return err
	}
	if sw.Enabled {
		_, err := fmt.Fprintf(w, "appeals trip: on (last set by %s at %s: %s)\n", sw.By, when(sw.At), sw.Reason)
		return err
	}
	approver := dash(sw.Approver)
	if sw.Approver == "" {
		approver = "BREAK-GLASS"
	}
	_, err := fmt.Fprintf(w, "appeals trip: OFF since %s until %s, by %s, approved by %s: %s\n", when(sw.At), when(sw.Until), sw.By, approver, sw.Reason)
	return err
}

// printEstimates prints the switch and a table of the estimates.
func printEstimates(w io.Writer, es api.AppealsEstimates) error {
	if err := printSwitch(w, es.Trip); err != nil {
		return err
	}
	fmt.Fprintf(w, "trips when P(precision < %g) >= %g with at least %d of the latest %d outcomes\n", es.Floor, es.Confidence, es.MinOutcomes, es.Window)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tMODEL VERSION\tOUTCOMES\tOVERTURNED\tSHARE\tP(PRECISION<FLOOR)\tTRIPS\tLEFT OUT")
	for _, e := range es.Estimates {
		share := "-"
		if e.Outcomes > 0 {
			share = fmt.Sprintf("%.0f%%", 100*float64(e.Overturned)/float64(e.Outcomes))
		}
		trips := "no"
		if e.Trips {
			trips = "YES"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%.3f\t%s\t%d\n", e.Rule, dash(e.ModelVersion), e.Outcomes, e.Overturned, share, e.Below, trips, e.LeftOut)
	}
	return tw.Flush()
}

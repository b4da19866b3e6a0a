package ctl_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/admintest"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/reversal"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbed.RemoveBuiltBinaries()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// cli runs the real breakwaterctl binary.
type cli struct {
	bin string
	env []string
}

type result struct {
	code           int
	stdout, stderr string
}

func (c cli) run(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(c.bin, args...)
	// Only the variables the test gives: none from the developer's shell.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, c.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func (r result) want(t *testing.T, args []string, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stdout, stdout) || !strings.Contains(r.stderr, stderr) {
		t.Errorf("breakwaterctl %s = exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stdout containing %q, stderr containing %q",
			strings.Join(args, " "), r.code, r.stdout, r.stderr, code, stdout, stderr)
	}
}

func TestCLI(t *testing.T) {
	bin := testbed.BuildBinary(t, "github.com/breakwater/breakwater/cmd/breakwaterctl")
	bed := admintest.NewBed(t, 2)
	cfg := bed.Config(t, 1000)
	// Rules without thresholds of their own (rule-b) take the defaults,
	// here without probation; rule-a keeps the 30m it was loaded with.
	cfg.Breakers.Defaults.Probation = 0
	d := admintest.StartDaemon(t, cfg)
	op := cli{bin: bin, env: []string{"BREAKWATER_SERVER=" + d.URL, "BREAKWATER_TOKEN=" + admintest.Tokens[config.RoleOperator]}}
	viewer := cli{bin: bin, env: []string{"BREAKWATER_SERVER=" + d.URL, "BREAKWATER_TOKEN=" + admintest.Tokens[config.RoleViewer]}}
	bare := cli{bin: bin}
	scope := string(breaker.RuleScope("rule-a"))

	tests := []struct {
		name           string
		c              cli
		args           []string
		code           int
		stdout, stderr string
	}{
		{"whoami", op, []string{"whoami"}, 0, "test-operator (operator)", ""},
		{"whoami flags", bare, []string{"--server", d.URL, "--token", admintest.Tokens[config.RoleAdmin], "whoami"}, 0, "test-admin (admin)", ""},
		{"flags after the command", bare, []string{"whoami", "--server", d.URL, "--token", admintest.Tokens[config.RoleReviewer]}, 0, "test-reviewer (reviewer)", ""},
		{"breakers", viewer, []string{"breakers"}, 0, "rule:rule-a|action:ban_account", ""},
		{"breaker show", viewer, []string{"breaker", "show", scope}, 0, "max_actions 1000", ""},
		{"viewer may not override", viewer, []string{"override", "open", scope, "--reason", "x"}, 1, "", "403 Forbidden"},
		{"override open", op, []string{"override", "open", scope, "--reason", "bad model", "--for", "2h"}, 0, "rule:rule-a: closed -> forced_open until", ""},
		{"shows the override", viewer, []string{"breaker", "show", scope}, 0, "set by:           test-operator", ""},
		{"override shadow asks", op, []string{"override", "shadow", scope, "--reason", "watch it"}, 0, "approval requested:", ""},
		{"break-glass needs a receiver", op, []string{"override", "close", scope, "--reason", "x", "--break-glass", "now"}, 1, "", "no alert receiver"},
		{"pending approvals", viewer, []string{"approvals", "--status", "pending"}, 0, "set breaker rule:rule-a to shadow while it holds", ""},
		{"override close asks", op, []string{"override", "close", scope, "--reason", "false alarm"}, 0, "breakwaterctl approvals approve", ""},
		{"reset", op, []string{"override", "reset", scope, "--reason", "all clear"}, 0, "forced_open -> probation", ""},
		{"audit", viewer, []string{"audit", "--scope", scope}, 0, "test-operator  reset", ""},
		{"audit limit", viewer, []string{"audit", "--limit", "1"}, 0, "all clear", ""},
		{"audit by kind", viewer, []string{"audit", "--kind", "reset", "--actor", "test-operator"}, 0, "all clear", ""},
		{"audit bad until", viewer, []string{"audit", "--until", "yesterday"}, 1, "", "400 Bad Request: until"},
		{"no token", bare, []string{"--server", d.URL, "breakers"}, 1, "", "no token: give --token or set BREAKWATER_TOKEN"},
		{"no server", bare, []string{"--token", "x", "breakers"}, 1, "", "no server: give --server URL or set BREAKWATER_SERVER"},
		{"bad token", bare, []string{"--server", d.URL, "--token", "nope", "breakers"}, 1, "", "401 Unauthorized"},
		{"unreachable", bare, []string{"--server", "http://127.0.0.1:1", "--token", "x", "breakers"}, 1, "", "cannot reach the API"},
		{"no reason", op, []string{"override", "open", scope}, 2, "", "--reason is required"},
		{"bad verb", op, []string{"override", "explode", scope, "--reason", "x"}, 2, "", "want open, close, shadow or reset"},
		{"bad scope", op, []string{"override", "open", "nope", "--reason", "x"}, 1, "", "unknown scope"},
		{"bad for", op, []string{"override", "open", scope, "--reason", "x", "--for", "soon"}, 2, "", "invalid value \"soon\""},
		{"for on reset", op, []string{"override", "reset", scope, "--reason", "x", "--for", "1h"}, 2, "", "--for does not apply"},
		{"bad output", viewer, []string{"breakers", "-o", "yaml"}, 2, "", "-o must be table or json"},
		{"unknown command", op, []string{"explode"}, 2, "", "unknown command \"explode\""},
		{"no command", op, nil, 2, "", "Usage:"},
		{"extra argument", viewer, []string{"breakers", "extra"}, 2, "", "want 0 argument(s), got 1"},
		{"breaker without show", viewer, []string{"breaker", scope}, 2, "", "want the subcommand show"},
		{"audit bad since", viewer, []string{"audit", "--since", "yesterday"}, 1, "", "400 Bad Request: since"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.run(t, tt.args...).want(t, tt.args, tt.code, tt.stdout, tt.stderr)
		})
	}

	// -o json is the API's answer.
	r := viewer.run(t, "breakers", "-o", "json")
	var list struct{ Breakers []api.Breaker }
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || r.code != 0 {
		t.Fatalf("breakers -o json = exit %d %q: %v", r.code, r.stdout, err)
	}
	found := false
	for _, b := range list.Breakers {
		if string(b.Scope) == scope {
			found = true
			if b.State != breaker.Probation || b.Actor != admintest.Name(config.RoleOperator) {
				t.Errorf("breakers -o json shows %s as %+v; want probation by the operator", scope, b.Status)
			}
		}
	}
	if !found {
		t.Errorf("breakers -o json lacks %s: %s", scope, r.stdout)
	}
	r = viewer.run(t, "audit", "-o", "json", "--scope", scope)
	var es struct{ Entries []api.AuditEntry }
	if err := json.Unmarshal([]byte(r.stdout), &es); err != nil || len(es.Entries) != 4 {
		t.Errorf("audit -o json = exit %d %s: %v; want the 4 changes", r.code, r.stdout, err)
	}

	// The close request: not by its requester, nor a viewer; a second
	// operator (here an admin) approves it, which applies it.
	r = viewer.run(t, "approvals", "-o", "json", "--status", "pending")
	var pend api.Approvals
	if err := json.Unmarshal([]byte(r.stdout), &pend); err != nil || len(pend.Approvals) != 2 {
		t.Fatalf("approvals -o json = exit %d %s: %v; want the 2 pending requests", r.code, r.stdout, err)
	}
	var closeID, shadowID string
	for _, a := range pend.Approvals {
		if strings.Contains(a.Summary, "forced_closed") {
			closeID = a.ID
		} else {
			shadowID = a.ID
		}
	}
	admin := cli{bin: bin, env: []string{"BREAKWATER_SERVER=" + d.URL, "BREAKWATER_TOKEN=" + admintest.Tokens[config.RoleAdmin]}}
	op.run(t, "approvals", "approve", closeID).want(t, nil, 1, "", "different person")
	viewer.run(t, "approvals", "approve", closeID).want(t, nil, 1, "", "403 Forbidden")
	admin.run(t, "approvals", "approve", closeID).want(t, nil, 0, "applied", "")
	viewer.run(t, "breaker", "show", scope).want(t, nil, 0, "forced_closed", "")
	admin.run(t, "approvals", "refuse", shadowID).want(t, nil, 2, "", "--reason is required")
	admin.run(t, "approvals", "refuse", shadowID, "--reason", "not needed").want(t, nil, 0, "refused", "")
	admin.run(t, "approvals", "approve", shadowID).want(t, nil, 1, "", "409 Conflict")
	viewer.run(t, "approvals", "show", closeID).want(t, nil, 0, "decided by:", "")

	// Resetting a breaker that holds where its scope has no probation
	// closes it outright, so it asks a second operator, like closing it.
	other := string(breaker.RuleScope("rule-b"))
	op.run(t, "override", "open", other, "--reason", "hold").want(t, nil, 0, other+": closed -> forced_open", "")
	r = op.run(t, "override", "reset", other, "--reason", "false alarm")
	r.want(t, nil, 0, "approval requested:", "")
	r.want(t, nil, 0, "closing it outright", "")
	r.want(t, nil, 0, "breakwaterctl approvals approve", "")
	op.run(t, "override", "reset", other, "--reason", "x", "--break-glass", "now").want(t, nil, 1, "", "no alert receiver")
	showState := func() breaker.State {
		t.Helper()
		r := viewer.run(t, "breaker", "show", other, "-o", "json")
		var b api.Breaker
		if err := json.Unmarshal([]byte(r.stdout), &b); err != nil || r.code != 0 {
			t.Fatalf("breaker show -o json = exit %d %s: %v", r.code, r.stdout, err)
		}
		return b.State
	}
	if st := showState(); st != breaker.ForcedOpen {
		t.Fatalf("%s after the reset request = %s; want forced_open until approved", other, st)
	}
	r = viewer.run(t, "approvals", "-o", "json", "--status", "pending")
	pend = api.Approvals{}
	if err := json.Unmarshal([]byte(r.stdout), &pend); err != nil || len(pend.Approvals) != 1 || pend.Approvals[0].Operation != api.OpReset {
		t.Fatalf("approvals -o json = exit %d %s: %v; want the reset request", r.code, r.stdout, err)
	}
	resetID := pend.Approvals[0].ID
	op.run(t, "approvals", "approve", resetID).want(t, nil, 1, "", "different person")
	if st := showState(); st != breaker.ForcedOpen {
		t.Fatalf("%s after its requester's approval = %s; want forced_open", other, st)
	}
	admin.run(t, "approvals", "approve", resetID).want(t, nil, 0, "applied", "")
	if st := showState(); st != breaker.Closed {
		t.Errorf("%s after a second operator's approval = %s; want closed", other, st)
	}

	// --help works on every command, exit 0, on stdout.
	for _, args := range [][]string{
		{"--help"},
		{"help"},
		{"whoami", "--help"},
		{"breakers", "--help"},
		{"breaker", "show", "--help"},
		{"override", "--help"},
		{"override", "open", "-h"},
		{"audit", "--help"},
		{"approvals", "--help"},
	} {
		r := bare.run(t, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage") {
			t.Errorf("breakwaterctl %s = exit %d, stdout %q; want exit 0 and a usage text", strings.Join(args, " "), r.code, r.stdout)
		}
	}
}

func TestCLIReview(t *testing.T) {
	bin := testbed.BuildBinary(t, "github.com/breakwater/breakwater/cmd/breakwaterctl")
	bed := admintest.NewBed(t, 2)
	d := admintest.StartDaemon(t, bed.Config(t, 10))
	rv := cli{bin: bin, env: []string{"BREAKWATER_SERVER=" + d.URL, "BREAKWATER_TOKEN=" + admintest.Tokens[config.RoleReviewer]}}
	vw := cli{bin: bin, env: []string{"BREAKWATER_SERVER=" + d.URL, "BREAKWATER_TOKEN=" + admintest.Tokens[config.RoleViewer]}}
	now := time.Now()
	var recs []testbed.Record
	for i := range 120 {
		recs = append(recs, admintest.Event(fmt.Sprintf("a-%03d", i), "rule-a", "remove_pin", fmt.Sprintf("t-%d", i%9), now))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, recs...)

	var inc api.Incident
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := vw.run(t, "incidents", "-o", "json")
		var out struct{ Incidents []api.Incident }
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("incidents -o json = %q: %v", r.stdout, err)
		}
		if len(out.Incidents) == 1 && out.Incidents[0].Held > 100 &&
			out.Incidents[0].Held == int64(len(bed.Kafka.ReadAll(t, admintest.Topics.Held, 10*time.Second))) {
			inc = out.Incidents[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incidents = %s; want one with every held action", r.stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	vw.run(t, "incidents").want(t, []string{"incidents"}, 0, inc.ID, "")
	vw.run(t, "incidents", inc.ID).want(t, []string{"incidents", inc.ID}, 0, "PENDING", "")
	vw.run(t, "incidents", inc.ID, "--lookback", "--window", "1h").want(t, nil, 0, "forwarded to gated from", "")
	vw.run(t, "incidents", "--lookback").want(t, nil, 2, "", "--lookback needs an incident ID")
	r := vw.run(t, "held", "list", "--incident", inc.ID, "--limit", "3", "-o", "json")
	var page api.HeldPage
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Items) != 3 {
		t.Fatalf("held list -o json = %q: %v", r.stdout, err)
	}
	vw.run(t, "held", "list", "--limit", "2").want(t, nil, 0, "more: --cursor", "")
	a, b, c := page.Items[0].ActionID, page.Items[1].ActionID, page.Items[2].ActionID
	vw.run(t, "held", "reject", a).want(t, nil, 1, "", "403 Forbidden")
	rv.run(t, "held", "reject", a, b, "--reason", "false positive").want(t, nil, 0, "rejected 2, already rejected 0", "")
	rv.run(t, "held", "approve", a).want(t, nil, 0, "approved 0, already approved 0, 1 carry the other decision", "")
	// A decision on one action waits before its release: its undo puts c
	// back to pending (a stays rejected); c then has no decision to undo.
	rv.run(t, "held", "reject", c, "--reason", "looks wrong").want(t, nil, 0, "rejected 1", "")
	vw.run(t, "held", "undo", c).want(t, nil, 1, "", "403 Forbidden")
	rv.run(t, "held", "undo", c, "--reason", "misclick").want(t, nil, 0, "undone 1 (pending again)", "")
	rv.run(t, "held", "undo", c, "nope").want(t, nil, 0, "undone 0 (pending again), 1 had no decision ("+c+"), 1 unknown (nope)", "")
	rv.run(t, "held", "undo").want(t, nil, 2, "", "give the action ids")
	rv.run(t, "held", "undo", "--incident", inc.ID).want(t, nil, 2, "", "undo takes action ids")
	r = vw.run(t, "held", "list", "--incident", inc.ID, "--limit", "1000", "-o", "json")
	page = api.HeldPage{}
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil {
		t.Fatalf("held list -o json = %q: %v", r.stdout, err)
	}
	for _, h := range page.Items {
		if (h.ActionID == a && h.Status != "rejected") || (h.ActionID == c && h.Status != "pending") {
			t.Errorf("after the undo %s is %s", h.ActionID, h.Status)
		}
	}
	vw.run(t, "audit", "--kind", "undo").want(t, nil, 0, "misclick", "")
	rv.run(t, "held", "sample", "--incident", inc.ID, "-n", "5").want(t, nil, 0, "approved 5", "")
	// The incident's lifecycle: acknowledge, owner, note.
	rv.run(t, "incident", "ack", inc.ID, "--note", "on it").want(t, nil, 0, "acknowledged by "+admintest.Name(config.RoleReviewer), "")
	rv.run(t, "incident", "ack", inc.ID).want(t, nil, 1, "", "409 Conflict")
	vw.run(t, "incident", "owner", inc.ID, "bob").want(t, nil, 1, "", "403 Forbidden")
	rv.run(t, "incident", "owner", inc.ID, "alice").want(t, nil, 0, "owner: alice", "")
	rv.run(t, "incident", "note", inc.ID, "model", "7", "mislabels", "pins").want(t, nil, 0, "model 7 mislabels pins", "")
	rv.run(t, "incident", "owner", inc.ID).want(t, nil, 2, "", "give a NAME or --release")
	vw.run(t, "incidents").want(t, nil, 0, "active", "")
	// --wait follows the release to the end, with progress on stderr.
	rv.run(t, "held", "approve", "--incident", inc.ID, "--reason", "checked", "--wait").want(t, nil, 0, fmt.Sprintf("approved %d", inc.Held-7),
		fmt.Sprintf("written %d of %d decided to their topic", inc.Held, inc.Held))
	// Every action of the spike was held in its batch: nothing was
	// forwarded, so a reversal finds nothing.
	vw.run(t, "reversal", inc.ID).want(t, nil, 0, "0 actions forwarded from", "")
	vw.run(t, "reversal", inc.ID, "--reason", "x").want(t, nil, 1, "", "403 Forbidden")
	op := cli{bin: bin, env: []string{"BREAKWATER_SERVER=" + d.URL, "BREAKWATER_TOKEN=" + admintest.Tokens[config.RoleOperator]}}
	op.run(t, "reversal", inc.ID, "--reason", "x", "--action", "remove_pin").want(t, nil, 1, "", "nothing to reverse")
	vw.run(t, "reversals").want(t, nil, 0, "REQUESTED BY", "")
	rv.run(t, "held", "approve").want(t, nil, 2, "", "give action ids")
	rv.run(t, "held", "sample", "--incident", inc.ID).want(t, nil, 2, "", "-n (at least 1) are required")
	rv.run(t, "held", "explode").want(t, nil, 2, "", "want list, approve, reject, sample or undo")
	// Released: the decision stands, and the answer says so.
	rv.run(t, "held", "undo", a).want(t, nil, 0, "undone 0 (pending again), 1 already released: their decision stands ("+a+")", "")
	deadline = time.Now().Add(60 * time.Second)
	var one api.Incident
	for {
		r := vw.run(t, "incidents", inc.ID, "-o", "json")
		one = api.Incident{}
		_ = json.Unmarshal([]byte(r.stdout), &one)
		if one.Written == one.Held && one.Held > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incident = %s; want everything released", r.stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The approved are released, the rejected recorded: said apart.
	if one.ApprovedReleased != one.Approved || one.RejectedWritten != one.Rejected || one.Rejected == 0 {
		t.Errorf("incident %+v; want approved_released = approved, rejected_written = rejected (some)", one)
	}
	vw.run(t, "incidents", inc.ID).want(t, nil, 0, fmt.Sprintf("approved %d, of them %d released to the gated topic; rejected %d, of them %d written to the rejected topic",
		one.Approved, one.Approved, one.Rejected, one.Rejected), "")
	// A standing decision on the still active incident, then its revoke.
	rv.run(t, "incident", "standing", inc.ID, "reject").want(t, nil, 2, "", "want approve or reject, and --reason")
	rv.run(t, "incident", "standing", inc.ID, "reject", "--reason", "model 7 is broken").want(t, nil, 0, "standing decision: reject everything it holds", "")
	vw.run(t, "incidents").want(t, nil, 0, "reject", "")
	rv.run(t, "incident", "revoke", inc.ID, "--reason", "over").want(t, nil, 0, "state: active", "")
	rv.run(t, "incident", "revoke", inc.ID, "--reason", "over").want(t, nil, 1, "", "has no standing decision")
	rv.run(t, "incident", "explode", inc.ID).want(t, nil, 2, "", "want ack, owner, note, standing or revoke")
	for _, args := range [][]string{{"incidents", "--help"}, {"held", "--help"}, {"held", "list", "--help"}, {"incident", "--help"}} {
		r := vw.run(t, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage") {
			t.Errorf("breakwaterctl %s = exit %d, stdout %q", strings.Join(args, " "), r.code, r.stdout)
		}
	}
}

// TestCLIReversal: a late trip's forwarded actions are reversed from the
// command line by two people. The requester previews them (counts by
// action type), requests the reversal with a reason, and cannot approve it
// herself; a second operator approves it with approvals approve; reversals
// ID follows it to done; the reversals topic holds one record per
// candidate, and the audit trail names who asked and who approved.
func TestCLIReversal(t *testing.T) {
	bin := testbed.BuildBinary(t, "github.com/breakwater/breakwater/cmd/breakwaterctl")
	bed := admintest.NewBed(t, 2)
	cfg := bed.Config(t, 10)
	const op2Token = "tok-operator-2-0123456789"
	cfg.Admin.Tokens = append(cfg.Admin.Tokens, config.Token{Name: "second-operator", Role: config.RoleOperator, SHA256: config.HashToken(op2Token)})
	d := admintest.StartDaemon(t, cfg)
	forwarded, inc := bed.LateTrip(t, d.URL, 10, 30)
	env := func(token string) cli {
		return cli{bin: bin, env: []string{"BREAKWATER_SERVER=" + d.URL, "BREAKWATER_TOKEN=" + token}}
	}
	op, op2, vw := env(admintest.Tokens[config.RoleOperator]), env(op2Token), env(admintest.Tokens[config.RoleViewer])

	// 10 forwarded: every fourth a warning (3), the others pin removals (7).
	vw.run(t, "reversal", inc.ID).want(t, nil, 0, "10 actions forwarded from", "")
	vw.run(t, "reversal", inc.ID).want(t, nil, 0, "by action: remove_pin 7, warn 3", "")
	vw.run(t, "reversal", inc.ID, "--action", "remove_pin").want(t, nil, 0, "7 actions forwarded from", "")

	r := op.run(t, "reversal", inc.ID, "--reason", "the rule misfired", "-o", "json")
	var ap api.Approval
	if err := json.Unmarshal([]byte(r.stdout), &ap); err != nil || r.code != 0 || ap.Operation != api.OpReversal || ap.Count != 10 {
		t.Fatalf("reversal --reason = exit %d %s %s: %v; want an approval request for 10", r.code, r.stdout, r.stderr, err)
	}
	op.run(t, "approvals", "approve", ap.ID).want(t, nil, 1, "", "different person")
	vw.run(t, "approvals", "approve", ap.ID).want(t, nil, 1, "", "403 Forbidden")
	vw.run(t, "approvals", "--status", "pending").want(t, nil, 0, ap.ID, "")
	op2.run(t, "approvals", "approve", ap.ID).want(t, nil, 0, "applied", "")

	var job api.Reversal
	admintest.WaitFor(t, 60*time.Second, func() string { return fmt.Sprintf("reversal = %+v; want done", job) }, func() bool {
		r := vw.run(t, "reversals", ap.ID, "-o", "json")
		job = api.Reversal{}
		return json.Unmarshal([]byte(r.stdout), &job) == nil && job.Status == "done"
	})
	if job.Total != 10 || job.Written != 10 || job.RequestedBy != admintest.Name(config.RoleOperator) || job.ApprovedBy != "second-operator" {
		t.Errorf("reversal = %+v; want 10 written, requested by %s, approved by second-operator", job, admintest.Name(config.RoleOperator))
	}
	vw.run(t, "reversals", ap.ID).want(t, nil, 0, "10/10", "")
	vw.run(t, "reversals").want(t, nil, 0, admintest.Name(config.RoleOperator)+"  second-operator", "")

	on := map[string]int{}
	for _, rec := range bed.Kafka.ReadAll(t, admintest.ReversalsTopic, 30*time.Second) {
		var v reversal.Record
		if err := json.Unmarshal(rec.Value, &v); err != nil {
			t.Fatalf("reversal record %s: %v", rec.Value, err)
		}
		on[v.ActionID]++
		if want, ok := forwarded[v.ActionID]; !ok || string(rec.Key) != want || v.Incident != inc.ID {
			t.Errorf("reversal record key %q %+v; want one of a forwarded rule-a action of %s, keyed by its target", rec.Key, v, inc.ID)
		}
	}
	if len(on) != len(forwarded) {
		t.Errorf("%d actions on the reversals topic; want the %d forwarded", len(on), len(forwarded))
	}
	for id, n := range on {
		if n != 1 {
			t.Errorf("%s reversed %d times; want once", id, n)
		}
	}
	// Nothing left: a second request is refused.
	op.run(t, "reversal", inc.ID, "--reason", "again").want(t, nil, 1, "", "nothing to reverse")

	// The audit trail: who asked, who approved, what was written.
	r = vw.run(t, "audit", "--limit", "200", "-o", "json")
	var es api.Audit
	if err := json.Unmarshal([]byte(r.stdout), &es); err != nil || r.code != 0 {
		t.Fatalf("audit -o json = exit %d %s: %v", r.code, r.stdout, err)
	}
	actors := map[string]string{}
	for _, e := range es.Entries {
		if e.Approval == ap.ID {
			actors[e.Kind] = e.Actor
			if e.Kind == "reversal_done" && (e.Count != 10 || e.Approver != "second-operator") {
				t.Errorf("reversal_done entry %+v; want 10 written, approved by second-operator", e)
			}
		}
	}
	if actors["approval_request"] != admintest.Name(config.RoleOperator) || actors["approval_approve"] != "second-operator" || actors["reversal_done"] == "" {
		t.Errorf("audit entries of the reversal by kind and actor = %v; want the request by %s, the approval by second-operator and the completion",
			actors, admintest.Name(config.RoleOperator))
	}
	vw.run(t, "audit", "--kind", "approval_approve", "--actor", "second-operator").want(t, nil, 0, "second-operator", "")
}

// TestCLIAppeals: breakwaterctl appeals shows the estimates per rule and
// model version and the trip's switch; turning the trip off asks for a
// second operator (the requester and a reviewer cannot approve it), and a
// second operator's approval turns it off; turning it on applies at once.
func TestCLIAppeals(t *testing.T) {
	const appealsTopic = "moderation.appeals"
	bin := testbed.BuildBinary(t, "github.com/breakwater/breakwater/cmd/breakwaterctl")
	bed := admintest.NewBed(t, 2)
	bed.Kafka.CreateTopic(t, appealsTopic, 1)
	y := bed.YAML(1e6) + "appeals:\n  enabled: true\n  topic: " + appealsTopic + "\n"
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	const op2Token = "tok-operator-2-0123456789"
	cfg.Admin.Tokens = append(cfg.Admin.Tokens, config.Token{Name: "second-operator", Role: config.RoleOperator, SHA256: config.HashToken(op2Token)})
	d := admintest.StartDaemon(t, cfg)
	env := func(token string) cli {
		return cli{bin: bin, env: []string{"BREAKWATER_SERVER=" + d.URL, "BREAKWATER_TOKEN=" + token}}
	}
	op, op2, rv, vw := env(admintest.Tokens[config.RoleOperator]), env(op2Token), env(admintest.Tokens[config.RoleReviewer]), env(admintest.Tokens[config.RoleViewer])

	now := time.Now().UTC().Format(time.RFC3339Nano)
	var acts, outs []testbed.Record
	for i := range 3 {
		id := fmt.Sprintf("act-%d", i)
		acts = append(acts, testbed.KV(id, fmt.Sprintf(`{"action_id":%q,"rule_id":"rule-a","action":"warn","target":{"type":"account","id":"u-%d"},"occurred_at":%q,"model":{"name":"clf","version":"v1"}}`, id, i, now)))
		o := "overturned"
		if i == 0 {
			o = "upheld"
		}
		outs = append(outs, testbed.KV(id, fmt.Sprintf(`{"action_id":%q,"outcome":%q,"decided_at":%q}`, id, o, now)))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, acts...)
	bed.WaitRecords(t, admintest.Topics.Gated, 3)
	// An outcome is joined only once its action is: send them again until
	// all three are judged (a second outcome of a judged one is a
	// duplicate and changes nothing).
	var es api.AppealsEstimates
	admintest.WaitFor(t, 60*time.Second, func() string { return fmt.Sprintf("estimates %+v", es) }, func() bool {
		bed.Kafka.Produce(t, appealsTopic, outs...)
		time.Sleep(500 * time.Millisecond)
		r := vw.run(t, "appeals", "-o", "json")
		es = api.AppealsEstimates{}
		return json.Unmarshal([]byte(r.stdout), &es) == nil && len(es.Estimates) == 2 && es.Estimates[0].Outcomes == 3
	})
	if e := es.Estimates[1]; e.Rule != "rule-a" || e.ModelVersion != "v1" || e.Outcomes != 3 || e.Overturned != 2 || e.Scope != "rule:rule-a|model:v1" || e.Trips {
		t.Errorf("estimate of v1 = %+v; want 3 outcomes, 2 overturned, no trip", e)
	}
	vw.run(t, "appeals").want(t, nil, 0, "rule-a  v1", "")
	vw.run(t, "appeals").want(t, nil, 0, "appeals trip: on", "")

	r := op.run(t, "appeals", "trip", "off", "--reason", "appeals backlog re-decided", "--for", "24h", "-o", "json")
	var ap api.Approval
	if err := json.Unmarshal([]byte(r.stdout), &ap); err != nil || r.code != 0 || ap.Operation != api.OpAppealsTrip {
		t.Fatalf("appeals trip off = exit %d %s %s: %v; want an approval request", r.code, r.stdout, r.stderr, err)
	}
	op.run(t, "approvals", "approve", ap.ID).want(t, nil, 1, "", "different person")
	rv.run(t, "approvals", "approve", ap.ID).want(t, nil, 1, "", "403 Forbidden")
	vw.run(t, "appeals").want(t, nil, 0, "appeals trip: on", "")
	op2.run(t, "approvals", "approve", ap.ID).want(t, nil, 0, "applied", "")
	vw.run(t, "appeals").want(t, nil, 0, "appeals trip: OFF", "")
	vw.run(t, "appeals").want(t, nil, 0, "approved by second-operator: appeals backlog re-decided", "")
	op.run(t, "appeals", "trip", "on", "--reason", "done").want(t, nil, 0, "appeals trip: on", "")
	vw.run(t, "appeals", "trip", "on").want(t, nil, 2, "", "--reason is required")
	vw.run(t, "appeals", "explode").want(t, nil, 2, "", "trip on|off")
}

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/admintest"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/review"
)

// readmeCommand is one example of the README or a page of docs/: a curl
// or breakwaterctl command line (continuations joined), or an export of
// variables.
type readmeCommand struct {
	file string // README.md or docs/<page>.md
	line int    // where it starts in file
	text string // as written
}

// where names the example's file and line.
func (c readmeCommand) where() string { return fmt.Sprintf("%s:%d", c.file, c.line) }

// docFiles are the README and the pages of docs/, in the order their
// examples run: the README's tour first, then the pages by name.
func docFiles(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(pages)
	return append([]string{filepath.Join("..", "README.md")}, pages...)
}

// readmeCommands returns the lines of the sh code blocks of the README
// and of every page of docs/ that start with one of prefixes
// (continuations joined), in order.
func readmeCommands(t *testing.T, prefixes ...string) []readmeCommand {
	t.Helper()
	var out []readmeCommand
	for _, f := range docFiles(t) {
		out = append(out, fileCommands(t, f, prefixes...)...)
	}
	return out
}

// fileCommands returns the commands of one file, as readmeCommands.
func fileCommands(t *testing.T, path string, prefixes ...string) []readmeCommand {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(filepath.ToSlash(path), "../")
	var out []readmeCommand
	inBlock := false
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case !inBlock && strings.TrimSpace(l) == "```sh":
			inBlock = true
			continue
		case inBlock && strings.TrimSpace(l) == "```":
			inBlock = false
			cur.Reset()
			continue
		case !inBlock:
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if rest, ok := strings.CutSuffix(l, `\`); ok {
			cur.WriteString(rest)
			continue
		}
		cur.WriteString(l)
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		for _, prefix := range prefixes {
			if strings.HasPrefix(text, prefix) {
				out = append(out, readmeCommand{file: name, line: start, text: text})
				break
			}
		}
	}
	return out
}

// TestReadmeAPIExamples runs every curl and breakwaterctl example of the
// README, in order, against a daemon on kfake and a real redis-server, with
// the breakers and held actions the examples name, so that the commands the
// README shows keep working as written. What a reader has to fill in is
// filled in: the server's address (the README's localhost:8080 and
// breakwater:8080), $TOKEN and BREAKWATER_TOKEN=... (an operator's token).
// The demo's token demo-operator is configured as written. Each command
// must exit 0; curl runs with --fail-with-body, so that an HTTP error fails.
func TestReadmeAPIExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a daemon")
	}
	cmds := readmeCommands(t, "curl ", "breakwaterctl ", "bin/breakwaterctl ", "export BREAKWATER_")
	if len(cmds) < 15 {
		t.Fatalf("found %d commands in the README's sh blocks; want the API and CLI examples (15 or more)", len(cmds))
	}
	bin := testbed.BuildBinary(t, "github.com/breakwater/breakwater/cmd/breakwaterctl")
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(work, "bin", "breakwaterctl")); err != nil {
		t.Fatal(err)
	}

	bed := admintest.NewBed(t, 2)
	cfg, err := config.Parse([]byte(readmeConfig(bed)))
	if err != nil {
		t.Fatal(err)
	}
	d := admintest.StartDaemon(t, cfg)
	host := strings.TrimPrefix(d.URL, "http://")
	operator := admintest.Tokens[config.RoleOperator]
	admin := admintest.Tokens[config.RoleAdmin]

	// The incidents the examples name: rule-02 of the demo, spam-links-v2
	// (with ban_account actions) and act-1 and act-2, pending in an
	// incident of their own so that rejecting them is a real decision.
	now := time.Now()
	var recs []testbed.Record
	for i := range 12 {
		recs = append(recs,
			admintest.Event(fmt.Sprintf("demo-%02d", i), "rule-02", "remove_pin", fmt.Sprintf("p-%d", i), now),
			admintest.Event(fmt.Sprintf("spam-%02d", i), "spam-links-v2", "ban_account", fmt.Sprintf("u-%d", i), now))
	}
	for i := range 8 {
		recs = append(recs, admintest.Event(fmt.Sprintf("other-%02d", i), "rule-other", "remove_pin", fmt.Sprintf("o-%d", i), now))
	}
	recs = append(recs,
		admintest.Event("act-1", "rule-other", "remove_pin", "o-x1", now),
		admintest.Event("act-2", "rule-other", "remove_pin", "o-x2", now))
	bed.Kafka.Produce(t, admintest.Topics.Input, recs...)
	// Every action is decided and every held one is in the review index.
	deadline := time.Now().Add(60 * time.Second)
	for {
		gated := len(bed.Kafka.ReadAll(t, admintest.Topics.Gated, 10*time.Second))
		held := len(bed.Kafka.ReadAll(t, admintest.Topics.Held, 10*time.Second))
		if gated+held == len(recs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d gated and %d held of %d actions after 60s", gated, held, len(recs))
		}
		time.Sleep(200 * time.Millisecond)
	}
	held := int64(len(bed.Kafka.ReadAll(t, admintest.Topics.Held, 10*time.Second)))
	incidents := waitIncidents(t, d.URL, admin, func(m map[string]review.Incident) bool {
		var indexed int64
		for _, inc := range m {
			indexed += inc.Held
		}
		return indexed == held && m["rule:rule-02@1"].Pending > 0 && m["rule:spam-links-v2@1"].Pending > 0 &&
			m["rule:rule-other@1"].Pending >= 2
	})
	t.Logf("incidents before the examples: %+v", incidents)

	env := map[string]string{}
	for _, c := range cmds {
		text := c.text
		for from, to := range map[string]string{
			"http://breakwater:8080": d.URL,
			"http://127.0.0.1:8080":  d.URL,
			"localhost:8080":         host,
			"127.0.0.1:8080":         host,
			"BREAKWATER_TOKEN=...":   "BREAKWATER_TOKEN=" + operator,
		} {
			text = strings.ReplaceAll(text, from, to)
		}
		if rest, ok := strings.CutPrefix(text, "export "); ok {
			for _, kv := range strings.Fields(rest) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("%s: export %q: want NAME=value", c.where(), kv)
				}
				env[k] = v
			}
			continue
		}
		if rest, ok := strings.CutPrefix(text, "curl "); ok {
			text = "curl --fail-with-body -sS " + rest
		}
		runReadmeCommand(t, c, text, work, env, admin)
	}

	// What the examples did.
	incidents = waitIncidents(t, d.URL, admin, func(m map[string]review.Incident) bool {
		s := m["rule:spam-links-v2@1"]
		return s.Written == s.Held && m["rule:rule-other@1"].Rejected >= 2
	})
	if s := incidents["rule:spam-links-v2@1"]; s.Pending != 0 || s.Rejected != 0 || s.Approved != s.Held {
		t.Errorf("incident rule:spam-links-v2@1 after the examples = %+v; want every action approved", s)
	}
	if o := incidents["rule:rule-other@1"]; o.Rejected != 2 {
		t.Errorf("incident rule:rule-other@1 after the examples = %+v; want act-1 and act-2 rejected", o)
	}
}

// TestReadmeTuningExamples runs the README's simulate, replay and suggest
// examples, as written and in order, in a directory with bin/breakwater
// and config/example.yaml, and checks that each exits 0 and that the files
// they write are there. What needs a real Kafka and Redis (run, check) or
// a container engine and a cluster (docker, helm, kubectl) is not run
// here; the chart's values examples are rendered by the chart's tests.
func TestReadmeTuningExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates and replays hours of traffic")
	}
	cmds := readmeCommands(t, "bin/breakwater simulate", "bin/breakwater replay", "bin/breakwater suggest")
	if len(cmds) < 6 {
		t.Fatalf("found %d simulate, replay and suggest examples in the README; want 6 or more", len(cmds))
	}
	bin := testbed.BuildBinary(t, "github.com/breakwater/breakwater/cmd/breakwater")
	work := t.TempDir()
	for _, dir := range []string{"bin", "config"} {
		if err := os.MkdirAll(filepath.Join(work, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(bin, filepath.Join(work, "bin", "breakwater")); err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join("..", "config", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "config", "example.yaml"), example, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		runReadmeCommand(t, c, "set -o pipefail; "+c.text, work, nil, "")
	}
	for _, f := range []string{"actions.jsonl", "report.html", "normal.jsonl", "suggested.yaml", "incident.jsonl"} {
		if st, err := os.Stat(filepath.Join(work, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s after the README's examples: %v (size %v)", f, err, st)
		}
	}
}

// readmeConfig is the daemon's configuration for the README's examples:
// a small max_actions so that a few actions trip a rule, the global
// breaker off, a token per role and the demo's public token.
func readmeConfig(bed *admintest.Bed) string {
	y := bed.YAMLWith(5, "127.0.0.1:0", 500)
	return y + fmt.Sprintf("    - {name: demo, role: operator, token_sha256: %s}\n", config.HashToken("demo-operator"))
}

// runReadmeCommand runs one example with bash in dir, with PATH starting
// at dir/bin, TOKEN set and the exported variables, and fails the test if
// it does not exit 0.
func runReadmeCommand(t *testing.T, c readmeCommand, text, dir string, env map[string]string, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", text)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + filepath.Join(dir, "bin") + ":" + os.Getenv("PATH"), "HOME=" + dir, "TOKEN=" + token}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s: %s\nran: %s\n%v\n%s", c.where(), c.text, text, err, out)
		return
	}
	t.Logf("%s: %s\n%s", c.where(), c.text, out)
}

// waitIncidents polls GET /v1/incidents until ok accepts them, by id.
func waitIncidents(t *testing.T, url, token string, ok func(map[string]review.Incident) bool) map[string]review.Incident {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodGet, url+"/v1/incidents", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Close = true // no idle connection outlives the test (goleak)
		m := map[string]review.Incident{}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var body struct{ Incidents []review.Incident }
			err = json.NewDecoder(resp.Body).Decode(&body)
			_ = resp.Body.Close()
			for _, inc := range body.Incidents {
				m[inc.ID] = inc
			}
		}
		if err == nil && ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("incidents = %+v (%v); not what the examples need", m, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDocLinks checks that every relative link of the README and of the
// pages of docs/ leads to a file that exists and, with a fragment, to a
// heading of that file.
func TestDocLinks(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, f := range docFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(data), -1) {
			u := m[1]
			if strings.Contains(u, "://") || strings.HasPrefix(u, "mailto:") {
				continue
			}
			p, frag, _ := strings.Cut(u, "#")
			target := f
			if p != "" {
				target = filepath.Join(filepath.Dir(f), p)
			}
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s links to %s, which does not exist", f, u)
				continue
			}
			if frag != "" && strings.HasSuffix(target, ".md") && !slices.Contains(headingAnchors(t, target), frag) {
				t.Errorf("%s links to %s: no such heading in %s", f, u, target)
			}
		}
	}
}

// headingAnchors returns the anchors of the Markdown headings of path, as
// GitHub makes them (lower case, punctuation dropped, spaces as dashes).
func headingAnchors(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	inBlock := false
	drop := regexp.MustCompile(`[^\p{L}\p{N}\- _]`)
	for l := range strings.Lines(string(data)) {
		if strings.HasPrefix(l, "```") {
			inBlock = !inBlock
		}
		if inBlock || !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(l, "#")))
		out = append(out, strings.ReplaceAll(drop.ReplaceAllString(h, ""), " ", "-"))
	}
	return out
}

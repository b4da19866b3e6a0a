package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/replay"
)

// TestSimulateReplaySuggest runs the tuning commands as a new user would:
// simulate into a file, replay it with a report and a decisions file, and
// ask for suggestions.
func TestSimulateReplaySuggest(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	in := filepath.Join(dir, "actions.jsonl.gz")
	var out, errb bytes.Buffer
	if code := runSimulate(ctx, []string{
		"--duration", "3h", "--rate", "5", "--rules", "6", "--output", in,
		"--incident", "spike:rule=1,at=2h,for=20m,factor=12", "--incident", "malformed:at=1h,for=1m,factor=0.5",
	}, &out, &errb); code != 0 {
		t.Fatalf("simulate exited %d: %s", code, errb.String())
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("breakers:\n  defaults: {window: 1m, baseline: 30m, factor: 5, min_actions: 30}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	rep, dec := filepath.Join(dir, "r.html"), filepath.Join(dir, "d.jsonl")
	if code := runReplay(ctx, []string{"--config", cfg, "--input", in, "--json", "--report", rep, "--decisions", dec}, nil, &out, &errb); code != 0 {
		t.Fatalf("replay exited %d: %s", code, errb.String())
	}
	var sum struct {
		A      int64 `json:"actions"`
		G      int64 `json:"gated"`
		H      int64 `json:"held"`
		D      int64 `json:"dead_letter"`
		Scopes []struct {
			Scope string `json:"scope"`
			Gated int64  `json:"gated"`
			Held  int64  `json:"held"`
			Trips []struct {
				At         string `json:"at"`
				Reason     string `json:"reason"`
				Generation uint64 `json:"generation"`
			} `json:"trips"`
		} `json:"scopes"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out.String())
	}
	if sum.H == 0 || sum.D == 0 || sum.A != sum.G+sum.H+sum.D {
		t.Errorf("summary %+v; want held and dead letters adding up", sum)
	}
	if len(sum.Scopes) == 0 || sum.Scopes[0].Scope != "rule:rule-01" || len(sum.Scopes[0].Trips) != 1 || !strings.HasPrefix(sum.Scopes[0].Trips[0].At, "2026-11-23T08:0") {
		t.Errorf("first scope %+v; want rule:rule-01 tripped once just after 08:00", sum.Scopes[0])
	}
	d, err := os.ReadFile(dec)
	if err != nil {
		t.Fatal(err)
	}
	if n := int64(bytes.Count(d, []byte{'\n'})); n != sum.A {
		t.Errorf("%d decision lines; want %d", n, sum.A)
	}
	html, err := os.ReadFile(rep)
	if err != nil || !bytes.Contains(html, []byte(`data-scope="rule:rule-01"`)) {
		t.Errorf("report: %v; want a chart of rule:rule-01", err)
	}

	out.Reset()
	errb.Reset()
	if code := runSuggest(ctx, []string{"--config", cfg, "--input", in, "--quiet"}, nil, &out, &errb); code != 0 {
		t.Fatalf("suggest exited %d: %s", code, errb.String())
	}
	for _, want := range []string{"breakers:\n  defaults:\n    max_actions: ", "  global:\n", "    rule-01:\n      max_actions: ", "#   suggested "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("suggest output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestLabels runs simulate --labels and replay --labels: the JSON summary
// scores the incident, and labels of another input are refused.
func TestLabels(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	in, labels := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "labels.jsonl")
	var out, errb bytes.Buffer
	if code := runSimulate(ctx, []string{
		"--duration", "3h", "--rate", "5", "--rules", "6", "--output", in, "--labels", labels,
		"--incident", "spike:rule=1,at=2h,for=20m,factor=12", "--incident", "malformed:at=1h,for=1m,factor=0.5",
	}, &out, &errb); code != 0 {
		t.Fatalf("simulate exited %d: %s", code, errb.String())
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("breakers:\n  defaults: {window: 1m, baseline: 30m, factor: 5, min_actions: 30}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	rep := filepath.Join(dir, "r.html")
	if code := runReplay(ctx, []string{"--config", cfg, "--input", in, "--labels", labels, "--json", "--report", rep, "--batch", "50"}, nil, &out, &errb); code != 0 {
		t.Fatalf("replay exited %d: %s", code, errb.String())
	}
	var sum struct {
		DeadLetter int64                `json:"dead_letter"`
		Labels     *replay.LabelSummary `json:"labels"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out.String())
	}
	l := sum.Labels
	if l == nil || len(l.Incidents) != 1 {
		t.Fatalf("labels %+v; want one incident scored", l)
	}
	in1 := l.Incidents[0]
	// About 11 of 12 of rule-01's actions in the spike are the incident's.
	if in1.Kind != "spike" || in1.Actions < 1000 || in1.Held+in1.GatedBefore+in1.GatedAfter != in1.Actions || in1.Detected.IsZero() ||
		in1.Scope != "rule:rule-01" || in1.GatedAfter != 0 || in1.First.Before(time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("incident %+v; want the spike of rule-01 from 08:00, held with nothing gated after detection", in1)
	}
	if d := in1.Detected.Sub(in1.First); d > time.Minute {
		t.Errorf("detected %s after the first incident action; want within the window", d)
	}
	if l.Malformed == 0 || l.MalformedDeadLetter != l.Malformed || l.Malformed != sum.DeadLetter || l.Unlabelled != 0 {
		t.Errorf("malformed %d, %d to dead-letter, %d dead letters, %d unlabelled; want every malformed line, and only those, dead-lettered",
			l.Malformed, l.MalformedDeadLetter, sum.DeadLetter, l.Unlabelled)
	}
	if l.Ordinary == 0 || l.CollateralRatio != float64(l.Collateral)/float64(l.IncidentActions) {
		t.Errorf("ordinary %d, collateral %d ratio %g", l.Ordinary, l.Collateral, l.CollateralRatio)
	}
	if html, err := os.ReadFile(rep); err != nil || !bytes.Contains(html, []byte("Labelled incidents")) {
		t.Errorf("report: %v; want the labelled incidents", err)
	}

	// Labels of another input are refused.
	other := filepath.Join(dir, "other.jsonl")
	if code := runSimulate(ctx, []string{"--duration", "10m", "--rate", "5", "--seed", "9", "--incident", "none", "--output", other}, &out, &errb); code != 0 {
		t.Fatalf("simulate exited %d: %s", code, errb.String())
	}
	errb.Reset()
	if code := runReplay(ctx, []string{"--input", other, "--labels", labels, "--quiet"}, nil, &out, &errb); code == 0 || !strings.Contains(errb.String(), "labels: line 1 labels action") {
		t.Errorf("replay with the labels of another input exited %d: %s; want an error naming the mismatch", code, errb.String())
	}
}

func TestReplayErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("breakers:\n  defaults:\n    windw: 1m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--input", filepath.Join(dir, "missing.jsonl")}, 1, "no such file"},
		{[]string{"--config", bad}, 1, "breakers.defaults.windw: unknown key"},
		{[]string{"--batch", "-3"}, 1, "BatchSize"},
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--from-topic", "t"}, 1, "brokers are required"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := runReplay(context.Background(), tt.args, strings.NewReader(""), &out, &errb)
		if code != tt.code || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("replay %v = %d, %q; want %d and a message containing %q", tt.args, code, errb.String(), tt.code, tt.want)
		}
	}
}

// TestSimulateToTopic produces simulated traffic to a topic and replays it
// from there.
func TestSimulateToTopic(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka-protocol broker")
	}
	k := testbed.StartKafka(t)
	k.CreateTopic(t, "actions", 2)
	brokers := strings.Join(k.Addrs(), ",")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	if code := runSimulate(ctx, []string{"--duration", "20m", "--rate", "3", "--incident", "none", "--to-topic", "actions", "--brokers", brokers}, &out, &errb); code != 0 {
		t.Fatalf("simulate exited %d: %s", code, errb.String())
	}
	var produced int64
	for _, n := range k.EndOffsets(t, "actions") {
		produced += n
	}
	out.Reset()
	errb.Reset()
	if code := runReplay(ctx, []string{"--from-topic", "actions", "--brokers", brokers, "--json"}, nil, &out, &errb); code != 0 {
		t.Fatalf("replay exited %d: %s", code, errb.String())
	}
	var sum struct {
		Actions int64 `json:"actions"`
		Gated   int64 `json:"gated"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatal(err)
	}
	if produced < 1000 || sum.Actions != produced || sum.Gated != produced {
		t.Errorf("replayed %+v from a topic of %d records; want all of them gated", sum, produced)
	}
}

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/event"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/traffic"
	"github.com/breakwater/breakwater/wire"
)

// TestKcatInterop feeds the daemon from kcat and reads its gated topic
// with kcat: the wire format works with librdkafka on both sides.
func TestKcatInterop(t *testing.T) { kcatInterop(t, newBed(t, 3)) }

// kcatInterop runs the test of TestKcatInterop on b; kcatArgs are given to
// every kcat command (the security settings).
func kcatInterop(t *testing.T, b *bed, kcatArgs ...string) {
	const n = 100
	kcat := testbed.Kcat(t)
	rep := startReplica(t, "solo", b.config(t, settings{window: "1m", maxActions: 1e6}))
	alive := replicasAlive(rep)
	addr := strings.Join(b.k.Addrs(), ",")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	evs := traffic.New(10, 1000, -1, 1, 3).Events(epoch, time.Minute, n)
	var lines strings.Builder
	want := map[string]string{} // action_id -> key
	for _, e := range evs {
		if bytes.ContainsAny(e.Key, ":\n") || bytes.ContainsAny(e.Value, "\n") {
			t.Fatalf("event %s does not fit on one key:value line", e.ActionID)
		}
		fmt.Fprintf(&lines, "%s:%s\n", e.Key, e.Value)
		want[e.ActionID] = string(e.Key)
	}
	prod := exec.CommandContext(ctx, kcat, append(slices.Clone(kcatArgs), "-b", addr, "-t", testTopics.Input, "-P", "-K:")...)
	prod.Stdin = strings.NewReader(lines.String())
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	if got := sum(b.k.EndOffsets(t, testTopics.Input)); got != n {
		t.Fatalf("kcat produced %d records, want %d", got, n)
	}
	b.waitCommitted(t, 60*time.Second, alive)

	cons := exec.CommandContext(ctx, kcat, append(slices.Clone(kcatArgs), "-b", addr, "-t", testTopics.Gated, "-C", "-e", "-o", "beginning",
		"-f", "%k\t%h\t%s\n")...)
	var stderr bytes.Buffer
	cons.Stderr = &stderr
	out, err := cons.Output()
	if err != nil {
		t.Fatalf("kcat -C: %v\n%s", err, stderr.String())
	}
	got := map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			t.Fatalf("kcat printed %q, want key<TAB>headers<TAB>value", line)
		}
		a, err := event.Decode([]byte(f[2]))
		if err != nil {
			t.Fatalf("gated value %q: %v", f[2], err)
		}
		if want[a.ActionID] != f[0] {
			t.Errorf("%s: key %q, produced with %q", a.ActionID, f[0], want[a.ActionID])
		}
		if !strings.Contains(","+f[1]+",", ","+wire.HeaderDecision+"="+string(decide.Gated)+",") {
			t.Errorf("%s: headers %q lack %s=%s", a.ActionID, f[1], wire.HeaderDecision, decide.Gated)
		}
		got[a.ActionID]++
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("action %s arrived %d times on the gated topic", id, got[id])
		}
	}
	if len(got) != n {
		t.Errorf("kcat read %d distinct actions from the gated topic, want %d", len(got), n)
	}
}

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/testbed"
)

// TestCrashRestart runs the built daemon binary, SIGKILLs it in the middle
// of the spike traffic and starts it again: nothing may be lost, nothing may
// be both gated and held, and redeliveries may only duplicate an action on
// the topic it was decided to.
func TestCrashRestart(t *testing.T) {
	const killAfter = 12000 // committed input records; the spike trips at about 10,300
	built := time.Now()
	bin := testbed.BuildBinary(t, "github.com/breakwater/breakwater/cmd/breakwater")
	t.Logf("built %s in %v", filepath.Base(bin), time.Since(built))
	b := newBed(t, 6)
	recs, sim := spikeInput(t, b)
	path := filepath.Join(t.TempDir(), "breakwater.yaml")
	s := spikeSettings
	s.batchSize = 100 // many batches, so that the kill lands in one
	if err := os.WriteFile(path, []byte(b.yaml(s)), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func() (*testbed.Process, func() error) { return startBinary(t, bin, path) }

	p1, alive := start()
	var written []testbed.Record
	var atKill, outAtKill int64
	for len(recs) > 0 {
		n := min(250, len(recs))
		written = append(written, b.k.Produce(t, testTopics.Input, recs[:n]...)...)
		recs = recs[n:]
		b.waitLag(t, 500, alive)
		if b.committedSum(t) >= killAfter {
			// Produce a larger chunk, many batches, and kill the daemon
			// at the first moment one is seen written but not yet
			// committed, or once the chunk is all committed otherwise.
			next := min(2000, len(recs))
			written = append(written, b.k.Produce(t, testTopics.Input, recs[:next]...)...)
			recs = recs[next:]
			caught := false
			for deadline := time.Now().Add(20 * time.Second); ; {
				// Outputs first: a batch counted there but not in the
				// commits read after is still uncommitted now.
				out := b.outputSum(t)
				com := b.committedSum(t)
				if out > com {
					caught = true
					break
				}
				if com == int64(len(written)) {
					break
				}
				if err := alive(); err != nil || time.Now().After(deadline) {
					t.Fatalf("the daemon did not commit the last chunk: %v", err)
				}
			}
			p1.Kill()
			atKill, outAtKill = b.committedSum(t), b.outputSum(t)
			t.Logf("killed with a batch written but not committed: %v", caught)
			break
		}
	}
	if err := p1.ExitErr(); err == nil {
		t.Fatalf("breakwater exited cleanly before the kill:\n%s", tail(p1.Log(), 8<<10))
	}
	if atKill == 0 || atKill >= int64(len(written)) {
		t.Fatalf("killed with %d of %d produced records committed; want some but not all", atKill, len(written))
	}
	t.Logf("SIGKILL with %d of %d produced records committed and %d output records written", atKill, len(written), outAtKill)

	// The rest arrives while no daemon runs, then a new one catches up.
	written = append(written, b.k.Produce(t, testTopics.Input, recs...)...)
	p2, alive := start()
	restarted := time.Now()
	b.waitCommitted(t, 90*time.Second, alive)
	t.Logf("the restarted daemon committed all %d records in %v", len(written), time.Since(restarted))
	if err := p2.Stop(30 * time.Second); err != nil {
		t.Errorf("SIGTERM: %v\n%s", err, tail(p2.Log(), 8<<10))
	}

	in := newInput(t, written)
	o := b.readOutputs(t, in)
	dups := checkExactlyOne(t, in, o)
	t.Logf("distinct inputs per topic %v; duplicates per topic after the crash %v", o.decided, dups)
	if n := checkMalformed(t, in, o); n != spikeMalforms {
		t.Errorf("%d malformed inputs on the dead-letter topic, want %d", n, spikeMalforms)
	}
	// The breaker tripped before the kill stays open after it.
	checkSpike(t, in, o, sim)
	checkSpikeState(t, b)
	// Exactly the outputs written past the commit at the kill were
	// written again: the redelivered batches were decided as before, from
	// the records in Redis.
	var total int64
	for _, n := range dups {
		total += int64(n)
	}
	if total != outAtKill-atKill {
		t.Errorf("%d duplicates; %d outputs were written but not committed at the kill", total, outAtKill-atKill)
	}
}

// outputSum is the number of records on the three output topics.
func (b *bed) outputSum(t *testing.T) int64 {
	t.Helper()
	return sum(b.k.EndOffsets(t, testTopics.Gated)) + sum(b.k.EndOffsets(t, testTopics.Held)) +
		sum(b.k.EndOffsets(t, testTopics.DeadLetter))
}

func tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

// startBinary runs the built daemon bin with the configuration file path,
// and returns it with an alive check that fails once it exited.
func startBinary(t *testing.T, bin, path string) (*testbed.Process, func() error) {
	t.Helper()
	p := testbed.StartProcess(t, bin, []string{"run", "--config", path}, nil)
	return p, func() error {
		if p.Exited() {
			return fmt.Errorf("breakwater exited: %w\n%s", p.ExitErr(), tail(p.Log(), 8<<10))
		}
		return nil
	}
}

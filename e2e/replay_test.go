package e2e

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/replay"
	"github.com/breakwater/breakwater/traffic"
)

// records replays produced records in offset order, as the consumer read
// them from its one partition.
type records struct {
	recs  []testbed.Record
	topic string
	next  int
}

func (r *records) Next() ([]byte, decide.Position, error) {
	if r.next == len(r.recs) {
		return nil, decide.Position{}, io.EOF
	}
	rec := r.recs[r.next]
	r.next++
	return rec.Value, decide.Position{Topic: r.topic, Partition: int(rec.Partition), Offset: rec.Offset}, nil
}

// TestReplayMatchesLive runs the same 50,000 actions (a spike on one rule
// and malformed records among them) through the live daemon, on kfake and a
// real redis-server, and through `breakwater replay`'s engine with an
// in-process store and the live run's batch sizes: every action gets the
// same decision.
func TestReplayMatchesLive(t *testing.T) {
	b := newBed(t, 1)
	cfg := b.config(t, spikeSettings)
	g := traffic.New(spikeRules, 1000, spikeAfter, spikeFactor, spikeSeed+1)
	evs := g.Events(epoch, 50*time.Minute, 50_000-spikeMalforms)
	var recs []testbed.Record
	bad := malformed(spikeMalforms)
	every := len(evs) / len(bad)
	for i, e := range eventRecords(evs) {
		recs = append(recs, e)
		if i%every == every/2 && len(bad) > 0 {
			recs = append(recs, bad[0])
			bad = bad[1:]
		}
	}
	written := b.k.Produce(t, testTopics.Input, recs...)
	slices.SortFunc(written, func(x, y testbed.Record) int { return int(x.Offset - y.Offset) })

	rep := startReplica(t, "live", cfg)
	b.waitCommitted(t, 2*time.Minute, replicasAlive(rep))
	in := newInput(t, written)
	o := b.readOutputs(t, in)
	checkExactlyOne(t, in, o)
	rep.mu.Lock()
	sizes := slices.Clone(rep.sizes)
	rep.mu.Unlock()

	var got []decide.Decision
	r, err := replay.New(replay.Options{
		Config:  cfg,
		Batches: replay.Sizes(sizes),
		OnDecision: func(_ int64, _ string, it *decide.Item) error {
			got = append(got, it.Decision)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum, err := r.Run(ctx, &records{recs: written, topic: testTopics.Input})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(written) {
		t.Fatalf("replay decided %d actions; the live run read %d", len(got), len(written))
	}
	topicOf := map[string]decide.Decision{
		testTopics.Gated: decide.Gated, testTopics.Held: decide.Held, testTopics.DeadLetter: decide.DeadLetter,
	}
	count := map[decide.Decision]int{}
	mismatches := 0
	for i := range written {
		topic, _ := o.topicOf(i)
		live := topicOf[topic]
		count[live]++
		if live != got[i] {
			mismatches++
			if mismatches <= 10 {
				t.Errorf("%s: live %q, replay %q", describe(in, i), live, got[i])
			}
		}
	}
	if mismatches > 0 {
		t.Errorf("%d of %d actions decided differently", mismatches, len(written))
	}
	if count[decide.Held] == 0 || count[decide.Gated] == 0 || count[decide.DeadLetter] != spikeMalforms {
		t.Errorf("live decisions %v: want some held, some gated and %d dead letters", count, spikeMalforms)
	}
	t.Logf("%d actions in %d live batches: %v; replay summary: %d gated, %d held, %d dead letters",
		len(written), len(sizes), count, sum.Gated, sum.Held, sum.DeadLetter)
}

// Stage accounting: where the wall time of each lane of the pipeline goes,
// exported as breakwater_pipeline_stage_seconds_total.

package consumer

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/breakwater/breakwater/metrics"
)

// The stages of the lanes, by lane: the decide lane fetches a batch, calls
// the store, does the rest of the deciding (the store batch, applying the
// answer, recording transitions), encodes the output records and hands
// the batch to the write lane; the write lane waits for a batch, writes it
// and hands it to the commit lane; the commit lane waits for a written
// batch, commits its input offsets and accounts for it (metrics, reports);
// the read lane is the partition readers' decoding (timed on a sample),
// which overlaps with the others.
const (
	stageFetch   = "fetch"
	stageStore   = "store"
	stageDecide  = "decide"
	stageHandoff = "handoff"
	stageWait    = "wait"
	stageEncode  = "encode"
	stageWrite   = "write"
	stageCommit  = "commit"
	stageAccount = "account"
	stageDecode  = "decode"
)

// lane charges the wall time of one goroutine to its stages: every charge
// adds the time since the previous one, so the stages of a lane add up to
// its wall time since it started. A lane starts at the first batch in hand
// (the wait for the group before it is not charged) and charges the wait
// for a batch when the batch arrives, so the time after the last batch is
// not charged either. One goroutine owns a lane.
type lane struct {
	last     time.Time
	counters map[string]prometheus.Counter
}

func newLane(m *metrics.Metrics, name string, stages ...string) *lane {
	l := &lane{counters: make(map[string]prometheus.Counter, len(stages))}
	for _, s := range stages {
		l.counters[s] = m.StageSeconds.WithLabelValues(name, s)
	}
	return l
}

// start begins the lane at at, if it has not begun yet.
func (l *lane) start(at time.Time) {
	if l.last.IsZero() {
		l.last = at
	}
}

// charge adds the time since the previous charge to stage and returns now.
func (l *lane) charge(stage string) time.Time {
	now := time.Now()
	l.chargeUntil(stage, now)
	return now
}

// chargeUntil adds the time from the previous charge to at to stage.
func (l *lane) chargeUntil(stage string, at time.Time) {
	if !l.last.IsZero() {
		l.counters[stage].Add(at.Sub(l.last).Seconds())
	}
	l.last = at
}

// split charges d of the time since the previous charge to part and the
// rest to whole.
func (l *lane) split(part string, d time.Duration, whole string) {
	now := time.Now()
	if !l.last.IsZero() {
		total := now.Sub(l.last)
		d = min(d, total)
		l.counters[part].Add(d.Seconds())
		l.counters[whole].Add((total - d).Seconds())
	}
	l.last = now
}

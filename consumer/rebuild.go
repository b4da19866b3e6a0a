package consumer

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/internal/partition"
	"github.com/breakwater/breakwater/wire"
)

// rebuildSkew is how far before a batch's oldest input timestamp the
// output topics are read back: the outputs carry their input's timestamp,
// so an output of an offset at or after the batch's first one is at or
// after the first output stamped that late, as long as the input
// timestamps of one partition never go back by more than this.
const rebuildSkew = 5 * time.Minute

// rebuild reads the first decisions of the input partitions of rgs, each
// from offset rg.First on, back from the gated and held topics (every
// output record carries its input position in wire.HeaderSource), and
// writes them to the store as each partition's records, so that a
// redelivered action gets the decision that reached an output, even after
// Redis lost its data. since is the oldest input timestamp of the batch's
// messages per input partition. Each output partition is read once for all
// of rgs, from the earliest of their times: a first batch after a start
// asks for every partition, and a read per input partition read every
// output partition that many times, each read on connections of its own.
// done marks the ranges written to the store: a retry after an error
// leaves them out.
func (p *Pipeline) rebuild(ctx context.Context, rgs []decide.Range, since map[int]time.Time, done []bool) error {
	t0 := time.Now()
	which := map[inputPos]int{}
	var from time.Time // the earliest since of rgs; zero, the earliest of all, reads every output
	for i, rg := range rgs {
		if done[i] {
			continue
		}
		if t := since[rg.Partition]; len(which) == 0 || t.Before(from) {
			from = t
		}
		which[inputPos{rg.Topic, rg.Partition}] = i
	}
	if len(which) == 0 {
		return nil
	}
	found := make([]map[int64]map[breaker.Scope]uint64, len(rgs))
	read := 0
	brokers := p.opts.Kafka
	fail := func(err error) error {
		if len(which) == 1 {
			for _, i := range which {
				return fmt.Errorf("rebuild decisions of %s/%d: %w", rgs[i].Topic, rgs[i].Partition, err)
			}
		}
		return fmt.Errorf("rebuild decisions of %d input partitions: %w", len(which), err)
	}
	for _, topic := range []string{p.cfg.Kafka.Topics.Gated, p.cfg.Kafka.Topics.Held} {
		parts, err := partition.List(ctx, brokers, topic)
		if err != nil {
			return fail(err)
		}
		for _, q := range parts {
			start, err := partition.At(ctx, brokers, topic, q, from.Add(-rebuildSkew))
			if err != nil {
				return fail(err)
			}
			if start < 0 {
				continue // nothing stamped that late
			}
			err = partition.Read(ctx, brokers, topic, q, start, partition.End, func(msgs []kafka.Message, _, _ int64) error {
				read += len(msgs)
				for i := range msgs {
					src, off, holding, ok := outputDecision(&msgs[i])
					if !ok {
						continue
					}
					r, ok := which[src]
					if !ok || off < rgs[r].First {
						continue
					}
					if found[r] == nil {
						found[r] = map[int64]map[breaker.Scope]uint64{}
					}
					if h, seen := found[r][off]; !seen || len(holding) > len(h) {
						found[r][off] = holding
					}
				}
				return nil
			})
			if err != nil {
				return fail(err)
			}
		}
	}
	for i, rg := range rgs {
		if done[i] {
			continue
		}
		recs := recordsOf(rg, found[i])
		if err := p.opts.Store.Rebuild(ctx, rg.Topic, rg.Partition, rg.First, recs); err != nil {
			return err
		}
		done[i] = true
		p.log.Info("rebuilt the decisions of uncommitted input from the output topics",
			zap.String("topic", rg.Topic), zap.Int("partition", rg.Partition), zap.Int64("from_offset", rg.First),
			zap.Int("outputs_read", read), zap.Int("decisions_found", len(found[i])), zap.Int("partitions_rebuilt_together", len(which)),
			zap.Duration("took", time.Since(t0)))
	}
	return nil
}

// inputPos is the input partition an output record names.
type inputPos struct {
	topic     string
	partition int
}

// decisionOf reads the first decision an output record carries for an
// offset of rg at or after rg.First: held under its incident's scope and
// generation (generation 0 for a hold without a trip), or gated.
func decisionOf(m *kafka.Message, rg decide.Range) (int64, map[breaker.Scope]uint64, bool) {
	src, off, holding, ok := outputDecision(m)
	if !ok || src.topic != rg.Topic || src.partition != rg.Partition || off < rg.First {
		return 0, nil, false
	}
	return off, holding, true
}

// outputDecision reads the input position of an output record and the
// first decision it carries: held under its incident's scope and
// generation (generation 0 for a hold without a trip), or gated.
func outputDecision(m *kafka.Message) (inputPos, int64, map[breaker.Scope]uint64, bool) {
	var src, decision, incident, scope string
	for _, h := range m.Headers {
		switch h.Key {
		case wire.HeaderSource:
			src = string(h.Value)
		case wire.HeaderDecision:
			decision = string(h.Value)
		case wire.HeaderIncident:
			incident = string(h.Value)
		case wire.HeaderScope:
			scope = string(h.Value)
		}
	}
	topic, part, off, ok := wire.ParseSource(src)
	if !ok {
		return inputPos{}, 0, nil, false
	}
	at := inputPos{topic, part}
	switch decision {
	case string(decide.Gated):
		return at, off, map[breaker.Scope]uint64{}, true
	case string(decide.Held):
		if i := strings.LastIndexByte(incident, '@'); i > 0 {
			if gen, err := strconv.ParseUint(incident[i+1:], 10, 64); err == nil {
				return at, off, map[breaker.Scope]uint64{breaker.Scope(incident[:i]): gen}, true
			}
		}
		if scope != "" {
			return at, off, map[breaker.Scope]uint64{breaker.Scope(scope): 0}, true
		}
	}
	return inputPos{}, 0, nil, false
}

// recordsOf turns per-offset decisions into records, one per run of
// consecutive offsets with the same decision.
func recordsOf(rg decide.Range, found map[int64]map[breaker.Scope]uint64) []decide.Record {
	offs := make([]int64, 0, len(found))
	for o := range found {
		offs = append(offs, o)
	}
	slices.Sort(offs)
	var recs []decide.Record
	for _, o := range offs {
		h := found[o]
		if n := len(recs); n > 0 && recs[n-1].Last == o-1 && sameHolding(recs[n-1].Holding, h) {
			recs[n-1].Last = o
			continue
		}
		recs = append(recs, decide.Record{Topic: rg.Topic, Partition: rg.Partition, First: o, Last: o, Holding: h})
	}
	return recs
}

func sameHolding(a, b map[breaker.Scope]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for s, g := range a {
		if gb, ok := b[s]; !ok || gb != g {
			return false
		}
	}
	return true
}

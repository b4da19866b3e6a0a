package review

import (
	"context"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/event"
	"github.com/breakwater/breakwater/internal/partition"
	"github.com/breakwater/breakwater/wire"
)

// Forwarded is an action that reached the gated topic.
type Forwarded = api.Forwarded

// LookBack is what was forwarded of a scope shortly before a trip.
type LookBack = api.LookBack

// inScope reports whether action a is one of scope's (a segment's: its
// rule's with the segment's value).
func inScope(scope breaker.Scope, a event.Action) bool {
	return scope.Covers(breaker.Fields{Rule: a.RuleID, Action: a.Action, ModelVersion: a.ModelVersion, ModelName: a.ModelName,
		Region: a.Region, TargetType: a.TargetType})
}

// LookBack returns the actions of scope that the pipeline forwarded to the
// gated topic between from and to: since detection lags, some of them may
// belong to the incident. Approved releases are left out.
func (x *Index) LookBack(ctx context.Context, gated string, scope breaker.Scope, from, to time.Time, limit int) (LookBack, error) {
	out := LookBack{From: from, To: to, Actions: []Forwarded{}}
	brokers := x.opts.Kafka
	parts, err := partition.List(ctx, brokers, gated)
	if err != nil {
		return out, err
	}
	for _, p := range parts {
		start, err := partition.At(ctx, brokers, gated, p, from)
		if err != nil {
			return out, err
		}
		err = readRange(ctx, brokers, gated, p, start, -1, func(m kafka.Message) bool {
			if m.Time.After(to) {
				return false
			}
			for _, h := range m.Headers {
				if h.Key == wire.HeaderDecision && string(h.Value) == string(Approved) {
					return true
				}
			}
			a, err := event.Decode(m.Value)
			if err != nil || !inScope(scope, a) {
				return true
			}
			out.Actions = append(out.Actions, Forwarded{
				ActionID: a.ActionID, Rule: a.RuleID, Action: a.Action, TargetType: a.TargetType, TargetID: a.TargetID,
				OccurredAt: a.OccurredAt, ForwardedAt: m.Time.UTC(), Partition: p, Offset: m.Offset,
			})
			return true
		})
		if err != nil {
			return out, err
		}
	}
	sort.SliceStable(out.Actions, func(i, j int) bool { return out.Actions[i].ForwardedAt.Before(out.Actions[j].ForwardedAt) })
	if len(out.Actions) > limit {
		// Keep the newest: the nearest to the trip.
		out.Actions = out.Actions[len(out.Actions)-limit:]
		out.Truncated = true
	}
	return out, nil
}

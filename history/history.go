// Package history keeps the recent figures of every breaker (window count,
// baseline, state, held total) in a bounded ring per scope in the shared
// Redis, for the console's sparklines and charts.
//
// Every replica samples the shared store and writes the same slot of the
// same ring (the slot is the sample time divided by the step), so every
// replica reads the same history, and a replica that starts late shows
// what the others recorded. Memory is bounded: each ring has a fixed number
// of slots, each key expires after one lap, and the index of scopes drops
// those not written for a lap.
package history

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/breakwater/breakwater/breaker"
)

// Sample is one breaker's figures at a moment.
type Sample struct {
	// At is when they were read.
	At time.Time
	// Window and Baseline are the scope's counts.
	Window, Baseline float64
	// BaselineReady is true once a full baseline period was seen.
	BaselineReady bool
	// State is the breaker's state.
	State breaker.State
	// HeldTotal is the count of actions held under the scope so far.
	HeldTotal int64
	// Expected is the evidence detector's expected count for its open bin
	// (0 while it cannot judge the scope) and Evidence its S.
	Expected, Evidence float64
}

// Options configure a Ring.
type Options struct {
	// Redis is the shared store.
	Redis redis.UniversalClient
	// Prefix is the hash tag of the keys (redis.key_prefix).
	Prefix string
	// Step is the width of one slot.
	Step time.Duration
	// Slots is the number of slots per scope: Step x Slots is how far back
	// the history goes.
	Slots int
}

func (o Options) validate() error {
	switch {
	case o.Redis == nil:
		return errors.New("history: Options.Redis is nil")
	case o.Prefix == "" || strings.ContainsAny(o.Prefix, "{} \t\n"):
		return fmt.Errorf("history: Options.Prefix %q must be non-empty without braces or spaces", o.Prefix)
	case o.Step < time.Second:
		return fmt.Errorf("history: Options.Step must be at least 1s, got %s", o.Step)
	case o.Slots < 2 || o.Slots > 10000:
		return fmt.Errorf("history: Options.Slots must be between 2 and 10000, got %d", o.Slots)
	}
	return nil
}

// Ring is the per-scope history in Redis.
type Ring struct {
	opts Options
	tag  string
}

// New returns the ring.
func New(opts Options) (*Ring, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return &Ring{opts: opts, tag: "{" + opts.Prefix + "}"}, nil
}

// Step is the width of one slot.
func (r *Ring) Step() time.Duration { return r.opts.Step }

// Span is how far back the history goes.
func (r *Ring) Span() time.Duration { return r.opts.Step * time.Duration(r.opts.Slots) }

func (r *Ring) scopesKey() string              { return r.tag + ":hist:scopes" }
func (r *Ring) ringKey(s breaker.Scope) string { return r.tag + ":hist:" + string(s) }
func (r *Ring) slot(at time.Time) (int64, int64) {
	n := at.UnixNano() / int64(r.opts.Step)
	return n, n % int64(r.opts.Slots)
}

// Write records samples, one per scope, in one round trip. Writing the same
// slot again replaces it, so a retried write or a second replica does no
// harm.
func (r *Ring) Write(ctx context.Context, samples map[breaker.Scope]Sample) error {
	if len(samples) == 0 {
		return nil
	}
	ttl := r.Span() + r.opts.Step
	_, err := r.opts.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		var newest time.Time
		for scope, s := range samples {
			n, slot := r.slot(s.At)
			p.HSet(ctx, r.ringKey(scope), strconv.FormatInt(slot, 10), encode(n, s))
			p.PExpire(ctx, r.ringKey(scope), ttl)
			p.ZAdd(ctx, r.scopesKey(), redis.Z{Score: float64(s.At.Unix()), Member: string(scope)})
			if s.At.After(newest) {
				newest = s.At
			}
		}
		p.ZRemRangeByScore(ctx, r.scopesKey(), "-inf", "("+strconv.FormatInt(newest.Add(-r.Span()).Unix(), 10))
		p.PExpire(ctx, r.scopesKey(), ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("write breaker history: %w", err)
	}
	return nil
}

// Read returns the samples of every scope written since since, oldest
// first.
func (r *Ring) Read(ctx context.Context, since time.Time) (map[breaker.Scope][]Sample, error) {
	scopes, err := r.opts.Redis.ZRangeByScore(ctx, r.scopesKey(), &redis.ZRangeBy{
		Min: strconv.FormatInt(since.Unix()-1, 10), Max: "+inf",
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("read the scopes of the breaker history: %w", err)
	}
	ss := make([]breaker.Scope, len(scopes))
	for i, s := range scopes {
		ss[i] = breaker.Scope(s)
	}
	return r.ReadScopes(ctx, ss, since)
}

// ReadScopes returns the samples of scopes written since since, oldest
// first.
func (r *Ring) ReadScopes(ctx context.Context, scopes []breaker.Scope, since time.Time) (map[breaker.Scope][]Sample, error) {
	out := make(map[breaker.Scope][]Sample, len(scopes))
	if len(scopes) == 0 {
		return out, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(scopes))
	_, err := r.opts.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range scopes {
			cmds[i] = p.HGetAll(ctx, r.ringKey(s))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read breaker history: %w", err)
	}
	for i, scope := range scopes {
		var samples []Sample
		for _, v := range cmds[i].Val() {
			_, s, err := decode(v, r.opts.Step)
			if err != nil || s.At.Before(since.Add(-r.opts.Step)) {
				continue
			}
			samples = append(samples, s)
		}
		sort.Slice(samples, func(a, b int) bool { return samples[a].At.Before(samples[b].At) })
		if len(samples) > 0 {
			out[scope] = samples
		}
	}
	return out, nil
}

// encode writes a sample as "step-number unix-ms window baseline ready
// state held expected evidence"; values written before the detector have
// the first seven fields only.
func encode(n int64, s Sample) string {
	ready := "0"
	if s.BaselineReady {
		ready = "1"
	}
	return strings.Join([]string{
		strconv.FormatInt(n, 10), strconv.FormatInt(s.At.UnixMilli(), 10),
		strconv.FormatFloat(s.Window, 'g', 8, 64), strconv.FormatFloat(s.Baseline, 'g', 8, 64),
		ready, string(s.State), strconv.FormatInt(s.HeldTotal, 10),
		strconv.FormatFloat(s.Expected, 'g', 8, 64), strconv.FormatFloat(s.Evidence, 'g', 8, 64),
	}, " ")
}

func decode(v string, step time.Duration) (int64, Sample, error) {
	f := strings.Fields(v)
	if len(f) != 7 && len(f) != 9 {
		return 0, Sample{}, fmt.Errorf("history value %q: want 7 or 9 fields", v)
	}
	var exp, ev float64
	var err6, err7 error
	if len(f) == 9 {
		exp, err6 = strconv.ParseFloat(f[7], 64)
		ev, err7 = strconv.ParseFloat(f[8], 64)
	}
	n, err1 := strconv.ParseInt(f[0], 10, 64)
	ms, err2 := strconv.ParseInt(f[1], 10, 64)
	w, err3 := strconv.ParseFloat(f[2], 64)
	b, err4 := strconv.ParseFloat(f[3], 64)
	h, err5 := strconv.ParseInt(f[6], 10, 64)
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7); err != nil {
		return 0, Sample{}, fmt.Errorf("history value %q: %w", v, err)
	}
	at := time.UnixMilli(ms).UTC()
	if at.UnixNano()/int64(step) != n {
		return 0, Sample{}, fmt.Errorf("history value %q: time and step disagree", v)
	}
	return n, Sample{At: at, Window: w, Baseline: b, BaselineReady: f[4] == "1", State: breaker.State(f[5]), HeldTotal: h, Expected: exp, Evidence: ev}, nil
}

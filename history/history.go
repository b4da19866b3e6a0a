// Package history keeps the recent figures of every breaker (window count,
// baseline, state, held total, the evidence detector's expectation and S)
// in a bounded ring per scope in the shared Redis, for the console's
// sparklines and charts.
//
// Every replica samples the shared store and writes the same slot of the
// same ring (the slot is the sample time divided by the step), so every
// replica reads the same history, and a replica that starts late shows
// what the others recorded. Memory is bounded: each ring has a fixed number
// of slots, each key expires after one lap, and the index of scopes drops
// those not written for a lap.
//
// A Ring with Options.Peak set is a coarse ring: every sample of a slot is
// merged into it in Redis (the highest window count and S, the newest of
// the rest), so a day at five-minute steps keeps the peaks a fifteen-second
// ring would have shown. Tiers reads the finest ring that reaches back far
// enough.
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
	// Name tells rings of one prefix apart in their keys; empty means
	// "hist".
	Name string
	// Peak merges the samples written to a slot (the highest window count
	// and evidence, the newest of the other figures) instead of keeping
	// the last one: for a ring whose step is longer than the sampling.
	Peak bool
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
	case strings.ContainsAny(o.Name, "{}: \t\n"):
		return fmt.Errorf("history: Options.Name %q must have no braces, colons or spaces", o.Name)
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
	if opts.Name == "" {
		opts.Name = "hist"
	}
	return &Ring{opts: opts, tag: "{" + opts.Prefix + "}"}, nil
}

// Step is the width of one slot.
func (r *Ring) Step() time.Duration { return r.opts.Step }

// StepSince is the step of the samples a read returns: the ring's.
func (r *Ring) StepSince(time.Time) time.Duration { return r.opts.Step }

// Span is how far back the history goes.
func (r *Ring) Span() time.Duration { return r.opts.Step * time.Duration(r.opts.Slots) }

func (r *Ring) scopesKey() string              { return r.tag + ":" + r.opts.Name + ":scopes" }
func (r *Ring) ringKey(s breaker.Scope) string { return r.tag + ":" + r.opts.Name + ":" + string(s) }
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
			if r.opts.Peak {
				mergeScript.Eval(ctx, p, []string{r.ringKey(scope)}, strconv.FormatInt(slot, 10), encode(n, s), ttl.Milliseconds())
			} else {
				p.HSet(ctx, r.ringKey(scope), strconv.FormatInt(slot, 10), encode(n, s))
				p.PExpire(ctx, r.ringKey(scope), ttl)
			}
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

// mergeScript writes a sample into its slot of a peak ring: a value of an
// earlier lap is replaced; a value of the same step keeps the highest
// window count (field 3) and evidence (field 9) of the two and the newest
// (by time, field 2) of the other fields. Values are those of encode.
var mergeScript = redis.NewScript(`
local old = redis.call('HGET', KEYS[1], ARGV[1])
local new = ARGV[2]
if old then
  local o, n = {}, {}
  for f in string.gmatch(old, '%S+') do o[#o + 1] = f end
  for f in string.gmatch(new, '%S+') do n[#n + 1] = f end
  if #o == 9 and #n == 9 and o[1] == n[1] then
    local keep = n
    local other = o
    if (tonumber(o[2]) or 0) > (tonumber(n[2]) or 0) then keep, other = o, n end
    if (tonumber(other[3]) or 0) > (tonumber(keep[3]) or 0) then keep[3] = other[3] end
    if (tonumber(other[9]) or 0) > (tonumber(keep[9]) or 0) then keep[9] = other[9] end
    new = table.concat(keep, ' ')
  end
end
redis.call('HSET', KEYS[1], ARGV[1], new)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

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

// Tiers is rings of one history at different steps, finest first: every
// sample goes to each, and a read takes the finest ring that reaches back
// far enough.
type Tiers []*Ring

// NewTiers returns the tiers of rings, each step longer and each span
// longer than the one before.
func NewTiers(rings ...*Ring) (Tiers, error) {
	if len(rings) == 0 {
		return nil, errors.New("history: no rings")
	}
	for i := 1; i < len(rings); i++ {
		a, b := rings[i-1], rings[i]
		if b.Step() <= a.Step() || b.Span() <= a.Span() || a.opts.Name == b.opts.Name {
			return nil, fmt.Errorf("history: ring %d (%s x %d, %q) must have a longer step and span and another name than ring %d (%s x %d, %q)",
				i, b.Step(), b.opts.Slots, b.opts.Name, i-1, a.Step(), a.opts.Slots, a.opts.Name)
		}
	}
	return Tiers(rings), nil
}

// Step is the sampling step: the finest ring's.
func (t Tiers) Step() time.Duration { return t[0].Step() }

// Span is how far back the coarsest ring goes.
func (t Tiers) Span() time.Duration { return t[len(t)-1].Span() }

// pick returns the finest ring that reaches back to since. A read of
// exactly a ring's span ("the last hour") arrives a moment later than its
// since was taken: a step of slack keeps it on that ring.
func (t Tiers) pick(since time.Time) *Ring {
	back := time.Since(since)
	for _, r := range t {
		if back <= r.Span()+r.Step() {
			return r
		}
	}
	return t[len(t)-1]
}

// StepSince is the step of the samples a read since since returns.
func (t Tiers) StepSince(since time.Time) time.Duration { return t.pick(since).Step() }

// Write records samples in every ring.
func (t Tiers) Write(ctx context.Context, samples map[breaker.Scope]Sample) error {
	for _, r := range t {
		if err := r.Write(ctx, samples); err != nil {
			return err
		}
	}
	return nil
}

// Read returns the samples of every scope written since since, oldest
// first, from the finest ring that reaches back to since.
func (t Tiers) Read(ctx context.Context, since time.Time) (map[breaker.Scope][]Sample, error) {
	return t.pick(since).Read(ctx, since)
}

// ReadScopes returns the samples of scopes written since since, oldest
// first, from the finest ring that reaches back to since.
func (t Tiers) ReadScopes(ctx context.Context, scopes []breaker.Scope, since time.Time) (map[breaker.Scope][]Sample, error) {
	return t.pick(since).ReadScopes(ctx, scopes, since)
}

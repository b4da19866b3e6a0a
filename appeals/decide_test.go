package appeals

import (
	"testing"
	"time"
)

// samples returns n outcomes of model, overturned every k-th from the
// first (k 1: all, 0: none), the i-th at base+i minutes.
func samples(model string, n, k int, base time.Time) []Sample {
	out := make([]Sample, n)
	for i := range out {
		out[i] = Sample{At: base.Add(time.Duration(i) * time.Minute), Model: model, Overturned: k > 0 && i%k == 0}
	}
	return out
}

// interleave merges windows by time.
func interleave(ws ...[]Sample) []Sample {
	var out []Sample
	for i := 0; ; i++ {
		more := false
		for _, w := range ws {
			if i < len(w) {
				out = append(out, w[i])
				more = true
			}
		}
		if !more {
			return out
		}
	}
}

func only(w []Sample, model string) []Sample {
	var out []Sample
	for _, s := range w {
		if s.Model == model {
			out = append(out, s)
		}
	}
	return out
}

// TestDecide: a fall the rule's other model versions do not share trips
// the version alone; one they share, or a rule of one version, trips the
// rule; a version whose breaker already tripped trips nothing again.
func TestDecide(t *testing.T) {
	p := DefaultPolicy()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	never := func(string, string) time.Time { return time.Time{} }
	yes := func(string) bool { return true }
	no := func(string) bool { return false }
	good, bad := samples("v1", 25, 0, t0), samples("v2", 25, 1, t0) // 0% and 100% overturned
	cases := []struct {
		name     string
		model    string
		rule     []Sample
		versions func(string) bool
		since    func(rule, model string) time.Time
		trip     bool
		version  bool
		key      Key
	}{
		// 10 of v2's and 10 of v1's: the rule trips on 20 outcomes, v2
		// has 10 (fewer than min_outcomes) but the others are fine.
		{"v2 falls, v1 fine: the rule's count splits", "v2", interleave(good[:10], bad[:10]), yes, never, true, true, Key{"r", "v2"}},
		{"v2 falls, v1 fine: v2's own count", "v2", interleave(good[:25], bad[:25])[:50], yes, never, true, true, Key{"r", "v2"}},
		{"v2 falls, v1 fine, outcome of v1", "v1", interleave(good[:10], bad[:10]), yes, never, true, true, Key{"r", "v2"}},
		{"no breakers of versions", "v2", interleave(good[:10], bad[:10]), no, never, true, false, Key{"r", ""}},
		{"a rule of one version", "v2", bad[:20], yes, never, true, false, Key{"r", ""}},
		{"v1 falls too", "v2", interleave(samples("v1", 15, 2, t0), bad[:15]), yes, never, true, false, Key{"r", ""}},
		{"two good versions", "v1", interleave(good[:20], samples("v2", 20, 0, t0)), yes, never, false, false, Key{}},
		{"too few outcomes", "v2", interleave(good[:4], bad[:4]), yes, never, false, false, Key{}},
		{"v2 tripped after its outcomes", "v2", interleave(good[:10], bad[:10]), yes, func(_, m string) time.Time {
			if m == "v2" {
				return t0.Add(time.Hour)
			}
			return time.Time{}
		}, false, false, Key{}},
		{"the rule tripped after them", "v2", interleave(good[:10], bad[:10]), yes, func(string, string) time.Time { return t0.Add(time.Hour) }, false, false, Key{}},
		{"no model version", "", samples("", 20, 1, t0), yes, never, true, false, Key{"r", ""}},
	}
	// A low floor does not split a rule of one version either.
	low := p
	low.Floor = 0.4
	if v, ok := Decide(low, "r", "v2", bad[:20], bad[:20], never, yes); !ok || v.Version {
		t.Errorf("Decide(floor 0.4, a rule of one version) = %+v, %v; want the rule's trip", v, ok)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, ok := Decide(p, "r", c.model, c.rule, only(c.rule, c.model), c.since, c.versions)
			if ok != c.trip || v.Version != c.version || (ok && v.Key != c.key) {
				t.Fatalf("Decide(%s) = %+v, %v; want trip %v, version %v, key %v", c.name, v, ok, c.trip, c.version, c.key)
			}
			if ok && (!v.Trip || v.Onset.IsZero() || v.Below < p.Confidence) {
				t.Errorf("Decide(%s) = %+v; want a verdict that trips, with an onset", c.name, v)
			}
		})
	}
}

// TestDecideOnset: the onset of a version's trip is that of its own
// outcomes: v2's fall starting at its 10th action.
func TestDecideOnset(t *testing.T) {
	p := DefaultPolicy()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	v2 := append(samples("v2", 10, 0, t0), samples("v2", 15, 1, t0.Add(10*time.Minute))...)
	w := interleave(samples("v1", 25, 0, t0), v2)
	v, ok := Decide(p, "r", "v2", w, v2, func(string, string) time.Time { return time.Time{} }, func(string) bool { return true })
	if want := t0.Add(10 * time.Minute); !ok || !v.Version || !v.Onset.Equal(want) {
		t.Errorf("Decide = %+v, %v; want v2's trip with onset %s", v, ok, want)
	}
}

package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/breakwater/breakwater/breaker"
)

// Counts returns the counts of scope under policy p at its watermark (the
// latest event time counted), as a new action in event time order would
// see them, and that watermark; ok is false when nothing was counted yet.
func (r *Redis) Counts(ctx context.Context, scope breaker.Scope, p breaker.Policy) (c breaker.Counts, at time.Time, ok bool, err error) {
	m, err := r.client.HGetAll(ctx, r.ringKey(scope)).Result()
	if err != nil {
		return c, at, false, fmt.Errorf("read the counts of %s: %w", scope, err)
	}
	top, err1 := strconv.ParseInt(m["top"], 10, 64)
	first, err2 := strconv.ParseInt(m["first"], 10, 64)
	if err1 != nil || err2 != nil {
		return c, at, false, nil
	}
	g := p.Grid()
	slot := func(prefix string, j, ring int64) int64 {
		n, _ := strconv.ParseInt(m[prefix+strconv.FormatInt(((j%ring)+ring)%ring, 10)], 10, 64)
		return n
	}
	// The slots hold counts only for the buckets of their range below the
	// watermark: the window and the baseline period lie within it.
	topF, topC := g.FineIndex(top), g.CoarseIndex(top)
	var win, base int64
	for j := topF - breaker.FineSlots + 1; j <= topF; j++ {
		win += slot("f", j, breaker.FineRing)
	}
	for j := topC - breaker.CoarseSlots; j < topC; j++ {
		base += slot("c", j, g.CoarseRing())
	}
	c = countsOf(g, win, base, top-first >= breaker.CoarseSlots*g.Coarse)
	if p.EvidenceOn() {
		em, err := r.client.HGetAll(ctx, r.evidenceKey(scope)).Result()
		if err != nil {
			return c, at, false, fmt.Errorf("read the evidence of %s: %w", scope, err)
		}
		if ev, ok := evidenceOf(p, em); ok {
			c.Evidence, c.Expected, c.Observed, c.EvidenceReady = ev.Check(p)
		}
	}
	return c, fromMillis(top), true, nil
}

// evidenceOf reads the detector state decide.lua keeps in the evidence
// hash of a scope; ok is false when there is none for p's bins.
func evidenceOf(p breaker.Policy, m map[string]string) (*breaker.Evidence, bool) {
	num := func(k string) float64 {
		v, _ := strconv.ParseFloat(m[k], 64)
		return v
	}
	ev := breaker.NewEvidence(p)
	if _, seen := m["c"]; !seen || int64(num("b")) != ev.Bin || int64(num("p")) != ev.Season {
		return nil, false
	}
	ev.Seen = true
	ev.Cur, ev.Top, ev.X, ev.S, ev.Onset = int64(num("c")), int64(num("t")), int64(num("x")), num("s"), int64(num("o"))
	ev.Disp, ev.DispN = num("dv"), int64(num("dn"))
	ev.Held = m["f"] == "1"
	ev.Since, ev.R, ev.XR = num("l"), num("r"), int64(num("xr"))
	ev.OX, ev.OM, ev.End = num("ox"), num("om"), num("de")
	for k := range breaker.SeasonSlots {
		ev.Expected[k] = num("e" + strconv.Itoa(k))
		ev.Learned[k] = int64(num("n" + strconv.Itoa(k)))
	}
	return ev, true
}

// Counts returns the counts of scope at its watermark, as Redis.Counts does.
func (m *Memory) Counts(_ context.Context, scope breaker.Scope, p breaker.Policy) (breaker.Counts, time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.scopes[scope]
	if e == nil || e.Window == nil || e.Window.Grid() != p.Grid() {
		return breaker.Counts{}, time.Time{}, false, nil
	}
	top, ok := e.Window.Top()
	if !ok {
		return breaker.Counts{}, time.Time{}, false, nil
	}
	c := e.Window.Counts(top)
	if ev := e.Evidence; ev != nil && p.EvidenceOn() && ev.Seen && ev.Bin == p.EvidenceBinMillis() && ev.Season == p.SeasonMillis() {
		c.Evidence, c.Expected, c.Observed, c.EvidenceReady = e.Evidence.Check(p)
	}
	return c, fromMillis(top), true, nil
}

package store_test

import (
	"testing"
	"time"
)

// TestFrontier checks that each member reads the earliest frontier of the
// others, not its own; that a zero frontier withdraws a member; and that
// a frontier not published again within its ttl no longer counts.
func TestFrontier(t *testing.T) {
	env := newRedis(t, false)
	ctx := ctxT(t)
	t0 := time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC)
	advance := func(member string, at time.Time, ttl time.Duration) (time.Time, string) {
		t.Helper()
		got, who, err := env.st.Advance(ctx, member, at, ttl)
		if err != nil {
			t.Fatalf("Advance(%s): %v", member, err)
		}
		return got, who
	}
	steps := []struct {
		name   string
		member string
		at     time.Time
		ttl    time.Duration
		want   time.Time
		who    string
	}{
		{"alone", "a", t0.Add(time.Minute), time.Minute, time.Time{}, ""},
		{"b sees a", "b", t0.Add(5 * time.Minute), time.Minute, t0.Add(time.Minute), "a"},
		{"c sees the earliest", "c", t0.Add(9 * time.Minute), time.Minute, t0.Add(time.Minute), "a"},
		{"a sees b, not itself", "a", t0.Add(2 * time.Minute), time.Minute, t0.Add(5 * time.Minute), "b"},
		{"a withdraws", "a", time.Time{}, time.Minute, t0.Add(5 * time.Minute), "b"},
		{"c sees b once a withdrew", "c", t0.Add(9 * time.Minute), time.Minute, t0.Add(5 * time.Minute), "b"},
		{"b with a short ttl", "b", t0.Add(5 * time.Minute), 50 * time.Millisecond, t0.Add(9 * time.Minute), "c"},
	}
	for _, s := range steps {
		if got, who := advance(s.member, s.at, s.ttl); !got.Equal(s.want) || who != s.who {
			t.Errorf("%s: Advance(%s, %v) = %v, %q; want %v, %q", s.name, s.member, s.at, got, who, s.want, s.who)
		}
	}
	// b's frontier expires; c then sees nobody behind.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := advance("c", t0.Add(9*time.Minute), time.Minute)
		if got.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b's frontier with a 50ms ttl still counts after 10s: %v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

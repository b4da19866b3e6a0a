package appeals_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/breakwater/breakwater/appeals"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/wire"
)

// TestStore runs the join and the outcomes on a real redis-server: a
// redelivered outcome (the same position) counts once, a second outcome of
// the action from elsewhere is a duplicate, the windows keep the latest
// outcomes, actions older than join_for are not joined, and above join_max
// the oldest day falls out whole.
func TestStore(t *testing.T) {
	r := testbed.StartRedis(t)
	keys, err := wire.NewKeys("bw-appeals")
	if err != nil {
		t.Fatal(err)
	}
	const window = 5
	st, err := appeals.NewStore(r.Client(t), keys, 72*time.Hour, 1000, window)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	now := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	var ids []string
	var joins []appeals.Join
	for i := range 10 {
		ids = append(ids, fmt.Sprintf("x-%d", i))
		joins = append(joins, appeals.Join{Rule: "r\t1", Model: "v|2", At: now.Add(-time.Duration(i) * time.Minute)})
	}
	ids = append(ids, "too-old")
	joins = append(joins, appeals.Join{Rule: "r", At: now.Add(-73 * time.Hour)})
	if err := st.Forwarded(ctx, now, ids, joins); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Lookup(ctx, now, "too-old"); !errors.Is(err, appeals.ErrUnknown) {
		t.Errorf("Lookup(older than join_for) = %v; want ErrUnknown", err)
	}
	if _, _, err := st.Lookup(ctx, now, "nope"); !errors.Is(err, appeals.ErrUnknown) {
		t.Errorf("Lookup(never forwarded) = %v; want ErrUnknown", err)
	}
	j, day, err := st.Lookup(ctx, now, "x-3")
	if err != nil || j != joins[3] {
		t.Fatalf("Lookup(x-3) = %+v, %v; want %+v", j, err, joins[3])
	}
	w, err := st.Record(ctx, time.Now(), j, day, "x-3", appeals.Overturned, "appeals/0/7")
	if err != nil || len(w[appeals.Key{Rule: "r\t1"}]) != 1 || len(w[appeals.Key{Rule: "r\t1", Model: "v|2"}]) != 1 {
		t.Fatalf("Record(x-3) = %v, %v; want one outcome in each window", w, err)
	}
	// A redelivery of the same record counts once.
	w, err = st.Record(ctx, time.Now(), j, day, "x-3", appeals.Overturned, "appeals/0/7")
	if err != nil || len(w[appeals.Key{Rule: "r\t1"}]) != 1 {
		t.Errorf("Record(x-3 again from the same position) = %v, %v; want one outcome", w, err)
	}
	if _, err := st.Record(ctx, time.Now(), j, day, "x-3", appeals.Upheld, "appeals/0/9"); !errors.Is(err, appeals.ErrDuplicate) {
		t.Errorf("Record(x-3 from another position) = %v; want ErrDuplicate", err)
	}
	for i := range 8 {
		id := fmt.Sprintf("x-%d", i)
		if i == 3 {
			continue
		}
		j, day, err := st.Lookup(ctx, now, id)
		if err != nil {
			t.Fatal(err)
		}
		if w, err = st.Record(ctx, time.Now(), j, day, id, appeals.Upheld, fmt.Sprintf("appeals/0/%d", 100+i)); err != nil {
			t.Fatal(err)
		}
	}
	got := w[appeals.Key{Rule: "r\t1"}]
	if len(got) != window {
		t.Fatalf("window of %d outcomes; want the latest %d", len(got), window)
	}
	for _, s := range got {
		if s.Overturned {
			t.Errorf("window %v still holds the first (overturned) outcome; want only the latest %d", got, window)
		}
	}

	// The bound: 1,000 actions; a new day of 600 on top of the 10 and
	// 600 of the days before drops the oldest days whole until the rest
	// is within it (the newest day always stays).
	fill := func(at time.Time, prefix string, n int) {
		ids, joins := make([]string, n), make([]appeals.Join, n)
		for i := range n {
			ids[i], joins[i] = fmt.Sprintf("%s-%d", prefix, i), appeals.Join{Rule: "r", At: at}
		}
		if err := st.Forwarded(ctx, now.Add(48*time.Hour), ids, joins); err != nil {
			t.Fatal(err)
		}
	}
	fill(now.Add(24*time.Hour), "d1", 600)
	if _, _, err := st.Lookup(ctx, now.Add(48*time.Hour), "x-1"); err != nil {
		t.Errorf("Lookup(x-1) under the bound = %v", err)
	}
	fill(now.Add(48*time.Hour), "d2", 600)
	if _, _, err := st.Lookup(ctx, now.Add(48*time.Hour), "x-1"); !errors.Is(err, appeals.ErrUnknown) {
		t.Errorf("Lookup(x-1) after the bound dropped its day = %v; want ErrUnknown", err)
	}
	if _, _, err := st.Lookup(ctx, now.Add(48*time.Hour), "d1-5"); !errors.Is(err, appeals.ErrUnknown) {
		t.Errorf("Lookup(d1-5) = %v; want ErrUnknown (1,200 is above the bound without it)", err)
	}
	if _, _, err := st.Lookup(ctx, now.Add(48*time.Hour), "d2-5"); err != nil {
		t.Errorf("Lookup(d2-5) = %v; the newest day stays", err)
	}
}

package consumer

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/decide"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC)

// testGen is a generation of partitions fed by the test instead of readers.
func testGen(lags ...int64) *generation {
	gen := &generation{wake: make(chan struct{}, 1), idle: make(chan struct{}, 1)}
	ended := make(chan struct{})
	gen.ended = ended
	for i, lag := range lags {
		p := &owned{id: i, q: newQueue(100)}
		p.lag.Store(lag)
		gen.parts = append(gen.parts, p)
	}
	return gen
}

// deliver puts a message of partition p at event time +at (seconds) on its
// channel, as its reader would; last marks it the last on the broker.
func deliver(gen *generation, p int, offset int64, at int, last bool) {
	m := kafka.Message{Partition: p, Offset: offset, HighWaterMark: offset + 2}
	if last {
		m.HighWaterMark = offset + 1
	}
	gen.parts[p].q.add(context.Background(), &m, func(e *entry) {
		e.at = t0.Add(time.Duration(at) * time.Second)
		e.item = decide.Item{}
		e.item.Act.OccurredAt = e.at
	})
	notify(gen.wake)
}

func order(f *fetched) []string {
	if f == nil {
		return nil
	}
	out := make([]string, len(f.msgs))
	for i, m := range f.msgs {
		out[i] = fmt.Sprintf("p%d/%d", m.Partition, m.Offset)
	}
	return out
}

type fixedFrontier struct {
	others time.Time
	who    string
}

func (f fixedFrontier) Advance(context.Context, string, time.Time, time.Duration) (time.Time, string, error) {
	return f.others, f.who, nil
}

func testSource(fr Frontiers) *mergedSource {
	return &mergedSource{
		opts:  sourceOptions{log: zap.NewNop(), frontiers: fr, lead: time.Minute},
		open:  map[*fetched]time.Time{},
		spare: make(chan *fetched, 2),
	}
}

func TestMergeOrder(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		lags []int64
		// feed delivers what the readers fetched before the merge.
		feed func(gen *generation)
		// late delivers after the merge started waiting, if set.
		late func(gen *generation)
		max  int
		want []string
	}{
		{
			name: "partitions interleaved by event time",
			lags: []int64{3, 3},
			feed: func(gen *generation) {
				deliver(gen, 0, 0, 1, false)
				deliver(gen, 0, 1, 4, false)
				deliver(gen, 0, 2, 5, true)
				deliver(gen, 1, 0, 2, false)
				deliver(gen, 1, 1, 3, false)
				deliver(gen, 1, 2, 6, true)
			},
			max:  6,
			want: []string{"p0/0", "p1/0", "p1/1", "p0/1", "p0/2", "p1/2"},
		},
		{
			name: "a partition behind with nothing fetched holds later actions back",
			lags: []int64{2, 1},
			feed: func(gen *generation) {
				deliver(gen, 0, 0, 10, false)
				deliver(gen, 0, 1, 20, true)
			},
			late: func(gen *generation) { deliver(gen, 1, 0, 5, true) },
			max:  3,
			want: []string{"p1/0", "p0/0", "p0/1"},
		},
		{
			name: "a partition that caught up holds nothing back",
			lags: []int64{2, 0},
			feed: func(gen *generation) {
				deliver(gen, 0, 0, 10, false)
				deliver(gen, 0, 1, 20, true)
			},
			max:  3,
			want: []string{"p0/0", "p0/1"},
		},
		{
			name: "a partition holds back only what is later than its last action",
			lags: []int64{3, 2},
			feed: func(gen *generation) {
				deliver(gen, 0, 0, 10, false)
				deliver(gen, 0, 1, 11, false)
				deliver(gen, 0, 2, 30, true)
				deliver(gen, 1, 0, 11, false) // more on the broker, not fetched yet
			},
			max:  5,
			want: []string{"p0/0", "p0/1", "p1/0"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := testSource(nil)
			gen := testGen(c.lags...)
			c.feed(gen)
			if c.late != nil {
				go func() {
					time.Sleep(50 * time.Millisecond)
					c.late(gen)
				}()
			}
			f, err := s.merge(ctx, gen, c.max, 300*time.Millisecond)
			if got := order(f); err != nil || !slices.Equal(got, c.want) {
				t.Errorf("merge = %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

// TestMergeFrontier checks that a replica decides nothing more than the
// lead ahead of the other replicas' frontier.
func TestMergeFrontier(t *testing.T) {
	s := testSource(fixedFrontier{others: t0, who: "replica-b"})
	gen := testGen(3)
	gen.g = &kafka.Generation{MemberID: "m"}
	deliver(gen, 0, 0, 30, false)
	deliver(gen, 0, 1, 60, false)
	deliver(gen, 0, 2, 90, true)
	s.track(gen, s.partsFrontier(gen))
	s.publish(context.Background())
	f, err := s.merge(context.Background(), gen, 3, 300*time.Millisecond)
	if got, want := order(f), []string{"p0/0", "p0/1"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("merge = %v, %v; want %v (the others' frontier at +0s, a lead of 1m)", got, err, want)
	}
	if got := s.frontier(gen); !got.Equal(t0.Add(90 * time.Second)) {
		t.Errorf("frontier = %v; want the next message's event time %v", got, t0.Add(90*time.Second))
	}
	if got := s.waitingFor(); got != "replica-b" {
		t.Errorf("waitingFor = %q while the merge waits; want replica-b", got)
	}
	// Once the others' frontier moves up, the merge goes on and waits for
	// nobody.
	s.opts.frontiers = fixedFrontier{others: t0.Add(time.Minute), who: "replica-b"}
	s.publish(context.Background())
	f, err = s.merge(context.Background(), gen, 3, 300*time.Millisecond)
	if got, want := order(f), []string{"p0/2"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("merge = %v, %v; want %v (the others' frontier at +1m)", got, err, want)
	}
	if got := s.waitingFor(); got != "" {
		t.Errorf("waitingFor = %q after the merge went on; want \"\"", got)
	}
}

// TestFrontierBeforeFirstFetch checks that a replica whose partition has
// messages on the broker, none fetched yet, holds the others back instead
// of telling them it has nothing to decide, and that a partition known to
// be empty holds nothing back.
func TestFrontierBeforeFirstFetch(t *testing.T) {
	s := testSource(fixedFrontier{})
	for _, c := range []struct {
		lags []int64
		want time.Time
	}{
		{[]int64{0}, time.Time{}},                 // caught up: nothing to decide
		{[]int64{5}, unknownFrontier},             // behind, nothing fetched yet
		{[]int64{-1}, unknownFrontier},            // lag not known yet
		{[]int64{0, 5}, unknownFrontier},          // one of two behind
		{[]int64{3, 0}, t0.Add(30 * time.Second)}, // behind, its next message at hand
	} {
		gen := testGen(c.lags...)
		if c.want.After(unknownFrontier) {
			deliver(gen, 0, 0, 30, false)
			s.next(gen)
		}
		if got := s.frontier(gen); !got.Equal(c.want) {
			t.Errorf("lags %v: frontier = %v; want %v", c.lags, got, c.want)
		}
	}
}

// TestMergeEnded checks that a batch stops at the end of its generation.
func TestMergeEnded(t *testing.T) {
	s := testSource(nil)
	gen := testGen(1)
	ended := make(chan struct{})
	gen.ended = ended
	go func() {
		time.Sleep(50 * time.Millisecond)
		close(ended)
	}()
	f, err := s.merge(context.Background(), gen, 10, time.Second)
	if f != nil || err != nil {
		t.Errorf("merge after the generation ended = %v, %v; want nil, nil", order(f), err)
	}
}

package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// member waits for its context, like every long-running member.
func member(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func TestGroupFirstErrorStopsAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGroup(t.Context())
		boom := errors.New("boom")
		stopped := 0
		for range 3 {
			g.Go("waiter", func(ctx context.Context) error {
				err := member(ctx)
				stopped++
				return err
			})
		}
		g.Go("failing", func(context.Context) error {
			time.Sleep(time.Second)
			return boom
		})
		start := time.Now()
		err := g.Wait(time.Minute)
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "failing") {
			t.Errorf("Wait() = %v; want the failing member's error, named", err)
		}
		if stopped != 3 {
			t.Errorf("%d of 3 members stopped; want all", stopped)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("Wait returned after %v; want 1s, when the member failed", d)
		}
	})
}

func TestGroupMemberReturningEarlyIsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGroup(t.Context())
		g.Go("pipeline", member)
		g.Go("held index", func(context.Context) error { return nil })
		err := g.Wait(time.Minute)
		if !errors.Is(err, errStopped) || !strings.Contains(err.Error(), "held index") {
			t.Errorf("Wait() = %v; want held index stopped unexpectedly", err)
		}
	})
}

func TestGroupShutdownIsNotAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		g := newGroup(ctx)
		g.Go("pipeline", member)
		g.Go("dispatcher", func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err() // context.Canceled after a shutdown
		})
		g.Go("starter", func(ctx context.Context) error {
			// A member started from inside another one.
			g.Go("late", member)
			return member(ctx)
		})
		time.AfterFunc(time.Second, cancel)
		if err := g.Wait(time.Minute); err != nil {
			t.Errorf("Wait() after a shutdown = %v; want nil", err)
		}
	})
}

func TestGroupErrorDuringShutdownIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		g := newGroup(ctx)
		drain := errors.New("drain: broker unreachable")
		g.Go("pipeline", func(ctx context.Context) error {
			<-ctx.Done()
			return drain
		})
		cancel()
		if err := g.Wait(time.Minute); !errors.Is(err, drain) {
			t.Errorf("Wait() = %v; want %v", err, drain)
		}
	})
}

func TestGroupNeverHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGroup(t.Context())
		release := make(chan struct{})
		g.Go("stuck", func(context.Context) error {
			<-release // ignores its context
			return nil
		})
		g.Go("pipeline", func(context.Context) error {
			time.Sleep(time.Second)
			return errors.New("fetch: topic authorization failed")
		})
		start := time.Now()
		err := g.Wait(10 * time.Second)
		if err == nil || !strings.Contains(err.Error(), "[stuck] did not stop within 10s") ||
			!strings.Contains(err.Error(), "topic authorization failed") {
			t.Errorf("Wait() = %v; want the pipeline's error and the stuck member named", err)
		}
		if d := time.Since(start); d != 11*time.Second {
			t.Errorf("Wait returned after %v; want 11s (the failure, then the stop bound)", d)
		}
		close(release)
		synctest.Wait()
	})
}

func TestCloseWithin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		if !closeWithin(func() { time.Sleep(time.Second) }, 2*time.Second) {
			t.Error("closeWithin(1s, 2s) = false; want true")
		}
		release := make(chan struct{})
		start := time.Now()
		if closeWithin(func() { <-release }, 2*time.Second) {
			t.Error("closeWithin(stuck, 2s) = true; want false")
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("closeWithin(stuck, 2s) returned after %v; want 2s", d)
		}
		close(release)
		synctest.Wait()
	})
}

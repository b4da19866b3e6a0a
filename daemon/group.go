package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// group runs the members of the daemon under one owner, like errgroup: its
// context is cancelled as soon as any member returns, whatever the reason,
// and Wait returns the first error. A member that returns nil while the
// group is still running stopped without being asked to, which is an error
// too: the daemon cannot go on without it.
type group struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu      sync.Mutex // guards the fields below
	err     error      // the first error
	running map[string]int
}

// errStopped is the cause of a group's cancellation when a member returned
// nil; the cause of a shutdown from outside is the parent's.
var errStopped = errors.New("stopped")

// newGroup returns a group whose context is a child of parent.
func newGroup(parent context.Context) *group {
	ctx, cancel := context.WithCancelCause(parent)
	return &group{ctx: ctx, cancel: cancel, running: map[string]int{}}
}

// Context returns the context every member runs on.
func (g *group) Context() context.Context { return g.ctx }

// Go runs fn as the member called name. It may be called from inside a
// member, before that member returns.
func (g *group) Go(name string, fn func(ctx context.Context) error) {
	g.mu.Lock()
	g.running[name]++
	g.mu.Unlock()
	g.wg.Go(func() {
		err := fn(g.ctx)
		stopping := g.ctx.Err() != nil
		switch {
		case err == nil && !stopping:
			err = fmt.Errorf("%s %w unexpectedly", name, errStopped)
		case err != nil && stopping && errors.Is(err, context.Canceled):
			err = nil // the shutdown it was asked for
		case err != nil:
			err = fmt.Errorf("%s: %w", name, err)
		}
		g.mu.Lock()
		if g.running[name]--; g.running[name] == 0 {
			delete(g.running, name)
		}
		if err != nil && g.err == nil {
			g.err = err
		}
		g.mu.Unlock()
		g.cancel(err)
	})
}

// Stop cancels the group's context: every member is asked to return.
func (g *group) Stop() { g.cancel(nil) }

// Wait waits for every member to return and returns the first error. Once
// the group's context is done, members get stop to return; Wait then
// gives up on those still running and returns an error that names them,
// so that the process can exit rather than hang.
func (g *group) Wait(stop time.Duration) error {
	all := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(all)
	}()
	select {
	case <-all:
	case <-g.ctx.Done():
		t := time.NewTimer(stop)
		defer t.Stop()
		select {
		case <-all:
		case <-t.C:
			g.mu.Lock()
			names := make([]string, 0, len(g.running))
			for n := range g.running {
				names = append(names, n)
			}
			g.mu.Unlock()
			slices.Sort(names)
			err := fmt.Errorf("%v did not stop within %s of the shutdown", names, stop)
			g.mu.Lock()
			if g.err != nil {
				err = fmt.Errorf("%w; then %w", g.err, err)
			}
			g.mu.Unlock()
			return err
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

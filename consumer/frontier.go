// Frontiers between replicas: each replica publishes how far in event time
// it has decided its partitions' backlog from a keep-alive of its own, and
// the merge waits while it is more than the lead ahead of the others.

package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// frontierState is what the keep-alive and the merge share.
type frontierState struct {
	sync.Mutex
	// Set by the caller of Fetch: the generation it merges (nil between
	// generations and before the first) and the frontier of its
	// partitions and of the batch in hand, as last computed. Between
	// computations the merge only moves forward, so the value published
	// is never later than the replica's true frontier.
	gen   *generation
	parts time.Time

	// Set by the keep-alive.
	own         time.Time // the frontier last published
	others      time.Time // the earliest frontier of the others; zero: none
	behind      string    // the replica whose frontier others is
	othersSince time.Time // when others last changed
	failed      time.Time // when reading the others last failed and was logged

	// Set by the merge.
	ignoring   bool      // others held this replica back past stallTimeout without moving
	waiting    bool      // the merge waits for the others now
	loggedWait time.Time // when a wait was last logged
}

// memberName returns the name a replica's frontier is published under: the
// host name and a random suffix, unique per source.
func memberName() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "replica"
	}
	return host + "-" + hex.EncodeToString(b[:])
}

// track records the generation the merge works on and its partitions'
// frontier; nil while it has none.
func (s *mergedSource) track(gen *generation, parts time.Time) {
	s.fr.Lock()
	s.fr.gen, s.fr.parts = gen, parts
	s.fr.Unlock()
}

// keepAlive publishes this replica's frontier and reads the others' every
// frontierEvery until the source closes: from the start, before the replica
// joins the group, and whatever its fetch loop does (deciding a batch,
// waiting for a writer, a store outage, a rebalance), so that its record
// never expires while it lives.
func (s *mergedSource) keepAlive() {
	defer close(s.kaDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.closing
		cancel()
	}()
	t := time.NewTicker(frontierEvery)
	defer t.Stop()
	for {
		s.publish(ctx)
		select {
		case <-t.C:
		case <-s.closing:
			return
		}
	}
}

// publish publishes this replica's frontier once and reads the others'.
// Between generations (and before the first) the partitions it will own
// are not known, so it publishes unknownFrontier: a replica that is
// joining holds the others back until it knows where it is. A store that
// does not answer holds nothing back: the pipeline's own outage policy
// applies to the batches.
func (s *mergedSource) publish(ctx context.Context) {
	s.fr.Lock()
	gen, parts := s.fr.gen, s.fr.parts
	s.fr.Unlock()
	own := unknownFrontier
	if gen != nil && !isClosed(gen.ended) {
		own = earliest(s.openFrontier(), parts)
	}
	actx, cancel := context.WithTimeout(ctx, time.Second)
	others, behind, err := s.opts.frontiers.Advance(actx, s.member, own, frontierTTL)
	cancel()
	now := time.Now()
	s.fr.Lock()
	defer s.fr.Unlock()
	s.fr.own = own
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		if !s.fr.others.IsZero() || now.Sub(s.fr.failed) >= time.Minute {
			s.fr.failed = now
			s.opts.log.Warn("read the other replicas' frontier; holding nothing back meanwhile", zap.Error(err))
		}
		others, behind = time.Time{}, ""
	}
	s.fr.behind = behind
	if !others.Equal(s.fr.others) {
		s.fr.others, s.fr.othersSince = others, now
		if s.fr.ignoring {
			s.fr.ignoring = false
			s.opts.log.Info("the other replicas' frontier moves again", zap.Time("others", others))
		}
	}
	if s.opts.m != nil {
		s.opts.m.Frontier.WithLabelValues("own").Set(unixSeconds(own))
		s.opts.m.Frontier.WithLabelValues("others").Set(unixSeconds(others))
	}
}

// mayGo reports whether the merge may hand out a message of event time at:
// not while another replica's frontier is more than the lead behind it,
// unless that frontier has not moved for stallTimeout.
func (s *mergedSource) mayGo(at time.Time) bool {
	s.fr.Lock()
	defer s.fr.Unlock()
	if s.fr.others.IsZero() || s.fr.ignoring || !at.After(s.fr.others.Add(s.opts.lead)) {
		s.fr.waiting = false
		return true
	}
	now := time.Now()
	if now.Sub(s.fr.othersSince) >= stallTimeout {
		s.fr.ignoring, s.fr.waiting = true, false
		s.opts.log.Warn("the other replicas' frontier has not moved; deciding ahead of it until it does",
			zap.Time("others", s.fr.others), zap.Duration("waited", now.Sub(s.fr.othersSince)))
		return true
	}
	if !s.fr.waiting && now.Sub(s.fr.loggedWait) >= 5*time.Second {
		s.fr.loggedWait = now
		s.opts.log.Info("waiting for the other replicas' frontier",
			zap.String("member", s.member), zap.String("waiting_for", s.fr.behind), zap.Time("next", at), zap.Time("own", s.fr.own),
			zap.Time("others", s.fr.others), zap.Duration("lead", s.opts.lead))
	}
	s.fr.waiting = true
	return false
}

// waitingFor returns the replica whose frontier the merge waits for now,
// or "" when it does not wait.
func (s *mergedSource) waitingFor() string {
	s.fr.Lock()
	defer s.fr.Unlock()
	if !s.fr.waiting {
		return ""
	}
	if s.fr.behind == "" {
		return "another replica"
	}
	return s.fr.behind
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMilli()) / 1000
}

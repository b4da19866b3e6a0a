// Retries: which Kafka errors a retry can cure, and the backoff between
// attempts.

package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/internal/redisconn"
)

// permanent are the Kafka errors that waiting does not cure: the process
// must stop and say so.
var permanent = []kafka.Error{
	kafka.TopicAuthorizationFailed,
	kafka.GroupAuthorizationFailed,
	kafka.ClusterAuthorizationFailed,
	kafka.SASLAuthenticationFailed,
	kafka.UnsupportedSASLMechanism,
	kafka.IllegalSASLState,
	kafka.InvalidTopic,
	kafka.InvalidGroupId,
	kafka.InvalidSessionTimeout,
	kafka.InconsistentGroupProtocol,
	kafka.UnsupportedVersion,
}

// Transient reports whether err, from a Kafka fetch, write or commit, may
// go away by retrying: a network error, a broker restart, a rebalance, a
// coordinator that moved. Errors of authorisation and configuration are
// not transient. Unknown errors count as transient: the pipeline keeps
// retrying them with backoff, and a pipeline that makes no progress at all
// shows in /healthz.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		// A write fails per message; one permanent failure is enough.
		for _, e := range we {
			if e != nil && !Transient(e) {
				return false
			}
		}
		return true
	}
	for _, e := range permanent {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
}

// retry runs fn until it succeeds or shutdown begins. A Redis call that
// keeps failing pauses the pipeline like a failing decision does.
func (p *Pipeline) retry(b batchRun, op string, fn func(context.Context) error) error {
	bo := newBackoff()
	paused := false
	defer func() {
		if paused {
			p.setPaused(false)
		}
	}()
	for {
		err := fn(b.ctx)
		p.progress.beat()
		if err == nil && paused {
			p.log.Info("rate store reachable again; resuming", zap.String("op", op))
		}
		if err == nil {
			return nil
		}
		switch op {
		case "alert", "status":
			// Redis calls: counted by the outbox and the store. A refused
			// permission is not an outage.
			if redisconn.Refused(err) {
				return fmt.Errorf("%s: %w", op, err)
			}
			if !paused {
				paused = true
				p.setPaused(true)
			}
		default:
			p.m.KafkaErrors.WithLabelValues(op).Inc()
			if !Transient(err) {
				return fmt.Errorf("%s: %w", op, err)
			}
		}
		p.log.Error("operation failed; retrying", zap.String("op", op), zap.Error(err))
		if werr := bo.wait(b.ctx, b.stop); werr != nil {
			return fmt.Errorf("%s: %w (last error: %w)", op, werr, err)
		}
	}
}

// backoff is an exponential delay between retries, from 50ms to 5s.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 50 * time.Millisecond} }

// wait sleeps for the current delay and doubles it; it returns early with
// an error when ctx ends or stop closes.
func (b *backoff) wait(ctx context.Context, stop <-chan struct{}) error {
	t := time.NewTimer(b.d)
	defer t.Stop()
	b.d = min(2*b.d, 5*time.Second)
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return context.Canceled
	}
}

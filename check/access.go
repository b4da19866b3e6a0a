package check

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/wire"
)

// ErrDenied marks a permission the configured user lacks: retrying cannot
// mend it, an operator must grant it.
var ErrDenied = errors.New("permission denied")

// RedisDenial is one permission the Redis user lacks.
type RedisDenial struct {
	// Command is the command that was refused, as an ACL rule names it.
	Command string
	// Key is true when the command is allowed but not on Breakwater's
	// keys.
	Key bool
	// Reply is Redis's answer.
	Reply string
}

// RedisAccessError lists what the Redis user may not do. It wraps
// ErrDenied.
type RedisAccessError struct {
	// User is the ACL user ("default" without redis.username).
	User string
	// Denied are the refused commands, in the order they were probed.
	Denied []RedisDenial
	// Pattern is the key pattern of Breakwater's keys.
	Pattern string
	// Grant is the ACL SETUSER command that grants what is missing.
	Grant string
	// All is the ACL SETUSER command of a user with every permission
	// Breakwater needs and no other.
	All string
}

func (e *RedisAccessError) Error() string {
	return fmt.Sprintf("redis: %s: grant it with %s (every permission Breakwater needs: %s)", e.refused(), e.Grant, e.All)
}

// refused says what the user may not do.
func (e *RedisAccessError) refused() string {
	var cmds, keyed []string
	for _, d := range e.Denied {
		if d.Key {
			keyed = append(keyed, d.Command)
		} else {
			cmds = append(cmds, d.Command)
		}
	}
	var parts []string
	if len(cmds) > 0 {
		parts = append(parts, "may not run "+strings.Join(cmds, ", "))
	}
	if len(keyed) > 0 {
		parts = append(parts, fmt.Sprintf("may not access Breakwater's keys %s (%d commands refused, %s first)", e.Pattern, len(keyed), keyed[0]))
	}
	return fmt.Sprintf("ACL user %s %s (NOPERM)", e.User, strings.Join(parts, " and "))
}

func (e *RedisAccessError) Unwrap() error { return ErrDenied }

// RedisAccess runs every command of wire.RedisCommands (WAIT only with
// redis.min_replicas_acked) as the configured user on scratch keys under
// the hash tag, the scripts' two commands with a key in KEYS, and MULTI
// with EXEC, then deletes the scratch keys. It returns nil when every
// command ran, a *RedisAccessError when the user was refused any (NOPERM),
// and another error when Redis could not be asked (unreachable, or a
// command unknown to this Redis).
func RedisAccess(ctx context.Context, rc redis.UniversalClient, r config.Redis) error {
	keys, err := wire.NewKeys(r.KeyPrefix)
	if err != nil {
		return err
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	probe := keys.Probe(hex.EncodeToString(id))
	defer func() {
		// The scratch keys go even when the caller's context ended; a
		// refused DEL is reported below, and the string key expires.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, k := range wire.ProbeKeys(probe) {
			_ = rc.Del(dctx, k).Err()
		}
	}()
	var denied []RedisDenial
	var unknown []string
	for _, c := range wire.RedisCommands {
		if c.Replicated && r.MinReplicasAcked == 0 {
			continue
		}
		var err error
		switch {
		case c.Probe == nil && c.Name == "multi":
			_, err = rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Exists(ctx, probe)
				return nil
			})
		case c.Probe == nil && c.Name == "watch":
			// WATCH, then UNWATCH on the same connection, as the
			// approval store does when a request may not change.
			err = rc.Watch(ctx, func(*redis.Tx) error { return nil }, probe)
		case c.Probe == nil:
			continue // exec goes with multi, unwatch with watch
		default:
			err = rc.Do(ctx, c.Probe(probe)...).Err()
		}
		if err == nil || errors.Is(err, redis.Nil) {
			continue
		}
		var reply redis.Error
		if !errors.As(err, &reply) {
			return fmt.Errorf("redis: probing the permissions: %s: %w", c.Name, err)
		}
		msg := err.Error()
		switch {
		case strings.Contains(msg, "NOPERM"):
			name := c.Name
			if m := refusedCommand.FindStringSubmatch(msg); m != nil && c.Probe == nil {
				name = strings.ToLower(m[1]) // multi or exec, watch or unwatch
			}
			denied = append(denied, RedisDenial{Command: name, Key: strings.Contains(msg, "key"), Reply: msg})
		case strings.HasPrefix(msg, "ERR unknown command"), strings.HasPrefix(msg, "ERR unknown subcommand"):
			unknown = append(unknown, c.Name)
		}
	}
	if len(denied) > 0 {
		return newRedisAccessError(keys, r, denied)
	}
	if len(unknown) > 0 {
		return fmt.Errorf("redis: this server does not know %s: Breakwater needs Redis 6.2 or newer", strings.Join(unknown, ", "))
	}
	return nil
}

// refusedCommand finds the command a NOPERM reply names.
var refusedCommand = regexp.MustCompile(`'([A-Za-z|]+)' command`)

func newRedisAccessError(keys wire.Keys, r config.Redis, denied []RedisDenial) *RedisAccessError {
	user := r.Username
	if user == "" {
		user = "default"
	}
	var grant []string
	for _, d := range denied {
		rule := "+" + d.Command
		if d.Key {
			rule = "~" + keys.Pattern()
		}
		if !slices.Contains(grant, rule) {
			grant = append(grant, rule)
		}
	}
	return &RedisAccessError{
		User: user, Denied: denied, Pattern: keys.Pattern(),
		Grant: "ACL SETUSER " + user + " " + strings.Join(grant, " "),
		All:   "ACL SETUSER " + user + " on " + keys.ACLRules(r.MinReplicasAcked > 0),
	}
}

// KafkaAccessError lists the Kafka operations the configured principal is
// not authorised for. It wraps ErrDenied.
type KafkaAccessError struct {
	// Denied are the failed checks, each with what to grant.
	Denied []Result
}

func (e *KafkaAccessError) Error() string {
	parts := make([]string, len(e.Denied))
	for i, d := range e.Denied {
		parts[i] = fmt.Sprintf("%s: %s; grant it: %s", d.Check, d.Detail, d.Fix)
	}
	return "kafka: not authorised: " + strings.Join(parts, "; ")
}

func (e *KafkaAccessError) Unwrap() error { return ErrDenied }

// KafkaAccess runs the Kafka checks of cfg on the cluster kc: every topic
// described, the output topics written (with a produce request that
// carries no record), the input, held, state and audit topics fetched,
// and the consumer group's offsets read and a commit tried that the
// group refuses for its unknown member. It returns a *KafkaAccessError
// when an operation was not authorised, and the report of every check for
// the caller to log the other failures (a missing topic, a broker that
// did not answer), which retrying may mend.
func KafkaAccess(ctx context.Context, cfg config.Config, kc *kafkaconn.Endpoint, timeout time.Duration) (Report, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	c := &checker{opts: Options{Config: cfg, Timeout: timeout}, cfg: cfg}
	c.kafkaAccess(ctx, kc)
	var denied []Result
	for _, x := range c.report {
		if x.Denied {
			denied = append(denied, x)
		}
	}
	if len(denied) > 0 {
		return c.report, &KafkaAccessError{Denied: denied}
	}
	return c.report, nil
}

// principal is how the Kafka ACL commands name the configured user.
func (c *checker) principal() string {
	if s := c.cfg.Kafka.SASL; s.On() {
		return "User:" + s.Username
	}
	return "User:<the client certificate's principal>"
}

// kafkaACL returns the kafka-acls.sh command that grants op on a topic or
// the group.
func (c *checker) kafkaACL(op, resource, name string) string {
	return fmt.Sprintf("kafka-acls.sh --bootstrap-server %s --add --allow-principal %s --operation %s --%s %s",
		strings.Join(c.cfg.Kafka.Brokers, ","), c.principal(), op, resource, name)
}

// deny adds a failed check caused by a missing permission.
func (c *checker) deny(check, detail, fix string) {
	c.report = append(c.report, Result{Check: check, Status: Fail, Detail: detail, Fix: fix, Denied: true})
}

// Package redisconn is the one place where Breakwater's Redis client is
// built from the redis section of the configuration: one node, a
// Sentinel-managed primary or a Redis Cluster, with TLS and an ACL user,
// through go-redis's UniversalClient.
package redisconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/config"
)

// New returns the client of the redis section r: a *redis.Client for one
// address, a sentinel-backed *redis.Client for master_name and
// sentinel_addrs, a *redis.ClusterClient for addrs or cluster: true. It
// reads the TLS files, and logs a warning on log when certificate
// verification is off. Errors name the configuration key, never a secret.
func New(r config.Redis, log *zap.Logger) (redis.UniversalClient, error) {
	opts, err := Options(r)
	if err != nil {
		return nil, err
	}
	if r.TLS.InsecureSkipVerify && log != nil {
		log.Warn("redis.tls.insecure_skip_verify is true: the Redis certificate is not verified, so anyone on the path can read and change the traffic; use it for testing only")
	}
	return redis.NewUniversalClient(opts), nil
}

// Options returns the go-redis options of r (what New builds its client
// from).
func Options(r config.Redis) (*redis.UniversalOptions, error) {
	tc, err := r.TLS.ClientConfig("redis.tls")
	if err != nil {
		return nil, err
	}
	o := &redis.UniversalOptions{
		Username:              r.Username,
		Password:              r.Password,
		DB:                    r.DB,
		TLSConfig:             tc,
		DialTimeout:           r.Timeout,
		ReadTimeout:           r.Timeout,
		WriteTimeout:          r.Timeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            2,
		// No CLIENT SETINFO on connect: the ACL user needs only the
		// commands of wire.RedisCommands.
		DisableIdentity: true,
	}
	switch r.Topology() {
	case config.RedisSentinel:
		o.MasterName = r.MasterName
		o.Addrs = append([]string(nil), r.SentinelAddrs...)
		o.SentinelUsername = r.SentinelUsername
		o.SentinelPassword = r.SentinelPassword
	case config.RedisCluster:
		o.IsClusterMode = true
		o.Addrs = append([]string(nil), r.Addrs...)
		if r.Addr != "" {
			o.Addrs = append(o.Addrs, r.Addr)
		}
		// A Cluster has no database but 0; keyless commands fan out.
		o.DB = 0
	case config.RedisSingle:
		o.Addrs = []string{r.Addr}
	default:
		return nil, fmt.Errorf("redis: no address configured (redis.addr, redis.addrs or redis.sentinel_addrs)")
	}
	return o, nil
}

// ErrRejected marks a failure that retrying cannot mend: Redis refused the
// credentials or the ACL user's permissions, or its certificate is not
// trusted.
var ErrRejected = errors.New("rejected by configuration")

// Probe sends one PING. A refusal that retrying cannot mend (a wrong
// password, a disabled user, a missing permission, an untrusted
// certificate) wraps ErrRejected and names the configuration keys to
// check; other errors (Redis unreachable) are returned as they are. No
// error shows a secret.
func Probe(ctx context.Context, rc redis.UniversalClient) error {
	err := rc.Ping(ctx).Err()
	if err == nil {
		return nil
	}
	msg := err.Error()
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var verify *tls.CertificateVerificationError
	switch {
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "NOAUTH"), strings.Contains(msg, "invalid password"),
		strings.Contains(msg, "invalid username-password"), strings.Contains(msg, "user is disabled"):
		return fmt.Errorf("redis: %w: authentication failed (check redis.username and the password, %s): %w", ErrRejected, config.EnvRedisPassword, err)
	case strings.Contains(msg, "NOPERM"):
		return fmt.Errorf("redis: %w: the ACL user lacks a permission (it needs ~{<key_prefix>}* and +@all): %w", ErrRejected, err)
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &verify):
		return fmt.Errorf("redis: %w: the server's TLS certificate is not trusted (check redis.tls.ca_file and redis.tls.server_name): %w", ErrRejected, err)
	}
	return err
}

// Refused reports whether err is Redis refusing a permission (NOPERM),
// from a command, a pipeline or a script.
func Refused(err error) bool {
	return err != nil && strings.Contains(err.Error(), "NOPERM")
}

// OnRefusal calls fn with every reply of rc that refuses a permission
// (see Refused), whoever sent the command: a refusal that a component
// would retry as an outage reaches fn at once. fn must not block.
func OnRefusal(rc redis.UniversalClient, fn func(error)) {
	rc.AddHook(refusalHook{fn: fn})
}

// refusalHook is the hook of OnRefusal.
type refusalHook struct{ fn func(error) }

func (h refusalHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h refusalHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if Refused(cmd.Err()) {
			h.fn(fmt.Errorf("%s: %w", cmd.Name(), cmd.Err()))
		}
		return err
	}
}

func (h refusalHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if Refused(cmd.Err()) {
				h.fn(fmt.Errorf("%s: %w", cmd.Name(), cmd.Err()))
				break
			}
		}
		return err
	}
}

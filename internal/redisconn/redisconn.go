// Package redisconn is the one place where Breakwater's Redis client is
// built from the redis section of the configuration: one node, a
// Sentinel-managed primary or a Redis Cluster, with TLS and an ACL user,
// through go-redis's UniversalClient.
package redisconn

import (
	"fmt"

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

package redisconn_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/redisconn"
	"github.com/breakwater/breakwater/internal/testbed"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newClient(t *testing.T, r config.Redis) redis.UniversalClient {
	t.Helper()
	if r.Timeout == 0 {
		r.Timeout = 2 * time.Second
	}
	c, err := redisconn.New(r, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestCluster: seed addresses, or one address with cluster mode forced,
// give a cluster client that reaches every slot.
func TestCluster(t *testing.T) {
	rc := testbed.StartRedisCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, r := range map[string]config.Redis{
		"addrs":           {Addrs: rc.Addrs()},
		"endpoint forced": {Addr: rc.Addrs()[1], Cluster: true},
	} {
		c := newClient(t, r)
		if _, ok := c.(*redis.ClusterClient); !ok {
			t.Fatalf("%s: New returned a %T; want a *redis.ClusterClient", name, c)
		}
		// Keys in many slots: a single-node client would get MOVED.
		for i := range 50 {
			k := name + ":" + strings.Repeat("k", i)
			if err := c.Set(ctx, k, i, 0).Err(); err != nil {
				t.Fatalf("%s: SET %s: %v", name, k, err)
			}
		}
	}
}

// TestSentinel: the client finds the primary through the Sentinel,
// authenticates with the data password, and follows a failover.
func TestSentinel(t *testing.T) {
	const pw = "sentinel-data-pw"
	s := testbed.StartRedisSentinel(t, pw)
	c := newClient(t, config.Redis{MasterName: testbed.SentinelMaster, SentinelAddrs: []string{s.Sentinel}, Password: pw})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Set(ctx, "{bw}:before", "1", 0).Err(); err != nil {
		t.Fatalf("SET before the failover: %v", err)
	}
	next := s.Failover(t)
	// The client reconnects to the new primary; writes fail only while
	// it switches over.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.Set(ctx, "{bw}:after", "1", 0).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SET after the failover to %s: %v", next, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	direct := redis.NewClient(&redis.Options{Addr: next, Password: pw})
	defer func() { _ = direct.Close() }()
	if v, err := direct.Get(ctx, "{bw}:after").Result(); err != nil || v != "1" {
		t.Errorf("the new primary %s has {bw}:after = %q, %v; want the write there", next, v, err)
	}
}

// TestTLSACL: TLS with the CA and an ACL user restricted to the key
// prefix work without the default user; a key outside the prefix is
// refused, and so is a client without TLS.
func TestTLSACL(t *testing.T) {
	pki := testbed.NewPKI(t)
	srv := testbed.StartRedisTLS(t, pki, "bw", "acl-pw", "{breakwater}*", false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newClient(t, config.Redis{Addr: srv.Addr, Username: srv.User, Password: srv.Password, TLS: config.TLS{CAFile: pki.CAFile()}})
	if err := c.Set(ctx, "{breakwater}:x", "1", 0).Err(); err != nil {
		t.Fatalf("SET under the prefix over TLS as the ACL user: %v", err)
	}
	if err := c.Set(ctx, "other", "1", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("SET outside the prefix = %v; want NOPERM", err)
	}
	plain := newClient(t, config.Redis{Addr: srv.Addr, Username: srv.User, Password: srv.Password, Timeout: time.Second})
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Error("PING without TLS on the TLS port = nil; want an error")
	}
}

// TestProbe: a wrong password, a disabled default user and an untrusted
// certificate are refusals that retrying cannot mend; an unreachable Redis
// is not.
func TestProbe(t *testing.T) {
	pki := testbed.NewPKI(t)
	srv := testbed.StartRedisTLS(t, pki, "bw", "acl-pw", "{breakwater}*", false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tlsOK := config.TLS{CAFile: pki.CAFile()}
	tests := []struct {
		name     string
		r        config.Redis
		rejected bool
		want     string
	}{
		{"good", config.Redis{Addr: srv.Addr, Username: "bw", Password: "acl-pw", TLS: tlsOK}, false, ""},
		{"wrong password", config.Redis{Addr: srv.Addr, Username: "bw", Password: "wrong-acl-pw", TLS: tlsOK}, true, "redis.username and the password"},
		{"default user off", config.Redis{Addr: srv.Addr, TLS: tlsOK}, true, "redis.username"},
		{"untrusted certificate", config.Redis{Addr: srv.Addr, Username: "bw", Password: "acl-pw", TLS: config.TLS{CAFile: testbed.NewPKI(t).CAFile()}}, true, "redis.tls.ca_file"},
		{"unreachable", config.Redis{Addr: "127.0.0.1:1", Timeout: 500 * time.Millisecond}, false, "connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := redisconn.Probe(ctx, newClient(t, tt.r))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Probe = %v; want nil", err)
				}
				return
			}
			if err == nil || errors.Is(err, redisconn.ErrRejected) != tt.rejected || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Probe = %v; want an error saying %q, rejected %v", err, tt.want, tt.rejected)
			}
			if err != nil && strings.Contains(err.Error(), "acl-pw") {
				t.Errorf("Probe shows the password: %v", err)
			}
		})
	}
}

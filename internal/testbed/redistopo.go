package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// topologyTimeout bounds how long a Cluster or Sentinel setup may take to
// come up.
const topologyTimeout = 60 * time.Second

// redisBin returns the path of a Redis program, failing the test with how
// to install it.
func redisBin(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("testbed: %s not found on PATH (%v); install it, on Debian/Ubuntu: apt-get install -y redis-server redis-sentinel redis-tools", name, err)
	}
	return bin
}

// startServer starts a redis program on a free port with args (the port
// arguments are added) and waits until ready answers; it tries a few
// ports, since a free port can be taken before the server binds it.
func startServer(t testing.TB, bin string, args func(port int) []string, ready func(ctx context.Context, port int) error) (*Process, int) {
	t.Helper()
	var errs []error
	for attempt := 0; attempt < 3; attempt++ {
		port := FreePort(t)
		p, err := startProcess(bin, args(port), nil, filepath.Join(t.TempDir(), fmt.Sprintf("%s-%d.log", filepath.Base(bin), port)))
		if err != nil {
			t.Fatalf("testbed: starting %s: %v", bin, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), redisStartTimeout)
		err = waitReady(ctx, p, func(ctx context.Context) error { return ready(ctx, port) })
		cancel()
		if err == nil {
			t.Cleanup(p.Kill)
			return p, port
		}
		p.Kill()
		errs = append(errs, fmt.Errorf("port %d: %w; output:\n%s", port, err, p.Log()))
	}
	t.Fatalf("testbed: starting %s: %v", bin, errors.Join(errs...))
	return nil, 0
}

// waitReady polls ready until it succeeds, the process exits or ctx ends.
func waitReady(ctx context.Context, p *Process, ready func(context.Context) error) error {
	var last error
	for {
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("exited: %v", p.ExitErr())
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", withLastErr(ctx.Err(), last))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// baseArgs are the arguments of every server the topologies start:
// loopback only, no persistence, in the foreground.
func baseArgs(dir string) []string {
	return []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--logfile", ""}
}

// RedisCluster is a real Redis Cluster of three primaries on 127.0.0.1,
// created with redis-cli --cluster create.
type RedisCluster struct {
	procs []*Process
	addrs []string
}

// StartRedisCluster starts three redis-server processes with cluster mode
// on, joins them into a cluster with every slot covered, and waits until
// every node reports cluster_state:ok. They are killed when the test ends.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	bin := redisBin(t, "redis-server")
	cli := redisBin(t, "redis-cli")
	c := &RedisCluster{}
	for i := range 3 {
		dir := t.TempDir()
		p, port := startServer(t, bin, func(port int) []string {
			return append(baseArgs(dir), "--port", strconv.Itoa(port), "--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", i)), "--cluster-node-timeout", "2000")
		}, func(ctx context.Context, port int) error { return ping(ctx, "127.0.0.1:"+strconv.Itoa(port)) })
		c.procs = append(c.procs, p)
		c.addrs = append(c.addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	ctx, cancel := context.WithTimeout(context.Background(), topologyTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, append(append([]string{"--cluster", "create"}, c.addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("testbed: redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range c.addrs {
		rc := redis.NewClient(&redis.Options{Addr: a})
		err := pollUntil(ctx, func(ctx context.Context) error {
			info, err := rc.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return errors.New("cluster_state is not ok")
			}
			return nil
		})
		_ = rc.Close()
		if err != nil {
			t.Fatalf("testbed: cluster node %s: %v", a, err)
		}
	}
	return c
}

// Addrs returns the addresses of the three primaries.
func (c *RedisCluster) Addrs() []string { return append([]string(nil), c.addrs...) }

// Client returns a cluster client, closed when the test ends.
func (c *RedisCluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DialTimeout: 2 * time.Second})
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// pollUntil calls fn until it returns nil or ctx ends.
func pollUntil(ctx context.Context, fn func(context.Context) error) error {
	var last error
	for {
		if last = fn(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return withLastErr(ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// SentinelMaster is the master name the Sentinel setup monitors.
const SentinelMaster = "bwmaster"

// RedisSentinel is a primary, a replica and a Sentinel watching them, all
// real processes on 127.0.0.1.
type RedisSentinel struct {
	Primary, Replica string // the servers' addresses at start
	Sentinel         string // the Sentinel's address
	password         string
	primary, replica *Process
}

// StartRedisSentinel starts a primary, a replica of it and one Sentinel
// (quorum 1) monitoring SentinelMaster, all requiring password when it is
// not empty, and waits until the Sentinel knows the replica.
func StartRedisSentinel(t testing.TB, password string) *RedisSentinel {
	t.Helper()
	bin := redisBin(t, "redis-server")
	sbin := redisBin(t, "redis-sentinel")
	auth := func(args []string) []string {
		if password != "" {
			args = append(args, "--requirepass", password, "--masterauth", password)
		}
		return args
	}
	ready := func(ctx context.Context, port int) error {
		rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), Password: password})
		defer func() { _ = rc.Close() }()
		return rc.Ping(ctx).Err()
	}
	pdir := t.TempDir()
	pproc, pport := startServer(t, bin, func(port int) []string {
		return auth(append(baseArgs(pdir), "--port", strconv.Itoa(port)))
	}, ready)
	s := &RedisSentinel{Primary: "127.0.0.1:" + strconv.Itoa(pport), password: password, primary: pproc}
	rdir := t.TempDir()
	rproc, rport := startServer(t, bin, func(port int) []string {
		return auth(append(baseArgs(rdir), "--port", strconv.Itoa(port), "--replicaof", "127.0.0.1", strconv.Itoa(pport)))
	}, ready)
	s.Replica = "127.0.0.1:" + strconv.Itoa(rport)
	s.replica = rproc
	sdir := t.TempDir()
	_, sport := startServer(t, sbin, func(port int) []string {
		conf := filepath.Join(sdir, fmt.Sprintf("sentinel-%d.conf", port))
		lines := []string{
			"port " + strconv.Itoa(port),
			"bind 127.0.0.1",
			"dir " + sdir,
			fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1", SentinelMaster, pport),
			fmt.Sprintf("sentinel down-after-milliseconds %s 1000", SentinelMaster),
			fmt.Sprintf("sentinel failover-timeout %s 5000", SentinelMaster),
			fmt.Sprintf("sentinel parallel-syncs %s 1", SentinelMaster),
		}
		if password != "" {
			lines = append(lines, fmt.Sprintf("sentinel auth-pass %s %s", SentinelMaster, password))
		}
		if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatalf("testbed: write sentinel config: %v", err)
		}
		return []string{conf}
	}, func(ctx context.Context, port int) error { return ping(ctx, "127.0.0.1:"+strconv.Itoa(port)) })
	s.Sentinel = "127.0.0.1:" + strconv.Itoa(sport)
	ctx, cancel := context.WithTimeout(context.Background(), topologyTimeout)
	defer cancel()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel})
	defer func() { _ = sc.Close() }()
	err := pollUntil(ctx, func(ctx context.Context) error {
		rs, err := sc.Replicas(ctx, SentinelMaster).Result()
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r["port"] == strconv.Itoa(rport) && !strings.Contains(r["flags"], "down") && r["master-link-status"] == "ok" {
				return nil
			}
		}
		return fmt.Errorf("the sentinel does not know the replica yet: %v", rs)
	})
	if err != nil {
		t.Fatalf("testbed: sentinel: %v", err)
	}
	return s
}

// CutReplica cuts the replica off the primary, like a partition between
// them: the replica drops its link and cannot authenticate again (a wrong
// masterauth) until MendReplica, so whatever the primary writes meanwhile
// exists on the primary alone. It needs a password.
func (s *RedisSentinel) CutReplica(t testing.TB) {
	t.Helper()
	if s.password == "" {
		t.Fatal("testbed: CutReplica needs a Sentinel setup with a password")
	}
	s.replicaDo(t, "CONFIG", "SET", "masterauth", s.password+"-cut")
	s.replicaDo(t, "CLIENT", "KILL", "TYPE", "master")
}

// MendReplica gives the replica its masterauth back, so that it can
// reconnect to a primary.
func (s *RedisSentinel) MendReplica(t testing.TB) {
	t.Helper()
	s.replicaDo(t, "CONFIG", "SET", "masterauth", s.password)
}

// AddReplica starts one more redis-server, a replica of primary (an
// address), as an operator replaces a lost node.
func (s *RedisSentinel) AddReplica(t testing.TB, primary string) {
	t.Helper()
	host, port, ok := strings.Cut(primary, ":")
	if !ok {
		t.Fatalf("testbed: AddReplica: address %q", primary)
	}
	dir := t.TempDir()
	startServer(t, redisBin(t, "redis-server"), func(p int) []string {
		args := append(baseArgs(dir), "--port", strconv.Itoa(p), "--replicaof", host, port)
		if s.password != "" {
			args = append(args, "--requirepass", s.password, "--masterauth", s.password)
		}
		return args
	}, func(ctx context.Context, p int) error {
		rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(p), Password: s.password})
		defer func() { _ = rc.Close() }()
		return rc.Ping(ctx).Err()
	})
}

func (s *RedisSentinel) replicaDo(t testing.TB, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), topologyTimeout)
	defer cancel()
	rc := redis.NewClient(&redis.Options{Addr: s.Replica, Password: s.password})
	defer func() { _ = rc.Close() }()
	if err := rc.Do(ctx, args...).Err(); err != nil {
		t.Fatalf("testbed: replica %v: %v", args, err)
	}
}

// KillPrimary kills the server started as the primary with SIGKILL,
// losing whatever it had not replicated.
func (s *RedisSentinel) KillPrimary() { s.primary.Kill() }

// Master returns the address the Sentinel names as the primary now.
func (s *RedisSentinel) Master(ctx context.Context) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel})
	defer func() { _ = sc.Close() }()
	a, err := sc.GetMasterAddrByName(ctx, SentinelMaster).Result()
	if err != nil {
		return "", err
	}
	return a[0] + ":" + a[1], nil
}

// Failover asks the Sentinel to fail over (SENTINEL FAILOVER) and waits
// until it names the other server as the primary, that server is a
// primary and the old one a replica. It returns the new primary's
// address.
func (s *RedisSentinel) Failover(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), topologyTimeout)
	defer cancel()
	before, err := s.Master(ctx)
	if err != nil {
		t.Fatalf("testbed: sentinel master: %v", err)
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel})
	defer func() { _ = sc.Close() }()
	if err := sc.Failover(ctx, SentinelMaster).Err(); err != nil {
		t.Fatalf("testbed: SENTINEL FAILOVER: %v", err)
	}
	var after string
	err = pollUntil(ctx, func(ctx context.Context) error {
		a, err := s.Master(ctx)
		if err != nil {
			return err
		}
		if a == before {
			return errors.New("still the old primary")
		}
		rc := redis.NewClient(&redis.Options{Addr: a, Password: s.password})
		defer func() { _ = rc.Close() }()
		role, err := rc.Do(ctx, "ROLE").Slice()
		if err != nil {
			return err
		}
		if len(role) == 0 || role[0] != "master" {
			return fmt.Errorf("%s is %v, not yet master", a, role)
		}
		// The old primary must be a replica too, or it may still take
		// writes that the new primary never sees.
		old := redis.NewClient(&redis.Options{Addr: before, Password: s.password})
		defer func() { _ = old.Close() }()
		if role, err = old.Do(ctx, "ROLE").Slice(); err != nil {
			return err
		}
		if len(role) == 0 || role[0] != "slave" {
			return fmt.Errorf("the old primary %s is %v, not yet a replica", before, role)
		}
		after = a
		return nil
	})
	if err != nil {
		t.Fatalf("testbed: failover from %s: %v", before, err)
	}
	return after
}

// RedisTLS is a redis-server that accepts only TLS connections, with an
// ACL user restricted to one key prefix and the default user off.
type RedisTLS struct {
	// Addr is the TLS port's address.
	Addr string
	// User and Password are the ACL user's credentials.
	User, Password string
}

// StartRedisTLS starts redis-server with its plain port off, --tls-port
// on a free port with a certificate of pki (clients need no certificate
// unless clientCerts), the default user off, and an ACL user that may run
// every command, on keys starting with keyPattern only (such as
// "{breakwater}*"), and every channel.
func StartRedisTLS(t testing.TB, pki *PKI, user, password, keyPattern string, clientCerts bool) *RedisTLS {
	t.Helper()
	bin := redisBin(t, "redis-server")
	srv := pki.Issue(t, "redis")
	dir := t.TempDir()
	authClients := "no"
	if clientCerts {
		authClients = "yes"
	}
	client := pki.ClientTLS(t)
	_, port := startServer(t, bin, func(port int) []string {
		return append(baseArgs(dir), "--port", "0", "--tls-port", strconv.Itoa(port),
			"--tls-cert-file", srv.CertFile, "--tls-key-file", srv.KeyFile, "--tls-ca-cert-file", pki.CAFile(),
			"--tls-auth-clients", authClients,
			"--user", "default", "off",
			"--user", user, "on", ">"+password, "~"+keyPattern, "&*", "+@all")
	}, func(ctx context.Context, port int) error {
		rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), Username: user, Password: password, TLSConfig: client.Clone()})
		defer func() { _ = rc.Close() }()
		return rc.Ping(ctx).Err()
	})
	return &RedisTLS{Addr: "127.0.0.1:" + strconv.Itoa(port), User: user, Password: password}
}

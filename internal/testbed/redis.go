package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisStartTimeout bounds how long StartRedis and Restart wait for PING.
const redisStartTimeout = 10 * time.Second

// Redis is a real redis-server process on 127.0.0.1 with persistence off.
// Its methods are safe for concurrent use.
type Redis struct {
	bin  string
	port int
	dir  string

	mu   sync.Mutex
	proc *Process // nil while killed
	runs int      // number of starts, names the log files
}

// StartRedis starts redis-server (which must be on PATH; on Debian install
// the redis-server package) on a free port of 127.0.0.1 with persistence
// disabled, waits until it answers PING, and kills it when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testbed: redis-server not found on PATH (%v); install it, on Debian/Ubuntu: apt-get install -y redis-server", err)
	}
	r := &Redis{bin: bin, dir: t.TempDir()}
	// The free port is found by binding and closing, so another process
	// may grab it before redis-server binds it: try a few ports.
	var errs []error
	for attempt := 0; attempt < 3; attempt++ {
		r.port = FreePort(t)
		err := r.start(t)
		if err == nil {
			t.Cleanup(func() { r.kill() })
			return r
		}
		errs = append(errs, err)
	}
	t.Fatalf("testbed: starting redis-server: %v", errors.Join(errs...))
	return nil
}

// start runs redis-server on r.port and waits for PING; on failure the
// process is gone again.
func (r *Redis) start(t testing.TB) error {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		return errors.New("redis-server is already running")
	}
	r.runs++
	args := []string{
		"--port", strconv.Itoa(r.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", r.dir,
		"--daemonize", "no",
		"--logfile", "",
	}
	p, err := startProcess(r.bin, args, nil, filepath.Join(r.dir, fmt.Sprintf("redis-%d.log", r.runs)))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisStartTimeout)
	defer cancel()
	if err := waitPing(ctx, r.Addr(), p); err != nil {
		p.Kill()
		return fmt.Errorf("port %d: %w; output:\n%s", r.port, err, p.Log())
	}
	r.proc = p
	return nil
}

// waitPing polls addr with an inline PING until it answers +PONG, the
// process exits, or ctx ends.
func waitPing(ctx context.Context, addr string, p *Process) error {
	var lastErr error
	for {
		lastErr = ping(ctx, addr)
		if lastErr == nil {
			return nil
		}
		select {
		case <-p.Done():
			if err := p.ExitErr(); err != nil {
				return fmt.Errorf("redis-server exited: %w", err)
			}
			return errors.New("redis-server exited with status 0")
		case <-ctx.Done():
			return fmt.Errorf("no PONG: %w", withLastErr(ctx.Err(), lastErr))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func ping(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// Addr returns the server's host:port, which stays the same across Restart.
func (r *Redis) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
}

// Kill sends SIGKILL to the server and waits for it to exit; all data is
// lost. Killing a killed server does nothing.
func (r *Redis) Kill(t testing.TB) {
	t.Helper()
	r.kill()
}

func (r *Redis) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		r.proc.Kill()
		r.proc = nil
	}
}

// Restart kills the server if it is running and starts a new, empty one on
// the same port, waiting until it answers PING.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	r.kill()
	// The port was just released by our own process; retry briefly in
	// case the kernel has not let go of it yet.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = r.start(t); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("testbed: restarting redis-server: %v", err)
}

// Log returns what the current (or last) redis-server process wrote to
// stdout and stderr.
func (r *Redis) Log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, _ := os.ReadFile(filepath.Join(r.dir, fmt.Sprintf("redis-%d.log", r.runs)))
	return string(b)
}

// Client returns a go-redis client for the server, closed when the test
// ends. It reconnects by itself after Restart.
func (r *Redis) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:        r.Addr(),
		DialTimeout: 2 * time.Second,
		// Fail fast rather than retrying against a killed server.
		MaxRetries: 1,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Freeze stops the server with SIGSTOP: it keeps its data and its clients'
// connections, and answers nothing (connections are still accepted by the
// kernel) until Thaw, like a hung server or a network partition. Freezing a
// killed server fails the test.
func (r *Redis) Freeze(t testing.TB) {
	t.Helper()
	r.signal(t, syscall.SIGSTOP)
}

// Thaw resumes a server stopped by Freeze.
func (r *Redis) Thaw(t testing.TB) {
	t.Helper()
	r.signal(t, syscall.SIGCONT)
}

func (r *Redis) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil || r.proc.Exited() {
		t.Fatalf("testbed: redis-server is not running")
	}
	r.proc.signal(sig)
}

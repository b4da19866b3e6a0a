package testbed

import (
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
)

// buildTimeout bounds one `go build` run by BuildBinary.
const buildTimeout = 5 * time.Minute

// logTail is how much of a process's output is logged when a test fails.
const logTail = 64 << 10

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago: it
// binds port 0, reads the port the kernel chose and closes the listener.
// Another process may take the port before the caller binds it, so callers
// that can should retry with a new port on "address already in use".
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testbed: finding a free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatalf("testbed: finding a free port: %v", err)
	}
	return port
}

// Kcat returns the path of the kcat binary (or of kafkacat, its old name),
// and fails the test with an installation hint if neither is on PATH.
func Kcat(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"kcat", "kafkacat"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("testbed: neither kcat nor kafkacat is on PATH; install it, on Debian/Ubuntu: apt-get install -y kcat")
	return ""
}

// buildCache remembers the binaries BuildBinary built in this test process.
// It is package-level state on purpose: test functions, and the tests of
// one package, share a process but no other object, and building the same
// daemon once per process instead of once per test saves seconds per test.
// It is only ever used from tests, and mu guards it.
var buildCache struct {
	mu     sync.Mutex
	dir    string                  // created on first build
	builds map[string]*buildResult // by package argument
}

type buildResult struct {
	once sync.Once
	out  string // where to build, fixed when the entry is made
	path string
	err  error
}

// BuildBinary builds the main package pkg (an import path such as
// "github.com/breakwater/breakwater/cmd/breakwater", or a path relative to
// the test's package directory such as "../../cmd/breakwater") with
// `go build`, with -race when the test binary itself was built with -race,
// and returns the path of the executable. Each package is built once per
// test process; later calls, also from parallel tests, return the same
// path. The executables live in a per-process temporary directory that
// RemoveBuiltBinaries deletes.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	buildCache.mu.Lock()
	if buildCache.builds == nil {
		buildCache.builds = make(map[string]*buildResult)
	}
	if buildCache.dir == "" {
		dir, err := os.MkdirTemp("", "testbed-bin-")
		if err != nil {
			buildCache.mu.Unlock()
			t.Fatalf("testbed: BuildBinary(%q): %v", pkg, err)
		}
		buildCache.dir = dir
	}
	res, ok := buildCache.builds[pkg]
	if !ok {
		// A directory per package keeps cmd/a/foo and cmd/b/foo apart.
		res = &buildResult{out: filepath.Join(buildCache.dir, strconv.Itoa(len(buildCache.builds)), binaryName(pkg))}
		buildCache.builds[pkg] = res
	}
	buildCache.mu.Unlock()

	res.once.Do(func() { res.path, res.err = goBuild(pkg, res.out) })
	if res.err != nil {
		t.Fatalf("testbed: BuildBinary(%q): %v", pkg, res.err)
	}
	return res.path
}

// RemoveBuiltBinaries deletes every executable BuildBinary built in this
// process. Call it from TestMain after m.Run; it is optional, since the
// files are in the system's temporary directory anyway.
func RemoveBuiltBinaries() {
	buildCache.mu.Lock()
	defer buildCache.mu.Unlock()
	if buildCache.dir != "" {
		_ = os.RemoveAll(buildCache.dir)
	}
	buildCache.dir = ""
	buildCache.builds = nil
}

// binaryName derives the executable name from a package argument.
func binaryName(pkg string) string {
	name := filepath.Base(filepath.Clean(pkg))
	if name == "." || name == ".." || name == string(filepath.Separator) {
		if wd, err := os.Getwd(); err == nil {
			name = filepath.Base(filepath.Join(wd, pkg))
		}
	}
	if name == "" || name == "." || name == string(filepath.Separator) {
		name = "bin"
	}
	return name
}

func goBuild(pkg, out string) (string, error) {
	if strings.Contains(pkg, "...") {
		return "", errors.New("pattern with ... names more than one package")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		if root := os.Getenv("GOROOT"); root != "" {
			goBin = filepath.Join(root, "bin", "go")
		} else {
			return "", fmt.Errorf("go command not on PATH: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, pkg)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, args...)
	output, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", goBin, strings.Join(args, " "), err, output)
	}
	return out, nil
}

// Process is a running subprocess whose stdout and stderr go to a log file.
// Its methods are safe for concurrent use.
type Process struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited and been reaped
	err     error         // the Wait error, set before done is closed
}

// StartProcess starts bin with args in its own process group. The
// environment is the test's environment plus env (entries of env win over
// inherited ones with the same name). Stdout and stderr are both written to
// a file in t.TempDir(), readable with Log. When the test ends the process
// group is killed and, if the test failed, the tail of the output is logged.
func StartProcess(t testing.TB, bin string, args []string, env []string) *Process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), filepath.Base(bin)+".log")
	p, err := startProcess(bin, args, env, logPath)
	if err != nil {
		t.Fatalf("testbed: starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			out := p.Log()
			if len(out) > logTail {
				out = "...\n" + out[len(out)-logTail:]
			}
			t.Logf("testbed: output of %s %s (%v):\n%s", bin, strings.Join(args, " "), p.ExitErr(), out)
		}
	})
	return p
}

// StartProcessQuietly is StartProcess for tests that start many processes
// and report what matters of their output themselves: a failed test does
// not log the output of every process it started.
func StartProcessQuietly(t testing.TB, bin string, args []string, env []string) *Process {
	t.Helper()
	p, err := startProcess(bin, args, env, filepath.Join(t.TempDir(), filepath.Base(bin)+".log"))
	if err != nil {
		t.Fatalf("testbed: starting %s: %v", bin, err)
	}
	t.Cleanup(p.Kill)
	return p
}

// startProcess is StartProcess without a test: the caller must Kill it.
func startProcess(bin string, args, env []string, logPath string) (*Process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	// The child writes straight into the file, so no goroutine copies
	// its output.
	defer func() { _ = f.Close() }()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid returns the process id, which is also its process group id.
func (p *Process) Pid() int {
	return p.cmd.Process.Pid
}

// Log returns everything the process has written to stdout and stderr so
// far, for failure messages.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("<reading %s: %v>", p.logPath, err)
	}
	return string(b)
}

// LogPath returns the path of the file that captures stdout and stderr.
func (p *Process) LogPath() string {
	return p.logPath
}

// Done returns a channel that is closed when the process has exited.
func (p *Process) Done() <-chan struct{} {
	return p.done
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitErr returns the process's exit error as exec.Cmd.Wait reports it (nil
// for exit status 0), or nil while it is still running.
func (p *Process) ExitErr() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Usage returns the CPU time (user and system) and the peak resident set
// size in bytes of the exited process; ok is false while it runs.
func (p *Process) Usage() (cpu time.Duration, peakRSS uint64, ok bool) {
	if !p.Exited() || p.cmd.ProcessState == nil {
		return 0, 0, false
	}
	ru, isRusage := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !isRusage {
		return 0, 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), uint64(ru.Maxrss) << 10, true
}

// Wait waits until the process exits or ctx ends, and returns the exit error
// or the context error.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// signal sends sig to the whole process group, so that children the process
// started go too. Callers only signal a process that has not been reaped.
func (p *Process) signal(sig syscall.Signal) {
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// Kill sends SIGKILL to the process group and waits for the process to exit.
// Killing an exited process does nothing.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	p.signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM to the process group, waits up to timeout for the
// process to exit, then sends SIGKILL and waits for it to exit. It returns
// the exit error (nil for exit status 0); if SIGKILL was needed the error
// says so.
func (p *Process) Stop(timeout time.Duration) error {
	if p.Exited() {
		return p.err
	}
	p.signal(syscall.SIGTERM)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.err
	case <-timer.C:
	}
	p.signal(syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("did not exit within %v of SIGTERM, killed: %w", timeout, p.err)
}

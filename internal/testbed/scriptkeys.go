package testbed

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ScriptWatch follows every command a redis-server runs (through MONITOR)
// and checks the Redis Cluster contract of Lua scripts: a script touches
// only keys it declared in KEYS, and the keys it declares share one hash
// tag (so they live in one cluster slot). Redis itself checks neither on a
// single node, and a Cluster only catches a key of another slot.
type ScriptWatch struct {
	conn   net.Conn
	client *redis.Client
	done   chan struct{}
	marker string

	mu         sync.Mutex // guards the fields below, written by the reader
	specs      map[string]keySpec
	scripts    int
	calls      int
	violations []string
	seenMarker chan struct{}
}

type keySpec struct{ first, last, step int }

// WatchScripts watches the scripts run on r until the test ends, and fails
// the test if any script broke the contract. It watches one run of the
// server: scripts after a Restart are not watched.
func (r *Redis) WatchScripts(t testing.TB) *ScriptWatch {
	t.Helper()
	w, err := StartScriptWatch(r.Addr())
	if err != nil {
		t.Fatalf("testbed: watch the scripts on %s: %v", r.Addr(), err)
	}
	t.Cleanup(func() {
		for _, v := range w.Stop() {
			t.Errorf("redis script contract: %s", v)
		}
	})
	return w
}

// StartScriptWatch connects to the redis-server at addr and starts
// watching; Stop ends it and returns what broke the contract.
func StartScriptWatch(addr string) (*ScriptWatch, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	w := &ScriptWatch{
		conn: c, client: client, done: make(chan struct{}), specs: map[string]keySpec{},
		marker: fmt.Sprintf("testbed-script-watch-%d", time.Now().UnixNano()), seenMarker: make(chan struct{}),
	}
	if err := w.loadSpecs(); err != nil {
		c.Close()
		client.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 1<<20)
	if _, err := c.Write([]byte("MONITOR\r\n")); err != nil {
		c.Close()
		client.Close()
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "+OK") {
		c.Close()
		client.Close()
		return nil, fmt.Errorf("MONITOR answered %q: %v", line, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	go w.read(br)
	return w, nil
}

// loadSpecs reads where each command keeps its keys (COMMAND).
func (w *ScriptWatch) loadSpecs() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	infos, err := w.client.Command(ctx).Result()
	if err != nil {
		return fmt.Errorf("read COMMAND: %w", err)
	}
	for name, in := range infos {
		w.specs[strings.ToLower(name)] = keySpec{int(in.FirstKeyPos), int(in.LastKeyPos), int(in.StepCount)}
	}
	return nil
}

// Scripts returns how many script calls and how many commands run by
// scripts the watch has seen.
func (w *ScriptWatch) Scripts() (scripts, calls int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.scripts, w.calls
}

// Stop waits until the watch has seen every command sent before it (a
// marker command goes through last), stops watching and returns the
// violations.
func (w *ScriptWatch) Stop() []string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.client.Echo(ctx, w.marker).Err(); err == nil {
		select {
		case <-w.seenMarker:
		case <-w.done:
		case <-ctx.Done():
		}
	}
	w.conn.Close()
	<-w.done
	w.client.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.violations
}

// read parses the MONITOR stream. Redis writes a script call's line
// before the lines of the commands the script runs, and a script runs
// alone, so every "lua" line belongs to the last script call.
func (w *ScriptWatch) read(br *bufio.Reader) {
	defer close(w.done)
	var declared map[string]bool
	var script string
	marked := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		if !strings.HasPrefix(line, "+") {
			continue
		}
		src, args, ok := parseMonitorLine(line[1:])
		if !ok || len(args) == 0 {
			continue
		}
		cmd := strings.ToLower(args[0])
		if src != "lua" {
			switch cmd {
			case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
				declared, script = w.declare(args)
			case "echo":
				if !marked && len(args) == 2 && args[1] == w.marker {
					marked = true
					close(w.seenMarker)
				}
			}
			continue
		}
		w.check(declared, script, cmd, args)
	}
}

// declare records a script call's keys and checks that they share one hash tag.
func (w *ScriptWatch) declare(args []string) (map[string]bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.scripts++
	script := args[1]
	if len(script) > 60 {
		script = "script starting " + strconv.Quote(script[:60])
	}
	declared := map[string]bool{}
	if len(args) < 3 {
		return declared, script
	}
	n, err := strconv.Atoi(args[2])
	if err != nil || 3+n > len(args) {
		w.violations = append(w.violations, fmt.Sprintf("%s: bad key count %q", script, args[2]))
		return declared, script
	}
	tags := map[string]bool{}
	for _, k := range args[3 : 3+n] {
		declared[k] = true
		tags[hashTag(k)] = true
	}
	if len(tags) > 1 {
		w.violations = append(w.violations, fmt.Sprintf("%s declares keys under %d hash tags: %v", script, len(tags), keysOf(tags)))
	}
	return declared, script
}

// check reports the keys a script's command touches that the script did
// not declare.
func (w *ScriptWatch) check(declared map[string]bool, script, cmd string, args []string) {
	keys, err := w.keysOf(cmd, args)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	if err != nil {
		w.violations = append(w.violations, fmt.Sprintf("%s: %s: %v", script, cmd, err))
		return
	}
	for _, k := range keys {
		if !declared[k] && len(w.violations) < 100 {
			w.violations = append(w.violations, fmt.Sprintf("%s: %s touches %q, not declared in KEYS", script, strings.ToUpper(cmd), k))
		}
	}
}

// keysOf returns the keys of one command, from COMMAND's key positions or,
// for commands whose keys move, from COMMAND GETKEYS.
func (w *ScriptWatch) keysOf(cmd string, args []string) ([]string, error) {
	w.mu.Lock()
	spec, ok := w.specs[cmd]
	w.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("unknown command")
	}
	if spec.first == 0 {
		// No fixed positions: either no keys (TIME) or keys that move
		// (XREAD); Redis knows which.
		keys, err := w.getKeys(args)
		if err != nil {
			return nil, nil //nolint:nilerr // a command without keys
		}
		return keys, nil
	}
	last := spec.last
	if last < 0 {
		last = len(args) + last
	}
	var keys []string
	for i := spec.first; i <= last && i < len(args); i += max(spec.step, 1) {
		keys = append(keys, args[i])
	}
	return keys, nil
}

func (w *ScriptWatch) getKeys(args []string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a := make([]any, len(args))
	for i, s := range args {
		a[i] = s
	}
	return w.client.CommandGetKeys(ctx, a...).Result()
}

// hashTag returns the part of a key Redis Cluster hashes: the text between
// the first "{" and the next "}", when not empty; else the whole key.
func hashTag(k string) string {
	if i := strings.IndexByte(k, '{'); i >= 0 {
		if j := strings.IndexByte(k[i+1:], '}'); j > 0 {
			return k[i+1 : i+1+j]
		}
	}
	return k
}

func keysOf(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// parseMonitorLine splits `1700000000.123456 [0 127.0.0.1:5000] "SET" "k" "v"`
// into its source ("127.0.0.1:5000", or "lua" for a script's commands)
// and its unquoted arguments.
func parseMonitorLine(s string) (src string, args []string, ok bool) {
	open := strings.IndexByte(s, '[')
	end := strings.IndexByte(s, ']')
	if open < 0 || end < open {
		return "", nil, false
	}
	if _, after, found := strings.Cut(s[open+1:end], " "); found {
		src = after
	}
	rest := s[end+1:]
	for {
		i := strings.IndexByte(rest, '"')
		if i < 0 {
			return src, args, true
		}
		arg, n, ok := unquote(rest[i:])
		if !ok {
			return "", nil, false
		}
		args = append(args, arg)
		rest = rest[i+n:]
	}
}

// unquote reads one argument quoted the way Redis's sdscatrepr quotes it
// and returns it with the number of bytes it took.
func unquote(s string) (string, int, bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), i + 1, true
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 'x':
				if i+2 >= len(s) {
					return "", 0, false
				}
				v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
				if err != nil {
					return "", 0, false
				}
				b.WriteByte(byte(v))
				i += 2
			default:
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, false
}

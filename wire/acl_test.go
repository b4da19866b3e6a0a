package wire_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/wire"
)

// TestRedisCommandsCoverScripts: every command a Lua script of the daemon
// calls is in RedisCommands, so that a user granted Keys.ACLRules can run
// every script. (The commands the Go code sends directly are compared with
// the list by the end-to-end test that runs the daemon under exactly these
// rules.)
func TestRedisCommandsCoverScripts(t *testing.T) {
	var names []string
	for _, c := range wire.RedisCommands {
		names = append(names, c.Name)
	}
	call := regexp.MustCompile(`redis\.p?call\(\s*['"]([A-Za-z]+)['"]`)
	found := 0
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testbed", "e2e", ".git", "bin":
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, "_test.go") || !strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, ".lua") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range call.FindAllStringSubmatch(string(src), -1) {
			found++
			if cmd := strings.ToLower(m[1]); !slices.Contains(names, cmd) {
				t.Errorf("%s calls %q, which is not in wire.RedisCommands", path, cmd)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 50 {
		t.Errorf("found %d redis.call sites; the scan is looking in the wrong place", found)
	}
}

// TestACLRules: the rules name the key pattern and every command, WAIT
// only when the writes are replicated.
func TestACLRules(t *testing.T) {
	k, err := wire.NewKeys("bw")
	if err != nil {
		t.Fatal(err)
	}
	plain, replicated := k.ACLRules(false), k.ACLRules(true)
	if !strings.HasPrefix(plain, "~{bw}* ") {
		t.Errorf("ACLRules(false) = %q; want it to start with the key pattern", plain)
	}
	if strings.Contains(plain, "+wait") || !strings.Contains(replicated, "+wait") {
		t.Errorf("ACLRules(false) = %q, ACLRules(true) = %q; want +wait only in the second", plain, replicated)
	}
	for _, c := range wire.RedisCommands {
		if !strings.Contains(replicated, " +"+c.Name) {
			t.Errorf("ACLRules(true) = %q; want +%s", replicated, c.Name)
		}
	}
	probe := k.Probe("x")
	if !strings.HasPrefix(probe, "{bw}") {
		t.Errorf("Probe = %q; want it under the hash tag", probe)
	}
	for _, key := range wire.ProbeKeys(probe) {
		if !strings.HasPrefix(key, probe) {
			t.Errorf("ProbeKeys(%q) has %q, not derived from it", probe, key)
		}
	}
}

// TestACLRulesDocumented: docs/operations.md shows the ACL SETUSER of the
// default prefix as ACLRules makes it.
func TestACLRulesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	k, err := wire.NewKeys("breakwater")
	if err != nil {
		t.Fatal(err)
	}
	want := "ACL SETUSER breakwater on >PASSWORD " + k.ACLRules(false) + "\n"
	if !strings.Contains(string(doc), want) {
		t.Errorf("docs/operations.md does not show the least-privilege user as\n%s", want)
	}
}

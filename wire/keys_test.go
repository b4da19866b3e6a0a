package wire

import (
	"strings"
	"testing"
)

// TestHeldByTarget checks that targets never share a key, whatever ':' or
// '%' their type and id hold, and that a usual type keeps the key it had
// before the escaping (no migration).
func TestHeldByTarget(t *testing.T) {
	k, err := NewKeys("bw")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.HeldByTarget("account", "123:4"), "{bw}:held:t:account:123:4"; got != want {
		t.Errorf("HeldByTarget(account, 123:4) = %q; want the unescaped %q", got, want)
	}
	parts := []string{"", "a", "b", "c", ":", "%", "%3A", "%25", "a:b", "b:c", "a%3Ab", "~"}
	seen := map[string][2]string{}
	for _, typ := range parts {
		for _, id := range parts {
			for _, t2 := range []string{typ, typ + ":" + id, typ + "%"} {
				key := k.HeldByTarget(t2, id)
				if prev, ok := seen[key]; ok && prev != [2]string{t2, id} {
					t.Errorf("targets %q and %q share the key %q", prev, [2]string{t2, id}, key)
				}
				seen[key] = [2]string{t2, id}
			}
		}
	}
}

// FuzzHeldByTarget checks that the type is read back unambiguously from a
// key: the first ':' after the prefix ends it, and unescaping it gives the
// type.
func FuzzHeldByTarget(f *testing.F) {
	k, err := NewKeys("bw")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("account", "1")
	f.Add("a:b", "c")
	f.Add("a", "b:c")
	f.Add("%3A", ":")
	f.Fuzz(func(t *testing.T, typ, id string) {
		rest := strings.TrimPrefix(k.HeldByTarget(typ, id), "{bw}:held:t:")
		esc, gotID, ok := strings.Cut(rest, ":")
		if !ok || gotID != id {
			t.Fatalf("key %q: no type then id %q", rest, id)
		}
		got := strings.NewReplacer("%3A", ":", "%25", "%").Replace(esc)
		if got != typ {
			t.Errorf("key of type %q reads back type %q", typ, got)
		}
	})
}

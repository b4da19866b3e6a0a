package wire_test

import (
	"testing"

	"github.com/breakwater/breakwater/wire"
)

func TestParseSource(t *testing.T) {
	tests := []struct {
		name, in  string
		topic     string
		partition int
		offset    int64
		ok        bool
	}{
		{"plain", "moderation.actions/3/1200", "moderation.actions", 3, 1200, true},
		{"dashes", "a-b_c/0/0", "a-b_c", 0, 0, true},
		{"no offset", "topic/3", "", 0, 0, false},
		{"empty topic", "/3/4", "", 0, 0, false},
		{"negative", "t/-1/4", "", 0, 0, false},
		{"not a number", "t/1/x", "", 0, 0, false},
		{"empty", "", "", 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topic, p, off, ok := wire.ParseSource(tc.in)
			if topic != tc.topic || p != tc.partition || off != tc.offset || ok != tc.ok {
				t.Errorf("ParseSource(%q) = %q, %d, %d, %v; want %q, %d, %d, %v",
					tc.in, topic, p, off, ok, tc.topic, tc.partition, tc.offset, tc.ok)
			}
		})
	}
}

// TestAppendSource checks that AppendSource appends what Source returns.
func TestAppendSource(t *testing.T) {
	for _, tc := range []struct {
		topic     string
		partition int
		offset    int64
	}{{"moderation.actions", 3, 1200}, {"t", 0, 0}, {"a-b", 11, 1 << 40}} {
		got := string(wire.AppendSource([]byte("x"), tc.topic, tc.partition, tc.offset))
		if want := "x" + wire.Source(tc.topic, tc.partition, tc.offset); got != want {
			t.Errorf("AppendSource(%q, %q, %d, %d) = %q; want %q", "x", tc.topic, tc.partition, tc.offset, got, want)
		}
	}
}

// FuzzParseSource checks that reading a source header never panics and
// that whatever it accepts formats back to the same value.
func FuzzParseSource(f *testing.F) {
	for _, s := range []string{"moderation.actions/3/1200", "t/0/0", "/1/2", "a/b/c/1/2", "t/01/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		topic, p, off, ok := wire.ParseSource(s)
		if !ok {
			return
		}
		if got := wire.Source(topic, p, off); got != s {
			// Leading zeros and signs parse but format differently.
			if _, p2, off2, ok2 := wire.ParseSource(got); !ok2 || p2 != p || off2 != off {
				t.Fatalf("ParseSource(%q) = %q, %d, %d; Source gives %q, which reads back differently", s, topic, p, off, got)
			}
		}
	})
}

func TestKeysShareOneHashTag(t *testing.T) {
	k, err := wire.NewKeys("bw")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{
		k.Epoch(), k.Scopes(), k.Replicated(), k.Status("rule:a"), k.Ring("rule:a"), k.Records("in", 3), k.Audit(), k.AuditBuilt(),
		k.HeldNext(), k.HeldReady(), k.HeldAction("x"), k.HeldAll(), k.HeldIncidents(), k.HeldIncident("i"),
		k.HeldIncidentItems("i"), k.HeldByKey("k"), k.ReleaseQueue(), k.ReleaseLock(), k.ReleaseInflight(),
		k.AlertStream(), k.AlertSeen("e"), k.AlertSeq(), k.AlertOpen("tripped", "critical"), k.AlertMembers("1"),
		k.AlertFix("1"), k.AlertGroupOpen("1"), k.AlertTrip("rule:a"), k.AlertDone("1", "r"),
	} {
		if len(key) < 4 || key[:4] != "{bw}" {
			t.Errorf("key %q does not start with the hash tag {bw}", key)
		}
	}
	for _, bad := range []string{"", "a{b", "a}", "a b"} {
		if _, err := wire.NewKeys(bad); err == nil {
			t.Errorf("NewKeys(%q) = nil error; want one", bad)
		}
	}
}

package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestRoleAllows(t *testing.T) {
	tests := []struct {
		have, need Role
		want       bool
	}{
		{RoleViewer, RoleViewer, true},
		{RoleViewer, RoleReviewer, false},
		{RoleReviewer, RoleViewer, true},
		{RoleReviewer, RoleOperator, false},
		{RoleOperator, RoleReviewer, true},
		{RoleOperator, RoleAdmin, false},
		{RoleAdmin, RoleOperator, true},
		{"root", RoleViewer, false},
		{RoleAdmin, "root", false},
	}
	for _, tt := range tests {
		if got := tt.have.Allows(tt.need); got != tt.want {
			t.Errorf("Role(%q).Allows(%q) = %v; want %v", tt.have, tt.need, got, tt.want)
		}
	}
}

func TestHashToken(t *testing.T) {
	// printf %s test | sha256sum
	const want = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	if got := HashToken("test"); got != want {
		t.Errorf("HashToken(%q) = %s; want %s", "test", got, want)
	}
}

func TestAdminTokensFromEnv(t *testing.T) {
	const plain = "s3cret-token-value"
	env := map[string]string{EnvAdminTokens: "alice:operator:" + plain + ", bob:viewer:sha256:" + strings.ToUpper(HashToken("other"))}
	c, err := LoadWithEnv("", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("LoadWithEnv = %v; want nil", err)
	}
	want := []Token{
		{Name: "alice", Role: RoleOperator, SHA256: HashToken(plain)},
		{Name: "bob", Role: RoleViewer, SHA256: HashToken("other")},
	}
	if len(c.Admin.Tokens) != len(want) {
		t.Fatalf("tokens = %+v; want %+v", c.Admin.Tokens, want)
	}
	for i := range want {
		if c.Admin.Tokens[i] != want[i] {
			t.Errorf("tokens[%d] = %+v; want %+v", i, c.Admin.Tokens[i], want[i])
		}
	}
	if strings.Contains(fmt.Sprintf("%+v", c), plain) {
		t.Errorf("the plain token survives in the configuration")
	}
}

func TestAdminTokensFromEnvBad(t *testing.T) {
	const plain = "s3cret-token-value"
	for _, v := range []string{
		"alice:operator",
		":operator:" + plain,
		"alice:root:" + plain,
		"alice:viewer:sha256:abc",
		"alice:viewer:" + plain + ",alice:admin:x" + plain,
	} {
		env := map[string]string{EnvAdminTokens: v}
		_, err := LoadWithEnv("", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err == nil {
			t.Errorf("LoadWithEnv(%s=%q) = nil; want an error", EnvAdminTokens, v)
			continue
		}
		if !strings.Contains(err.Error(), "admin.tokens") {
			t.Errorf("LoadWithEnv(%s=%q) = %v; want it to name admin.tokens", EnvAdminTokens, v, err)
		}
		if strings.Contains(err.Error(), plain) {
			t.Errorf("LoadWithEnv(%s=%q) = %v; the error shows the token", EnvAdminTokens, v, err)
		}
	}
}

// FuzzTokens checks that ParseTokens never panics and that whatever
// it accepts carries no plain token.
func FuzzTokens(f *testing.F) {
	f.Add("alice:operator:tok")
	f.Add("a:viewer:sha256:" + HashToken("x") + ",b:admin:y")
	f.Add(",,:")
	f.Fuzz(func(t *testing.T, v string) {
		ts, err := ParseTokens(v)
		if err != nil {
			// The message's own fixed text may contain a short input
			// (":sha256:"); what remains must not.
			rest := strings.NewReplacer("want name:role:token or name:role:sha256:<hex>", "",
				"sha256: is followed by no hash", "", EnvAdminTokens, "").Replace(err.Error())
			if strings.Contains(rest, v) && v != "" && strings.Count(v, ":") >= 2 {
				t.Errorf("ParseTokens(%q) error %q repeats the input", v, err)
			}
			return
		}
		for _, tok := range ts {
			if tok.Name == "" || tok.SHA256 == "" {
				t.Errorf("ParseTokens(%q) = %+v; want names and hashes", v, ts)
			}
		}
	})
}

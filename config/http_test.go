package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestLoopback(t *testing.T) {
	for _, tc := range []struct {
		listen string
		want   bool
	}{
		{"127.0.0.1:8080", true},
		{"127.0.0.2:8080", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"LocalHost:8080", true},
		{":8080", false},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{"10.0.0.5:8080", false},
		{"breakwater.internal:8080", false},
		{"8080", false},
	} {
		if got := Loopback(tc.listen); got != tc.want {
			t.Errorf("Loopback(%q) = %v; want %v", tc.listen, got, tc.want)
		}
	}
}

// TestInsecureListener checks that a listener other machines can reach
// is refused without TLS unless allow_insecure is set, with the reason
// and the settings that fix it in the message.
func TestInsecureListener(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want string // "" for valid
	}{
		{"default", "", ""},
		{"loopback", "http: {listen: '127.0.0.1:9000'}", ""},
		{"disabled", "http: {listen: ''}", ""},
		{"every interface", "http: {listen: ':8080'}", "http.listen: \":8080\" is reachable from other machines"},
		{"an address", "http: {listen: '10.1.2.3:8080'}", "set http.allow_insecure: true"},
		{"allowed", "http: {listen: ':8080', allow_insecure: true}", ""},
		{"tls", "http: {listen: ':8443', tls_cert_file: c.pem, tls_key_file: k.pem}", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Parse(%q) = %v; want no error", tc.yaml, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Parse(%q) = %v; want an error containing %q", tc.yaml, err, tc.want)
			}
		})
	}
	// The environment variable is checked like the file.
	c := Default()
	c.ApplyEnv(func(k string) (string, bool) {
		if k == EnvHTTPListen {
			return "0.0.0.0:8080", true
		}
		return "", false
	})
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "http.tls_cert_file") {
		t.Errorf("Validate() with %s=0.0.0.0:8080 = %v; want the insecure listener refused", EnvHTTPListen, err)
	}
}

// TestSignInSecret checks that the OIDC client secret comes from the
// environment and never shows in a printed, JSON-encoded or redacted
// configuration.
func TestSignInSecret(t *testing.T) {
	const secret = "oidc-client-secret-value"
	c, err := Parse([]byte(`
signin:
  groups: {ops: operator}
  oidc: {issuer_url: "https://idp.example.com", client_id: bw, redirect_url: "https://bw.example.com/auth/callback", client_secret: from-file}
`))
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyEnv(func(k string) (string, bool) {
		if k == EnvOIDCClientSecret {
			return secret, true
		}
		return "", false
	})
	if err := c.Validate(); err != nil || c.SignIn.OIDC.ClientSecret != secret {
		t.Fatalf("after %s the secret is %q (%v); want it from the environment", EnvOIDCClientSecret, c.SignIn.OIDC.ClientSecret, err)
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c), "json": string(js),
		"Redacted": fmt.Sprintf("%+v", c.Redacted()),
	} {
		if strings.Contains(s, secret) {
			t.Errorf("%s of the configuration shows the OIDC client secret", name)
		}
	}
	if c.SignIn.OIDC.ClientSecret != secret {
		t.Error("Redacted changed the configuration it copied")
	}
}

package config

import (
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

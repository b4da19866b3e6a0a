package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRunRefusesInsecureListener checks that the daemon does not start
// with a listener other machines can reach over plain HTTP, and that the
// message names the settings that fix it.
func TestRunRefusesInsecureListener(t *testing.T) {
	t.Setenv("BREAKWATER_HTTP_LISTEN", "0.0.0.0:8080")
	var out, errb bytes.Buffer
	if code := run([]string{"run"}, &out, &errb); code != 1 {
		t.Fatalf("run with BREAKWATER_HTTP_LISTEN=0.0.0.0:8080 exited %d; want 1\n%s", code, errb.String())
	}
	for _, want := range []string{"http.listen", "http.tls_cert_file", "http.allow_insecure: true"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("run's error does not mention %s:\n%s", want, errb.String())
		}
	}
}

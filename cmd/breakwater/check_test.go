package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/testbed"
)

// TestCheckCommand runs breakwater check as an operator would: the exit
// status is 0 for a complete setup, 1 when a check fails (naming it), 2
// for a usage error; the SASL password given in the environment appears
// nowhere.
func TestCheckCommand(t *testing.T) {
	const pw = "check-cmd-kafka-pw"
	pki := testbed.NewPKI(t)
	k := testbed.StartKafka(t, testbed.Secured(testbed.KafkaSecurity{
		Server: pki.ServerTLS(t, false), Client: pki.ClientTLS(t),
		Users: []testbed.SASLUser{{Method: "SCRAM-SHA-256", User: "bw", Password: pw}},
	}))
	r := testbed.StartRedis(t)
	for _, name := range []string{"moderation.actions", "moderation.actions.gated", "moderation.actions.held", "moderation.actions.dead-letter", "moderation.audit", "moderation.actions.reversals"} {
		k.CreateTopic(t, name, 2)
	}
	k.CreateCompactedTopic(t, "breakwater.state", 1)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	yaml := fmt.Sprintf(`kafka:
  brokers: [%s]
  tls: {ca_file: %s}
  sasl: {mechanism: scram-sha-256, username: bw}
redis:
  addr: %s
alerts:
  receivers: [{name: oncall, type: alertmanager, url: "https://am.example.com/x"}]
admin:
  tokens: [{name: alice, role: operator, token_sha256: %s}]
`, strings.Join(k.Addrs(), ","), pki.CAFile(), r.Addr(), strings.Repeat("b", 64))
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BREAKWATER_KAFKA_SASL_PASSWORD", pw)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	// The rejected topic is missing.
	if code := runCheck(ctx, []string{"--config", cfg}, &out, &errb); code != 1 {
		t.Errorf("check with a missing topic exited %d; want 1\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "topic moderation.actions.rejected") || !strings.Contains(out.String(), "FAIL") {
		t.Errorf("check output does not name the missing topic:\n%s", out.String())
	}
	k.CreateTopic(t, "moderation.actions.rejected", 2)
	out.Reset()
	if code := runCheck(ctx, []string{"--config", cfg}, &out, &errb); code != 0 {
		t.Errorf("check of a complete setup exited %d; want 0\n%s%s", code, out.String(), errb.String())
	}
	t.Setenv("BREAKWATER_KAFKA_SASL_PASSWORD", "wrong-"+pw)
	out.Reset()
	if code := runCheck(ctx, []string{"--config", cfg}, &out, &errb); code != 1 || !strings.Contains(out.String(), "SASL authentication failed") {
		t.Errorf("check with a wrong password exited %d; want 1 naming the SASL failure\n%s", code, out.String())
	}
	if strings.Contains(out.String()+errb.String(), pw) {
		t.Errorf("check printed the SASL password:\n%s%s", out.String(), errb.String())
	}
	if code := runCheck(ctx, nil, &out, &errb); code != 2 {
		t.Errorf("check without --config exited %d; want 2", code)
	}
}

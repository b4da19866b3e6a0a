package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/breakwater/breakwater/daemon"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/wire"
)

// aclPassword is the password of the Redis ACL users the permission tests
// make.
const aclPassword = "e2e-acl-user-password"

// aclRedis starts a redis-server whose default user is the tests' admin,
// adds the ACL user user with rules, and returns the server and the bed
// option that makes the daemon log in as user (the bed's own client stays
// the admin).
func aclRedis(t *testing.T, user string, rules ...string) (*testbed.Redis, bedOption) {
	t.Helper()
	r := testbed.StartRedis(t)
	setUser(t, r, user, rules...)
	yaml := fmt.Sprintf("  addr: %s\n  username: %s\n  password: %s\n", r.Addr(), user, aclPassword)
	return r, withRedis(yaml, func(t testing.TB) redis.UniversalClient { return r.Client(t) })
}

// setUser creates or changes the ACL user user on r.
func setUser(t *testing.T, r *testbed.Redis, user string, rules ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := []any{"acl", "setuser", user, "reset", "on", ">" + aclPassword}
	for _, rule := range rules {
		args = append(args, rule)
	}
	if err := r.Client(t).Do(ctx, args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER %s %v: %v", user, rules, err)
	}
}

// leastRules are the ACL rules of a user allowed what Breakwater needs and
// nothing more.
func leastRules(t *testing.T) []string {
	t.Helper()
	keys, err := wire.NewKeys(keyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(keys.ACLRules(false))
}

// runRefused runs the daemon with the bed's configuration and requires it
// to stop at start, before the deadline, with an error that says each of
// want; it returns the error.
func runRefused(t *testing.T, b *bed, want ...string) error {
	t.Helper()
	var logs logBuffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), &logs, zap.DebugLevel))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	ready := false
	err := daemon.Run(ctx, daemon.Options{Config: b.config(t, spikeSettings), Logger: log, Ready: func(daemon.Addrs) { ready = true }})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("daemon.Run = %v after %v; want an error at start\n%s", err, time.Since(start), logs.String())
	}
	if ready {
		t.Errorf("the daemon became ready before it stopped: %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("daemon.Run = %v; want it to say %q", err, w)
		}
	}
	if strings.Contains(err.Error()+logs.String(), aclPassword) {
		t.Errorf("the password appears in the error or the logs")
	}
	t.Logf("run stopped after %v: %v", time.Since(start).Round(time.Millisecond), err)
	return err
}

// runCheck runs `breakwater check` on the bed's configuration and requires
// it to exit 1 with a report that says each of want.
func runCheck(t *testing.T, b *bed, want ...string) {
	t.Helper()
	runBinary(t, b, "check", want...)
}

// runBinaryRefused runs `breakwater run`, the built binary, on the bed's
// configuration and requires it to exit 1 at start, within a minute, with
// output that says each of want.
func runBinaryRefused(t *testing.T, b *bed, want ...string) {
	t.Helper()
	runBinary(t, b, "run", want...)
}

// runBinary runs the built binary's command sub on the bed's configuration
// and requires it to exit 1 with output that says each of want and not
// the password.
func runBinary(t *testing.T, b *bed, sub string, want ...string) {
	t.Helper()
	bin := testbed.BuildBinary(t, "github.com/breakwater/breakwater/cmd/breakwater")
	path := filepath.Join(t.TempDir(), "breakwater.yaml")
	if err := os.WriteFile(path, []byte(b.yaml(spikeSettings)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, bin, sub, "--config", path).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || ctx.Err() != nil {
		t.Fatalf("breakwater %s: %v after %v; want exit status 1\n%s", sub, err, time.Since(start), out)
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("breakwater %s does not say %q:\n%s", sub, w, out)
		}
	}
	for _, secret := range []string{aclPassword, saslPassword} {
		if strings.Contains(string(out), secret) {
			t.Errorf("breakwater %s printed a password:\n%s", sub, out)
		}
	}
	t.Logf("breakwater %s exited 1 after %v", sub, time.Since(start).Round(time.Millisecond))
}

// TestRedisPermissionRefusedAtStart: an ACL user that cannot touch
// Breakwater's keys, or may not run EVALSHA, fails `breakwater check` and
// stops the daemon at start, each naming the permission and the ACL
// SETUSER command that grants it, instead of running without deciding
// anything: daemon.Run returns the error, and `breakwater run` exits 1.
func TestRedisPermissionRefusedAtStart(t *testing.T) {
	tests := []struct {
		name  string
		rules []string
		want  []string
	}{
		{"no key access", []string{"~{other}*", "+@all"}, []string{"keys", "ACL SETUSER bw-user ~{" + keyPrefix + "}*"}},
		{"no evalsha", append([]string{"~{" + keyPrefix + "}*", "+@all"}, "-evalsha"), []string{"evalsha", "ACL SETUSER bw-user +evalsha"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, opt := aclRedis(t, "bw-user", tt.rules...)
			b := newBed(t, 1, opt)
			runCheck(t, b, append([]string{"redis permissions", "FAIL"}, tt.want...)...)
			runRefused(t, b, tt.want...)
			runBinaryRefused(t, b, tt.want...)
		})
	}
}

// TestKafkaPermissionRefusedAtStart: a Kafka principal without Write on the
// held topic fails `breakwater check` and stops the daemon at start
// (daemon.Run and `breakwater run`), each naming the topic and the
// kafka-acls.sh command that grants it.
func TestKafkaPermissionRefusedAtStart(t *testing.T) {
	pki := testbed.NewPKI(t)
	pwFile := filepath.Join(t.TempDir(), "sasl-password")
	if err := os.WriteFile(pwFile, []byte(saslPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const user = "bw-no-held"
	yaml := fmt.Sprintf("  tls:\n    ca_file: %s\n  sasl:\n    mechanism: scram-sha-512\n    username: %s\n    password_file: %s\n",
		pki.CAFile(), user, pwFile)
	b := newBed(t, 1, withKafka(yaml, testbed.Secured(testbed.KafkaSecurity{
		Server: pki.ServerTLS(t, false),
		Client: pki.ClientTLS(t),
		Users:  []testbed.SASLUser{{Method: "SCRAM-SHA-512", User: saslUser, Password: saslPassword}},
		Restricted: []testbed.RestrictedUser{{
			SASLUser: testbed.SASLUser{Method: "SCRAM-SHA-512", User: user, Password: saslPassword},
			ACLs:     testbed.AllowAll(testbed.DenyTopic(testTopics.Held, kmsg.ACLOperationWrite)),
		}},
	})))
	want := []string{"write " + testTopics.Held, "--allow-principal User:" + user + " --operation Write --topic " + testTopics.Held}
	runCheck(t, b, append([]string{"FAIL"}, want...)...)
	runRefused(t, b, want...)
	runBinaryRefused(t, b, want...)
}

// TestRedisLeastPrivilege runs two replicas through a trip, its alert, the
// review index and an approval under an ACL user allowed exactly
// wire.RedisCommands on the hash tag's keys: nothing is refused (the
// server's ACL LOG stays empty), and every command the server ran is in
// the list, so the list the check probes and the ACL SETUSER it prints
// are what the daemon uses.
func TestRedisLeastPrivilege(t *testing.T) {
	r, opt := aclRedis(t, "bw-least", leastRules(t)...)
	b := newBed(t, 4, opt)
	admin := r.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	reviewFlow(t, b)

	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	denials, err := admin.Do(ctx, "acl", "log").Slice()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range denials {
		t.Errorf("Redis refused the daemon: %v", d)
	}
	info, err := admin.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, c := range wire.RedisCommands {
		listed = append(listed, c.Name)
	}
	// What the tests' admin client itself sends.
	admins := []string{"hello", "client|setinfo", "auth", "info", "config|resetstat", "acl|log", "acl|setuser", "command|docs", "command"}
	var ran []string
	for _, line := range strings.Split(info, "\n") {
		name, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(strings.TrimSpace(line), "cmdstat_") {
			continue
		}
		ran = append(ran, name)
		if !slices.Contains(listed, name) && !slices.Contains(admins, name) {
			t.Errorf("the server ran %q, which is not in wire.RedisCommands", name)
		}
	}
	t.Logf("commands run: %v", ran)
}

// TestRedisPermissionRevokedAtRunTime: EVALSHA is taken from the daemon's
// user while it runs. The next batch's NOPERM is not retried as a rate
// store outage: the daemon stops with an error naming the refused command
// and what to grant, without pausing.
func TestRedisPermissionRevokedAtRunTime(t *testing.T) {
	r, opt := aclRedis(t, "bw-revoked", leastRules(t)...)
	b := newBed(t, 2, opt)
	recs, _ := spikeInput(t, b)
	var logs logBuffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), &logs, zap.InfoLevel))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{Config: b.config(t, spikeSettings), Logger: log,
			Ready: func(daemon.Addrs) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("daemon.Run returned before it was ready: %v\n%s", err, logs.String())
	}
	b.k.Produce(t, testTopics.Input, recs[:100]...)
	alive := func() error { return nil }
	waitFor(t, 60*time.Second, func() string { return "the first batches committed" }, alive, func() bool { return b.committedSum(t) >= 100 })

	setUser(t, r, "bw-revoked", append(leastRules(t), "-evalsha", "-eval")...)
	b.k.Produce(t, testTopics.Input, recs[100:200]...)
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the daemon still runs 60s after its user lost EVALSHA\n%s", logs.String())
	}
	if err == nil || !strings.Contains(err.Error(), "NOPERM") || !strings.Contains(err.Error(), "ACL SETUSER bw-revoked on") {
		t.Errorf("daemon.Run = %v; want the NOPERM and the ACL SETUSER that grants it", err)
	}
	if strings.Contains(logs.String(), "pausing consumption") {
		t.Errorf("the refusal was treated as an outage:\n%s", logs.String())
	}
	if got := b.committedSum(t); got > 100 {
		t.Errorf("%d input offsets committed; want the 100 before the refusal", got)
	}
	t.Logf("stopped: %v", err)
}

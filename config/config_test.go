package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// secret is the Redis password used by the tests that check it never leaks.
const secret = "hunter2-s3cr3t"

// fixtures returns the contents of testdata/<dir>/*.yaml by file name.
func fixtures(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no fixtures in testdata/%s", dir)
	}
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = data
	}
	return out
}

func sortedNames(m map[string][]byte) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func TestParseGood(t *testing.T) {
	files := fixtures(t, "good")
	for _, name := range sortedNames(files) {
		t.Run(name, func(t *testing.T) {
			c, err := Parse(files[name])
			if err != nil {
				t.Fatalf("Parse(%s) = %v; want no error", name, err)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Parse(%s).Validate() = %v; want nil", name, err)
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	files := fixtures(t, "bad")
	for _, name := range sortedNames(files) {
		t.Run(name, func(t *testing.T) {
			data := files[name]
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok || strings.TrimSpace(want) == "" {
				t.Fatalf("%s: first line is %q; want a \"# want: <error substring>\" comment", name, first)
			}
			c, err := Parse(data)
			if err == nil {
				t.Fatalf("Parse(%s) = %+v, nil; want an error containing %q", name, c, want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Parse(%s) = %v; want an error containing %q", name, err, want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Parse(%s) = %v; the error shows the secret", name, err)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	def := Default()
	if err := def.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v; want nil", err)
	}
	for _, in := range []string{"", "\n", "# nothing\n", "---\n", "~\n", "{}\n"} {
		got, err := Parse([]byte(in))
		if err != nil {
			t.Errorf("Parse(%q) = %v; want Default()", in, err)
			continue
		}
		if !reflect.DeepEqual(got, def) {
			t.Errorf("Parse(%q) = %+v; want Default() = %+v", in, got, def)
		}
	}
	// Every call returns fresh maps.
	a, b := Default(), Default()
	a.Actions["warn"] = ActionType{Weight: 9, Severity: SeverityHigh}
	a.StoreUnavailable[SeverityLow] = OutageHold
	if b.Actions["warn"].Weight != 0.5 || b.StoreUnavailable[SeverityLow] != OutagePause {
		t.Errorf("Default() shares its maps between calls")
	}
	// A few of the documented defaults, spelled out.
	checks := []struct {
		name     string
		got, wnt any
	}{
		{"kafka.batch_wait", def.Kafka.BatchWait, 10 * time.Millisecond},
		{"kafka.topics.dead_letter", def.Kafka.Topics.DeadLetter, "moderation.actions.dead-letter"},
		{"redis.decision_ttl", def.Redis.DecisionTTL, 24 * time.Hour},
		{"redis.min_replicas_acked", def.Redis.MinReplicasAcked, 0},
		{"breakers.defaults.probation_scale", def.Breakers.Defaults.ProbationScale, 0.5},
		{"breakers.global.min_actions", def.Breakers.Global.MinActions, 500.0},
		{"actions.ban_account", def.Actions["ban_account"], ActionType{Weight: 10, Severity: SeverityHigh, Irreversible: true}},
		{"default_action", def.DefaultAction, ActionType{Weight: 1, Severity: SeverityMedium}},
		{"demo.incident_after", def.Demo.IncidentAfter, 20 * time.Second},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.wnt) {
			t.Errorf("Default() %s = %v; want %v", c.name, c.got, c.wnt)
		}
	}
	if def.EmbeddedKafka() != true || def.EmbeddedRedis() != true {
		t.Errorf("Default() embedded kafka, redis = %v, %v; want true, true", def.EmbeddedKafka(), def.EmbeddedRedis())
	}
}

// TestExample checks that example.yaml parses, that it documents the true
// defaults (everything but its rules equals Default()), that every key of
// every struct appears in it and that every environment variable is named.
func TestExample(t *testing.T) {
	data, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(example.yaml) = %v; want no error", err)
	}
	if len(c.Breakers.Rules) < 2 {
		t.Errorf("Parse(example.yaml) has %d rules; want at least 2", len(c.Breakers.Rules))
	}
	withActions := 0
	for _, r := range c.Breakers.Rules {
		if len(r.Actions) > 0 {
			withActions++
		}
	}
	if withActions < 2 {
		t.Errorf("Parse(example.yaml) has %d rules with per-action thresholds; want at least 2", withActions)
	}
	c.Breakers.Rules = nil
	if def := Default(); !reflect.DeepEqual(c, def) {
		t.Errorf("Parse(example.yaml) without its rules = %+v; want Default() = %+v", c, def)
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, path := range structKeyPaths(reflect.TypeOf(Config{}), "") {
		if !hasPath(doc.Content[0], strings.Split(path, ".")) {
			t.Errorf("example.yaml does not set %s", path)
		}
	}
	for _, env := range []string{EnvKafkaBrokers, EnvKafkaGroupID, EnvRedisAddr, EnvRedisUsername, EnvRedisPassword, EnvRedisSentinelPassword, EnvKafkaSASLPassword, EnvHTTPListen} {
		if !strings.Contains(string(data), env) {
			t.Errorf("example.yaml does not name %s", env)
		}
	}
	// Every key line has a comment somewhere in the lines before it within
	// its block: at least, every top-level key is preceded by a comment or
	// a blank line and a comment.
	comment := regexp.MustCompile(`(?m)^#`)
	if n := len(comment.FindAllString(string(data), -1)); n < 20 {
		t.Errorf("example.yaml has %d top-level comment lines; want it annotated", n)
	}
}

// structKeyPaths lists the dotted key paths of t that are reachable without
// going through a map or a list.
func structKeyPaths(t reflect.Type, prefix string) []string {
	var paths []string
	for name, ft := range yamlFields(t) {
		p := join(prefix, name)
		paths = append(paths, p)
		if ft.Kind() == reflect.Struct {
			paths = append(paths, structKeyPaths(ft, p)...)
		}
	}
	sort.Strings(paths)
	return paths
}

// hasPath reports whether mapping node n has the nested keys path.
func hasPath(n *yaml.Node, path []string) bool {
	if len(path) == 0 {
		return true
	}
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == path[0] {
			return hasPath(n.Content[i+1], path[1:])
		}
	}
	return false
}

func TestInheritance(t *testing.T) {
	const base = `
breakers:
  defaults:
    window: 2m
    max_actions: 800
    baseline: 90m
    factor: 4
    min_actions: 30
    auto_close_after: 15m
    probation: 10m
    probation_scale: 0.25
    disabled: true
  rules:
    spam:
      max_actions: 5000
      actions:
        ban_account:
          max_actions: 100
        warn: {}
    quiet:
      disabled: true
      window: 30s
      actions:
        remove_pin:
          factor: 2
`
	c, err := Parse([]byte(base))
	if err != nil {
		t.Fatalf("Parse(base) = %v; want no error", err)
	}
	defaults := c.Breakers.Defaults
	tests := []struct {
		name string
		got  Thresholds
		want Thresholds
	}{
		{
			name: "rule with only max_actions inherits the rest but not disabled",
			got:  c.Breakers.Rules["spam"].Thresholds,
			want: Thresholds{
				Window: 2 * time.Minute, MaxActions: 5000, Baseline: 90 * time.Minute, Factor: 4, MinActions: 30,
				AutoCloseAfter: 15 * time.Minute, Probation: 10 * time.Minute, ProbationScale: 0.25, Evidence: DefaultEvidence(),
			},
		},
		{
			name: "action inherits from its rule's resolved thresholds",
			got:  c.Breakers.Rules["spam"].Actions["ban_account"],
			want: Thresholds{
				Window: 2 * time.Minute, MaxActions: 100, Baseline: 90 * time.Minute, Factor: 4, MinActions: 30,
				AutoCloseAfter: 15 * time.Minute, Probation: 10 * time.Minute, ProbationScale: 0.25, Evidence: DefaultEvidence(),
			},
		},
		{
			name: "empty action entry equals its rule",
			got:  c.Breakers.Rules["spam"].Actions["warn"],
			want: c.Breakers.Rules["spam"].Thresholds,
		},
		{
			name: "disabled rule keeps its own window",
			got:  c.Breakers.Rules["quiet"].Thresholds,
			want: Thresholds{
				Window: 30 * time.Second, MaxActions: 800, Baseline: 90 * time.Minute, Factor: 4, MinActions: 30,
				AutoCloseAfter: 15 * time.Minute, Probation: 10 * time.Minute, ProbationScale: 0.25, Disabled: true, Evidence: DefaultEvidence(),
			},
		},
		{
			name: "action of a disabled rule is not disabled",
			got:  c.Breakers.Rules["quiet"].Actions["remove_pin"],
			want: Thresholds{
				Window: 30 * time.Second, MaxActions: 800, Baseline: 90 * time.Minute, Factor: 2, MinActions: 30,
				AutoCloseAfter: 15 * time.Minute, Probation: 10 * time.Minute, ProbationScale: 0.25, Evidence: DefaultEvidence(),
			},
		},
		{
			name: "unconfigured rule gets the defaults, disabled included",
			got:  c.RuleThresholds("unknown"),
			want: defaults,
		},
		{
			name: "global keeps its own defaults, not breakers.defaults",
			got:  c.Breakers.Global.Thresholds,
			want: Default().Breakers.Global.Thresholds,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("Parse(base): got %+v; want %+v", tt.got, tt.want)
			}
		})
	}
}

func TestActionsMerge(t *testing.T) {
	c, err := Parse(fixtures(t, "good")["actions.yaml"])
	if err != nil {
		t.Fatalf("Parse(actions.yaml) = %v; want no error", err)
	}
	tests := []struct {
		name   string
		action string
		want   ActionType
	}{
		{"built-in keeps severity and irreversible when only weight is set", "ban_account", ActionType{Weight: 20, Severity: SeverityHigh, Irreversible: true}},
		{"built-in keeps weight when only severity is set", "remove_pin", ActionType{Weight: 1, Severity: SeverityMedium}},
		{"built-in not mentioned is kept", "suspend_account", ActionType{Weight: 5, Severity: SeverityHigh}},
		{"new entry merges over default_action", "shadowban", ActionType{Weight: 2, Severity: SeverityHigh}},
		{"unknown type gets default_action", "never_heard_of", ActionType{Weight: 2, Severity: SeverityMedium}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.ActionType(tt.action); got != tt.want {
				t.Errorf("ActionType(%q) = %+v; want %+v", tt.action, got, tt.want)
			}
		})
	}

	// An explicit irreversible: false is honoured.
	c, err = Parse([]byte("actions:\n  ban_account:\n    irreversible: false\n"))
	if err != nil {
		t.Fatalf("Parse(irreversible: false) = %v; want no error", err)
	}
	if got, want := c.ActionType("ban_account"), (ActionType{Weight: 10, Severity: SeverityHigh}); got != want {
		t.Errorf("ActionType(ban_account) = %+v; want %+v", got, want)
	}
}

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want func(*Config)
	}{
		{"nothing set", nil, func(*Config) {}},
		{"brokers are split and trimmed", map[string]string{EnvKafkaBrokers: " k1:9092 , k2:9092,k3:9092 "}, func(c *Config) {
			c.Kafka.Brokers = []string{"k1:9092", "k2:9092", "k3:9092"}
		}},
		{"empty broker entries are kept for Validate", map[string]string{EnvKafkaBrokers: "k1:9092,,"}, func(c *Config) {
			c.Kafka.Brokers = []string{"k1:9092", "", ""}
		}},
		{"empty brokers variable is ignored", map[string]string{EnvKafkaBrokers: "  "}, func(*Config) {}},
		{"group id", map[string]string{EnvKafkaGroupID: " bw-2 "}, func(c *Config) { c.Kafka.GroupID = "bw-2" }},
		{"redis addr", map[string]string{EnvRedisAddr: "redis:6379"}, func(c *Config) { c.Redis.Addr = "redis:6379" }},
		{"empty redis addr is ignored", map[string]string{EnvRedisAddr: ""}, func(*Config) {}},
		{"redis credentials are taken as given", map[string]string{EnvRedisUsername: " bw ", EnvRedisPassword: " p w "}, func(c *Config) {
			c.Redis.Username = " bw "
			c.Redis.Password = " p w "
		}},
		{"http listen", map[string]string{EnvHTTPListen: "127.0.0.1:9000"}, func(c *Config) { c.HTTP.Listen = "127.0.0.1:9000" }},
		{"unrelated variables are ignored", map[string]string{"BREAKWATER_LOG_LEVEL": "debug", "HOME": "/root"}, func(*Config) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Default()
			got.ApplyEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ApplyEnv(%v) = %+v; want %+v", tt.env, got, want)
			}
		})
	}
	c := Default()
	c.ApplyEnv(nil)
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("ApplyEnv(nil) changed the configuration")
	}
}

func TestLoadWithEnv(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "kafka:\n  brokers: [file:9092]\nredis:\n  addr: file:6379\n")
	badBroker := write("bad.yaml", "kafka:\n  brokers: [not-a-broker]\n")
	typo := write("typo.yaml", "kafak: {}\n")
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	tests := []struct {
		name    string
		path    string
		env     map[string]string
		brokers []string
		addr    string
		wantErr string
	}{
		{name: "no path means defaults", path: ""},
		{name: "file values", path: good, brokers: []string{"file:9092"}, addr: "file:6379"},
		{
			name: "env overrides file", path: good, env: map[string]string{EnvKafkaBrokers: "env:9092", EnvRedisAddr: "env:6379"},
			brokers: []string{"env:9092"}, addr: "env:6379",
		},
		{
			name: "env replaces an invalid file value before validation", path: badBroker, env: map[string]string{EnvKafkaBrokers: "env:9092"},
			brokers: []string{"env:9092"},
		},
		{name: "invalid file value", path: badBroker, wantErr: badBroker + " (with environment overrides): kafka.brokers[0]: must be host:port"},
		{name: "invalid env value", path: "", env: map[string]string{EnvKafkaBrokers: "a:1,"}, wantErr: "kafka.brokers[1]: must not be empty"},
		{name: "unknown key names the file", path: typo, wantErr: typo + ": line 1: kafak: unknown key"},
		{name: "missing file names the path", path: filepath.Join(dir, "missing.yaml"), wantErr: filepath.Join(dir, "missing.yaml")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadWithEnv(tt.path, env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadWithEnv(%q) = %v; want an error containing %q", tt.path, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadWithEnv(%q) = %v; want no error", tt.path, err)
			}
			if !reflect.DeepEqual(c.Kafka.Brokers, tt.brokers) || c.Redis.Addr != tt.addr {
				t.Errorf("LoadWithEnv(%q) brokers, addr = %q, %q; want %q, %q", tt.path, c.Kafka.Brokers, c.Redis.Addr, tt.brokers, tt.addr)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	c, err := Load("example.yaml")
	if err != nil {
		t.Fatalf("Load(example.yaml) = %v; want no error", err)
	}
	if _, ok := c.Breakers.Rules["spam-v2"]; !ok {
		t.Errorf("Load(example.yaml) has no rule spam-v2")
	}
	bad := filepath.Join("testdata", "bad", "factor_half.yaml")
	if _, err := Load(bad); err == nil || !strings.HasPrefix(err.Error(), bad+": ") {
		t.Errorf("Load(%s) = %v; want an error starting with the path", bad, err)
	}
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, err = Load(missing)
	if err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(%s) = %v; want a not-exist error naming the path", missing, err)
	}
}

func TestRedacted(t *testing.T) {
	tests := []struct {
		name, password, want string
	}{
		{"set password is replaced", secret, "REDACTED"},
		{"empty password stays empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(fixtures(t, "good")["rules.yaml"])
			if err != nil {
				t.Fatal(err)
			}
			c.Redis.Password = tt.password
			c.Kafka.Brokers = []string{"k:9092"}
			r := c.Redacted()
			if r.Redis.Password != tt.want {
				t.Errorf("Redacted().Redis.Password = %q; want %q", r.Redis.Password, tt.want)
			}
			if c.Redis.Password != tt.password {
				t.Errorf("Redacted() changed the original password to %q", c.Redis.Password)
			}
			r.Redis.Password = c.Redis.Password
			if !reflect.DeepEqual(r, c) {
				t.Errorf("Redacted() = %+v; want a copy of %+v", r, c)
			}
			// A deep copy: changing the copy leaves the original alone.
			r.Kafka.Brokers[0] = "changed:1"
			r.Actions["warn"] = ActionType{}
			r.StoreUnavailable[SeverityLow] = OutageHold
			r.Breakers.Rules["spam-v2"].Actions["ban_account"] = Thresholds{}
			if c.Kafka.Brokers[0] != "k:9092" || c.Actions["warn"].Weight != 0.5 ||
				c.StoreUnavailable[SeverityLow] != OutagePause || c.Breakers.Rules["spam-v2"].Actions["ban_account"].MaxActions != 100 {
				t.Errorf("Redacted() shares slices or maps with the original")
			}
		})
	}
}

// TestSecretNotPrinted checks that neither errors nor the usual ways of
// printing a Config show the Redis password.
func TestSecretNotPrinted(t *testing.T) {
	c := Default()
	c.Redis.Password = secret
	c.Redis.Addr = "redis:6379"
	c.Redis.Username = "bw"
	c.Redis.SentinelPassword = secret + "\n"
	c.Kafka.SASL = SASL{Mechanism: "scram", Username: "bw", Password: secret + "\n"}
	c.Kafka.BatchSize = 0
	outputs := map[string]string{
		"Sprint of SASL":   fmt.Sprint(c.Kafka.SASL),
		"%#v of SASL":      fmt.Sprintf("%#v", c.Kafka.SASL),
		"Redacted":         fmt.Sprintf("%+v", c.Redacted().Kafka.SASL.Password+c.Redacted().Redis.SentinelPassword),
		"%v":               fmt.Sprintf("%v", c),
		"%+v":              fmt.Sprintf("%+v", c),
		"%#v":              fmt.Sprintf("%#v", c),
		"Sprint of Redis":  fmt.Sprint(c.Redis),
		"Sprint of *Redis": fmt.Sprint(&c.Redis),
		"Validate":         fmt.Sprint(c.Validate()),
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs["json"] = string(j)
	for _, in := range []string{
		"redis:\n  password: [" + secret + "]\n",
		"redis:\n  password: {" + secret + ": 1}\n",
		"redis:\n  addr: redis://:" + secret + "@redis:6379\n",
		"redis:\n  db: " + secret + "\n",
		"redis:\n  timeout: " + secret + "\n",
		"redis:\n  password: " + secret + "\n  " + secret + ": 1\n",
		"kafka:\n  sasl: {mechanism: plain, username: bw, password: [" + secret + "]}\n",
		"kafka:\n  sasl: {mechanism: nope, username: bw, password: " + secret + "}\n",
		"kafka:\n  sasl: {mechanism: plain, password: " + secret + ", password_file: /x}\n",
		"redis:\n  sentinel_addrs: [" + secret + "]\n  sentinel_password: " + secret + "\n",
		"redis:\n  addrs: [\"redis://:" + secret + "@r:1\"]\n",
	} {
		_, err := Parse([]byte(in))
		if err == nil {
			t.Errorf("Parse(%q) = nil error; want one", in)
			continue
		}
		outputs["Parse "+in] = err.Error()
	}
	for name, out := range outputs {
		// The only allowed appearance is as an unknown key name, which is
		// the user's own typo, not a value.
		if strings.Contains(out, secret) && !strings.Contains(out, secret+": unknown key") {
			t.Errorf("%s shows the secret: %s", name, out)
		}
	}
	if !strings.Contains(outputs["%+v"], "REDACTED") {
		t.Errorf("%%+v of a Config = %s; want the password shown as REDACTED", outputs["%+v"])
	}
}

func TestAccessors(t *testing.T) {
	c, err := Parse(fixtures(t, "good")["rules.yaml"])
	if err != nil {
		t.Fatal(err)
	}
	spam := c.Breakers.Rules["spam-v2"].Thresholds
	t.Run("RuleThresholds", func(t *testing.T) {
		for _, tt := range []struct {
			rule string
			want Thresholds
		}{
			{"spam-v2", spam},
			{"nudity-v1", c.Breakers.Rules["nudity-v1"].Thresholds},
			{"empty-rule", c.Breakers.Defaults},
			{"not-configured", c.Breakers.Defaults},
			{"", c.Breakers.Defaults},
		} {
			if got := c.RuleThresholds(tt.rule); got != tt.want {
				t.Errorf("RuleThresholds(%q) = %+v; want %+v", tt.rule, got, tt.want)
			}
		}
		if !c.RuleThresholds("nudity-v1").Disabled {
			t.Errorf("RuleThresholds(nudity-v1).Disabled = false; want true")
		}
	})
	t.Run("ActionThresholds", func(t *testing.T) {
		ban := spam
		ban.MaxActions = 100
		for _, tt := range []struct {
			rule, action string
			want         Thresholds
			ok           bool
		}{
			{"spam-v2", "ban_account", ban, true},
			{"spam-v2", "remove_pin", spam, true},
			{"spam-v2", "warn", Thresholds{}, false},
			{"nudity-v1", "ban_account", Thresholds{}, false},
			{"not-configured", "ban_account", Thresholds{}, false},
		} {
			got, ok := c.ActionThresholds(tt.rule, tt.action)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ActionThresholds(%q, %q) = %+v, %v; want %+v, %v", tt.rule, tt.action, got, ok, tt.want, tt.ok)
			}
		}
	})
	t.Run("hand-built config resolves on the fly", func(t *testing.T) {
		h := Default()
		h.Breakers.Rules = map[string]Rule{"r": {
			Thresholds: Thresholds{MaxActions: 7},
			Actions:    map[string]Thresholds{"warn": {Factor: 2}},
		}}
		want := h.Breakers.Defaults
		want.MaxActions = 7
		if got := h.RuleThresholds("r"); got != want {
			t.Errorf("RuleThresholds(r) = %+v; want %+v", got, want)
		}
		want.Factor = 2
		if got, ok := h.ActionThresholds("r", "warn"); got != want || !ok {
			t.Errorf("ActionThresholds(r, warn) = %+v, %v; want %+v, true", got, ok, want)
		}
	})
	t.Run("OutagePolicy", func(t *testing.T) {
		o, err := Parse(fixtures(t, "good")["actions.yaml"])
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			s    Severity
			want Outage
		}{
			{SeverityHigh, OutagePause},
			{SeverityMedium, OutageHold},
			{SeverityLow, OutagePass},
			{"unknown", OutagePause},
		} {
			if got := o.OutagePolicy(tt.s); got != tt.want {
				t.Errorf("OutagePolicy(%q) = %q; want %q", tt.s, got, tt.want)
			}
		}
		var empty Config
		if got := empty.OutagePolicy(SeverityLow); got != OutagePause {
			t.Errorf("Config{}.OutagePolicy(low) = %q; want pause", got)
		}
	})
	t.Run("Embedded", func(t *testing.T) {
		p, err := Parse(fixtures(t, "good")["production.yaml"])
		if err != nil {
			t.Fatal(err)
		}
		if p.EmbeddedKafka() || p.EmbeddedRedis() {
			t.Errorf("production.yaml: EmbeddedKafka, EmbeddedRedis = %v, %v; want false, false", p.EmbeddedKafka(), p.EmbeddedRedis())
		}
	})
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Kafka.BatchSize = 0
	c.Kafka.Topics.Held = c.Kafka.Topics.Gated
	c.Redis.KeyPrefix = "a b"
	c.Breakers.Rules = map[string]Rule{"spam-v2": {Thresholds: Thresholds{Window: 0, Factor: 0.5, ProbationScale: 1}}}
	c.Log.Level = "loud"
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil; want errors")
	}
	for _, want := range []string{
		"kafka.batch_size: must be between 1 and 10000, got 0",
		"kafka.topics.held: must differ from kafka.topics.gated",
		"redis.key_prefix: must not contain whitespace",
		`breakers.rules["spam-v2"].window: must be between 10ms and 24h, got 0s`,
		`breakers.rules["spam-v2"].factor: must be 0 (off) or at least 1, got 0.5`,
		`log.level: must be debug, info, warn or error, got "loud"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; want it to contain %q", err, want)
		}
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) < 6 {
		t.Errorf("Validate() = %v; want errors.Join of at least 6 errors", err)
	}
}

// trickySeeds are inputs whose keys and values are awkward to re-encode.
var trickySeeds = map[string]string{
	"merge-looking rule id": "breakers:\n  rules:\n    \"<<\": {max_actions: 5}\n",
	"null-looking rule ids": "breakers:\n  rules:\n    \"~\": {max_actions: 5}\n    \"null\": {}\n",
	"long rule id":          "breakers:\n  rules:\n    " + strings.Repeat("x", 300) + ": {max_actions: 5}\n",
	"quotes and escapes":    "breakers:\n  rules:\n    \"a\\\\n'\\\"b\": {max_actions: 5}\n",
	"binary rule id":        "breakers:\n  rules:\n    ? !!binary /w==\n    : {max_actions: 5}\n",
	"binary username":       "redis:\n  username: !!binary /w==\n  password: \" p\\u00e9 \\u2028x \"\n",
	"denormal numbers":      "breakers:\n  defaults:\n    max_actions: 1e-320\n    probation_scale: 5e-324\n",
	"tiny weight":           "actions:\n  x: {weight: 1e-300}\n",
	"yaml-looking strings":  "kafka:\n  group_id: \"- x: [\"\n  brokers: [\"[::1]:1\"]\n",
	"typed-looking keys":    "breakers:\n  rules:\n    \"yes\": {}\n    \"1\": {}\n    \"1.0\": {}\n    \"0x1\": {}\n    \".inf\": {}\n",
	"indicator keys":        "breakers:\n  rules:\n    \"=\": {}\n    \"!\": {}\n    \"&a\": {}\n    \"*a\": {}\n    \"? \": {}\n",
	"unicode line breaks":   "breakers:\n  rules:\n    \"\\u2028\": {}\n    \"\\uFEFF\": {}\n    \"\\u2029\": {}\n",
}

// TestRoundTrip checks that awkward accepted configurations survive
// yaml.Marshal and Parse unchanged, as FuzzParse does for random input.
func TestRoundTrip(t *testing.T) {
	for name, in := range trickySeeds {
		t.Run(name, func(t *testing.T) {
			c, err := Parse([]byte(in))
			if err != nil {
				t.Fatalf("Parse(%q) = %v; want no error", in, err)
			}
			out, err := yaml.Marshal(c)
			if err != nil {
				t.Fatalf("yaml.Marshal(Parse(%q)) = %v", in, err)
			}
			again, err := Parse(out)
			if err != nil || !reflect.DeepEqual(again, c) {
				t.Errorf("Parse(%q) = %+v, %v; want %+v\nmarshalled:\n%s", out, again, err, c, out)
			}
		})
	}
}

// FuzzParse checks that Parse never panics, that its errors say something,
// and that what it accepts is valid and survives a YAML round trip.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"good", "bad"} {
		for _, data := range fixtures(f, dir) {
			f.Add(data)
		}
	}
	example, err := os.ReadFile("example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, in := range trickySeeds {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatalf("Parse(%q) returned an error with an empty message", data)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse(%q) = %+v; Validate() = %v; want nil", data, c, err)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("yaml.Marshal(Parse(%q)) = %v", data, err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(%q))) = %v; want no error\nmarshalled:\n%s", data, err, out)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("Parse(Marshal(Parse(%q))) = %+v; want %+v\nmarshalled:\n%s", data, again, c, out)
		}
	})
}

// FuzzStrings puts arbitrary strings in the free-form fields and checks
// that whatever Validate accepts survives yaml.Marshal and Parse unchanged:
// FuzzParse rarely produces the escapes that trip the YAML encoder.
func FuzzStrings(f *testing.F) {
	f.Add("breakwater", "bw", "p@ss word", "spam-v2", "ban_account")
	f.Add("\ta\nb", "", "hunter2\n", "a\u2028b", "~")
	f.Add("- x: [", "\ufeff", "\"'", "<<", "? ")
	f.Add("a\n\n", " a ", "#", "null", "1.0")
	f.Fuzz(func(t *testing.T, group, user, password, rule, action string) {
		c := Default()
		c.Kafka.GroupID = group
		c.Redis.Username = user
		c.Redis.Password = password
		c.Breakers.Rules = map[string]Rule{rule: {
			Thresholds: c.Breakers.Defaults,
			Actions:    map[string]Thresholds{action: c.Breakers.Defaults},
		}}
		c.Actions[action] = c.DefaultAction
		if c.Validate() != nil {
			return
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("yaml.Marshal(%+v) = %v", c, err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) = %v; want no error", out, err)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("Parse(%q) = %+v; want %+v", out, again, c)
		}
	})
}

// TestSegmentDimensions checks that a rule split by every dimension, its
// own list over the global one, has each once, within MaxDimensions.
func TestSegmentDimensions(t *testing.T) {
	c, err := Parse([]byte("breakers:\n  segments: {dimensions: [region, target.type]}\n  rules:\n    spam: {segments: [model.name, region]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := c.RuleDimensions("spam")
	if want := []string{"region", "target.type", "model.name"}; !reflect.DeepEqual(got, want) || len(got) > MaxDimensions {
		t.Errorf("RuleDimensions(spam) = %q; want %q, at most %d", got, want, MaxDimensions)
	}
	if got := c.RuleDimensions("other"); !reflect.DeepEqual(got, []string{"region", "target.type"}) {
		t.Errorf("RuleDimensions(other) = %q", got)
	}
	if len(SegmentDimensions) > MaxDimensions {
		t.Errorf("%d dimensions, MaxDimensions %d: a rule split by all of them has more scopes than decide.MaxScopes allows", len(SegmentDimensions), MaxDimensions)
	}
}

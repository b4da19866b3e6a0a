package config

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite ../docs/configuration.md from the package's doc comments")

// referencePath is the generated configuration reference.
const referencePath = "../docs/configuration.md"

// docs reads the doc comments of the package's struct types and their
// fields from its source: type name to field name to comment ("" for the
// type's own comment).
func docs(t *testing.T) map[string]map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, s := range g.Specs {
				ts := s.(*ast.TypeSpec)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				m := map[string]string{"": oneLine(g.Doc.Text() + ts.Doc.Text())}
				for _, fl := range st.Fields.List {
					for _, n := range fl.Names {
						m[n.Name] = oneLine(fl.Doc.Text())
					}
				}
				out[ts.Name.Name] = m
			}
		}
	}
	return out
}

// oneLine joins a comment's lines.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// row is one key of the reference.
type row struct {
	key, def, doc string
}

// walk lists the keys of struct type t under prefix, with the values of v
// (the defaults; invalid below maps and lists) and the doc comments.
func walk(t reflect.Type, v reflect.Value, prefix string, d map[string]map[string]string) []row {
	var rows []row
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		var fv reflect.Value
		if v.IsValid() {
			fv = v.Field(i)
		}
		if strings.Contains(","+opts+",", ",inline,") {
			rows = append(rows, walk(f.Type, fv, prefix, d)...)
			continue
		}
		key := prefix + name
		doc := d[t.Name()][f.Name]
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Duration(0)):
			rows = append(rows, row{key: key, doc: doc})
			rows = append(rows, walk(ft, fv, key+".", d)...)
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
			rows = append(rows, row{key: key, def: value(fv), doc: doc})
			rows = append(rows, walk(ft.Elem(), reflect.Value{}, key+".<"+mapKeyName(key)+">.", d)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			rows = append(rows, row{key: key, def: value(fv), doc: doc})
			rows = append(rows, walk(ft.Elem(), reflect.Value{}, key+"[].", d)...)
		default:
			rows = append(rows, row{key: key, def: value(fv), doc: doc})
		}
	}
	return rows
}

// mapKeyName names the key of a map of structs in the reference.
func mapKeyName(key string) string {
	switch {
	case strings.HasSuffix(key, "rules"):
		return "rule_id"
	case strings.HasSuffix(key, "actions"):
		return "action"
	}
	return "name"
}

// value formats a default for the reference.
func value(v reflect.Value) string {
	if !v.IsValid() {
		return ""
	}
	switch v.Kind() {
	case reflect.Map, reflect.Slice:
		if v.Len() == 0 {
			return "none"
		}
		if v.Kind() == reflect.Map && v.Type().Elem().Kind() == reflect.Struct {
			return "built-in table"
		}
		var parts []string
		if v.Kind() == reflect.Map {
			keys := v.MapKeys()
			slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%v: %v", k, v.MapIndex(k)))
			}
			return "`{" + strings.Join(parts, ", ") + "}`"
		}
		for i := range v.Len() {
			parts = append(parts, fmt.Sprint(v.Index(i)))
		}
		return "`[" + strings.Join(parts, ", ") + "]`"
	case reflect.String:
		if v.String() == "" {
			return `""`
		}
	}
	if d, ok := v.Interface().(time.Duration); ok {
		return "`" + shortDuration(d) + "`"
	}
	return "`" + fmt.Sprint(v.Interface()) + "`"
}

// shortDuration writes 1h for 1h0m0s and 5m for 5m0s, as the
// configuration would.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// reference renders docs/configuration.md.
func reference(t *testing.T) []byte {
	t.Helper()
	d := docs(t)
	def := Default()
	var b bytes.Buffer
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("<!-- Generated from the doc comments of package config by `go generate ./config` " +
		"(go test ./config -run TestReference -update); edit the comments, not this file. -->\n\n")
	b.WriteString("The daemon reads one YAML file (`breakwater run --config FILE`); `config/example.yaml` is the same " +
		"reference as an annotated file. Loading is strict: an unknown key, a value of the wrong type or a second " +
		"document is an error that names the line and the key. Every key is optional and keeps the default below " +
		"when absent. Durations are Go durations (`500ms`, `30s`, `5m`, `1h30m`).\n\n")
	b.WriteString("## Topics\n\nBreakwater uses these Kafka topics; `breakwater check` checks each of them and " +
		"`kafka.create_topics` creates them (development only).\n\n")
	b.WriteString("| Key | Default name | Carries | The daemon |\n| --- | --- | --- | --- |\n")
	for _, u := range def.TopicUses() {
		var does []string
		if u.Reads {
			does = append(does, "reads")
		}
		if u.Writes {
			does = append(does, "writes")
		}
		if u.Compacted {
			does = append(does, "compacted")
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", u.Key, u.Name, u.Carries, strings.Join(does, ", "))
	}
	b.WriteString("\n## Environment variables\n\nThese override the file. A variable set to the empty string is ignored.\n\n")
	b.WriteString("| Variable | Overrides | Notes |\n| --- | --- | --- |\n")
	for _, e := range EnvVars() {
		note := e.Note
		if e.Secret {
			note = strings.TrimPrefix(strings.Join([]string{"a secret, never logged", note}, "; "), "; ")
			note = strings.TrimSuffix(note, "; ")
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", e.Name, e.Key, note)
	}
	rows := walk(reflect.TypeOf(def), reflect.ValueOf(def), "", d)
	for _, r := range rows {
		if !strings.Contains(r.key, ".") && r.key != "actions" && r.key != "default_action" && r.key != "store_unavailable" {
			fmt.Fprintf(&b, "\n## %s\n\n%s\n\n| Key | Default | Description |\n| --- | --- | --- |\n", r.key, r.doc)
			continue
		}
		if !strings.Contains(r.key, ".") {
			fmt.Fprintf(&b, "\n## %s\n\n| Key | Default | Description |\n| --- | --- | --- |\n", r.key)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r.key, r.def, strings.ReplaceAll(r.doc, "|", `\|`))
	}
	return b.Bytes()
}

// TestReference checks that docs/configuration.md is what the doc
// comments, Default(), TopicUses() and EnvVars() make of it now, and that
// every key has a doc comment. go test -run TestReference -update
// rewrites it.
func TestReference(t *testing.T) {
	got := reference(t)
	for _, r := range walk(reflect.TypeOf(Config{}), reflect.Value{}, "", docs(t)) {
		if r.doc == "" {
			t.Errorf("%s has no doc comment on its field", r.key)
		}
	}
	if *update {
		if err := os.WriteFile(referencePath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatalf("%v; run go generate ./config", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what the config package says; run go generate ./config", referencePath)
	}
}

// TestEnvVars checks that ApplyEnv reads exactly the variables EnvVars
// lists, that each of them changes the configuration, and that
// example.yaml names each of them and no other.
func TestEnvVars(t *testing.T) {
	base := Default()
	base.Alerts.Receivers = []Receiver{{Name: "on-call", Type: ReceiverWebhook}}
	listed := map[string]bool{}
	for _, e := range EnvVars() {
		listed[strings.ReplaceAll(e.Name, "<NAME>", "ON_CALL")] = true
	}
	asked := map[string]bool{}
	c := base.clone()
	c.ApplyEnv(func(k string) (string, bool) { asked[k] = true; return "", false })
	for k := range asked {
		if !listed[k] {
			t.Errorf("ApplyEnv reads %s, which EnvVars does not list", k)
		}
	}
	for k := range listed {
		if !asked[k] {
			t.Errorf("EnvVars lists %s, which ApplyEnv does not read", k)
		}
		c := base.clone()
		value := "env-value"
		switch k {
		case EnvKafkaBrokers:
			value = "k1:9092"
		case EnvAdminTokens:
			value = "ci:viewer:token"
		}
		c.ApplyEnv(func(name string) (string, bool) { return value, name == k })
		if reflect.DeepEqual(c, base) {
			t.Errorf("%s=%s changed nothing", k, value)
		}
	}

	example, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range EnvVars() {
		names[e.Name] = true
		if !bytes.Contains(example, []byte(e.Name)) {
			t.Errorf("example.yaml does not name %s", e.Name)
		}
	}
	for _, m := range regexp.MustCompile(`BREAKWATER_[A-Z_<>]*[A-Z>]`).FindAll(example, -1) {
		if !names[string(m)] {
			t.Errorf("example.yaml names %s, which the daemon does not read", m)
		}
	}
}

// TestTopicsEverywhere checks that example.yaml sets every topic key, and
// that the chart's check pod and the docs name no topic count that
// disagrees with TopicUses.
func TestTopicsEverywhere(t *testing.T) {
	def := Default()
	uses := def.TopicUses()
	example, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, u := range uses {
		if seen[u.Name] {
			t.Errorf("TopicUses lists %s twice", u.Name)
		}
		seen[u.Name] = true
		leaf := u.Key[strings.LastIndex(u.Key, ".")+1:]
		if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(leaf) + `: ` + regexp.QuoteMeta(u.Name) + `$`).Match(example) {
			t.Errorf("example.yaml does not set %s: %s", u.Key, u.Name)
		}
	}
	// Every *topic* key of the configuration is in TopicUses.
	for _, r := range walk(reflect.TypeOf(def), reflect.ValueOf(def), "", docs(t)) {
		isTopic := strings.HasPrefix(r.key, "kafka.topics.") || strings.HasSuffix(r.key, "_topic")
		if isTopic && !slices.ContainsFunc(uses, func(u TopicUse) bool { return u.Key == r.key }) {
			t.Errorf("%s names a topic that TopicUses does not list", r.key)
		}
	}
	// A count of topics in prose must be the true one.
	words := []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"}
	for _, path := range []string{"example.yaml", "../README.md", "../docs/operations.md"} {
		data, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?i)\b(\w+)\s+(?:#\s+)?(?:kafka\s+)?topics\b`).FindAllSubmatch(data, -1) {
			n := slices.Index(words, strings.ToLower(string(m[1])))
			if n >= 0 && n != len(uses) && n > 1 {
				t.Errorf("%s speaks of %q; Breakwater uses %d topics", path, m[0], len(uses))
			}
		}
	}
}

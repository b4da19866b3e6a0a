package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// walkBudget bounds the nodes one walk visits, aliases expanded.
const walkBudget = 100000

// explain walks the first document of data against the Config type and
// returns the problems it finds, in line order, each naming the line and
// the field path (kafka.topics.input, breakers.rules["spam"].window, ...).
//
// decodeErr is the strict decoder's verdict on data. If it is not nil,
// explain is explaining a rejected document: it reports everything it can
// place, and adds decodeErr itself when that is nothing the decoder would
// report too. Since it only runs after the decoder failed, a gap here
// cannot accept a bad configuration; it only makes the message less
// precise.
//
// If decodeErr is nil, the decoder accepted the document, and explain
// reports only what the decoder lets through but Breakwater does not: a
// number with a fraction or an exponent for an integer field (which the
// decoder would truncate) and a null map key (which it would drop).
func explain(data []byte, decodeErr error) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return decodeErr
	}
	w := walker{budget: walkBudget}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		w.walk(doc.Content[0], reflect.TypeOf(Config{}), "")
	}
	found := w.strict
	if decodeErr != nil {
		if len(w.errs) == 0 {
			return errors.Join(append(errs(w.strict), decodeErr)...)
		}
		found = append(w.errs, w.strict...)
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].line < found[j].line })
	return errors.Join(errs(found)...)
}

// problem is one problem found by walk, at a line.
type problem struct {
	line int
	err  error
}

// errs returns the errors of ps.
func errs(ps []problem) []error {
	out := make([]error, len(ps))
	for i, p := range ps {
		out[i] = p.err
	}
	return out
}

// walker collects the problems found by walk: errs are those the decoder
// reports too, strict those it lets through.
type walker struct {
	errs   []problem
	strict []problem
	budget int
}

// addf records a problem at node n and field path.
func (w *walker) addf(n *yaml.Node, path, format string, args ...any) {
	w.errs = append(w.errs, placed(n, path, format, args...))
}

// strictf records a problem that the decoder lets through.
func (w *walker) strictf(n *yaml.Node, path, format string, args ...any) {
	w.strict = append(w.strict, placed(n, path, format, args...))
}

// placed returns the problem "line N: path: message".
func placed(n *yaml.Node, path, format string, args ...any) problem {
	if path == "" {
		path = "top level"
	}
	return problem{n.Line, fmt.Errorf("line %d: %s: %s", n.Line, path, fmt.Sprintf(format, args...))}
}

var durationType = reflect.TypeOf(time.Duration(0))

// walk checks node n against the Go type t at field path.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if n = w.visit(n); n == nil || isNull(n) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.addf(n, path, "must be a mapping of keys, got %s", describe(n, path))
			return
		}
		fields := yamlFields(t)
		w.mapping(n, path, func(k, v *yaml.Node) {
			var name string
			if k.Decode(&name) != nil {
				return
			}
			ft, ok := fields[name]
			if !ok {
				w.addf(k, join(path, name), "unknown key; the keys here are %s", knownKeys(fields))
				return
			}
			w.walk(v, ft, join(path, name))
		}, func(v *yaml.Node) { w.walk(v, t, path) })
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.addf(n, path, "must be a mapping, got %s", describe(n, path))
			return
		}
		w.mapping(n, path, func(k, v *yaml.Node) {
			key := reflect.New(t.Key())
			if k.Decode(key.Interface()) != nil {
				return
			}
			w.walk(v, t.Elem(), fmt.Sprintf("%s[%q]", path, fmt.Sprint(key.Elem().Interface())))
		}, func(v *yaml.Node) { w.walk(v, t, path) })
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.addf(n, path, "must be a list, got %s", describe(n, path))
			return
		}
		for i, item := range n.Content {
			at := fmt.Sprintf("%s[%d]", path, i)
			// The decoder would drop a null item silently.
			if isNull(item) {
				w.strictf(item, at, "a list item must not be null (a \"-\" with nothing after it?)")
				continue
			}
			w.walk(item, t.Elem(), at)
		}
	default:
		want := scalarKind(t)
		if n.Kind != yaml.ScalarNode {
			w.addf(n, path, "must be %s, got %s", want, describe(n, path))
			return
		}
		if n.Decode(reflect.New(t).Interface()) != nil {
			w.addf(n, path, "must be %s, got %s", want, describe(n, path))
			return
		}
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if t != durationType && n.ShortTag() != "!!int" {
				w.strictf(n, path, "must be %s, got %s", want, describe(n, path))
			}
		}
	}
}

// visit counts a visit against the budget and resolves an alias to the
// node it names. It returns nil when the budget is spent or the alias is
// dangling.
func (w *walker) visit(n *yaml.Node) *yaml.Node {
	if w.budget <= 0 {
		return nil
	}
	w.budget--
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// mapping checks the keys of mapping node n: a key must be a scalar and
// appear once. It calls each for every other pair and merge for the value
// of every merge key (<<).
func (w *walker) mapping(n *yaml.Node, path string, each func(k, v *yaml.Node), merge func(v *yaml.Node)) {
	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			switch v = w.visit(v); {
			case v == nil:
			case v.Kind == yaml.MappingNode:
				merge(v)
			case v.Kind == yaml.SequenceNode:
				for _, item := range v.Content {
					if item = w.visit(item); item != nil && item.Kind == yaml.MappingNode {
						merge(item)
					}
				}
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			if k.Kind != yaml.AliasNode {
				w.addf(k, path, "a key must be a plain value, got %s", describe(k, path))
			}
			continue
		}
		if first, ok := seen[k.Value]; ok {
			w.addf(k, join(path, k.Value), "key already defined at line %d", first.Line)
			continue
		}
		seen[k.Value] = k
		if isNull(k) {
			w.strictf(k, path, "a key must not be null, got %q", k.Value)
			continue
		}
		each(k, v)
	}
}

// isMerge reports whether n is a merge key (<<), as the decoder sees it.
func isMerge(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "<<" &&
		(n.Tag == "" || n.Tag == "!" || n.ShortTag() == "!!merge")
}

// isNull reports whether n is a null scalar (~, null or nothing).
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// join appends a struct key to a field path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// scalarKind names what a scalar of type t must look like.
func scalarKind(t reflect.Type) string {
	if t == durationType {
		return `a duration such as "500ms", "30s", "5m" or "1h"`
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return "a " + t.String()
}

// describe names what node n is, for a message. The value of a scalar is
// quoted (and shortened) except under redis, whose fields may hold
// credentials.
func describe(n *yaml.Node, path string) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if path == "redis" || strings.HasPrefix(path, "redis.") {
		return "a " + strings.TrimPrefix(n.ShortTag(), "!!") + " value"
	}
	v := n.Value
	if r := []rune(v); len(r) > 40 {
		v = string(r[:40]) + "..."
	}
	return fmt.Sprintf("%q", v)
}

// yamlFields returns the YAML keys of struct type t (inline structs
// flattened) and the type of each.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") && f.Type.Kind() == reflect.Struct {
			for k, v := range yamlFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

// knownKeys lists the keys of fields, sorted, for a message.
func knownKeys(fields map[string]reflect.Type) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

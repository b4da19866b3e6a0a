package admin

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// openAPI reads api/openapi.yaml.
func openAPI(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile("../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("api/openapi.yaml does not parse: %v", err)
	}
	return doc
}

// TestOpenAPI checks that api/openapi.yaml parses, documents every route
// the API serves with its role, documents no route it does not serve, and
// that every $ref resolves.
func TestOpenAPI(t *testing.T) {
	doc := openAPI(t)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi = %q; want 3.x", v)
	}
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("api/openapi.yaml has no paths")
	}
	served := map[string]bool{}
	for _, r := range (&API{}).Routes() {
		key := strings.ToLower(r.Method) + " " + r.Path
		served[key] = true
		item, ok := paths[r.Path].(map[string]any)
		if !ok {
			t.Errorf("%s %s is served but not documented", r.Method, r.Path)
			continue
		}
		op, ok := item[strings.ToLower(r.Method)].(map[string]any)
		if !ok {
			t.Errorf("%s %s is served but not documented", r.Method, r.Path)
			continue
		}
		if role, _ := op["x-role"].(string); role != string(r.Role) {
			t.Errorf("%s %s: documented x-role %q; the API requires %q", r.Method, r.Path, role, r.Role)
		}
		resp, _ := op["responses"].(map[string]any)
		for _, code := range []string{"200", "401"} {
			if _, ok := resp[code]; !ok {
				t.Errorf("%s %s documents no %s answer", r.Method, r.Path, code)
			}
		}
		if r.Role != "viewer" {
			if _, ok := resp["403"]; !ok {
				t.Errorf("%s %s documents no 403 answer", r.Method, r.Path)
			}
		}
	}
	for path, item := range paths {
		for method := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			if strings.HasPrefix(path, "/v1/") && !served[method+" "+path] {
				t.Errorf("%s %s is documented but not served", method, path)
			}
		}
	}
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		if _, ok := paths[p]; !ok {
			t.Errorf("%s is not documented", p)
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if k == "$ref" {
					ref, _ := c.(string)
					if !resolves(doc, ref) {
						t.Errorf("$ref %q does not resolve", ref)
					}
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
}

func resolves(doc map[string]any, ref string) bool {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	var cur any = doc
	for _, part := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

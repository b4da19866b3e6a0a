package kafkaconn_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoClientBesideEndpoint keeps every Kafka connection of the daemon and
// its tools on the endpoint's TLS and SASL settings: outside this package,
// no non-test source may build a kafka-go dialer, transport or client, dial
// directly, or use kafka-go's default (plaintext) dialer and transport; every
// kafka.Writer names its Transport, and every kafka.ReaderConfig goes
// through Endpoint.Reader.
func TestNoClientBesideEndpoint(t *testing.T) {
	const kafkaGo = "github.com/segmentio/kafka-go"
	forbiddenLit := map[string]bool{"Transport": true, "Dialer": true, "Client": true}
	forbiddenUse := map[string]bool{
		"Dial": true, "DialContext": true, "DialLeader": true, "DialPartition": true,
		"DefaultDialer": true, "DefaultTransport": true, "NewConn": true, "NewConnWith": true,
		"NewWriter": true, "LookupPartition": true, "LookupPartitions": true,
	}
	root := filepath.Join("..", "..")
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata":
				return filepath.SkipDir
			}
			if path != root && d.Name() == "deploy" {
				return filepath.SkipDir // a separate module
			}
			if filepath.ToSlash(path) == "../../internal/kafkaconn" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		name := ""
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == kafkaGo {
				name = "kafka"
				if imp.Name != nil {
					name = imp.Name.Name
				}
			}
		}
		if name == "" {
			return nil
		}
		isKafka := func(e ast.Expr) (string, bool) {
			sel, ok := e.(*ast.SelectorExpr)
			if !ok {
				return "", false
			}
			id, ok := sel.X.(*ast.Ident)
			return sel.Sel.Name, ok && id.Name == name
		}
		viaReader := map[*ast.CompositeLit]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Reader" && len(call.Args) == 1 {
					if lit, ok := call.Args[0].(*ast.CompositeLit); ok {
						viaReader[lit] = true
					}
				}
			}
			switch n := n.(type) {
			case *ast.CompositeLit:
				typ, ok := isKafka(n.Type)
				if !ok {
					return true
				}
				switch {
				case forbiddenLit[typ]:
					t.Errorf("%s: builds a kafka.%s; use kafkaconn.Endpoint", fset.Position(n.Pos()), typ)
				case typ == "Writer" && !hasKey(n, "Transport"):
					t.Errorf("%s: a kafka.Writer without Transport uses kafka-go's plaintext default; set Transport: endpoint.Transport()", fset.Position(n.Pos()))
				case typ == "ReaderConfig" && !viaReader[n]:
					t.Errorf("%s: a kafka.ReaderConfig must be passed through endpoint.Reader, which sets its brokers and dialer", fset.Position(n.Pos()))
				}
			case *ast.SelectorExpr:
				if sel, ok := isKafka(n); ok && forbiddenUse[sel] {
					t.Errorf("%s: kafka.%s connects without the configured TLS and SASL; use kafkaconn.Endpoint", fset.Position(n.Pos()), sel)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("scanned %d files; want the whole module", files)
	}
}

// hasKey reports whether the composite literal sets the field key.
func hasKey(lit *ast.CompositeLit, key string) bool {
	for _, e := range lit.Elts {
		if kv, ok := e.(*ast.KeyValueExpr); ok {
			if id, ok := kv.Key.(*ast.Ident); ok && id.Name == key {
				return true
			}
		}
	}
	return false
}

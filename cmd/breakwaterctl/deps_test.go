package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoServer checks that the CLI links none of the server's
// dependencies: it speaks to the API through the wire types of package api
// alone.
func TestLinksNoServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %v", deps)
	}
	forbidden := []string{
		"github.com/segmentio/kafka-go", "github.com/redis/go-redis/v9", "go.uber.org/zap",
		"github.com/breakwater/breakwater/admin", "github.com/breakwater/breakwater/review",
		"github.com/breakwater/breakwater/audit", "github.com/breakwater/breakwater/store",
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("breakwaterctl links %s", d)
			}
		}
	}
}

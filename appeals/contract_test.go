package appeals

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRecordContract: the schema docs/appeals.md gives the appeals
// service is the one Parse reads. The documented example parses to what
// it says; the field table names exactly Record's members; the
// dead-letter reasons the page lists are those the service writes.
func TestRecordContract(t *testing.T) {
	const page = "../docs/appeals.md"
	doc, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "## The appeals topic (contract for the appeals service)")
	if !ok {
		t.Fatalf("%s has no section on the appeals topic's contract", page)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	_, ex, ok := strings.Cut(sec, "```json\n")
	if !ok {
		t.Fatalf("the contract's section of %s has no JSON example", page)
	}
	ex, _, _ = strings.Cut(ex, "```")
	r, err := Parse([]byte(ex))
	want := Record{ActionID: "act-000123", Outcome: Overturned, DecidedAt: time.Date(2026, 5, 3, 9, 12, 44, 0, time.UTC)}
	if err != nil || r != want {
		t.Errorf("Parse(the documented example %s) = %+v, %v; want %+v", ex, r, err, want)
	}

	cells := func(prefix string) []string {
		var out []string
		for _, line := range strings.Split(sec, "\n") {
			if strings.HasPrefix(line, prefix) {
				cell, _, _ := strings.Cut(line[2:], "|")
				for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(cell, -1) {
					out = append(out, m[1])
				}
			}
		}
		slices.Sort(out)
		return out
	}
	var members []string
	rt := reflect.TypeOf(Record{})
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		members = append(members, name)
	}
	slices.Sort(members)
	var fields []string
	for _, f := range cells("| `") {
		if !strings.HasPrefix(f, "appeal_") {
			fields = append(fields, f)
		}
	}
	if !slices.Equal(fields, members) {
		t.Errorf("the contract's table names %v; a record has %v", fields, members)
	}
	var reasons []string
	for _, f := range cells("| `appeal_") {
		reasons = append(reasons, f)
	}
	if written := []string{ReasonMalformed, ReasonUnknown, ReasonDuplicate}; !slices.Equal(reasons, slices.Sorted(slices.Values(written))) {
		t.Errorf("the page lists the dead-letter reasons %v; the service writes %v", reasons, written)
	}
	// A record encoded as the schema says parses back.
	if got, err := Parse(want.Encode()); err != nil || got != want {
		t.Errorf("Parse(Encode(%+v)) = %+v, %v", want, got, err)
	}
}

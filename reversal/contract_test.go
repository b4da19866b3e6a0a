package reversal

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/breakwater/breakwater/api"
)

// contractDoc is the page that gives the reversals topic's schema to the
// enforcement service.
const contractDoc = "../docs/reversals.md"

// contract returns the JSON example and the field names of the table of
// the contract's section.
func contract(t *testing.T) ([]byte, []string) {
	t.Helper()
	doc, err := os.ReadFile(contractDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "## The reversals topic (contract)")
	if !ok {
		t.Fatalf("%s has no section on the reversals topic's contract", contractDoc)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	_, ex, ok := strings.Cut(sec, "```json\n")
	if !ok {
		t.Fatalf("the contract's section of %s has no JSON example", contractDoc)
	}
	ex, _, _ = strings.Cut(ex, "```")
	var fields []string
	for _, line := range strings.Split(sec, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cell, _, _ := strings.Cut(line[2:], "|")
		for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(cell, -1) {
			fields = append(fields, m[1])
		}
	}
	return []byte(ex), fields
}

// TestRecordContract: the schema docs/reversals.md gives the enforcement
// service is the record Breakwater writes. The example decodes into a
// Record with no unknown field and encodes back to the same JSON, and the
// table names every field a record can carry (break_glass included),
// and no other.
func TestRecordContract(t *testing.T) {
	ex, fields := contract(t)
	dec := json.NewDecoder(bytes.NewReader(ex))
	dec.DisallowUnknownFields()
	var r Record
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("the documented example does not decode into a Record: %v\n%s", err, ex)
	}
	got, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, ex); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("the documented example re-encodes as\n%s\nwant\n%s", got, want.Bytes())
	}

	// Every field a record can carry, from a record with all of them set.
	it := Item{ActionID: "a", Rule: "r", Action: "ban_account", TargetType: "account", TargetID: "u", ModelVersion: "v", Region: "eu",
		OccurredAt: time.Unix(1, 0), Partition: 1, Offset: 2, Key: []byte("u")}
	m, err := message(it, api.Reversal{ID: "j", Incident: "rule:r@1", RequestedBy: "alice", ApprovedBy: "bob", BreakGlass: true, Reason: "x"}, "gated", time.Unix(2, 0))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]any
	if err := json.Unmarshal(m.Value, &all); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range all {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	slices.Sort(fields)
	if !slices.Equal(keys, fields) {
		t.Errorf("the contract's table names %v; a record carries %v", fields, keys)
	}
	// The headers the contract names, and the key.
	doc, _ := os.ReadFile(contractDoc)
	for _, h := range m.Headers {
		if !strings.Contains(string(doc), "`"+h.Key+"`") {
			t.Errorf("header %s of a reversal record is not in %s", h.Key, contractDoc)
		}
	}
	if string(m.Key) != "u" || actionOfOrEmpty(m) != "a" {
		t.Errorf("record key %q, action %q; want the gated record's key and the action id", m.Key, actionOfOrEmpty(m))
	}
}

func actionOfOrEmpty(m kafka.Message) string {
	id, _ := actionOf(m)
	return id
}

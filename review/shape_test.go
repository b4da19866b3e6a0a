package review

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/breakwater/breakwater/api"
)

// TestHeldBuildsOnAPI: the index's held action is the admin API's
// (api.Held, the one definition of its fields) plus unexported fields of
// the index's own: no field is mirrored, and its JSON is the API's.
func TestHeldBuildsOnAPI(t *testing.T) {
	ty := reflect.TypeFor[Held]()
	var exported []string
	for f := range ty.Fields() {
		if f.IsExported() {
			exported = append(exported, f.Name)
			if !f.Anonymous || f.Type != reflect.TypeFor[api.Held]() {
				t.Errorf("review.Held has the exported field %s %s; want only the embedded api.Held", f.Name, f.Type)
			}
		}
	}
	if len(exported) != 1 {
		t.Errorf("review.Held's exported fields are %v; want only the embedded api.Held", exported)
	}
	if reflect.TypeFor[Incident]() != reflect.TypeFor[api.Incident]() {
		t.Error("review.Incident is not api.Incident")
	}
	c := 0.9
	h := Held{Held: api.Held{ActionID: "a", Incident: "rule:a@1", Status: Approved, Confidence: &c, DecidedAt: time.Unix(1, 0).UTC(), Via: "standing"},
		key: "k", seq: 3, undoUntil: time.Unix(2, 0)}
	got, _ := json.Marshal(h)
	want, _ := json.Marshal(h.Held)
	if string(got) != string(want) {
		t.Errorf("json of review.Held = %s; want the api.Held's %s", got, want)
	}
}

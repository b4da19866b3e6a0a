package admin_test

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/admintest"
)

// TestIncidentSamplePrecision: on a daemon with kfake and redis-server,
// an incident's reviewers judge four of its actions one at a time (three
// rejected, one approved) and approve two at once; the incident then reads
// "3 of 4 sampled rejected: about 75% wrong", and an undone rejection no
// longer counts.
func TestIncidentSamplePrecision(t *testing.T) {
	bed := admintest.NewBed(t, 2)
	d := admintest.StartDaemon(t, withSeconds(bed.Config(t, 10)))
	_, inc := lateTrip(t, bed, d.URL, 10, 12)
	rv, vw := tok(config.RoleReviewer), tok(config.RoleViewer)
	var page api.HeldPage
	if code := call(t, d.URL, "GET", "/v1/held?incident="+url.QueryEscape(inc.ID), vw, "", &page); code != 200 || len(page.Items) < 8 {
		t.Fatalf("GET held = %d, %d items", code, len(page.Items))
	}
	id := func(i int) string { return page.Items[i].ActionID }
	decide := func(verb string, ids ...string) {
		t.Helper()
		body := `{"ids":[`
		for i, x := range ids {
			if i > 0 {
				body += ","
			}
			body += fmt.Sprintf("%q", x)
		}
		if code := call(t, d.URL, "POST", "/v1/held/"+verb, rv, body+`]}`, nil); code != 200 {
			t.Fatalf("POST /v1/held/%s %v = %d", verb, ids, code)
		}
	}
	read := func() *api.SamplePrecision {
		t.Helper()
		var got api.Incident
		if code := call(t, d.URL, "GET", "/v1/incidents/"+url.PathEscape(inc.ID), vw, "", &got); code != 200 {
			t.Fatalf("GET incident = %d", code)
		}
		return got.Sample
	}
	if s := read(); s != nil {
		t.Fatalf("sample before any verdict = %+v; want none", s)
	}
	decide("reject", id(0))
	decide("reject", id(1))
	decide("reject", id(2))
	decide("approve", id(3))
	decide("approve", id(4), id(5))
	if s := read(); s == nil || s.Text != "3 of 4 sampled rejected: about 75% wrong" {
		t.Fatalf("sample = %+v; want 3 of 4 rejected", s)
	}
	if code := call(t, d.URL, "POST", "/v1/held/undo", rv, fmt.Sprintf(`{"ids":[%q]}`, id(2)), nil); code != 200 {
		t.Fatalf("undo = %d", code)
	}
	if s := read(); s == nil || s.Judged != 3 || s.Rejected != 2 {
		t.Errorf("sample after an undo = %+v; want 2 of 3 rejected", s)
	}
}

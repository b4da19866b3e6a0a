package admin_test

import (
	"testing"

	"github.com/breakwater/breakwater/admin"
	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/admintest"
)

// TestAppealsTripApproval: turning the appeals trip off needs a second
// operator: the requester, and a reviewer, cannot approve it; an admin
// can, and the switch then reads off with both names; turning it on
// applies at once; break-glass turns it off at once, pages on-call and
// is flagged in the audit trail. Without appeals.enabled the switch and
// the estimates answer 404.
func TestAppealsTripApproval(t *testing.T) {
	bed := admintest.NewBed(t, 1)
	pg := newPages(t)
	cfg, err := config.Parse([]byte(bed.YAML(1000) + pg.yaml()))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Appeals.Enabled = true
	bed.Kafka.CreateTopic(t, cfg.Appeals.Topic, 1)
	d := admintest.StartDaemon(t, cfg)
	op, vw := tok(config.RoleOperator), tok(config.RoleViewer)

	var sw api.AppealsTrip
	if code := call(t, d.URL, "GET", "/v1/appeals/trip", vw, "", &sw); code != 200 || !sw.Enabled {
		t.Fatalf("GET /v1/appeals/trip = %d %+v; want on", code, sw)
	}
	if code := call(t, d.URL, "POST", "/v1/appeals/trip", tok(config.RoleReviewer), `{"enabled":false,"reason":"r"}`, nil); code != 403 {
		t.Errorf("a reviewer turning it off = %d; want 403", code)
	}
	var ap api.Approval
	if code := call(t, d.URL, "POST", "/v1/appeals/trip", op, `{"enabled":false,"reason":"appeals backlog re-decided","for":"2h"}`, &ap); code != 202 || ap.Operation != api.OpAppealsTrip {
		t.Fatalf("turning it off = %d %+v; want 202 with an approval request", code, ap)
	}
	if call(t, d.URL, "GET", "/v1/appeals/trip", vw, "", &sw); !sw.Enabled {
		t.Fatalf("the trip is off before the approval: %+v", sw)
	}
	if code := approve(t, d.URL, op, ap, ap.PayloadSHA256, nil); code != 403 {
		t.Errorf("approval by the requester = %d; want 403", code)
	}
	if code := approve(t, d.URL, tok(config.RoleReviewer), ap, ap.PayloadSHA256, nil); code != 403 {
		t.Errorf("approval by a reviewer = %d; want 403", code)
	}
	var done api.Approval
	if code := approve(t, d.URL, tok(config.RoleAdmin), ap, ap.PayloadSHA256, &done); code != 200 || done.Status != api.ApprovalApplied {
		t.Fatalf("approval by an admin = %d %+v", code, done)
	}
	call(t, d.URL, "GET", "/v1/appeals/trip", vw, "", &sw)
	if sw.Enabled || sw.By != admintest.Name(config.RoleOperator) || sw.Approver != admintest.Name(config.RoleAdmin) || sw.Until.IsZero() {
		t.Errorf("after the approval the switch is %+v; want off, by the operator, approved by the admin, until in 2h", sw)
	}
	if code := call(t, d.URL, "POST", "/v1/appeals/trip", op, `{"enabled":true,"reason":"done"}`, &sw); code != 200 || !sw.Enabled {
		t.Errorf("turning it on = %d %+v; want 200 at once", code, sw)
	}
	// Break-glass turns it off at once, pages on-call and is flagged.
	body := `{"enabled":false,"reason":"appeals flood","break_glass":"sev-1, no second operator reachable"}`
	var glass api.AppealsTrip
	if code := call(t, d.URL, "POST", "/v1/appeals/trip", op, body, &glass); code != 200 || glass.Enabled || glass.Approver != "" || !glass.Until.IsZero() {
		t.Fatalf("break-glass turning it off = %d %+v; want 200, off at once until turned on, no approver", code, glass)
	}
	pg.waitBreakGlass(t, "sev-1, no second operator reachable")
	if !breakGlassKinds(t, d.URL, 50, "")[admin.KindAppealsTrip] {
		t.Errorf("no appeals_trip audit entry flagged break-glass")
	}

	// Without the appeals signal there is no switch.
	bed2 := admintest.NewBed(t, 1)
	d2 := admintest.StartDaemon(t, bed2.Config(t, 1000))
	if code := call(t, d2.URL, "GET", "/v1/appeals", vw, "", nil); code != 404 {
		t.Errorf("GET /v1/appeals without appeals.enabled = %d; want 404", code)
	}
	if code := call(t, d2.URL, "GET", "/v1/appeals/trip", vw, "", nil); code != 404 {
		t.Errorf("GET /v1/appeals/trip without appeals.enabled = %d; want 404", code)
	}
}

package approval

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/testbed"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func request() api.Approval {
	payload := []byte(`{"state":"shadow","reason":"r"}`)
	return api.Approval{
		ID: "r1", Operation: api.OpOverride, Target: "rule:a", Payload: payload,
		PayloadSHA256: Hash(api.OpOverride, "rule:a", payload), Requester: "alice", Role: config.RoleOperator,
		RequestedAt: t0, ExpiresAt: t0.Add(time.Hour), Status: api.ApprovalPending,
	}
}

func TestHash(t *testing.T) {
	p := []byte(`{"ids":["a"]}`)
	base := Hash(api.OpRelease, "x@1", p)
	for name, other := range map[string]string{
		"another target":    Hash(api.OpRelease, "x@2", p),
		"another operation": Hash(api.OpOverride, "x@1", p),
		"another payload":   Hash(api.OpRelease, "x@1", []byte(`{"ids":["b"]}`)),
		"shifted boundary":  Hash(api.OpRelease, "x@1{", []byte(`"ids":["a"]}`)),
	} {
		if other == base {
			t.Errorf("Hash of %s = the same hash", name)
		}
	}
	if Hash(api.OpRelease, "x@1", p) != base {
		t.Error("Hash is not deterministic")
	}
}

func TestCheckApprove(t *testing.T) {
	r := request()
	approved := r
	approved.Status, approved.DecidedBy = api.ApprovalApproved, "bob"
	refused := r
	refused.Status = api.ApprovalRefused
	bob := api.Principal{Name: "bob", Role: config.RoleOperator}
	for _, c := range []struct {
		name string
		a    api.Approval
		who  api.Principal
		sum  string
		at   time.Time
		want error
	}{
		{"second operator", r, bob, r.PayloadSHA256, t0.Add(time.Minute), nil},
		{"admin", r, api.Principal{Name: "carol", Role: config.RoleAdmin}, r.PayloadSHA256, t0, nil},
		{"requester", r, api.Principal{Name: "alice", Role: config.RoleAdmin}, r.PayloadSHA256, t0, ErrSelf},
		{"reviewer", r, api.Principal{Name: "rita", Role: config.RoleReviewer}, r.PayloadSHA256, t0, ErrRole},
		{"viewer", r, api.Principal{Name: "vic", Role: config.RoleViewer}, r.PayloadSHA256, t0, ErrRole},
		{"other payload", r, bob, Hash(api.OpOverride, "rule:a", []byte(`{}`)), t0, ErrStale},
		{"at expiry", r, bob, r.PayloadSHA256, t0.Add(time.Hour), ErrExpired},
		{"refused", refused, bob, r.PayloadSHA256, t0, ErrDecided},
		{"retry by the approver", approved, bob, r.PayloadSHA256, t0.Add(2 * time.Hour), nil},
		{"retry by another", approved, api.Principal{Name: "carol", Role: config.RoleAdmin}, r.PayloadSHA256, t0, ErrDecided},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := CheckApprove(c.a, c.who, c.sum, c.at); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("CheckApprove = %v; want %v", err, c.want)
			}
		})
	}
}

func TestEditVoids(t *testing.T) {
	r := request()
	r.Status, r.DecidedBy, r.DecidedAt = api.ApprovalApproved, "bob", t0
	alice := api.Principal{Name: "alice", Role: config.RoleOperator}
	if err := CheckEdit(r, api.Principal{Name: "bob", Role: config.RoleAdmin}, t0); !errors.Is(err, ErrNotRequester) {
		t.Errorf("CheckEdit by another = %v; want ErrNotRequester", err)
	}
	if err := CheckEdit(r, alice, t0); err != nil {
		t.Fatalf("CheckEdit by the requester = %v", err)
	}
	e := Edit(r, []byte(`{"state":"shadow","reason":"r2"}`), "s", 0, t0.Add(time.Minute), time.Hour)
	if e.Status != api.ApprovalPending || e.DecidedBy != "" || e.PayloadSHA256 == r.PayloadSHA256 || e.Edits != 1 || !e.ExpiresAt.Equal(t0.Add(61*time.Minute)) {
		t.Errorf("Edit = %+v; want pending, no approver, a new hash, one edit, a new expiry", e)
	}
	if err := CheckApprove(e, api.Principal{Name: "bob", Role: config.RoleOperator}, r.PayloadSHA256, t0.Add(time.Minute)); !errors.Is(err, ErrStale) {
		t.Errorf("approval of the old payload after an edit = %v; want ErrStale", err)
	}
	applied := r
	applied.Status = api.ApprovalApplied
	if err := CheckEdit(applied, alice, t0); !errors.Is(err, ErrDecided) {
		t.Errorf("CheckEdit of an applied request = %v; want ErrDecided", err)
	}
}

func TestCheckRefuse(t *testing.T) {
	r := request()
	for _, c := range []struct {
		who  api.Principal
		want error
	}{
		{api.Principal{Name: "alice", Role: config.RoleOperator}, nil},
		{api.Principal{Name: "bob", Role: config.RoleOperator}, nil},
		{api.Principal{Name: "rita", Role: config.RoleReviewer}, ErrRole},
	} {
		if err := CheckRefuse(r, c.who, t0); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("CheckRefuse(%s) = %v; want %v", c.who.Name, err, c.want)
		}
	}
	if err := CheckRefuse(r, api.Principal{Name: "bob", Role: config.RoleOperator}, t0.Add(time.Hour)); !errors.Is(err, ErrDecided) {
		t.Errorf("CheckRefuse of an expired request = %v; want ErrDecided", err)
	}
}

// TestStoreApprovesOnce races approvals of one request from several
// clients on a real redis-server: exactly one moves it from pending.
func TestStoreApprovesOnce(t *testing.T) {
	srv := testbed.StartRedis(t)
	rc := srv.Client(t)
	s, err := NewStore(rc, "approval-test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := request()
	r.RequestedAt, r.ExpiresAt = time.Now().UTC(), time.Now().Add(time.Hour).UTC()
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := string(rune('a'+i)) + "-approver"
			_, err := s.Update(ctx, r.ID, func(a api.Approval) (api.Approval, error) {
				if a.Status != api.ApprovalPending {
					return a, ErrDecided
				}
				a.Status, a.DecidedBy = api.ApprovalApproved, name
				return a, nil
			})
			if err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			} else if !errors.Is(err, ErrDecided) {
				t.Errorf("Update: %v", err)
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d approvals moved the request from pending; want 1", won)
	}
	list, err := s.List(ctx, 10, time.Now())
	if err != nil || len(list) != 1 || list[0].Status != api.ApprovalApproved || list[0].Payload != nil {
		t.Fatalf("List = %+v, %v; want the approved request without its payload", list, err)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope) = %v; want ErrNotFound", err)
	}
}

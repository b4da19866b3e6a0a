package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/admintest"
)

// TestTrustedProxyDaemon runs a daemon that trusts a proxy on loopback:
// the proxy's headers give the person their group's role, a change needs
// the header that stands in for a CSRF token, the audit trail names the
// person, and a bearer token is judged on its own. A daemon that trusts
// another address ignores the same headers.
func TestTrustedProxyDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemons")
	}
	bed := admintest.NewBed(t, 1)
	start := func(cidr string) *admintest.Daemon {
		y := bed.YAML(50) + "signin:\n  groups: {moderation-oncall: operator, everyone: viewer}\n  trusted_proxy:\n    cidrs: [" + cidr + "]\n"
		cfg, err := config.Parse([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return admintest.StartDaemon(t, cfg)
	}
	send := func(base, method, path string, h map[string]string, body string, out any) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	carol := map[string]string{"X-Forwarded-Email": "carol@example.com", "X-Forwarded-Groups": "everyone,moderation-oncall"}

	d := start("127.0.0.1/32")
	var who api.Principal
	if code := send(d.URL, "GET", "/v1/whoami", carol, "", &who); code != http.StatusOK || who.Name != "carol@example.com" || who.Role != config.RoleOperator || who.Via != "proxy" {
		t.Fatalf("whoami through the proxy = %d %+v; want carol@example.com, operator, via proxy", code, who)
	}
	withToken := map[string]string{"Authorization": "Bearer " + tok(config.RoleViewer)}
	for k, v := range carol {
		withToken[k] = v
	}
	if code := send(d.URL, "GET", "/v1/whoami", withToken, "", &who); code != http.StatusOK || who.Name != admintest.Name(config.RoleViewer) || who.Role != config.RoleViewer {
		t.Errorf("whoami with a token and the proxy's headers = %d %+v; want the token's holder", code, who)
	}
	const reason = "reset by carol behind the proxy"
	body := `{"reason": "` + reason + `"}`
	if code := send(d.URL, "POST", "/v1/breakers/rule:rule-a/reset", carol, body, nil); code != http.StatusForbidden {
		t.Errorf("a reset through the proxy without X-CSRF-Token = %d; want 403", code)
	}
	withCSRF := map[string]string{"X-CSRF-Token": "1", "Content-Type": "application/json"}
	for k, v := range carol {
		withCSRF[k] = v
	}
	if code := send(d.URL, "POST", "/v1/breakers/rule:rule-a/reset", withCSRF, body, nil); code != http.StatusOK {
		t.Fatalf("a reset through the proxy = %d; want 200", code)
	}
	var audit api.Audit
	call(t, d.URL, "GET", "/v1/audit?kind=reset", tok(config.RoleViewer), "", &audit)
	if len(audit.Entries) != 1 || audit.Entries[0].Actor != "carol@example.com" || audit.Entries[0].Reason != reason {
		t.Errorf("the audit trail's resets = %+v; want one by carol@example.com", audit.Entries)
	}

	other := start("10.0.0.0/8")
	if code := send(other.URL, "GET", "/v1/whoami", carol, "", nil); code != http.StatusUnauthorized {
		t.Errorf("whoami with the proxy's headers from an untrusted address = %d; want 401", code)
	}
}

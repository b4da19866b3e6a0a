package console_test

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/admintest"
	"github.com/breakwater/breakwater/internal/testbed"
)

// TestConsoleOIDC signs a person in to the console through an OIDC
// provider running in the test (discovery, JWKS, the code flow with
// PKCE): the console offers the provider's sign-in, the person comes back
// with the role of their group, resets a tripped breaker, and the audit
// trail names them; signing out ends the session.
func TestConsoleOIDC(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium, an OIDC provider and a daemon")
	}
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("%s not found: install it with apt-get install -y chromium", chromium)
	}
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Shutdown() }()
	const person = "alice@example.com"
	m.QueueUser(&mockoidc.MockUser{Subject: "alice", Email: person, EmailVerified: true, Groups: []string{"everyone", "moderation-oncall"}})

	// The redirect URL names the daemon's address, so the port is chosen first.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	bed := admintest.NewBed(t, 2)
	y := bed.YAMLWith(50, addr, 500) + fmt.Sprintf(`signin:
  groups: {moderation-oncall: operator, moderation-reviewers: reviewer}
  oidc:
    issuer_url: %s
    client_id: %s
    client_secret: %s
    redirect_url: http://%s/auth/callback
`, m.Issuer(), m.ClientID, m.ClientSecret, addr)
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", y, err)
	}
	d := admintest.StartDaemon(t, cfg)
	const scope = "rule:rule-a"

	ctx := startBrowser(t, 4*time.Minute)
	w := &watcher{origin: d.URL, also: []string{strings.TrimSuffix(m.Addr(), "/")}}
	w.listen(ctx)
	w.allow("/v1/whoami") // the test's own request after signing out

	var who string
	run(t, ctx, "sign in through the identity provider",
		chromedp.Navigate(d.URL+"/ui/"),
		chromedp.WaitVisible("#sso", chromedp.ByID),
		chromedp.Click("#sso", chromedp.ByID),
		chromedp.WaitVisible("#board", chromedp.ByID),
		chromedp.Text("#who", &who, chromedp.ByID))
	if want := person + " · operator"; who != want {
		t.Errorf("the header says %q; want %q", who, want)
	}

	now := time.Now()
	var recs []testbed.Record
	for i := range 120 {
		recs = append(recs, admintest.Event(fmt.Sprintf("o-%03d", i), "rule-a", "remove_pin", fmt.Sprintf("t-%d", i%9), now))
	}
	bed.Kafka.Produce(t, admintest.Topics.Input, recs...)
	const reason = "reset by a person signed in through OIDC"
	run(t, ctx, "reset the tripped breaker",
		chromedp.WaitVisible(`#board tr[data-scope="`+scope+`"][data-state="open"]`, chromedp.ByQuery),
		chromedp.Click(`#board tr[data-scope="`+scope+`"] a`, chromedp.ByQuery),
		chromedp.Click(`//div[@id="controls"]/button[text()="Reset"]`, chromedp.BySearch),
		chromedp.WaitVisible("#reason", chromedp.ByID),
		chromedp.SendKeys("#reason", reason, chromedp.ByID),
		chromedp.Click("#confirm", chromedp.ByID),
		chromedp.WaitVisible(`//div[@id="banner" and contains(., "open → probation")]`, chromedp.BySearch))

	var audit api.Audit
	apiGet(t, d.URL, admintest.Tokens[config.RoleViewer], "/v1/audit?kind=reset", &audit)
	if len(audit.Entries) != 1 || audit.Entries[0].Actor != person || audit.Entries[0].Reason != reason {
		t.Errorf("the audit trail's resets = %+v; want one by %s", audit.Entries, person)
	}

	var cookies string
	var status int
	run(t, ctx, "sign out",
		chromedp.Evaluate(`document.cookie`, &cookies),
		chromedp.Click("#signout", chromedp.ByID),
		chromedp.WaitVisible("#sso", chromedp.ByID),
		poll(`true`),
		evalAwait(`new Promise(r => setTimeout(r, 0)).then(() => fetch("/v1/whoami")).then(r => r.status)`, &status))
	if cookies != "" {
		t.Errorf("the page can read cookies %q; the session cookie must be HttpOnly", cookies)
	}
	if status != http.StatusUnauthorized {
		t.Errorf("whoami after signing out = %d; want 401", status)
	}
	w.check(t)
}

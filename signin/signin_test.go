package signin_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/testbed"
	"github.com/breakwater/breakwater/signin"
)

// groups is the role mapping of the tests.
var groups = map[string]config.Role{
	"mod-viewers":   config.RoleViewer,
	"mod-reviewers": config.RoleReviewer,
	"mod-oncall":    config.RoleOperator,
}

// site is Breakwater's side of a sign-in: the OIDC handlers, a page for
// /ui/, and two endpoints that answer with the person Identify finds, one
// for reading and one for a change.
type site struct {
	srv   *httptest.Server
	store *signin.Store
	auth  *signin.Authenticator
}

// provider starts a mock OIDC provider; tamper, if set, rewrites the ID
// token of every token response (given the nonce of the sign-in).
func provider(t *testing.T, tamper func(m *mockoidc.MockOIDC, nonce string) string) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(ln, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Shutdown() })
	}()
	if tamper != nil {
		err := m.AddMiddleware(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != mockoidc.TokenEndpoint {
					next.ServeHTTP(w, r)
					return
				}
				if err := r.ParseForm(); err != nil {
					t.Errorf("token request: %v", err)
				}
				nonce := ""
				if s, err := m.SessionStore.GetSessionByID(r.Form.Get("code")); err == nil {
					nonce = s.OIDCNonce
				}
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				var body map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusOK {
					w.WriteHeader(rec.Code)
					_, _ = w.Write(rec.Body.Bytes())
					return
				}
				body["id_token"] = tamper(m, nonce)
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(body)
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// newSite serves the sign-in of provider m over HTTPS (the cookies are
// Secure), with sessions in a real redis-server.
func newSite(t *testing.T, m *mockoidc.MockOIDC) *site {
	t.Helper()
	r := testbed.StartRedis(t)
	store, err := signin.NewStore(r.Client(t), "bw-signin-test")
	if err != nil {
		t.Fatal(err)
	}
	s := &site{store: store}
	mux := http.NewServeMux()
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	cfg := config.Default().SignIn
	cfg.Groups = groups
	cfg.OIDC = config.OIDC{
		IssuerURL: m.Issuer(), ClientID: m.ClientID, ClientSecret: m.ClientSecret, RedirectURL: s.srv.URL + signin.CallbackPath,
		Scopes: []string{"email", "profile", "groups"}, GroupsClaim: "groups", NameClaim: "email",
	}
	sso, err := signin.NewOIDC(cfg, store, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	sso.Mount(mux)
	if s.auth, err = signin.NewAuthenticator(cfg, store); err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("GET /ui/", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "the console") })
	who := func(w http.ResponseWriter, r *http.Request) {
		p, err := s.auth.Identify(r)
		switch {
		case errors.Is(err, signin.ErrNotSignedIn):
			w.WriteHeader(http.StatusUnauthorized)
		case err != nil:
			w.WriteHeader(http.StatusForbidden)
		default:
			_ = json.NewEncoder(w).Encode(p)
		}
	}
	mux.HandleFunc("GET /whoami", who)
	mux.HandleFunc("POST /change", who)
	return s
}

// browser is a client with a cookie jar that follows redirects and notes
// every URL it was sent to.
type browser struct {
	t       *testing.T
	c       *http.Client
	visited []string
}

func (s *site) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t}
	c := *s.srv.Client() // a copy: the server's client is shared
	c.Jar = jar
	c.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		b.visited = append(b.visited, r.URL.String())
		return nil
	}
	b.c = &c
	return b
}

// do sends a request and returns the status and body.
func (b *browser) do(method, u string, header http.Header) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// signIn goes through /auth/login and returns the final status and body
// and the callback URL the provider sent the browser to.
func (b *browser) signIn(base string) (int, string, string) {
	b.t.Helper()
	b.visited = nil
	code, body := b.do("GET", base+signin.LoginPath, nil)
	callback := ""
	for _, u := range b.visited {
		if strings.Contains(u, signin.CallbackPath) {
			callback = u
		}
	}
	if callback == "" {
		b.t.Fatalf("the sign-in never reached %s; went to %v (%d %s)", signin.CallbackPath, b.visited, code, body)
	}
	return code, body, callback
}

// whoami returns the person the site sees, or the status.
func (b *browser) whoami(base string) (signin.Person, int) {
	b.t.Helper()
	code, body := b.do("GET", base+"/whoami", nil)
	var p signin.Person
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			b.t.Fatalf("whoami: %v: %s", err, body)
		}
	}
	return p, code
}

func user(email string, groups ...string) *mockoidc.MockUser {
	return &mockoidc.MockUser{Subject: email, Email: email, EmailVerified: true, PreferredUsername: email, Groups: groups}
}

// TestOIDCSignIn signs in through a real OIDC provider (discovery, JWKS,
// the authorization code flow with PKCE): the person gets the highest role
// of their groups, a change needs the session's CSRF token, and signing
// out ends the session.
func TestOIDCSignIn(t *testing.T) {
	m := provider(t, nil)
	s := newSite(t, m)
	base := s.srv.URL

	b := s.browser(t)
	if _, code := b.whoami(base); code != http.StatusUnauthorized {
		t.Fatalf("whoami before signing in = %d; want 401", code)
	}
	m.QueueUser(user("alice@example.com", "mod-reviewers", "mod-oncall", "unrelated"))
	code, body, _ := b.signIn(base)
	if code != http.StatusOK || body != "the console" {
		t.Fatalf("sign-in ended with %d %q; want the console", code, body)
	}
	p, code := b.whoami(base)
	if code != http.StatusOK || p.Name != "alice@example.com" || p.Role != config.RoleOperator || p.Via != signin.ViaOIDC {
		t.Fatalf("whoami after signing in = %d %+v; want alice@example.com, operator (her highest group), via oidc", code, p)
	}
	for _, c := range b.c.Jar.Cookies(mustURL(t, base)) {
		if c.Name == signin.StateCookie {
			t.Errorf("the state cookie outlived the callback")
		}
	}

	if code, _ := b.do("POST", base+"/change", nil); code != http.StatusForbidden {
		t.Errorf("a change without the CSRF token = %d; want 403", code)
	}
	if code, _ := b.do("POST", base+"/change", http.Header{signin.CSRFHeader: {"not-the-token"}}); code != http.StatusForbidden {
		t.Errorf("a change with a wrong CSRF token = %d; want 403", code)
	}
	if code, _ := b.do("POST", base+"/change", http.Header{signin.CSRFHeader: {p.CSRF}, "Sec-Fetch-Site": {"cross-site"}}); code != http.StatusForbidden {
		t.Errorf("a change from another site = %d; want 403", code)
	}
	if code, _ := b.do("POST", base+"/change", http.Header{signin.CSRFHeader: {p.CSRF}}); code != http.StatusOK {
		t.Errorf("a change with the CSRF token = %d; want 200", code)
	}

	// Another browser has no session.
	if _, code := s.browser(t).whoami(base); code != http.StatusUnauthorized {
		t.Errorf("whoami from another browser = %d; want 401", code)
	}

	if code, _ := b.do("POST", base+signin.LogoutPath, nil); code != http.StatusForbidden {
		t.Errorf("sign-out without the CSRF token = %d; want 403", code)
	}
	if code, _ := b.do("POST", base+signin.LogoutPath, http.Header{signin.CSRFHeader: {p.CSRF}}); code != http.StatusOK {
		t.Errorf("sign-out = %d; want 200", code)
	}
	if _, code := b.whoami(base); code != http.StatusUnauthorized {
		t.Errorf("whoami after signing out = %d; want 401", code)
	}
}

// TestLoginRate checks that starting sign-ins is rate limited, so that
// requests to /auth/login cannot fill Redis with states.
func TestLoginRate(t *testing.T) {
	m := provider(t, nil)
	s := newSite(t, m)
	c := *s.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	codes := map[int]int{}
	for range 400 {
		resp, err := c.Get(s.srv.URL + signin.LoginPath)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		codes[resp.StatusCode]++
	}
	if codes[http.StatusFound] < 100 || codes[http.StatusTooManyRequests] == 0 || codes[http.StatusFound]+codes[http.StatusTooManyRequests] != 400 {
		t.Errorf("400 sign-ins started at once answered %v; want at least the burst of 100 redirected and the rest 429", codes)
	}
}

// TestOIDCRefused checks that what must not sign anyone in does not: a
// person none of whose groups has a role, a replayed callback, and ID
// tokens that are expired, issued by another issuer or to another client.
func TestOIDCRefused(t *testing.T) {
	t.Run("no mapped group", func(t *testing.T) {
		m := provider(t, nil)
		s := newSite(t, m)
		b := s.browser(t)
		m.QueueUser(user("mallory@example.com", "everyone", "contractors"))
		code, body, _ := b.signIn(s.srv.URL)
		if code != http.StatusForbidden || !strings.Contains(body, "none of your groups") {
			t.Errorf("sign-in without a mapped group = %d %q; want 403 saying no group has a role", code, body)
		}
		if _, code := b.whoami(s.srv.URL); code != http.StatusUnauthorized {
			t.Errorf("whoami after a refused sign-in = %d; want 401", code)
		}
	})

	t.Run("replayed state", func(t *testing.T) {
		m := provider(t, nil)
		s := newSite(t, m)
		b := s.browser(t)
		m.QueueUser(user("alice@example.com", "mod-reviewers"))
		if code, _, callback := b.signIn(s.srv.URL); code != http.StatusOK {
			t.Fatalf("first sign-in = %d", code)
		} else {
			// The same callback again from a fresh browser that carries
			// the state cookie, as an attacker who saw the URL would.
			state := mustURL(t, callback).Query().Get("state")
			e := s.browser(t)
			e.c.Jar.SetCookies(mustURL(t, s.srv.URL+"/auth/"), []*http.Cookie{{Name: signin.StateCookie, Value: state, Path: "/auth/"}})
			code, body := e.do("GET", callback, nil)
			if code != http.StatusBadRequest || !strings.Contains(body, "already used") {
				t.Errorf("the replayed callback = %d %q; want 400, already used", code, body)
			}
			if _, code := e.whoami(s.srv.URL); code != http.StatusUnauthorized {
				t.Errorf("whoami after a replayed callback = %d; want 401", code)
			}
			// Without the state cookie it is refused too.
			if code, _ := s.browser(t).do("GET", callback, nil); code != http.StatusBadRequest {
				t.Errorf("the callback in a browser that did not start the sign-in = %d; want 400", code)
			}
		}
	})

	t.Run("expired token", func(t *testing.T) {
		m := provider(t, nil)
		s := newSite(t, m)
		// The provider's clock is two hours behind: its ID tokens (valid
		// for ten minutes) expired long ago.
		m.FastForward(-2 * time.Hour)
		m.QueueUser(user("alice@example.com", "mod-reviewers"))
		b := s.browser(t)
		if code, body, _ := b.signIn(s.srv.URL); code != http.StatusUnauthorized {
			t.Errorf("sign-in with an expired ID token = %d %q; want 401", code, body)
		}
		if _, code := b.whoami(s.srv.URL); code != http.StatusUnauthorized {
			t.Errorf("whoami = %d; want 401", code)
		}
	})

	other := provider(t, nil)
	for _, tc := range []struct {
		name   string
		forge  func(m *mockoidc.MockOIDC, nonce string) string
		detail string
	}{
		{"another issuer", func(m *mockoidc.MockOIDC, nonce string) string {
			// Signed by the right key, but naming another issuer.
			return sign(t, m.Keypair, claims(other.Issuer(), m.ClientID, nonce))
		}, "issuer"},
		{"another issuer's key", func(m *mockoidc.MockOIDC, nonce string) string {
			return sign(t, other.Keypair, claims(other.Issuer(), m.ClientID, nonce))
		}, "signature"},
		{"wrong audience", func(m *mockoidc.MockOIDC, nonce string) string {
			return sign(t, m.Keypair, claims(m.Issuer(), "some-other-client", nonce))
		}, "audience"},
		{"wrong nonce", func(m *mockoidc.MockOIDC, _ string) string {
			return sign(t, m.Keypair, claims(m.Issuer(), m.ClientID, "a-nonce-of-another-sign-in"))
		}, "nonce"},
		{"the control: a well-formed token", func(m *mockoidc.MockOIDC, nonce string) string {
			return sign(t, m.Keypair, claims(m.Issuer(), m.ClientID, nonce))
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := provider(t, tc.forge)
			s := newSite(t, m)
			b := s.browser(t)
			m.QueueUser(user("alice@example.com", "mod-reviewers"))
			code, body, _ := b.signIn(s.srv.URL)
			p, who := b.whoami(s.srv.URL)
			if tc.detail == "" {
				// The forging middleware itself yields a valid sign-in, so
				// the refusals above are the claims', not the harness's.
				if code != http.StatusOK || who != http.StatusOK || p.Name != "alice@example.com" || p.Role != config.RoleReviewer {
					t.Errorf("sign-in with a well-formed forged token = %d %q, whoami %d %+v; want alice, reviewer", code, body, who, p)
				}
				return
			}
			if code != http.StatusUnauthorized || who != http.StatusUnauthorized {
				t.Errorf("sign-in with %s = %d %q, then whoami %d; want 401 and no session", tc.detail, code, body, who)
			}
		})
	}
}

// claims are the claims of an ID token of alice, a reviewer, valid now.
func claims(iss, aud, nonce string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": iss, "aud": aud, "sub": "alice", "nonce": nonce,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"email": "alice@example.com", "groups": []string{"mod-reviewers"},
	}
}

func sign(t *testing.T, k *mockoidc.Keypair, c jwt.MapClaims) string {
	t.Helper()
	s, err := k.SignJWT(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestTrustedProxy checks that the proxy's headers name the person only
// on a connection from a configured address: from another address they
// are ignored.
func TestTrustedProxy(t *testing.T) {
	cfg := config.Default().SignIn
	cfg.Groups = groups
	cfg.TrustedProxy.CIDRs = []string{"10.0.0.0/8", "192.0.2.7/32"}
	a, err := signin.NewAuthenticator(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := func(method, remote string, h map[string]string) *http.Request {
		r := httptest.NewRequest(method, "/v1/whoami", bytes.NewReader(nil))
		r.RemoteAddr = remote
		for k, v := range h {
			r.Header.Set(k, v)
		}
		return r
	}
	headers := map[string]string{"X-Forwarded-Email": "bob@example.com", "X-Forwarded-Groups": "everyone, mod-reviewers"}
	for _, tc := range []struct {
		name    string
		r       *http.Request
		want    signin.Person
		wantErr error
	}{
		{"configured range", req("GET", "10.1.2.3:41000", headers), signin.Person{Name: "bob@example.com", Role: config.RoleReviewer, Via: signin.ViaProxy}, nil},
		{"configured address", req("GET", "192.0.2.7:41000", headers), signin.Person{Name: "bob@example.com", Role: config.RoleReviewer, Via: signin.ViaProxy}, nil},
		{"IPv4 in IPv6", req("GET", "[::ffff:10.9.9.9]:41000", headers), signin.Person{Name: "bob@example.com", Role: config.RoleReviewer, Via: signin.ViaProxy}, nil},
		{"another address", req("GET", "192.0.2.8:41000", headers), signin.Person{}, signin.ErrNotSignedIn},
		{"loopback", req("GET", "127.0.0.1:41000", headers), signin.Person{}, signin.ErrNotSignedIn},
		{"no user header", req("GET", "10.1.2.3:41000", map[string]string{"X-Forwarded-Groups": "mod-oncall"}), signin.Person{}, signin.ErrNotSignedIn},
		{"no mapped group", req("GET", "10.1.2.3:41000", map[string]string{"X-Forwarded-Email": "eve@example.com", "X-Forwarded-Groups": "everyone"}), signin.Person{}, signin.ErrNoRole},
		{"a write without the header", req("POST", "10.1.2.3:41000", headers), signin.Person{}, signin.ErrCSRF},
		{"a write from another site", req("POST", "10.1.2.3:41000", map[string]string{
			"X-Forwarded-Email": "bob@example.com", "X-Forwarded-Groups": "mod-reviewers", signin.CSRFHeader: "1", "Sec-Fetch-Site": "cross-site",
		}), signin.Person{}, signin.ErrCSRF},
		{"a write", req("POST", "10.1.2.3:41000", map[string]string{
			"X-Forwarded-Email": "bob@example.com", "X-Forwarded-Groups": "mod-reviewers", signin.CSRFHeader: "1", "Sec-Fetch-Site": "same-origin",
		}), signin.Person{Name: "bob@example.com", Role: config.RoleReviewer, Via: signin.ViaProxy}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.Identify(tc.r)
			if !errors.Is(err, tc.wantErr) || p != tc.want {
				t.Errorf("Identify(%s from %s) = %+v, %v; want %+v, %v", tc.r.Method, tc.r.RemoteAddr, p, err, tc.want, tc.wantErr)
			}
		})
	}
}

// FuzzProxyHeaders checks that the proxy's headers either give a usable
// name and clean groups or an error, never a panic.
func FuzzProxyHeaders(f *testing.F) {
	f.Add("bob@example.com", "a, b,,c")
	f.Add("  ", "x")
	f.Add("a\x00b", "")
	f.Add(strings.Repeat("n", 300), strings.Repeat("g,", 300))
	f.Fuzz(func(t *testing.T, user, groups string) {
		name, gs, err := signin.ParseProxyHeaders(user, []string{groups})
		if err != nil {
			return
		}
		if name == "" || name != strings.TrimSpace(name) || len(name) > 256 || strings.ContainsAny(name, "\x00\r\n") {
			t.Errorf("ParseProxyHeaders(%q) name = %q", user, name)
		}
		if len(gs) > 256 {
			t.Errorf("ParseProxyHeaders(%q) gave %d groups", groups, len(gs))
		}
		for _, g := range gs {
			if g == "" || g != strings.TrimSpace(g) || strings.Contains(g, ",") {
				t.Errorf("ParseProxyHeaders(%q) group %q", groups, g)
			}
		}
	})
}

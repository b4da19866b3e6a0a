package signin

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"unicode"

	"github.com/breakwater/breakwater/config"
)

// The ways a person is signed in.
const (
	// ViaOIDC is a session from an OIDC sign-in.
	ViaOIDC = "oidc"
	// ViaProxy is the trusted proxy's headers.
	ViaProxy = "proxy"
)

// Errors of Identify; the admin API answers 401 for ErrNotSignedIn and 403
// for the others.
var (
	// ErrNotSignedIn means the request carries no sign-in that holds.
	ErrNotSignedIn = errors.New("not signed in")
	// ErrNoRole means the person is known but none of their groups has a role.
	ErrNoRole = errors.New("none of your groups has a role in Breakwater")
	// ErrCSRF means a write lacks the session's CSRF token or comes from
	// another site.
	ErrCSRF = errors.New("a change needs the X-CSRF-Token of your session, from the console's own page")
)

// Person is someone signed in other than with an admin token.
type Person struct {
	// Name names them in the audit trail.
	Name string
	// Role is what their groups let them do.
	Role config.Role
	// Via is ViaOIDC or ViaProxy.
	Via string
	// CSRF is the session's CSRF token (OIDC only).
	CSRF string
}

// Authenticator identifies the person behind a request: a trusted proxy's
// headers, from a configured address only, or an OIDC session cookie.
type Authenticator struct {
	cfg      config.SignIn
	proxies  []netip.Prefix
	sessions *Store // nil without OIDC
	origin   *http.CrossOriginProtection
}

// NewAuthenticator returns the authenticator of cfg; sessions may be nil
// when OIDC is off.
func NewAuthenticator(cfg config.SignIn, sessions *Store) (*Authenticator, error) {
	if cfg.OIDC.Enabled() && sessions == nil {
		return nil, errors.New("signin: OIDC needs a session store")
	}
	return &Authenticator{cfg: cfg, proxies: cfg.TrustedProxy.Prefixes(), sessions: sessions, origin: http.NewCrossOriginProtection()}, nil
}

// Identify returns the person behind r. A write (any method but GET, HEAD
// and OPTIONS) must also come from this site and, with a session, carry
// its CSRF token.
func (a *Authenticator) Identify(r *http.Request) (Person, error) {
	p, err := a.identify(r)
	if err != nil {
		return Person{}, err
	}
	if write(r.Method) {
		if err := a.origin.Check(r); err != nil {
			return Person{}, fmt.Errorf("%w: %w", ErrCSRF, err)
		}
		got := r.Header.Get(CSRFHeader)
		switch p.Via {
		case ViaOIDC:
			if subtle.ConstantTimeCompare([]byte(got), []byte(p.CSRF)) != 1 {
				return Person{}, ErrCSRF
			}
		default:
			// Behind a proxy the browser's sign-in is the proxy's cookie:
			// a header no other site can make the browser send (without
			// a CORS preflight this server never answers) stands in for
			// the token.
			if got == "" {
				return Person{}, ErrCSRF
			}
		}
	}
	return p, nil
}

func write(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

func (a *Authenticator) identify(r *http.Request) (Person, error) {
	if a.fromProxy(r) {
		name, groups, err := ParseProxyHeaders(r.Header.Get(a.cfg.TrustedProxy.UserHeader), r.Header.Values(a.cfg.TrustedProxy.GroupsHeader))
		if err == nil {
			role, ok := a.cfg.Role(groups)
			if !ok {
				return Person{}, fmt.Errorf("%w: %s", ErrNoRole, name)
			}
			return Person{Name: name, Role: role, Via: ViaProxy}, nil
		}
		if !errors.Is(err, errNoUser) {
			return Person{}, fmt.Errorf("%w: %w", ErrNotSignedIn, err)
		}
	}
	if a.sessions == nil {
		return Person{}, ErrNotSignedIn
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return Person{}, ErrNotSignedIn
	}
	s, ok, err := a.sessions.Get(r.Context(), c.Value)
	if err != nil {
		return Person{}, err
	}
	if !ok {
		return Person{}, ErrNotSignedIn
	}
	return Person{Name: s.Name, Role: s.Role, Via: ViaOIDC, CSRF: s.CSRF}, nil
}

// fromProxy reports whether r's connection comes from a configured proxy
// address. The address is the connection's own, never a forwarded header.
func (a *Authenticator) fromProxy(r *http.Request) bool {
	if len(a.proxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range a.proxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Limits of the proxy's headers.
const (
	maxName   = 256
	maxGroups = 256
)

// errNoUser means the proxy named no user: the request is not signed in
// through the proxy (the proxy's own health checks, for example).
var errNoUser = errors.New("the proxy named no user")

// ParseProxyHeaders reads the user and groups headers of a trusted proxy:
// the name trimmed, at most 256 characters, without control characters;
// the groups comma separated over one or more header lines, blanks
// trimmed, empty entries dropped, at most 256.
func ParseProxyHeaders(user string, groupLines []string) (string, []string, error) {
	name := strings.TrimSpace(user)
	switch {
	case name == "":
		return "", nil, errNoUser
	case len(name) > maxName:
		return "", nil, fmt.Errorf("the proxy's user header is longer than %d bytes", maxName)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", nil, errors.New("the proxy's user header contains control characters")
	}
	var groups []string
	for _, line := range groupLines {
		groups = append(groups, config.ParseGroups(line)...)
	}
	if len(groups) > maxGroups {
		return "", nil, fmt.Errorf("the proxy's groups header lists %d groups; at most %d are read", len(groups), maxGroups)
	}
	return name, groups, nil
}

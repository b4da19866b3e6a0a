package config

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// EnvOIDCClientSecret overrides signin.oidc.client_secret.
const EnvOIDCClientSecret = "BREAKWATER_OIDC_CLIENT_SECRET"

// Limits of the signin section.
const (
	minSessionTTL = time.Minute
	maxSessionTTL = 7 * 24 * time.Hour
	maxGroupName  = 256
)

// SignIn configures how people sign in to the admin API and the console:
// through the company's identity provider (OIDC), or behind an
// authenticating proxy that names them in request headers. Either gives a
// person the role of their groups; admin tokens stay for machines and the
// command line.
type SignIn struct {
	// Groups maps a group of the identity provider (or of the proxy's
	// groups header) to a role. A person gets the highest role of their
	// groups; a person in no listed group is refused.
	Groups map[string]Role `yaml:"groups"`
	// SessionTTL is how long a console session lasts after an OIDC
	// sign-in, 1m..168h.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// OIDC signs people in through an OpenID Connect provider with the
	// authorization code flow and PKCE.
	OIDC OIDC `yaml:"oidc"`
	// TrustedProxy accepts the user and groups that an authenticating
	// proxy (oauth2-proxy, for example) puts in request headers.
	TrustedProxy TrustedProxy `yaml:"trusted_proxy"`
}

// OIDC configures sign-in through an OpenID Connect provider.
type OIDC struct {
	// IssuerURL is the provider's issuer (its discovery document is at
	// IssuerURL/.well-known/openid-configuration). Empty turns OIDC off.
	IssuerURL string `yaml:"issuer_url"`
	// ClientID is Breakwater's client at the provider; ID tokens must
	// name it as their audience.
	ClientID string `yaml:"client_id"`
	// ClientSecret is a secret; prefer BREAKWATER_OIDC_CLIENT_SECRET. It
	// is never logged.
	ClientSecret string `yaml:"client_secret"`
	// RedirectURL is the address of /auth/callback as the browser reaches
	// it (https://breakwater.example.com/auth/callback), registered at the
	// provider.
	RedirectURL string `yaml:"redirect_url"`
	// Scopes are requested besides openid.
	Scopes []string `yaml:"scopes"`
	// GroupsClaim is the ID token claim that lists the person's groups.
	GroupsClaim string `yaml:"groups_claim"`
	// NameClaim is the ID token claim that names the person in the audit
	// trail (email, preferred_username, sub, ...).
	NameClaim string `yaml:"name_claim"`
}

// TrustedProxy configures sign-in behind an authenticating proxy.
type TrustedProxy struct {
	// CIDRs are the addresses the proxy connects from. The headers are
	// read only from a connection whose address is in one of them; from
	// any other address they are ignored. Empty turns it off.
	CIDRs []string `yaml:"cidrs"`
	// UserHeader names the person (oauth2-proxy: X-Forwarded-Email or
	// X-Forwarded-User).
	UserHeader string `yaml:"user_header"`
	// GroupsHeader lists the person's groups, comma separated.
	GroupsHeader string `yaml:"groups_header"`
}

// defaultSignIn returns the signin section of Default(): nobody signs in
// but with a token.
func defaultSignIn() SignIn {
	return SignIn{
		SessionTTL: 8 * time.Hour,
		OIDC: OIDC{
			Scopes:      []string{"email", "profile", "groups"},
			GroupsClaim: "groups",
			NameClaim:   "email",
		},
		TrustedProxy: TrustedProxy{
			UserHeader:   "X-Forwarded-Email",
			GroupsHeader: "X-Forwarded-Groups",
		},
	}
}

// Enabled reports whether OIDC sign-in is configured.
func (o OIDC) Enabled() bool { return o.IssuerURL != "" }

// Enabled reports whether the trusted proxy is configured.
func (t TrustedProxy) Enabled() bool { return len(t.CIDRs) > 0 }

// Enabled reports whether people can sign in other than with a token.
func (s SignIn) Enabled() bool { return s.OIDC.Enabled() || s.TrustedProxy.Enabled() }

// Prefixes returns the parsed CIDRs; Validate refuses a bad one, which is
// left out here.
func (t TrustedProxy) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, c := range t.CIDRs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// Role returns the highest role that groups give, and false if none of
// them is listed in signin.groups.
func (s SignIn) Role(groups []string) (Role, bool) {
	best := Role("")
	for _, g := range groups {
		if r, ok := s.Groups[g]; ok && r.Rank() > best.Rank() {
			best = r
		}
	}
	return best, best.Rank() >= 0
}

// ParseGroups splits a groups header value (comma separated, blanks
// trimmed, empty entries dropped).
func ParseGroups(v string) []string {
	var out []string
	for g := range strings.SplitSeq(v, ",") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}

// safe returns o with a non-empty client secret replaced by "REDACTED".
func (o OIDC) safe() redactedOIDC {
	if o.ClientSecret != "" {
		o.ClientSecret = redacted
	}
	return redactedOIDC(o)
}

// redactedOIDC is OIDC without its methods, for String and MarshalJSON.
type redactedOIDC OIDC

// String formats o with the client secret redacted.
func (o OIDC) String() string { return fmt.Sprintf("%+v", o.safe()) }

// GoString formats o for %#v with the client secret redacted.
func (o OIDC) GoString() string { return fmt.Sprintf("config.OIDC%+v", o.safe()) }

// MarshalJSON encodes o with the client secret redacted.
func (o OIDC) MarshalJSON() ([]byte, error) { return json.Marshal(o.safe()) }

// applySignInEnv reads BREAKWATER_OIDC_CLIENT_SECRET.
func (c *Config) applySignInEnv(lookup func(string) (string, bool)) {
	if v, ok := lookup(EnvOIDCClientSecret); ok && v != "" {
		c.SignIn.OIDC.ClientSecret = v
	}
}

// validateSignIn checks the signin section. No message shows the client
// secret.
func (c Config) validateSignIn(p *problems) {
	s := c.SignIn
	for _, g := range slices.Sorted(func(yield func(string) bool) {
		for g := range s.Groups {
			if !yield(g) {
				return
			}
		}
	}) {
		field := fmt.Sprintf("signin.groups[%q]", g)
		switch {
		case g == "" || len(g) > maxGroupName || hasControl(g) || strings.Contains(g, ","):
			p.addf(field, "a group name must be 1 to %d characters, without commas or control characters", maxGroupName)
		case s.Groups[g].Rank() < 0:
			p.addf(field, "must be viewer, reviewer, operator or admin, got %q", s.Groups[g])
		}
	}
	if s.SessionTTL < minSessionTTL || s.SessionTTL > maxSessionTTL {
		p.addf("signin.session_ttl", "must be between %s and %s, got %s", minSessionTTL, maxSessionTTL, s.SessionTTL)
	}
	if s.Enabled() && len(s.Groups) == 0 {
		p.addf("signin.groups", "must map at least one group to a role when signin.oidc or signin.trusted_proxy is set: nobody could sign in")
	}
	o := s.OIDC
	if o.Enabled() {
		if msg := httpURLProblem(o.IssuerURL); msg != "" {
			p.addf("signin.oidc.issuer_url", "%s", msg)
		}
		if msg := httpURLProblem(o.RedirectURL); msg != "" {
			p.addf("signin.oidc.redirect_url", "%s", msg)
		} else if u, _ := url.Parse(o.RedirectURL); u.Path != "/auth/callback" {
			p.addf("signin.oidc.redirect_url", "must end in /auth/callback, where the daemon serves it, got path %q", u.Path)
		}
		if o.ClientID == "" || hasControl(o.ClientID) {
			p.addf("signin.oidc.client_id", "must be set, without control characters")
		}
		if o.ClientSecret == "" {
			p.addf("signin.oidc.client_secret", "must be set (or set %s)", EnvOIDCClientSecret)
		} else if hasControl(o.ClientSecret) {
			p.addf("signin.oidc.client_secret", "must not contain control characters, such as a trailing newline (value not shown)")
		}
		for i, sc := range o.Scopes {
			if sc == "" || strings.ContainsAny(sc, " \t\r\n") || hasControl(sc) {
				p.addf(fmt.Sprintf("signin.oidc.scopes[%d]", i), "must be one word, got %q", sc)
			}
		}
		for _, f := range []struct{ field, v string }{{"signin.oidc.groups_claim", o.GroupsClaim}, {"signin.oidc.name_claim", o.NameClaim}} {
			if f.v == "" || hasControl(f.v) {
				p.addf(f.field, "must name a claim of the ID token")
			}
		}
	}
	t := s.TrustedProxy
	for i, cidr := range t.CIDRs {
		pfx, err := netip.ParsePrefix(cidr)
		switch {
		case err != nil:
			p.addf(fmt.Sprintf("signin.trusted_proxy.cidrs[%d]", i), "must be an address range such as 10.0.0.0/8 or 10.1.2.3/32, got %q", cidr)
		case pfx.Bits() == 0:
			p.addf(fmt.Sprintf("signin.trusted_proxy.cidrs[%d]", i), "%q trusts every address: anyone could claim to be anyone", cidr)
		}
	}
	if t.Enabled() {
		for _, f := range []struct{ field, v string }{{"signin.trusted_proxy.user_header", t.UserHeader}, {"signin.trusted_proxy.groups_header", t.GroupsHeader}} {
			if f.v == "" || !validHeaderName(f.v) {
				p.addf(f.field, "must be an HTTP header name, got %q", f.v)
			}
		}
		if strings.EqualFold(t.UserHeader, "Authorization") || strings.EqualFold(t.GroupsHeader, "Authorization") {
			p.addf("signin.trusted_proxy.user_header", "must not be Authorization, which carries admin tokens")
		}
	}
}

// httpURLProblem describes what is wrong with an absolute http(s) URL, or
// returns "".
func httpURLProblem(v string) string {
	u, err := url.Parse(v)
	switch {
	case err != nil || hasControl(v):
		return "must be an absolute http or https URL"
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return fmt.Sprintf("must be an absolute http or https URL, got %q", v)
	case u.User != nil:
		return "must not contain credentials"
	}
	return ""
}

// validHeaderName reports whether v is a token as HTTP header names are.
func validHeaderName(v string) bool {
	if v == "" {
		return false
	}
	for _, r := range v {
		if r > 0x7e || r <= ' ' || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", r) {
			return false
		}
	}
	return http.CanonicalHeaderKey(v) != "" && net.ParseIP(v) == nil
}

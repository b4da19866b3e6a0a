package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/signin"
)

// credential is one configured token, its hash decoded.
type credential struct {
	hash [sha256.Size]byte
	who  api.Principal
}

// authenticator checks bearer tokens against the configured hashes, and
// asks people (if set) about requests without one.
type authenticator struct {
	creds  []credential
	people People
}

func newAuthenticator(tokens []config.Token, people People) *authenticator {
	a := &authenticator{people: people}
	for _, t := range tokens {
		b, err := hex.DecodeString(t.SHA256)
		if err != nil || len(b) != sha256.Size {
			continue // config.Validate refuses these
		}
		c := credential{who: api.Principal{Name: t.Name, Role: t.Role}}
		copy(c.hash[:], b)
		a.creds = append(a.creds, c)
	}
	return a
}

// authenticate returns the holder of the request's bearer token. Every
// configured hash is compared in constant time, whether or not an earlier
// one matched, so that timing tells nothing about the tokens.
func (a *authenticator) authenticate(r *http.Request) (api.Principal, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return api.Principal{}, false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	var who api.Principal
	found := 0
	for _, c := range a.creds {
		if subtle.ConstantTimeCompare(sum[:], c.hash[:]) == 1 {
			who = c.who
			found = 1
		}
	}
	return who, found == 1
}

type principalKey struct{}

// People identifies people signed in other than with a token
// (signin.Authenticator).
type People interface {
	Identify(r *http.Request) (signin.Person, error)
}

var _ People = (*signin.Authenticator)(nil)

// withPrincipal wraps h: it answers 401 without a valid token or sign-in,
// 403 when the caller's role is below need (or a person's write lacks its
// CSRF token), and 503 when the session store fails, before h reads
// anything. A request with an Authorization header is judged on its token
// alone.
func (a *authenticator) withPrincipal(need config.Role, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var who api.Principal
		ok := false
		if r.Header.Get("Authorization") != "" || a.people == nil {
			who, ok = a.authenticate(r)
			who.Via = "token"
		} else {
			p, err := a.people.Identify(r)
			switch {
			case err == nil:
				who, ok = api.Principal{Name: p.Name, Role: p.Role, Via: p.Via, CSRFToken: p.CSRF}, true
			case errors.Is(err, signin.ErrNoRole), errors.Is(err, signin.ErrCSRF):
				writeError(w, http.StatusForbidden, err.Error())
				return
			case !errors.Is(err, signin.ErrNotSignedIn):
				writeError(w, http.StatusServiceUnavailable, "check the sign-in: "+err.Error())
				return
			}
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="breakwater"`)
			writeError(w, http.StatusUnauthorized, "missing or invalid bearer token, and no sign-in")
			return
		}
		if !who.Role.Allows(need) {
			writeError(w, http.StatusForbidden, "role "+string(who.Role)+" may not do this; it needs "+string(need))
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, who)))
	}
}

// principal returns the authenticated holder of the request.
func principal(r *http.Request) api.Principal {
	p, _ := r.Context().Value(principalKey{}).(api.Principal)
	return p
}

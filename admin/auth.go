package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/config"
)

// credential is one configured token, its hash decoded.
type credential struct {
	hash [sha256.Size]byte
	who  api.Principal
}

// authenticator checks bearer tokens against the configured hashes.
type authenticator struct {
	creds []credential
}

func newAuthenticator(tokens []config.Token) *authenticator {
	a := &authenticator{}
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

// withPrincipal wraps h: it answers 401 without a valid token and 403 when
// the token's role is below need, before h reads anything.
func (a *authenticator) withPrincipal(need config.Role, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who, ok := a.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="breakwater"`)
			writeError(w, http.StatusUnauthorized, "missing or invalid bearer token")
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

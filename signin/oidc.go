package signin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"golang.org/x/time/rate"

	"github.com/breakwater/breakwater/config"
)

// The paths the sign-in serves.
const (
	// LoginPath starts an OIDC sign-in (GET).
	LoginPath = "/auth/login"
	// CallbackPath is where the provider sends the browser back (GET).
	CallbackPath = "/auth/callback"
	// LogoutPath ends the session (POST, with the CSRF token).
	LogoutPath = "/auth/logout"
	// MethodsPath tells the console how people may sign in (GET, no sign-in needed).
	MethodsPath = "/auth/methods"
)

// Timeouts of a sign-in.
const (
	// stateTTL bounds the time from the redirect to the provider to the callback.
	stateTTL = 10 * time.Minute
	// providerTimeout bounds one request to the provider.
	providerTimeout = 10 * time.Second
	// loginRate and loginBurst bound how many sign-ins a replica starts:
	// each stores a state in Redis for stateTTL, so that anyone who can
	// reach /auth/login can make a replica keep at most
	// loginBurst + loginRate x stateTTL of them (12,100, about 3 MB).
	loginRate  = 20 // per second
	loginBurst = 100
)

// OIDC serves the OpenID Connect sign-in: /auth/login sends the browser
// to the provider with a state, a nonce and a PKCE challenge;
// /auth/callback takes the state (once), exchanges the code with the
// verifier, verifies the ID token (signature, issuer, audience, expiry,
// nonce), maps the groups claim to a role and starts a session;
// /auth/logout ends it.
type OIDC struct {
	cfg      config.SignIn
	sessions *Store
	log      *zap.Logger
	client   *http.Client
	logins   *rate.Limiter

	mu       sync.Mutex // guards provider and verifier
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
}

// NewOIDC returns the sign-in of cfg. The provider's discovery document is
// read on the first sign-in, not here, so that the daemon starts while the
// provider is down; client, if nil, is a client with a timeout.
func NewOIDC(cfg config.SignIn, sessions *Store, client *http.Client, log *zap.Logger) (*OIDC, error) {
	switch {
	case !cfg.OIDC.Enabled():
		return nil, errors.New("signin: signin.oidc.issuer_url is not set")
	case sessions == nil:
		return nil, errors.New("signin: the session store is nil")
	case log == nil:
		return nil, errors.New("signin: the logger is nil")
	}
	if client == nil {
		client = &http.Client{Timeout: providerTimeout}
	}
	return &OIDC{cfg: cfg, sessions: sessions, log: log, client: client, logins: rate.NewLimiter(loginRate, loginBurst)}, nil
}

// Mount serves the sign-in's paths on mux.
func (o *OIDC) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET "+LoginPath, o.login)
	mux.HandleFunc("GET "+CallbackPath, o.callback)
	mux.HandleFunc("POST "+LogoutPath, o.logout)
}

// Methods is the answer of MethodsPath.
type Methods struct {
	// OIDC says whether people may sign in through the identity provider
	// (at LoginPath).
	OIDC bool `json:"oidc"`
	// SignedIn says whether the request carries a sign-in that holds (a
	// session, or a trusted proxy's headers), so that the console can
	// tell without a refused request.
	SignedIn bool `json:"signed_in"`
}

// MountMethods serves MethodsPath on mux; a may be nil (tokens only).
func MountMethods(mux *http.ServeMux, cfg config.SignIn, a *Authenticator) {
	mux.HandleFunc("GET "+MethodsPath, func(w http.ResponseWriter, r *http.Request) {
		m := Methods{OIDC: cfg.OIDC.Enabled()}
		if a != nil {
			_, err := a.Identify(r)
			m.SignedIn = err == nil
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(m)
	})
}

// setup returns the OAuth 2 configuration and the ID token verifier,
// reading the provider's discovery document the first time it succeeds.
func (o *OIDC) setup(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider == nil {
		ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, o.client), providerTimeout)
		defer cancel()
		p, err := oidc.NewProvider(ctx, o.cfg.OIDC.IssuerURL)
		if err != nil {
			return nil, nil, fmt.Errorf("read the identity provider's discovery document: %w", err)
		}
		o.provider = p
		o.verifier = p.VerifierContext(oidc.ClientContext(context.Background(), o.client), &oidc.Config{ClientID: o.cfg.OIDC.ClientID})
	}
	c := o.cfg.OIDC
	return &oauth2.Config{
		ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: c.RedirectURL,
		Endpoint: o.provider.Endpoint(), Scopes: append([]string{oidc.ScopeOpenID}, c.Scopes...),
	}, o.verifier, nil
}

func (o *OIDC) login(w http.ResponseWriter, r *http.Request) {
	if !o.logins.Allow() {
		w.Header().Set("Retry-After", "1")
		page(w, http.StatusTooManyRequests, "Too many sign-ins are starting at once; try again in a moment.")
		return
	}
	oc, _, err := o.setup(r.Context())
	if err != nil {
		o.log.Warn("sign-in: the identity provider is unreachable", zap.Error(err))
		page(w, http.StatusServiceUnavailable, "The identity provider cannot be reached; try again shortly.")
		return
	}
	state, nonce, verifier := random(32), random(32), oauth2.GenerateVerifier()
	if err := o.sessions.begin(r.Context(), state, pending{Verifier: verifier, Nonce: nonce}, stateTTL); err != nil {
		o.log.Warn("sign-in: store the state", zap.Error(err))
		page(w, http.StatusServiceUnavailable, "Signing in is not possible right now (the session store failed); try again shortly.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: StateCookie, Value: state, Path: "/auth/", MaxAge: int(stateTTL / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, oc.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

func (o *OIDC) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// The state cookie has done its work whatever happens next.
	http.SetCookie(w, &http.Cookie{Name: StateCookie, Value: "", Path: "/auth/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	if e := q.Get("error"); e != "" {
		page(w, http.StatusUnauthorized, "The identity provider refused the sign-in: "+e+" "+q.Get("error_description"))
		return
	}
	state := q.Get("state")
	c, err := r.Cookie(StateCookie)
	if state == "" || err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		page(w, http.StatusBadRequest, "This sign-in was not started in this browser. Sign in again.")
		return
	}
	p, ok, err := o.sessions.take(r.Context(), state)
	if err != nil {
		o.log.Warn("sign-in: read the state", zap.Error(err))
		page(w, http.StatusServiceUnavailable, "Signing in is not possible right now (the session store failed); try again shortly.")
		return
	}
	if !ok {
		page(w, http.StatusBadRequest, "This sign-in was already used or has expired. Sign in again.")
		return
	}
	who, err := o.exchange(r.Context(), q.Get("code"), p)
	switch {
	case errors.Is(err, ErrNoRole):
		o.log.Warn("sign-in refused: no role", zap.String("name", who.Name), zap.Strings("groups", who.groups))
		page(w, http.StatusForbidden, "You signed in as "+who.Name+", but none of your groups has a role in Breakwater. Ask its administrators to map one of your groups in signin.groups.")
		return
	case err != nil:
		o.log.Warn("sign-in refused", zap.Error(err))
		page(w, http.StatusUnauthorized, "The sign-in could not be verified. Sign in again.")
		return
	}
	ttl := o.cfg.SessionTTL
	s := Session{Name: who.Name, Role: who.Role, CSRF: random(32), Expires: time.Now().Add(ttl)}
	id, err := o.sessions.Create(r.Context(), s)
	if err != nil {
		o.log.Warn("sign-in: store the session", zap.Error(err))
		page(w, http.StatusServiceUnavailable, "Signing in is not possible right now (the session store failed); try again shortly.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: id, Path: "/", MaxAge: int(ttl / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	})
	o.log.Info("signed in", zap.String("name", s.Name), zap.String("role", string(s.Role)), zap.String("via", ViaOIDC))
	http.Redirect(w, r, "/ui/", http.StatusFound)
}

// identity is what an ID token says of a person.
type identity struct {
	Name   string
	Role   config.Role
	groups []string
}

// exchange trades the code for tokens with the PKCE verifier and reads
// the verified ID token. A known person without a role comes back with
// ErrNoRole and their name.
func (o *OIDC) exchange(ctx context.Context, code string, p pending) (identity, error) {
	if code == "" {
		return identity{}, errors.New("the callback has no code")
	}
	oc, verifier, err := o.setup(ctx)
	if err != nil {
		return identity{}, err
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, o.client), providerTimeout)
	defer cancel()
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		return identity{}, fmt.Errorf("exchange the code: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return identity{}, errors.New("the token response has no id_token")
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return identity{}, fmt.Errorf("verify the ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(p.Nonce)) != 1 {
		return identity{}, errors.New("the ID token's nonce is not this sign-in's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return identity{}, fmt.Errorf("read the ID token's claims: %w", err)
	}
	return o.identify(claims)
}

// identify maps the claims of a verified ID token to a person.
func (o *OIDC) identify(claims map[string]any) (identity, error) {
	c := o.cfg.OIDC
	name, _ := claims[c.NameClaim].(string)
	name = strings.TrimSpace(name)
	if name == "" || len(name) > maxName || strings.ContainsFunc(name, isControl) {
		return identity{}, fmt.Errorf("the ID token has no usable %q claim to name the person", c.NameClaim)
	}
	var groups []string
	switch g := claims[c.GroupsClaim].(type) {
	case string:
		groups = config.ParseGroups(g)
	case []any:
		for _, v := range g {
			if s, ok := v.(string); ok {
				groups = append(groups, s)
			}
		}
	}
	who := identity{Name: name, groups: groups}
	role, ok := o.cfg.Role(groups)
	if !ok {
		return who, ErrNoRole
	}
	who.Role = role
	return who, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

func (o *OIDC) logout(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(SessionCookie)
	if err == nil && c.Value != "" {
		s, ok, err := o.sessions.Get(r.Context(), c.Value)
		switch {
		case err != nil:
			http.Error(w, "the session store failed; try again", http.StatusServiceUnavailable)
			return
		case ok && subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(s.CSRF)) != 1:
			http.Error(w, ErrCSRF.Error(), http.StatusForbidden)
			return
		case ok:
			if err := o.sessions.Delete(r.Context(), c.Value); err != nil {
				http.Error(w, "the session store failed; try again", http.StatusServiceUnavailable)
				return
			}
			o.log.Info("signed out", zap.String("name", s.Name))
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, `{"signed_out":true}`+"\n")
}

// page answers a browser with a short page that links back to the console.
func page(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = fmt.Fprintf(w, "<!doctype html><meta charset=utf-8><title>Breakwater sign-in</title><p>%s</p><p><a href=\"/ui/\">Back to the console</a></p>\n", html.EscapeString(msg))
}

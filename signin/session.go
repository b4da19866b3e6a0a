// Package signin signs people in to the admin API and the web console:
// through the company's identity provider with OpenID Connect (the
// authorization code flow with PKCE), or behind an authenticating proxy
// (oauth2-proxy and the like) that names the person in request headers.
// Either way a person gets the role that configuration maps their groups
// to, and everything they do is recorded under their own name.
//
// An OIDC sign-in ends in a session kept in Redis, so that every replica
// knows it and signing out ends it everywhere, and named by an HttpOnly,
// Secure, SameSite=Lax cookie. Requests that change something must carry
// the session's CSRF token in the X-CSRF-Token header, and pass
// net/http's cross-origin protection. Admin tokens (machines, the CLI, the
// demo) are the admin package's and are not handled here.
package signin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/wire"
)

// The cookies and the header of a sign-in.
const (
	// SessionCookie names the session of a person signed in through OIDC.
	SessionCookie = "breakwater_session"
	// StateCookie binds a started OIDC sign-in to the browser that started it.
	StateCookie = "breakwater_signin"
	// CSRFHeader carries the session's CSRF token on every request that
	// changes something.
	CSRFHeader = "X-CSRF-Token"
)

// Session is a person signed in through OIDC.
type Session struct {
	// Name names the person (the configured claim of their ID token).
	Name string `json:"name"`
	// Role is the role their groups gave them at sign-in.
	Role config.Role `json:"role"`
	// CSRF must come back in CSRFHeader on every write.
	CSRF string `json:"csrf"`
	// Expires is when the session ends.
	Expires time.Time `json:"expires"`
}

// pending is an OIDC sign-in between the redirect to the provider and the
// callback.
type pending struct {
	Verifier string `json:"verifier"`
	Nonce    string `json:"nonce"`
}

// Store keeps sessions and started sign-ins in Redis, under the SHA-256 of
// their cookie or state.
type Store struct {
	rc   redis.UniversalClient
	keys wire.Keys
}

// NewStore returns the store on rc under the key prefix.
func NewStore(rc redis.UniversalClient, prefix string) (*Store, error) {
	if rc == nil {
		return nil, errors.New("signin: the Redis client is nil")
	}
	keys, err := wire.NewKeys(prefix)
	if err != nil {
		return nil, fmt.Errorf("signin: %w", err)
	}
	return &Store{rc: rc, keys: keys}, nil
}

// hash is the hex SHA-256 of a cookie value or state.
func hash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// random returns n random bytes, base64url encoded.
func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// Create stores s and returns the value of its cookie.
func (st *Store) Create(ctx context.Context, s Session) (string, error) {
	id := random(32)
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("encode session: %w", err)
	}
	if err := st.rc.Set(ctx, st.keys.Session(hash(id)), b, time.Until(s.Expires)).Err(); err != nil {
		return "", fmt.Errorf("store session: %w", err)
	}
	return id, nil
}

// Get returns the session of cookie value id, and false if there is none
// (never created, expired or signed out).
func (st *Store) Get(ctx context.Context, id string) (Session, bool, error) {
	b, err := st.rc.Get(ctx, st.keys.Session(hash(id))).Bytes()
	if errors.Is(err, redis.Nil) {
		return Session{}, false, nil
	}
	if err != nil {
		return Session{}, false, fmt.Errorf("read session: %w", err)
	}
	var s Session
	if err := json.Unmarshal(b, &s); err != nil {
		return Session{}, false, fmt.Errorf("decode session: %w", err)
	}
	if !time.Now().Before(s.Expires) {
		return Session{}, false, nil
	}
	return s, true, nil
}

// Delete ends the session of cookie value id.
func (st *Store) Delete(ctx context.Context, id string) error {
	if err := st.rc.Del(ctx, st.keys.Session(hash(id))).Err(); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// begin stores a started sign-in under its state for ttl.
func (st *Store) begin(ctx context.Context, state string, p pending, ttl time.Duration) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode sign-in: %w", err)
	}
	if err := st.rc.Set(ctx, st.keys.SignInState(hash(state)), b, ttl).Err(); err != nil {
		return fmt.Errorf("store sign-in: %w", err)
	}
	return nil
}

// take returns and deletes the sign-in started with state, in one call, so
// that a state is used at most once; false if there is none.
func (st *Store) take(ctx context.Context, state string) (pending, bool, error) {
	b, err := st.rc.GetDel(ctx, st.keys.SignInState(hash(state))).Bytes()
	if errors.Is(err, redis.Nil) {
		return pending{}, false, nil
	}
	if err != nil {
		return pending{}, false, fmt.Errorf("read sign-in: %w", err)
	}
	var p pending
	if err := json.Unmarshal(b, &p); err != nil {
		return pending{}, false, fmt.Errorf("decode sign-in: %w", err)
	}
	return p, true, nil
}

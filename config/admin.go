package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// EnvAdminTokens replaces admin.tokens: a comma separated list of
// name:role:secret entries. The secret is either the token itself, which
// is hashed with SHA-256 at once and never kept, or sha256:<64 hex digits>.
const EnvAdminTokens = "BREAKWATER_ADMIN_TOKENS"

// Limits of the admin section.
const (
	maxTokenName       = 64
	minMaxBodyBytes    = 1 << 10
	maxMaxBodyBytes    = 10 << 20
	maxAuditIndexSize  = 10_000_000
	maxReleaseBatch    = 5000
	defaultAuditIndex  = 100_000
	defaultMaxBodySize = 64 << 10
)

// Role is what an admin API token may do. Each role may do everything the
// roles before it may.
type Role string

// The roles, least to most privileged.
const (
	// RoleViewer reads breakers, incidents, held actions and the audit trail.
	RoleViewer Role = "viewer"
	// RoleReviewer also approves and rejects held actions.
	RoleReviewer Role = "reviewer"
	// RoleOperator also overrides and resets breakers.
	RoleOperator Role = "operator"
	// RoleAdmin may do everything.
	RoleAdmin Role = "admin"
)

// Roles lists the roles, least privileged first.
var Roles = []Role{RoleViewer, RoleReviewer, RoleOperator, RoleAdmin}

// Rank returns the position of r in Roles, or -1 for an unknown role.
func (r Role) Rank() int {
	for i, x := range Roles {
		if x == r {
			return i
		}
	}
	return -1
}

// Allows reports whether a token of role r may do what needs role need.
func (r Role) Allows(need Role) bool {
	return r.Rank() >= 0 && need.Rank() >= 0 && r.Rank() >= need.Rank()
}

// Admin configures the admin API, its tokens and its topics.
type Admin struct {
	// Tokens are the bearer tokens of the admin API, stored as SHA-256
	// hashes. Replaced by BREAKWATER_ADMIN_TOKENS. No token means every
	// request is refused.
	Tokens []Token `yaml:"tokens,omitempty"`
	// AuditTopic receives every breaker transition and review decision
	// with its actor, reason and time.
	AuditTopic string `yaml:"audit_topic"`
	// RejectedTopic receives the held actions a reviewer rejected.
	RejectedTopic string `yaml:"rejected_topic"`
	// MaxBodyBytes bounds the size of one request body.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// AuditIndexSize bounds how many audit entries Redis keeps for queries;
	// the audit topic keeps them all.
	AuditIndexSize int `yaml:"audit_index_size"`
	// ReleaseBatch is the most approved or rejected actions written to
	// their topic at once.
	ReleaseBatch int `yaml:"release_batch"`
	// ConfirmAbove is the count of held actions above which the web
	// console asks a reviewer to type a confirmation before approving or
	// rejecting a whole incident; 0 asks every time.
	ConfirmAbove int `yaml:"confirm_above"`
}

// Token is one bearer token of the admin API.
type Token struct {
	// Name identifies the token's holder; it is the actor of what it does.
	Name string `yaml:"name"`
	// Role is viewer, reviewer, operator or admin.
	Role Role `yaml:"role"`
	// SHA256 is the hex SHA-256 of the token (printf %s "$TOKEN" | sha256sum).
	SHA256 string `yaml:"token_sha256"`
}

// defaultAdmin returns the built-in admin section: no token.
func defaultAdmin() Admin {
	return Admin{
		AuditTopic:     "moderation.audit",
		RejectedTopic:  "moderation.actions.rejected",
		MaxBodyBytes:   defaultMaxBodySize,
		AuditIndexSize: defaultAuditIndex,
		ReleaseBatch:   500,
		ConfirmAbove:   100,
	}
}

// HashToken returns the hex SHA-256 of a bearer token, as token_sha256 holds it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ParseTokens parses the value of BREAKWATER_ADMIN_TOKENS. Errors name the
// entry by position and never include a secret.
func ParseTokens(v string) ([]Token, error) {
	var out []Token
	for i, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		name, rest, ok1 := strings.Cut(entry, ":")
		role, secret, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || name == "" || secret == "" {
			return nil, fmt.Errorf("%s entry %d: want name:role:token or name:role:sha256:<hex>", EnvAdminTokens, i+1)
		}
		t := Token{Name: name, Role: Role(role)}
		if h, ok := strings.CutPrefix(secret, "sha256:"); ok {
			if h == "" {
				return nil, fmt.Errorf("%s entry %d: sha256: is followed by no hash", EnvAdminTokens, i+1)
			}
			t.SHA256 = strings.ToLower(h)
		} else {
			t.SHA256 = HashToken(secret)
		}
		out = append(out, t)
	}
	return out, nil
}

// applyAdminEnv replaces the tokens with those of BREAKWATER_ADMIN_TOKENS.
// A malformed value leaves one invalid token behind, so that Validate
// reports it rather than the daemon starting without the intended tokens.
func (c *Config) applyAdminEnv(lookup func(string) (string, bool)) {
	v, ok := lookup(EnvAdminTokens)
	if !ok || strings.TrimSpace(v) == "" {
		return
	}
	ts, err := ParseTokens(v)
	if err != nil {
		c.Admin.Tokens = []Token{{Name: EnvAdminTokens, Role: "malformed"}}
		return
	}
	c.Admin.Tokens = ts
}

// validateAdmin checks the admin section. No message shows a token hash.
func (c Config) validateAdmin(p *problems) {
	a := c.Admin
	names := map[string]int{}
	hashes := map[string]int{}
	for i, t := range a.Tokens {
		field := fmt.Sprintf("admin.tokens[%d]", i)
		switch {
		case t.Name == "":
			p.addf(field+".name", "must not be empty")
		case len(t.Name) > maxTokenName:
			p.addf(field+".name", "must be at most %d characters, got %d", maxTokenName, len(t.Name))
		case hasControl(t.Name):
			p.addf(field+".name", "must not contain control characters")
		default:
			if j, dup := names[t.Name]; dup {
				p.addf(field+".name", "%q is also the name of admin.tokens[%d]", t.Name, j)
			}
			names[t.Name] = i
		}
		if t.Role.Rank() < 0 {
			p.addf(field+".role", "must be viewer, reviewer, operator or admin, got %q", t.Role)
		}
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size {
			p.addf(field+".token_sha256", "must be 64 hex digits, the SHA-256 of the token")
		} else {
			h := strings.ToLower(t.SHA256)
			if j, dup := hashes[h]; dup {
				p.addf(field+".token_sha256", "is the same token as admin.tokens[%d]", j)
			}
			hashes[h] = i
		}
	}
	k := c.Kafka.Topics
	taken := map[string]string{
		k.Input: "kafka.topics.input", k.Gated: "kafka.topics.gated", k.Held: "kafka.topics.held",
		k.DeadLetter: "kafka.topics.dead_letter", k.State: "kafka.topics.state",
	}
	for _, t := range []struct{ field, name string }{
		{"admin.audit_topic", a.AuditTopic}, {"admin.rejected_topic", a.RejectedTopic},
	} {
		if msg := topicProblem(t.name); msg != "" {
			p.addf(t.field, "%s", msg)
			continue
		}
		if other, dup := taken[t.name]; dup {
			p.addf(t.field, "must differ from %s, both are %q", other, t.name)
			continue
		}
		taken[t.name] = t.field
	}
	if a.MaxBodyBytes < minMaxBodyBytes || a.MaxBodyBytes > maxMaxBodyBytes {
		p.addf("admin.max_body_bytes", "must be between %d and %d, got %d", minMaxBodyBytes, maxMaxBodyBytes, a.MaxBodyBytes)
	}
	if a.AuditIndexSize < 1 || a.AuditIndexSize > maxAuditIndexSize {
		p.addf("admin.audit_index_size", "must be between 1 and %d, got %d", maxAuditIndexSize, a.AuditIndexSize)
	}
	if a.ReleaseBatch < 1 || a.ReleaseBatch > maxReleaseBatch {
		p.addf("admin.release_batch", "must be between 1 and %d, got %d", maxReleaseBatch, a.ReleaseBatch)
	}
	if a.ConfirmAbove < 0 {
		p.addf("admin.confirm_above", "must be 0 or more, got %d", a.ConfirmAbove)
	}
}

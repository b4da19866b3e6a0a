package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// TLS configures a TLS client connection (to Kafka or to Redis).
type TLS struct {
	// Enabled turns TLS on. Setting any file below also turns it on.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of the certificate authorities to trust;
	// empty trusts the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate (PEM, chain
	// included) and its private key, for mutual TLS; set both or neither.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the private key of CertFile (PEM). It is read at start
	// and never logged.
	KeyFile string `yaml:"key_file"`
	// ServerName is the name the server certificate must carry; empty
	// means the host of the address dialled.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate. It defeats TLS
	// against an active attacker: testing only; a warning is logged.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// On reports whether t asks for TLS at all.
func (t TLS) On() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify
}

// ClientConfig reads the files of t and returns the client TLS
// configuration, or nil when t is off. section names the configuration
// key in errors (kafka.tls, redis.tls); errors name files, never their
// contents.
func (t TLS) ClientConfig(section string) (*tls.Config, error) {
	if !t.On() {
		return nil, nil
	}
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // only behind the explicitly named option, with a warning at start
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", section, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file: %s holds no PEM certificate", section, t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			// The error of LoadX509KeyPair never quotes the key's bytes.
			return nil, fmt.Errorf("%s.cert_file, %s.key_file: load the client certificate: %w", section, section, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// validate checks t, the TLS section at path.
func (t TLS) validate(p *problems, path string) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		p.addf(path+".cert_file", "cert_file and key_file must be set together")
	}
	for _, f := range []struct{ name, v string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}, {"server_name", t.ServerName}} {
		if hasControl(f.v) {
			p.addf(path+"."+f.name, "must not contain control characters")
		}
	}
}

// The SASL mechanisms of kafka.sasl.mechanism.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// SASL configures Kafka's SASL authentication.
type SASL struct {
	// Mechanism is plain, scram-sha-256 or scram-sha-512; empty turns SASL off.
	Mechanism string `yaml:"mechanism"`
	// Username is the SASL user.
	Username string `yaml:"username"`
	// Password is a secret; prefer BREAKWATER_KAFKA_SASL_PASSWORD or
	// PasswordFile. It is never logged.
	Password string `yaml:"password"`
	// PasswordFile is a file holding the password (one trailing newline is
	// ignored), such as a mounted Kubernetes secret.
	PasswordFile string `yaml:"password_file"`
}

// On reports whether SASL is configured.
func (s SASL) On() bool { return s.Mechanism != "" }

// Secret returns the password: Password, or the content of PasswordFile
// without one trailing newline. Errors name the file, never its content.
func (s SASL) Secret() (string, error) {
	if s.PasswordFile == "" {
		return s.Password, nil
	}
	b, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("kafka.sasl.password_file: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pw == "" {
		return "", fmt.Errorf("kafka.sasl.password_file: %s is empty", s.PasswordFile)
	}
	if hasControl(pw) {
		return "", fmt.Errorf("kafka.sasl.password_file: %s holds control characters besides one trailing newline (content not shown)", s.PasswordFile)
	}
	return pw, nil
}

// validate checks s; no message shows the password.
func (s SASL) validate(p *problems) {
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.Password != "" || s.PasswordFile != "" {
			p.addf("kafka.sasl.mechanism", "must be set (plain, scram-sha-256 or scram-sha-512) when a user name or password is")
		}
		return
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		p.addf("kafka.sasl.mechanism", "must be plain, scram-sha-256 or scram-sha-512, got %q", s.Mechanism)
	}
	if s.Username == "" {
		p.addf("kafka.sasl.username", "must not be empty when kafka.sasl.mechanism is set")
	} else if hasControl(s.Username) {
		p.addf("kafka.sasl.username", "must not contain control characters (value not shown)")
	}
	switch {
	case s.Password != "" && s.PasswordFile != "":
		p.addf("kafka.sasl.password", "set the password or password_file, not both")
	case s.Password == "" && s.PasswordFile == "":
		p.addf("kafka.sasl.password", "must be set (or %s, or kafka.sasl.password_file) when kafka.sasl.mechanism is set", EnvKafkaSASLPassword)
	case hasControl(s.Password):
		p.addf("kafka.sasl.password", "must not contain control characters, such as a trailing newline (value not shown)")
	case hasControl(s.PasswordFile):
		p.addf("kafka.sasl.password_file", "must not contain control characters")
	}
}

// redactedSASL is SASL without its methods, for String and MarshalJSON.
type redactedSASL SASL

// safe returns s with a non-empty password replaced by "REDACTED".
func (s SASL) safe() redactedSASL {
	if s.Password != "" {
		s.Password = redacted
	}
	return redactedSASL(s)
}

// String formats s with the password redacted.
func (s SASL) String() string { return fmt.Sprintf("%+v", s.safe()) }

// GoString formats s for %#v with the password redacted.
func (s SASL) GoString() string { return fmt.Sprintf("config.SASL%+v", s.safe()) }

// MarshalJSON encodes s with the password redacted.
func (s SASL) MarshalJSON() ([]byte, error) { return json.Marshal(s.safe()) }

// validateHTTPTLS checks http.tls_cert_file and http.tls_key_file.
func (c Config) validateHTTPTLS(p *problems) {
	h := c.HTTP
	if (h.TLSCertFile == "") != (h.TLSKeyFile == "") {
		p.addf("http.tls_cert_file", "tls_cert_file and tls_key_file must be set together")
	}
	if hasControl(h.TLSCertFile) || hasControl(h.TLSKeyFile) {
		p.addf("http.tls_cert_file", "the TLS file names must not contain control characters")
	}
}

// ServerTLS returns the TLS configuration of the HTTP listener, or nil
// when http.tls_cert_file is not set.
func (h HTTP) ServerTLS() (*tls.Config, error) {
	if h.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(h.TLSCertFile, h.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("http.tls_cert_file, http.tls_key_file: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// errTopology is the message of a redis section that names two topologies.
var errTopology = errors.New("set one of redis.addr (one Redis, or with cluster: true a Cluster's configuration endpoint), redis.addrs (Cluster seed nodes) or redis.master_name with redis.sentinel_addrs (Sentinel)")

// RedisTopology is how Breakwater reaches Redis.
type RedisTopology string

// The Redis topologies.
const (
	RedisEmbedded RedisTopology = "embedded"
	RedisSingle   RedisTopology = "single"
	RedisCluster  RedisTopology = "cluster"
	RedisSentinel RedisTopology = "sentinel"
)

// Topology returns how r reaches Redis.
func (r Redis) Topology() RedisTopology {
	switch {
	case r.MasterName != "" || len(r.SentinelAddrs) > 0:
		return RedisSentinel
	case len(r.Addrs) > 0 || r.Cluster:
		return RedisCluster
	case r.Addr != "":
		return RedisSingle
	}
	return RedisEmbedded
}

// validateTopology checks the address keys of the redis section; no
// message shows an address (it may carry credentials).
func (r Redis) validateTopology(p *problems) {
	addrs := func(field string, list []string) {
		for i, a := range list {
			if a == "" || !validHostPort(a, true) || hasControl(a) {
				p.addf(fmt.Sprintf("%s[%d]", field, i), "must be host:port with a port between 1 and 65535 (value not shown)")
			}
		}
	}
	addrs("redis.addrs", r.Addrs)
	addrs("redis.sentinel_addrs", r.SentinelAddrs)
	switch r.Topology() {
	case RedisSentinel:
		if r.MasterName == "" {
			p.addf("redis.master_name", "must be set with redis.sentinel_addrs")
		} else if hasControl(r.MasterName) {
			p.addf("redis.master_name", "must not contain control characters")
		}
		if len(r.SentinelAddrs) == 0 {
			p.addf("redis.sentinel_addrs", "must list at least one Sentinel with redis.master_name")
		}
		if r.Addr != "" || len(r.Addrs) > 0 || r.Cluster {
			p.addf("redis.master_name", "%v", errTopology)
		}
	case RedisCluster:
		if r.Addr != "" && len(r.Addrs) > 0 {
			p.addf("redis.addrs", "%v", errTopology)
		}
		if r.Cluster && r.Addr == "" && len(r.Addrs) == 0 {
			p.addf("redis.cluster", "needs redis.addr (the configuration endpoint) or redis.addrs")
		}
		if r.DB != 0 {
			p.addf("redis.db", "must be 0 on a Redis Cluster, got %d", r.DB)
		}
	}
	if hasControl(r.SentinelUsername) {
		p.addf("redis.sentinel_username", "must not contain control characters (value not shown)")
	}
	if hasControl(r.SentinelPassword) {
		p.addf("redis.sentinel_password", "must not contain control characters, such as a trailing newline (value not shown)")
	}
	r.TLS.validate(p, "redis.tls")
}

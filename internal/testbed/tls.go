package testbed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a throwaway certificate authority made by a test: its keys live
// in memory and in the test's temporary directory, never in the
// repository.
type PKI struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  []byte
	serial int64
}

// NewPKI returns a new certificate authority; its files are removed when
// the test ends.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testbed: CA key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "breakwater test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testbed: CA certificate: %v", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testbed: CA certificate: %v", err)
	}
	p := &PKI{dir: t.TempDir(), ca: ca, caKey: key, caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), serial: 1}
	if err := os.WriteFile(p.CAFile(), p.caPEM, 0o600); err != nil {
		t.Fatalf("testbed: write CA: %v", err)
	}
	return p
}

// CAFile returns the path of the CA certificate (PEM).
func (p *PKI) CAFile() string { return filepath.Join(p.dir, "ca.pem") }

// Pool returns a pool holding the CA certificate.
func (p *PKI) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return pool
}

// Issued is a certificate issued by a PKI, with its key, in memory and as
// PEM files.
type Issued struct {
	// Cert is the certificate and key for a tls.Config.
	Cert tls.Certificate
	// CertFile and KeyFile are the PEM files of the certificate and key.
	CertFile, KeyFile string
}

// Issue returns a certificate named name, valid for server and client
// authentication and for hosts (DNS names or IP addresses; 127.0.0.1 and
// localhost when none are given).
func (p *PKI) Issue(t testing.TB, name string, hosts ...string) Issued {
	t.Helper()
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "localhost"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testbed: key: %v", err)
	}
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatalf("testbed: certificate: %v", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("testbed: key: %v", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	out := Issued{CertFile: filepath.Join(p.dir, name+".pem"), KeyFile: filepath.Join(p.dir, name+"-key.pem")}
	if err := os.WriteFile(out.CertFile, certPEM, 0o600); err != nil {
		t.Fatalf("testbed: write certificate: %v", err)
	}
	if err := os.WriteFile(out.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatalf("testbed: write key: %v", err)
	}
	if out.Cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("testbed: key pair: %v", err)
	}
	return out
}

// ServerTLS returns a server configuration with a certificate for
// 127.0.0.1 and localhost; with clientAuth, clients must present a
// certificate of this CA.
func (p *PKI) ServerTLS(t testing.TB, clientAuth bool) *tls.Config {
	t.Helper()
	c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{p.Issue(t, "server").Cert}}
	if clientAuth {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = p.Pool()
	}
	return c
}

// ClientTLS returns a client configuration that trusts the CA and
// presents a client certificate.
func (p *PKI) ClientTLS(t testing.TB) *tls.Config {
	t.Helper()
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: p.Pool(), Certificates: []tls.Certificate{p.Issue(t, "testbed-client").Cert}}
}

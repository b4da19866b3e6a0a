package config

import (
	"net"
	"strings"
)

// Loopback reports whether the listen address host:port accepts
// connections from this machine only: its host is localhost or a loopback
// IP address. An empty host (":8080") is every interface.
func Loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateHTTP checks the http section: the listen address, its TLS files,
// and that a listener other people can reach is protected.
func (c Config) validateHTTP(p *problems) {
	h := c.HTTP
	if h.Listen != "" {
		if _, _, err := net.SplitHostPort(h.Listen); err != nil || hasControl(h.Listen) {
			p.addf("http.listen", "must be host:port (or :port), got %q", h.Listen)
		} else if !Loopback(h.Listen) && h.TLSCertFile == "" && !c.SignIn.Enabled() && !h.AllowInsecure {
			p.addf("http.listen", "%q is reachable from other machines, and the listener has no TLS and no sign-in: "+
				"admin tokens would cross the network in the clear. Set http.tls_cert_file and http.tls_key_file, "+
				"or sign people in behind a TLS-terminating proxy (signin.oidc or signin.trusted_proxy), "+
				"listen on loopback (127.0.0.1:PORT), "+
				"or set http.allow_insecure: true where the network is private", h.Listen)
		}
	}
	c.validateHTTPTLS(p)
}

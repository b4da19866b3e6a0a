// Package console serves the web console: a breaker board, breaker pages
// with their chart and controls, incidents and keyboard-driven review, and
// the audit timeline, for operators and reviewers.
//
// The console is static HTML, CSS and JavaScript embedded in the binary and
// served under /ui/; it loads nothing from elsewhere. Everything it shows
// and does goes through the admin API. A person signs in through the
// company's identity provider (package signin: an HttpOnly session cookie
// the page never reads, and the session's CSRF token on every change) or
// behind a trusted proxy, or with a bearer token, which the page keeps in
// the tab's sessionStorage (never a cookie). The console hides what the
// person's role may not do; the API enforces it.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// Prefix is the path the console is served under.
const Prefix = "/ui/"

// policy is the Content-Security-Policy of every console answer: scripts,
// styles and requests only from the daemon itself. Inline style attributes
// are allowed for the server-drawn SVG charts; inline scripts are not.
const policy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the console under Prefix.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	files := http.FileServerFS(sub)
	return http.StripPrefix(strings.TrimSuffix(Prefix, "/"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", policy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-cache")
		p := path.Clean("/" + r.URL.Path)
		if _, err := fs.Stat(sub, strings.TrimPrefix(p, "/")); p == "/" || err != nil {
			// The console routes in the fragment; every other path is the page.
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/"
			files.ServeHTTP(w, r2)
			return
		}
		files.ServeHTTP(w, r)
	}))
}

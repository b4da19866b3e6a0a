package daemon

import (
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/console"
)

// The breaker history behind the console's sparklines and charts: one
// sample per step, an hour per scope.
const (
	historyStep  = 15 * time.Second
	historySlots = 240
)

// mountConsole serves the web console under /ui/ and sends / there.
func mountConsole(mux *http.ServeMux) {
	mux.Handle(console.Prefix, console.Handler())
	mux.Handle("GET /{$}", http.RedirectHandler(console.Prefix, http.StatusFound))
}

// demoToken is the embedded demo's public admin token (embedded/demo.yaml
// holds its hash).
const demoToken = "demo-operator"

// announceConsole logs where the console is and, when the demo's public
// token is configured, that token: a newcomer opens one and pastes the other.
func announceConsole(log *zap.Logger, cfg config.Config, httpAddr string) {
	scheme := "http://"
	if tc, err := cfg.HTTP.ServerTLS(); err == nil && tc != nil {
		scheme = "https://"
	}
	fields := []zap.Field{zap.String("url", scheme+httpAddr+console.Prefix)}
	for _, t := range cfg.Admin.Tokens {
		if t.SHA256 == config.HashToken(demoToken) {
			fields = append(fields, zap.String("token", demoToken), zap.String("role", string(t.Role)))
		}
	}
	log.Info("console: open the url and sign in with the token", fields...)
}

package daemon

import (
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/console"
	"github.com/breakwater/breakwater/history"
)

// The breaker history behind the console's sparklines and charts: one
// sample per step, an hour per scope; and a coarse ring of the peaks of
// each five minutes, a day per scope, for the chart's longer ranges.
const (
	historyStep        = 15 * time.Second
	historySlots       = 240
	historyCoarseStep  = 5 * time.Minute
	historyCoarseSlots = 288
)

// newHistory returns the two rings of the breaker history.
func newHistory(rc redis.UniversalClient, prefix string) (history.Tiers, error) {
	fine, err := history.New(history.Options{Redis: rc, Prefix: prefix, Step: historyStep, Slots: historySlots})
	if err != nil {
		return nil, err
	}
	coarse, err := history.New(history.Options{Redis: rc, Prefix: prefix, Step: historyCoarseStep, Slots: historyCoarseSlots, Name: "hist5m", Peak: true})
	if err != nil {
		return nil, err
	}
	return history.NewTiers(fine, coarse)
}

// mountConsole serves the web console under /ui/ and sends / there.
func mountConsole(mux *http.ServeMux) {
	mux.Handle(console.Prefix, console.Handler())
	mux.Handle("GET /{$}", http.RedirectHandler(console.Prefix, http.StatusFound))
}

// demoTokens are the embedded demo's public admin tokens (embedded/demo.yaml
// holds their hashes): one that may do everything, and a read-only one.
var demoTokens = []string{"demo-operator", "demo-viewer"}

// announceConsole logs where the console is and, for each of the demo's
// public tokens that is configured, that token and its role: a newcomer
// opens the one and pastes the other.
func announceConsole(log *zap.Logger, cfg config.Config, httpAddr string) {
	scheme := "http://"
	if tc, err := cfg.HTTP.ServerTLS(); err == nil && tc != nil {
		scheme = "https://"
	}
	fields := []zap.Field{zap.String("url", scheme+httpAddr+console.Prefix)}
	for _, token := range demoTokens {
		for _, t := range cfg.Admin.Tokens {
			if t.SHA256 == config.HashToken(token) {
				fields = append(fields, zap.String(string(t.Role)+"_token", token))
			}
		}
	}
	log.Info("console: open the url and sign in with a token", fields...)
}

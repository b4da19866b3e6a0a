package daemon

import (
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/admin"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/signin"
)

// newSignIn builds how people sign in, when the configuration asks for it:
// the authenticator the admin API asks about requests without a token, and
// the OIDC handlers (nil without OIDC). Without either it returns nils:
// tokens only.
func newSignIn(cfg config.Config, rc redis.UniversalClient, log *zap.Logger) (*signin.Authenticator, *signin.OIDC, error) {
	if !cfg.SignIn.Enabled() {
		return nil, nil, nil
	}
	var sessions *signin.Store
	var sso *signin.OIDC
	if cfg.SignIn.OIDC.Enabled() {
		var err error
		if sessions, err = signin.NewStore(rc, cfg.Redis.KeyPrefix); err != nil {
			return nil, nil, err
		}
		if sso, err = signin.NewOIDC(cfg.SignIn, sessions, nil, log); err != nil {
			return nil, nil, err
		}
		log.Info("people sign in through OIDC", zap.String("issuer", cfg.SignIn.OIDC.IssuerURL),
			zap.String("redirect_url", cfg.SignIn.OIDC.RedirectURL))
	}
	if cfg.SignIn.TrustedProxy.Enabled() {
		log.Info("people sign in through a trusted proxy", zap.Strings("cidrs", cfg.SignIn.TrustedProxy.CIDRs),
			zap.String("user_header", cfg.SignIn.TrustedProxy.UserHeader))
	}
	a, err := signin.NewAuthenticator(cfg.SignIn, sessions)
	if err != nil {
		return nil, nil, err
	}
	return a, sso, nil
}

// peopleOf returns a as the admin API's People, or nil (not a nil pointer
// in an interface) without sign-in.
func peopleOf(a *signin.Authenticator) admin.People {
	if a == nil {
		return nil
	}
	return a
}

package config

// EnvVar is one environment variable the daemon reads (through ApplyEnv).
type EnvVar struct {
	// Name is the variable; <NAME> stands for a receiver's name, upper
	// case, with - as _.
	Name string
	// Key is the configuration key it overrides.
	Key string
	// Note says how the value is read.
	Note string
	// Secret marks a credential: never logged, kept out of manifests.
	Secret bool
}

// EnvVars lists every environment variable ApplyEnv reads, in the order
// of the configuration's sections. The configuration reference,
// example.yaml and `breakwater run --help` are checked against it, and a
// test checks that ApplyEnv reads exactly these.
func EnvVars() []EnvVar {
	return []EnvVar{
		{Name: EnvKafkaBrokers, Key: "kafka.brokers", Note: "comma separated, each entry trimmed"},
		{Name: EnvKafkaGroupID, Key: "kafka.group_id"},
		{Name: EnvKafkaSASLPassword, Key: "kafka.sasl.password", Note: "clears kafka.sasl.password_file; used exactly as given", Secret: true},
		{Name: EnvRedisAddr, Key: "redis.addr"},
		{Name: EnvRedisUsername, Key: "redis.username", Note: "used exactly as given"},
		{Name: EnvRedisPassword, Key: "redis.password", Note: "used exactly as given", Secret: true},
		{Name: EnvRedisSentinelPassword, Key: "redis.sentinel_password", Note: "used exactly as given", Secret: true},
		{Name: EnvHTTPListen, Key: "http.listen"},
		{Name: "BREAKWATER_ALERT_<NAME>_URL", Key: "alerts.receivers[].url", Note: "before the variable the receiver's url_env names", Secret: true},
		{Name: "BREAKWATER_ALERT_<NAME>_SECRET", Key: "alerts.receivers[].secret", Note: "before the variable the receiver's secret_env names", Secret: true},
		{Name: EnvAdminTokens, Key: "admin.tokens", Note: "name:role:token or name:role:sha256:<hex>, comma separated; replaces the list", Secret: true},
		{Name: EnvOIDCClientSecret, Key: "signin.oidc.client_secret", Secret: true},
	}
}

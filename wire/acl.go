package wire

import (
	"crypto/sha1" //nolint:gosec // Redis names scripts by their SHA-1.
	"encoding/hex"
	"strings"
)

// RedisCommand is one Redis command Breakwater runs, directly or from a Lua
// script, with a harmless way to run it that proves the permission.
type RedisCommand struct {
	// Name is the command as an ACL rule names it ("hset",
	// "xgroup|create").
	Name string
	// Probe returns the arguments of a call of the command on the scratch
	// key k (see Keys.Probe) that changes nothing outside the scratch
	// keys, or nil when the command is probed by other means (MULTI and
	// EXEC go together in one transaction, WATCH and UNWATCH on one
	// connection).
	Probe func(k string) []any
	// Replicated marks a command run only when redis.min_replicas_acked
	// is above 0 (WAIT).
	Replicated bool
}

// The scratch keys of a permission probe, derived from its key: each Redis
// type the daemon uses gets its own key so that no probe meets a key of
// the wrong type.
func probeHash(k string) string   { return k + ":h" }
func probeList(k string) string   { return k + ":l" }
func probeSet(k string) string    { return k + ":s" }
func probeZSet(k string) string   { return k + ":z" }
func probeStream(k string) string { return k + ":x" }
func probeCount(k string) string  { return k + ":n" }

// ProbeKeys returns every scratch key a permission probe on k may create,
// for deleting them afterwards.
func ProbeKeys(k string) []string {
	return []string{k, probeHash(k), probeList(k), probeSet(k), probeZSet(k), probeStream(k), probeCount(k)}
}

// probeGroup and probeConsumer name the stream group and consumer of the
// probes.
const (
	probeGroup    = "breakwater-check"
	probeConsumer = "breakwater-check"
)

// RedisCommands are the Redis commands the daemon runs, directly or from
// its Lua scripts, every one on keys under the hash tag: an ACL user needs
// each of them (Keys.ACLRules). Probes run in this order: a stream command
// finds the stream and group an earlier one created. The list is the
// code's contract with the operator's ACL; a test runs the daemon under a
// user allowed exactly these commands and compares them with the commands
// the server counted.
var RedisCommands = []RedisCommand{
	{Name: "ping", Probe: func(string) []any { return []any{"ping"} }},
	{Name: "time", Probe: func(string) []any { return []any{"time"} }},
	{Name: "exists", Probe: func(k string) []any { return []any{"exists", k} }},
	{Name: "get", Probe: func(k string) []any { return []any{"get", k} }},
	// The sign-in state is taken once.
	{Name: "getdel", Probe: func(k string) []any { return []any{"getdel", probeCount(k) + ":gone"} }},
	{Name: "mget", Probe: func(k string) []any { return []any{"mget", k} }},
	{Name: "set", Probe: func(k string) []any { return []any{"set", k, "probe", "px", 60000} }},
	{Name: "incr", Probe: func(k string) []any { return []any{"incr", probeCount(k)} }},
	{Name: "expire", Probe: func(k string) []any { return []any{"expire", k, 60} }},
	{Name: "pexpire", Probe: func(k string) []any { return []any{"pexpire", k, 60000} }},
	{Name: "hset", Probe: func(k string) []any { return []any{"hset", probeHash(k), "f", "1"} }},
	{Name: "hsetnx", Probe: func(k string) []any { return []any{"hsetnx", probeHash(k), "g", "1"} }},
	{Name: "hget", Probe: func(k string) []any { return []any{"hget", probeHash(k), "f"} }},
	{Name: "hmget", Probe: func(k string) []any { return []any{"hmget", probeHash(k), "f"} }},
	{Name: "hgetall", Probe: func(k string) []any { return []any{"hgetall", probeHash(k)} }},
	{Name: "hincrby", Probe: func(k string) []any { return []any{"hincrby", probeHash(k), "f", 1} }},
	{Name: "hdel", Probe: func(k string) []any { return []any{"hdel", probeHash(k), "f"} }},
	{Name: "rpush", Probe: func(k string) []any { return []any{"rpush", probeList(k), "v"} }},
	{Name: "lrange", Probe: func(k string) []any { return []any{"lrange", probeList(k), 0, -1} }},
	{Name: "sadd", Probe: func(k string) []any { return []any{"sadd", probeSet(k), "m"} }},
	{Name: "scard", Probe: func(k string) []any { return []any{"scard", probeSet(k)} }},
	{Name: "smembers", Probe: func(k string) []any { return []any{"smembers", probeSet(k)} }},
	{Name: "smismember", Probe: func(k string) []any { return []any{"smismember", probeSet(k), "m"} }},
	{Name: "srem", Probe: func(k string) []any { return []any{"srem", probeSet(k), "m"} }},
	{Name: "zadd", Probe: func(k string) []any { return []any{"zadd", probeZSet(k), 1, "m"} }},
	{Name: "zrangebyscore", Probe: func(k string) []any { return []any{"zrangebyscore", probeZSet(k), "-inf", "+inf"} }},
	{Name: "zrange", Probe: func(k string) []any { return []any{"zrange", probeZSet(k), 0, -1} }},
	{Name: "zrevrange", Probe: func(k string) []any { return []any{"zrevrange", probeZSet(k), 0, -1} }},
	{Name: "zscore", Probe: func(k string) []any { return []any{"zscore", probeZSet(k), "m"} }},
	{Name: "zrandmember", Probe: func(k string) []any { return []any{"zrandmember", probeZSet(k), 1} }},
	{Name: "zrevrangebyscore", Probe: func(k string) []any { return []any{"zrevrangebyscore", probeZSet(k), "+inf", "-inf"} }},
	{Name: "zrem", Probe: func(k string) []any { return []any{"zrem", probeZSet(k), "m"} }},
	{Name: "zremrangebyscore", Probe: func(k string) []any { return []any{"zremrangebyscore", probeZSet(k), "-inf", "+inf"} }},
	{Name: "zremrangebyrank", Probe: func(k string) []any { return []any{"zremrangebyrank", probeZSet(k), 0, -1} }},
	{Name: "xadd", Probe: func(k string) []any { return []any{"xadd", probeStream(k), "maxlen", 10, "*", "f", "v"} }},
	{Name: "xgroup|create", Probe: func(k string) []any {
		return []any{"xgroup", "create", probeStream(k), probeGroup, "0", "mkstream"}
	}},
	{Name: "xreadgroup", Probe: func(k string) []any {
		return []any{"xreadgroup", "group", probeGroup, probeConsumer, "count", 1, "streams", probeStream(k), ">"}
	}},
	{Name: "xpending", Probe: func(k string) []any { return []any{"xpending", probeStream(k), probeGroup} }},
	{Name: "xclaim", Probe: func(k string) []any {
		return []any{"xclaim", probeStream(k), probeGroup, probeConsumer, 0, "0-1"}
	}},
	{Name: "xautoclaim", Probe: func(k string) []any {
		return []any{"xautoclaim", probeStream(k), probeGroup, probeConsumer, 0, "0-0", "count", 1}
	}},
	{Name: "xack", Probe: func(k string) []any { return []any{"xack", probeStream(k), probeGroup, "0-1"} }},
	{Name: "eval", Probe: func(k string) []any { return []any{"eval", ProbeScript, 1, k} }},
	{Name: "evalsha", Probe: func(k string) []any { return []any{"evalsha", ProbeScriptSHA, 1, k} }},
	{Name: "multi"},
	{Name: "exec"},
	{Name: "watch"},
	{Name: "unwatch"},
	{Name: "wait", Replicated: true, Probe: func(string) []any { return []any{"wait", 0, 1} }},
	{Name: "del", Probe: func(k string) []any { return []any{"del", k} }},
}

// ProbeScript is the Lua script of the eval and evalsha probes: it reads
// its key, as every script of the daemon reads the keys it declares.
const ProbeScript = "return redis.call('exists', KEYS[1])"

// ProbeScriptSHA is the SHA-1 of ProbeScript, which the eval probe caches
// on the server before the evalsha probe runs it.
var ProbeScriptSHA = func() string {
	sum := sha1.Sum([]byte(ProbeScript))
	return hex.EncodeToString(sum[:])
}()

// Pattern is the ACL key pattern that covers every key of the layout.
func (k Keys) Pattern() string { return k.tag + "*" }

// Probe is a scratch key of a permission probe (id tells probes apart);
// it matches Pattern and no key the daemon uses.
func (k Keys) Probe(id string) string { return k.tag + ":probe:" + id }

// ACLRules returns the rules of a Redis ACL user that may run Breakwater
// and nothing more: the key pattern and every command of RedisCommands
// (WAIT only when replicated), as ACL SETUSER takes them.
func (k Keys) ACLRules(replicated bool) string {
	rules := []string{"~" + k.Pattern()}
	for _, c := range RedisCommands {
		if c.Replicated && !replicated {
			continue
		}
		rules = append(rules, "+"+c.Name)
	}
	return strings.Join(rules, " ")
}

package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// frontierScript records one member's frontier with an expiry in Redis
// time (ARGV[2] = 0 removes it), drops the expired ones, and returns the
// earliest frontier of the other members and that member's name, or 0 and
// "" when none is behind.
var frontierScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local at = tonumber(ARGV[2])
if at > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. (now + tonumber(ARGV[3])))
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
local all = redis.call('HGETALL', KEYS[1])
local earliest = 0
local who = ''
for i = 1, #all, 2 do
  local sep = string.find(all[i + 1], ':', 1, true)
  local f = tonumber(string.sub(all[i + 1], 1, sep - 1))
  local exp = tonumber(string.sub(all[i + 1], sep + 1))
  if exp < now then
    redis.call('HDEL', KEYS[1], all[i])
  elseif all[i] ~= ARGV[1] and (earliest == 0 or f < earliest) then
    earliest = f
    who = all[i]
  end
end
return {earliest, who}
`)

// Advance records how far in event time member has decided the backlog of
// its partitions (zero: none of them is behind), for ttl, and returns the
// earliest frontier of the other members whose record has not expired and
// the member it is of (zero and "": none is behind). Replicas use it to
// stay within a window of event time of each other while they consume a
// backlog.
func (r *Redis) Advance(ctx context.Context, member string, at time.Time, ttl time.Duration) (time.Time, string, error) {
	ms := int64(0)
	if !at.IsZero() {
		ms = max(at.UnixMilli(), 1)
	}
	v, err := frontierScript.Run(ctx, r.client, []string{r.keys.Frontiers()}, member, ms, max(ttl.Milliseconds(), 1)).Slice()
	if err != nil {
		return time.Time{}, "", fmt.Errorf("advance frontier of %s: %w", member, err)
	}
	var earliest int64
	var who string
	if len(v) == 2 {
		earliest, _ = v[0].(int64)
		who, _ = v[1].(string)
	}
	if len(v) != 2 || earliest < 0 {
		return time.Time{}, "", fmt.Errorf("advance frontier of %s: unexpected reply %v", member, v)
	}
	if earliest == 0 {
		return time.Time{}, "", nil
	}
	return time.UnixMilli(earliest).UTC(), who, nil
}

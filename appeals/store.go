package appeals

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/wire"
)

// Store keeps the join and the latest outcomes in Redis, under the hash
// tag of wire.Keys:
//
//   - the join, one hash per UTC day of the forwarded actions' event time
//     (action id to rule, model version and event time), expiring JoinFor
//     after its day; a count per day in a meta hash. When the days hold
//     more than JoinMax actions, the oldest day is dropped whole. An
//     outcome of an action no longer (or never) in the join is unknown.
//   - the outcome recorded for each action, in its day's hash (so it
//     falls out with the action), with the input position that recorded
//     it: the same position again is a redelivery, another a duplicate.
//   - the latest Window outcomes of each rule and model version, a sorted
//     set numbered by a counter, trimmed on every write.
//
// Every write is idempotent, so a command retried after its answer was
// lost changes nothing twice.
type Store struct {
	client  redis.UniversalClient
	keys    wire.Keys
	joinFor time.Duration
	joinMax int
	window  int
}

// NewStore returns the store of the appeals signal.
func NewStore(client redis.UniversalClient, keys wire.Keys, joinFor time.Duration, joinMax, window int) (*Store, error) {
	switch {
	case client == nil:
		return nil, errors.New("appeals: NewStore: client is nil")
	case joinFor < time.Hour:
		return nil, fmt.Errorf("appeals: NewStore: joinFor must be at least 1h, got %s", joinFor)
	case joinMax < 1:
		return nil, fmt.Errorf("appeals: NewStore: joinMax must be positive, got %d", joinMax)
	case window < 1 || window > MaxWindow:
		return nil, fmt.Errorf("appeals: NewStore: window must be between 1 and %d, got %d", MaxWindow, window)
	}
	return &Store{client: client, keys: keys, joinFor: joinFor, joinMax: joinMax, window: window}, nil
}

const dayLayout = "20060102"

func day(t time.Time) string { return t.UTC().Format(dayLayout) }

// days returns the days of the join at now, newest first: from tomorrow
// (a clock ahead) back to JoinFor ago.
func (s *Store) days(now time.Time) []string {
	var out []string
	for d := now.UTC().Add(24 * time.Hour); !d.Before(now.Add(-s.joinFor - 24*time.Hour)); d = d.Add(-24 * time.Hour) {
		out = append(out, day(d))
	}
	return out
}

func joinValue(j Join) string {
	return strconv.Quote(j.Rule) + "\t" + strconv.Quote(j.Model) + "\t" + strconv.FormatInt(j.At.UnixMilli(), 10)
}

func parseJoin(v string) (Join, bool) {
	f := strings.Split(v, "\t")
	if len(f) != 3 {
		return Join{}, false
	}
	rule, err1 := strconv.Unquote(f[0])
	model, err2 := strconv.Unquote(f[1])
	ms, err3 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Join{}, false
	}
	return Join{Rule: rule, Model: model, At: time.UnixMilli(ms).UTC()}, true
}

// Forwarded adds forwarded actions to the join (those older than JoinFor
// at now are left out) and drops the oldest days while the join holds
// more than JoinMax actions.
func (s *Store) Forwarded(ctx context.Context, now time.Time, ids []string, joins []Join) error {
	if len(ids) == 0 {
		return nil
	}
	pipe := s.client.Pipeline()
	type added struct {
		day string
		cmd *redis.BoolCmd
	}
	var adds []added
	for i, id := range ids {
		j := joins[i]
		if j.At.Before(now.Add(-s.joinFor)) {
			continue
		}
		d := day(j.At)
		k := s.keys.AppealsJoin(d)
		adds = append(adds, added{d, pipe.HSetNX(ctx, k, id, joinValue(j))})
		end, _ := time.Parse(dayLayout, d)
		pipe.Expire(ctx, k, end.Add(24*time.Hour+s.joinFor).Sub(now))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("appeals: add to the join: %w", err)
	}
	perDay := map[string]int64{}
	for _, a := range adds {
		if a.cmd.Val() {
			perDay[a.day]++
		}
	}
	if len(perDay) == 0 {
		return nil
	}
	// The counts may run ahead of the hashes by a retried increment: the
	// bound is then kept a little early, never late.
	pipe = s.client.Pipeline()
	for d, n := range perDay {
		pipe.HIncrBy(ctx, s.keys.AppealsMeta(), "n:"+d, n)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("appeals: count the join: %w", err)
	}
	return s.bound(ctx, now)
}

// bound drops the oldest days of the join while it holds more than
// JoinMax actions, and the counts of days that expired.
func (s *Store) bound(ctx context.Context, now time.Time) error {
	m, err := s.client.HGetAll(ctx, s.keys.AppealsMeta()).Result()
	if err != nil {
		return fmt.Errorf("appeals: read the join's counts: %w", err)
	}
	var days []string
	total := int64(0)
	horizon := day(now.Add(-s.joinFor - 24*time.Hour))
	for f, v := range m {
		d, ok := strings.CutPrefix(f, "n:")
		if !ok {
			continue
		}
		if d < horizon {
			if err := s.client.HDel(ctx, s.keys.AppealsMeta(), f).Err(); err != nil {
				return fmt.Errorf("appeals: forget an expired day: %w", err)
			}
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		days = append(days, d)
	}
	if total <= int64(s.joinMax) {
		return nil
	}
	sortStrings(days)
	for _, d := range days[:len(days)-1] { // the newest day stays
		if total <= int64(s.joinMax) {
			break
		}
		n, _ := strconv.ParseInt(m["n:"+d], 10, 64)
		if err := s.client.Del(ctx, s.keys.AppealsJoin(d)).Err(); err != nil {
			return fmt.Errorf("appeals: drop day %s of the join: %w", d, err)
		}
		if err := s.client.HDel(ctx, s.keys.AppealsMeta(), "n:"+d).Err(); err != nil {
			return fmt.Errorf("appeals: drop day %s of the join: %w", d, err)
		}
		total -= n
	}
	return nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Lookup returns the join of a forwarded action and the day it is kept
// under.
func (s *Store) Lookup(ctx context.Context, now time.Time, id string) (Join, string, error) {
	days := s.days(now)
	pipe := s.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(days))
	for i, d := range days {
		cmds[i] = pipe.HGet(ctx, s.keys.AppealsJoin(d), id)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Join{}, "", fmt.Errorf("appeals: look up %q: %w", id, err)
	}
	for i, c := range cmds {
		if v, err := c.Result(); err == nil {
			if j, ok := parseJoin(v); ok {
				return j, days[i], nil
			}
		}
	}
	return Join{}, "", fmt.Errorf("%w: %q", ErrUnknown, id)
}

// recordScript records an outcome once: KEYS[1] is the action's join day,
// KEYS[2] the meta hash, KEYS[3..] the windows; ARGV: action id, the
// recording input position, the sample, the window size, the windows'
// expiry in seconds. It answers "ok", "again" (the same position recorded
// it: a redelivery) or "dup" (another outcome was recorded).
var recordScript = redis.NewScript(`
local f = 'o:' .. ARGV[1]
local prev = redis.call('HGET', KEYS[1], f)
if prev then
  if prev == ARGV[2] then return 'again' end
  return 'dup'
end
redis.call('HSET', KEYS[1], f, ARGV[2])
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local keep = tonumber(ARGV[4])
for i = 3, #KEYS do
  redis.call('ZADD', KEYS[i], seq, seq .. ':' .. ARGV[3])
  redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -keep - 1)
  redis.call('EXPIRE', KEYS[i], ARGV[5])
end
return 'ok'
`)

// Scripts returns the store's scripts, for loading and permission checks.
func Scripts() []*redis.Script { return []*redis.Script{recordScript} }

// Record records the outcome of the joined action j (kept under day) read
// at position pos at now, and returns the latest outcomes of each key it counts
// towards. An outcome of the same action recorded from another position is
// ErrDuplicate; from the same position (a redelivery) it is recorded once
// and the windows are returned again.
func (s *Store) Record(ctx context.Context, now time.Time, j Join, dayKey, id string, o Outcome, pos string) (map[Key][]Sample, error) {
	keys := []string{s.keys.AppealsJoin(dayKey), s.keys.AppealsMeta()}
	ks := Keys(j.Rule, j.Model)
	for _, k := range ks {
		keys = append(keys, s.keys.AppealsWindow(windowName(k)))
	}
	flag := "u"
	if o == Overturned {
		flag = "o"
	}
	sample := strconv.FormatInt(j.At.UnixMilli(), 10) + ":" + flag + ":" + strconv.Quote(j.Model)
	res, err := recordScript.Run(ctx, s.client, keys, id, pos, sample, s.window, int64((s.joinFor + 24*time.Hour).Seconds())).Text()
	if err != nil {
		return nil, fmt.Errorf("appeals: record the outcome of %q: %w", id, err)
	}
	if res == "dup" {
		return nil, fmt.Errorf("%w: %q", ErrDuplicate, id)
	}
	// The index of the windows, for the estimates; a lost write is made
	// again by the redelivery that follows the error.
	pipe := s.client.Pipeline()
	for _, k := range ks {
		pipe.ZAdd(ctx, s.keys.AppealsIndex(), redis.Z{Score: float64(now.UnixMilli()), Member: windowName(k)})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("appeals: index the outcomes of %q: %w", id, err)
	}
	out := make(map[Key][]Sample, len(ks))
	for _, k := range ks {
		w, err := s.Window(ctx, k)
		if err != nil {
			return nil, err
		}
		out[k] = w
	}
	return out, nil
}

// parseWindowName is the inverse of windowName.
func parseWindowName(name string) (Key, bool) {
	rule, rest, err := quotedPrefix(name)
	if err != nil || !strings.HasPrefix(rest, "|") {
		return Key{}, false
	}
	model, err := strconv.Unquote(rest[1:])
	if err != nil {
		return Key{}, false
	}
	return Key{Rule: rule, Model: model}, true
}

// quotedPrefix unquotes the Go string literal s starts with and returns
// the rest.
func quotedPrefix(s string) (string, string, error) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", err
	}
	v, err := strconv.Unquote(q)
	return v, s[len(q):], err
}

// Windows returns the latest outcomes of every rule and model version
// that had an outcome recorded within JoinFor (and a day) of now, and
// forgets the others.
func (s *Store) Windows(ctx context.Context, now time.Time) (map[Key][]Sample, error) {
	horizon := now.Add(-s.joinFor - 24*time.Hour).UnixMilli()
	if err := s.client.ZRemRangeByScore(ctx, s.keys.AppealsIndex(), "-inf", "("+strconv.FormatInt(horizon, 10)).Err(); err != nil {
		return nil, fmt.Errorf("appeals: forget old windows: %w", err)
	}
	names, err := s.client.ZRange(ctx, s.keys.AppealsIndex(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("appeals: list the windows: %w", err)
	}
	out := make(map[Key][]Sample, len(names))
	for _, n := range names {
		k, ok := parseWindowName(n)
		if !ok {
			continue
		}
		w, err := s.Window(ctx, k)
		if err != nil {
			return nil, err
		}
		if len(w) > 0 {
			out[k] = w
		}
	}
	return out, nil
}

// windowName is a key's name in its Redis key.
func windowName(k Key) string {
	return strconv.Quote(k.Rule) + "|" + strconv.Quote(k.Model)
}

// Window returns the latest outcomes of k, oldest first.
func (s *Store) Window(ctx context.Context, k Key) ([]Sample, error) {
	vs, err := s.client.ZRange(ctx, s.keys.AppealsWindow(windowName(k)), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("appeals: read the outcomes of %s: %w", k, err)
	}
	out := make([]Sample, 0, len(vs))
	for _, v := range vs {
		// seq:millis:flag, then :"model" (quoted) since versions are kept.
		f := strings.SplitN(v, ":", 4)
		if len(f) < 3 {
			continue
		}
		ms, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		var model string
		if len(f) == 4 {
			if model, err = strconv.Unquote(f[3]); err != nil {
				continue
			}
		}
		out = append(out, Sample{At: time.UnixMilli(ms).UTC(), Model: model, Overturned: f[2] == "o"})
	}
	return out, nil
}

// Switch returns the switch of the appeals trip at now: on unless an
// operator turned it off and its time has not run out.
func (s *Store) Switch(ctx context.Context, now time.Time) (api.AppealsTrip, error) {
	m, err := s.client.HGetAll(ctx, s.keys.AppealsSwitch()).Result()
	if err != nil {
		return api.AppealsTrip{}, fmt.Errorf("appeals: read the trip's switch: %w", err)
	}
	sw := api.AppealsTrip{Enabled: m["off"] != "1", By: m["by"], Approver: m["approver"], Reason: m["reason"]}
	if ms, err := strconv.ParseInt(m["at"], 10, 64); err == nil && ms > 0 {
		sw.At = time.UnixMilli(ms).UTC()
	}
	if ms, err := strconv.ParseInt(m["until"], 10, 64); err == nil && ms > 0 {
		sw.Until = time.UnixMilli(ms).UTC()
		if !sw.Enabled && !now.Before(sw.Until) {
			sw.Enabled = true
			sw.Reason = "turned off until " + sw.Until.Format(time.RFC3339) + ": " + sw.Reason
		}
	}
	return sw, nil
}

// SetSwitch turns the appeals trip on or off.
func (s *Store) SetSwitch(ctx context.Context, sw api.AppealsTrip) error {
	off := "0"
	if !sw.Enabled {
		off = "1"
	}
	until := int64(0)
	if !sw.Until.IsZero() {
		until = sw.Until.UnixMilli()
	}
	err := s.client.HSet(ctx, s.keys.AppealsSwitch(), "off", off, "by", sw.By, "approver", sw.Approver, "reason", sw.Reason,
		"at", sw.At.UnixMilli(), "until", until).Err()
	if err != nil {
		return fmt.Errorf("appeals: set the trip's switch: %w", err)
	}
	return nil
}

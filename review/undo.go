package review

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
)

// undoScript puts decided actions back to pending, unless they are
// released or in the batch being released (the release log). KEYS: the
// release queue, the release log, then three per action (see
// refsCheckLua); ARGV: three per action. Answers {'STALE'} when an action
// changed since its refs were read, else {undone, released, pending,
// unknown}.
var undoScript = redis.NewScript(refsCheckLua + `
if stale(2, 0) then return {'STALE'} end
local busy = {}
local log = redis.call('GET', KEYS[2])
if log then
  local ok, rec = pcall(cjson.decode, log)
  if ok and type(rec) == 'table' and type(rec.ids) == 'table' then
    for _, id in ipairs(rec.ids) do busy[id] = true end
  end
end
local undone, released, pending, unknown = {}, {}, {}, {}
for i = 1, #ARGV / 3 do
  local id = ARGV[(i - 1) * 3 + 1]
  local akey, ikey, kkey = KEYS[2 + (i - 1) * 3 + 1], KEYS[2 + (i - 1) * 3 + 2], KEYS[2 + (i - 1) * 3 + 3]
  local st = redis.call('HGET', akey, 'status')
  if not st then
    unknown[#unknown+1] = id
  elseif st == 'pending' then
    pending[#pending+1] = id
  elseif redis.call('HGET', akey, 'released') == '1' or busy[id] then
    released[#released+1] = id
  else
    redis.call('HSET', akey, 'status', 'pending')
    redis.call('HDEL', akey, 'reviewer', 'decided_at', 'via', 'undo_until')
    redis.call('HINCRBY', ikey, 'pending', 1)
    redis.call('HINCRBY', ikey, st, -1)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZADD', kkey, redis.call('HGET', akey, 'pos'), id)
    undone[#undone+1] = id
  end
end
return {undone, released, pending, unknown}
`)

// Undo puts decided actions back to pending, as long as they are not
// written to their topic yet (nor in the batch being written), and returns
// what it did. It is applied first and journaled after (kind undo, one
// entry per incident): if the process stops in between and Redis later
// loses its data, the rebuilt index has the decision without its undo.
// A releaser that read an action before its undo finds it gone from the
// queue when it records its batch, and leaves it.
func (x *Index) Undo(ctx context.Context, ids []string, actor, reason string) (api.UndoResponse, error) {
	out := api.UndoResponse{Undone: []string{}, Released: []string{}, Pending: []string{}, Unknown: []string{}}
	ready, err := x.Ready(ctx)
	if err != nil {
		return out, err
	}
	if !ready {
		return out, ErrNotReady
	}
	for start := 0; start < len(ids); start += decideChunk {
		chunk := ids[start:min(start+decideChunk, len(ids))]
		res, err := x.undo(ctx, chunk)
		if err != nil {
			return out, err
		}
		out.Undone = append(out.Undone, res[0]...)
		out.Released = append(out.Released, res[1]...)
		out.Pending = append(out.Pending, res[2]...)
		out.Unknown = append(out.Unknown, res[3]...)
	}
	if len(out.Undone) == 0 {
		return out, nil
	}
	groups, err := x.byIncident(ctx, out.Undone, "")
	if err != nil {
		return out, err
	}
	now := time.Now().UTC()
	var entries []audit.Entry
	for _, g := range groups {
		scope, _ := splitIncident(g.incident)
		for start := 0; start < len(g.ids); start += journalChunk {
			chunk := g.ids[start:min(start+journalChunk, len(g.ids))]
			e := audit.Entry{AuditEntry: api.AuditEntry{
				At: now, Actor: actor, Kind: audit.KindUndo, Scope: breaker.Scope(scope), Incident: g.incident, Reason: reason, Count: len(chunk),
			}, IDs: chunk}
			if len(ids) == 1 {
				e.ActionID = ids[0]
			}
			entries = append(entries, e)
		}
	}
	if err := x.opts.Journal.Write(ctx, entries...); err != nil {
		return out, fmt.Errorf("journal %d undone decisions: %w", len(out.Undone), err)
	}
	return out, nil
}

// undo runs undoScript on ids, repeating it if an action changed between
// reading its refs and the call.
func (x *Index) undo(ctx context.Context, ids []string) ([4][]string, error) {
	var out [4][]string
	for range staleRetries {
		rs, err := x.refs(ctx, ids)
		if err != nil {
			return out, err
		}
		keys, args := x.refArgs(ids, rs, []string{x.queueKey(), x.keys.ReleaseInflight()}, nil)
		res, err := undoScript.Run(ctx, x.opts.Redis, keys, args...).Slice()
		if err != nil {
			return out, fmt.Errorf("undo %d decisions: %w", len(ids), err)
		}
		if len(res) != 4 {
			continue // stale
		}
		for i := range out {
			out[i] = []string{}
			for _, v := range asStrings(res[i]) {
				out[i] = append(out[i], v)
			}
		}
		return out, nil
	}
	return out, fmt.Errorf("undo %d decisions: %w", len(ids), errStale)
}

func asStrings(v any) []string {
	vs, _ := v.([]any)
	out := make([]string, 0, len(vs))
	for _, x := range vs {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

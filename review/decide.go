package review

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
)

// Outcome is what a decision call did.
type Outcome struct {
	// Changed counts the actions that were pending and now carry the decision.
	Changed int `json:"changed"`
	// Already counts the actions that already carried the same decision.
	Already int `json:"already"`
	// Conflicts are the actions that carry the other decision; they keep it.
	Conflicts []string `json:"conflicts"`
	// Unknown are the ids the index does not know.
	Unknown []string `json:"unknown"`
}

func (o *Outcome) add(p Outcome) {
	o.Changed += p.Changed
	o.Already += p.Already
	o.Conflicts = append(o.Conflicts, p.Conflicts...)
	o.Unknown = append(o.Unknown, p.Unknown...)
}

// decideScript moves pending actions to a decision and queues them for
// release. An action that already carries a decision keeps it, so that
// deciding again changes nothing.
//
// KEYS[1] the release queue, then per action its hash, its incident and
// its key's set, as the caller read them (see refs). ARGV: decision,
// reviewer, time, then per action its id, incident and key. If an action
// does not carry the incident and key the caller read, nothing is changed
// and the answer is {'STALE'}.
var decideScript = redis.NewScript(`
local queue = KEYS[1]
local to, reviewer, now, standing = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
` + refsCheckLua + `
if stale(1, 4) then return {'STALE'} end
local changed, already, conflicts, unknown = 0, 0, {}, {}
for i = 1, (#ARGV - 4) / 3 do
  local id = ARGV[4 + (i - 1) * 3 + 1]
  local akey, ikey, kkey = KEYS[1 + (i - 1) * 3 + 1], KEYS[1 + (i - 1) * 3 + 2], KEYS[1 + (i - 1) * 3 + 3]
  local st = redis.call('HGET', akey, 'status')
  if not st then
    unknown[#unknown+1] = id
  elseif st == to then
    already = already + 1
  elseif st ~= 'pending' then
    conflicts[#conflicts+1] = id
  else
    redis.call('HSET', akey, 'status', to, 'reviewer', reviewer, 'decided_at', now)
    redis.call('HINCRBY', ikey, 'pending', -1)
    redis.call('HINCRBY', ikey, to, 1)
    -- A standing decision's count moves with its decisions, so that a
    -- reader never sees one without the other.
    -- The action's own record says a standing decision decided it.
    if standing == '1' then
      redis.call('HINCRBY', ikey, 'standing_applied', 1)
      redis.call('HSET', akey, 'via', 'standing')
    end
    -- The key's set keeps an approved action until it is released, so
    -- that a later action of the key waits for it (per-key order).
    if to ~= 'approved' then redis.call('ZREM', kkey, id) end
    redis.call('ZADD', queue, redis.call('HGET', akey, 'pos'), id)
    changed = changed + 1
  end
end
return {changed, already, conflicts, unknown}
`)

// refsCheckLua defines stale(k0, a0): whether any action no longer
// carries the incident and key its caller read (see Index.refs) and
// declared the keys of. The actions' keys start after KEYS[k0] and their
// arguments after ARGV[a0], three each: hash, incident, key set in KEYS;
// id, incident, key in ARGV. Scripts call it before they change anything.
const refsCheckLua = `
local function stale(k0, a0)
  for i = 1, (#ARGV - a0) / 3 do
    local f = redis.call('HMGET', KEYS[k0 + (i - 1) * 3 + 1], 'incident', 'key')
    if (f[1] or '') ~= ARGV[a0 + (i - 1) * 3 + 2] or (f[2] or '') ~= ARGV[a0 + (i - 1) * 3 + 3] then
      return true
    end
  end
  return false
end
`

// ref is what the scripts need to know of a held action to declare the
// keys they touch for it: its incident and its record key. Both are set
// when the action is indexed and never change.
type ref struct{ incident, key string }

// refs reads the refs of ids in one round trip; an unknown id has empty ones.
func (x *Index) refs(ctx context.Context, ids []string) ([]ref, error) {
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err := x.opts.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, x.actionKey(id), "incident", "key")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %d held actions: %w", len(ids), err)
	}
	out := make([]ref, len(ids))
	for i, c := range cmds {
		v := c.Val()
		if len(v) == 2 {
			out[i].incident, _ = v[0].(string)
			out[i].key, _ = v[1].(string)
		}
	}
	return out, nil
}

// refArgs appends, per id, its keys (hash, incident, key set) to keys and
// its arguments (id, incident, key) to args, as refsCheckLua reads them.
func (x *Index) refArgs(ids []string, rs []ref, keys []string, args []any) ([]string, []any) {
	for i, id := range ids {
		keys = append(keys, x.actionKey(id), x.incidentKey(rs[i].incident), x.keys.HeldByKey(rs[i].key))
		args = append(args, id, rs[i].incident, rs[i].key)
	}
	return keys, args
}

// staleRetries bounds how often a script call is repeated after an action
// changed between reading its refs and the call (an index rebuilt meanwhile).
const staleRetries = 5

// errStale means the refs of an action changed between reading them and
// the script call.
var errStale = errors.New("held actions changed while being decided")

// decideChunk bounds the ids of one script call, so that no call blocks
// Redis for long.
const decideChunk = 1000

func (x *Index) queueKey() string { return x.keys.ReleaseQueue() }

// Decision says who decided what, and why.
type Decision struct {
	// To is Approved or Rejected.
	To Status
	// Reviewer is the actor.
	Reviewer string
	// Reason is optional.
	Reason string
	// Incident, if set, names the incident the decision was made on.
	Incident string
	// Approval, Approver and BreakGlass, if set, name the approval request
	// the decision applies, who approved it, or that it was applied
	// without a second person; the journal records them.
	Approval   string
	Approver   string
	BreakGlass bool
	// Via is audit.ViaStanding for the decisions of a standing decision,
	// and Group the id of the standing decision's audit entry, which the
	// audit trail folds the decisions into.
	Via, Group string
	// Through, if positive, limits a decision on a whole incident to its
	// first Through held actions (api.IncidentDecisionRequest.Through).
	Through int64
}

// journalChunk bounds the ids of one journal entry, so that it stays far
// below the broker's message size limit.
const journalChunk = 1000

// Decide approves or rejects the held actions ids. The decision is first
// written to the journal (the audit topic, acknowledged by all in-sync
// replicas), then applied to the index, so that a rebuilt index has it.
// Approved actions are released to the gated topic, rejected ones to the
// rejected topic, by the Releaser. Deciding is idempotent: an action keeps
// its first decision.
func (x *Index) Decide(ctx context.Context, ids []string, d Decision) (Outcome, error) {
	if d.To != Approved && d.To != Rejected {
		return Outcome{}, fmt.Errorf("review: a decision is approved or rejected, got %q", d.To)
	}
	ready, err := x.Ready(ctx)
	if err != nil {
		return Outcome{}, err
	}
	if !ready {
		return Outcome{}, ErrNotReady
	}
	kind := audit.KindApprove
	if d.To == Rejected {
		kind = audit.KindReject
	}
	now := time.Now().UTC()
	byIncident, err := x.byIncident(ctx, ids, d.Incident)
	if err != nil {
		return Outcome{}, err
	}
	var entries []audit.Entry
	for _, g := range byIncident {
		for start := 0; start < len(g.ids); start += journalChunk {
			chunk := g.ids[start:min(start+journalChunk, len(g.ids))]
			scope, _ := splitIncident(g.incident)
			e := audit.Entry{AuditEntry: api.AuditEntry{
				At: now, Actor: d.Reviewer, Kind: kind, Scope: breaker.Scope(scope), Incident: g.incident, Reason: d.Reason,
				Count: len(chunk), Via: d.Via, Group: d.Group, Approval: d.Approval, Approver: d.Approver, BreakGlass: d.BreakGlass,
			}, IDs: chunk}
			if len(ids) == 1 {
				e.ActionID = ids[0] // a decision on one action names it
			}
			entries = append(entries, e)
		}
	}
	if err := x.opts.Journal.Write(ctx, entries...); err != nil {
		return Outcome{}, fmt.Errorf("journal %d decisions: %w", len(ids), err)
	}
	o, err := x.apply(ctx, ids, d.To, d.Reviewer, d.Via == audit.ViaStanding, now)
	if err == nil && len(ids) == 1 && o.Changed == 1 && x.opts.UndoGrace > 0 {
		// A decision on one action waits UndoGrace before its release, so
		// that a reviewer can take it back.
		until := strconv.FormatInt(time.Now().Add(x.opts.UndoGrace).UnixMilli(), 10)
		if herr := x.opts.Redis.HSet(ctx, x.actionKey(ids[0]), "undo_until", until).Err(); herr != nil {
			x.opts.Logger.Warn("set the undo grace of a decision", zap.String("action_id", ids[0]), zap.Error(herr))
		}
	}
	return o, err
}

// incidentIDs are action ids of one incident.
type incidentIDs struct {
	incident string
	ids      []string
}

// byIncident groups ids by the incident they were held under, in the order
// of their first id, so that each audit entry names its incident; when
// incident is set every id is taken to be of it. Unknown ids form a group
// of their own ("").
func (x *Index) byIncident(ctx context.Context, ids []string, incident string) ([]incidentIDs, error) {
	if incident != "" {
		return []incidentIDs{{incident: incident, ids: ids}}, nil
	}
	var out []incidentIDs
	at := map[string]int{}
	for start := 0; start < len(ids); start += decideChunk {
		chunk := ids[start:min(start+decideChunk, len(ids))]
		rs, err := x.refs(ctx, chunk)
		if err != nil {
			return nil, err
		}
		for i, id := range chunk {
			inc := rs[i].incident
			k, ok := at[inc]
			if !ok {
				k = len(out)
				at[inc] = k
				out = append(out, incidentIDs{incident: inc})
			}
			out[k].ids = append(out[k].ids, id)
		}
	}
	return out, nil
}

// apply records decisions made at in the index.
func (x *Index) apply(ctx context.Context, ids []string, to Status, reviewer string, standing bool, at time.Time) (Outcome, error) {
	out := Outcome{Conflicts: []string{}, Unknown: []string{}}
	now := strconv.FormatInt(at.UnixMilli(), 10)
	flag := "0"
	if standing {
		flag = "1"
	}
	for start := 0; start < len(ids); start += decideChunk {
		chunk := ids[start:min(start+decideChunk, len(ids))]
		var res []any
		for try := 0; ; try++ {
			rs, err := x.refs(ctx, chunk)
			if err != nil {
				return out, err
			}
			keys, args := x.refArgs(chunk, rs, []string{x.queueKey()}, []any{string(to), reviewer, now, flag})
			res, err = decideScript.Run(ctx, x.opts.Redis, keys, args...).Slice()
			if err != nil {
				return out, fmt.Errorf("record %d decisions: %w", len(chunk), err)
			}
			if len(res) != 1 {
				break
			}
			if try == staleRetries {
				return out, fmt.Errorf("record %d decisions: %w", len(chunk), errStale)
			}
		}
		p, err := outcomeOf(res)
		if err != nil {
			return out, err
		}
		out.add(p)
	}
	return out, nil
}

func outcomeOf(res []any) (Outcome, error) {
	if len(res) != 4 {
		return Outcome{}, errors.New("review: unexpected reply of the decision script")
	}
	n1, _ := res[0].(int64)
	n2, _ := res[1].(int64)
	o := Outcome{Changed: int(n1), Already: int(n2)}
	for _, v := range res[2].([]any) {
		o.Conflicts = append(o.Conflicts, v.(string))
	}
	for _, v := range res[3].([]any) {
		o.Unknown = append(o.Unknown, v.(string))
	}
	return o, nil
}

// Pending returns the ids of the incident's actions that wait for a
// reviewer, in held order; through, if positive, keeps only the
// incident's first through held actions.
func (x *Index) Pending(ctx context.Context, incident string, through int64) ([]string, error) {
	if _, err := x.read(ctx, incident); err != nil {
		return nil, err
	}
	var out []string
	min := "-inf"
	for {
		zs, err := x.opts.Redis.ZRangeByScoreWithScores(ctx, x.incidentItems(incident), &redis.ZRangeBy{Min: min, Max: "+inf", Count: pageSize}).Result()
		if err != nil {
			return nil, fmt.Errorf("list incident %s: %w", incident, err)
		}
		ids := make([]string, len(zs))
		for i, z := range zs {
			ids[i] = z.Member.(string)
		}
		hs, err := x.getMany(ctx, ids)
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			if h.Status == Pending && (through <= 0 || h.seq <= through) {
				out = append(out, h.ActionID)
			}
		}
		if len(zs) < pageSize {
			return out, nil
		}
		min = "(" + strconv.FormatFloat(zs[len(zs)-1].Score, 'f', 0, 64)
	}
}

// DecideIncident decides every pending action of the incident d names.
func (x *Index) DecideIncident(ctx context.Context, d Decision) (Outcome, error) {
	ids, err := x.Pending(ctx, d.Incident, d.Through)
	if err != nil {
		return Outcome{}, err
	}
	if len(ids) == 0 {
		return Outcome{Conflicts: []string{}, Unknown: []string{}}, nil
	}
	return x.Decide(ctx, ids, d)
}

// Sample approves n pending actions of the incident d names, chosen at
// random (all of them if fewer are pending), and returns their ids.
func (x *Index) Sample(ctx context.Context, n int, d Decision) ([]string, Outcome, error) {
	ids, err := x.Pending(ctx, d.Incident, 0)
	if err != nil {
		return nil, Outcome{}, err
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	ids = ids[:min(n, len(ids))]
	if len(ids) == 0 {
		return ids, Outcome{Conflicts: []string{}, Unknown: []string{}}, nil
	}
	d.To = Approved
	o, err := x.Decide(ctx, ids, d)
	return ids, o, err
}

// Pick returns up to n pending actions of the incident, drawn at random,
// without deciding them: a sample for a reviewer to look at one by one. It
// also returns how many are pending. It draws from the incident's index
// with ZRANDMEMBER, so its cost does not grow with the incident; when the
// draws find too few pending actions (most are decided), it reads the
// pending ones in full.
func (x *Index) Pick(ctx context.Context, incident string, n int) ([]Held, int, error) {
	inc, err := x.read(ctx, incident)
	if err != nil {
		return nil, 0, err
	}
	pending := int(inc.Pending)
	if pending == 0 || n < 1 {
		return []Held{}, pending, nil
	}
	seen := map[string]bool{}
	var out []Held
	for round := 0; round < 3 && len(out) < n; round++ {
		ids, err := x.opts.Redis.ZRandMember(ctx, x.incidentItems(incident), 4*n).Result()
		if err != nil {
			return nil, 0, fmt.Errorf("draw from incident %s: %w", incident, err)
		}
		hs, err := x.getMany(ctx, ids)
		if err != nil {
			return nil, 0, err
		}
		for _, h := range hs {
			if h.Status == Pending && !seen[h.ActionID] && len(out) < n {
				seen[h.ActionID] = true
				out = append(out, h)
			}
		}
	}
	if len(out) < min(n, pending) {
		ids, err := x.Pending(ctx, incident, 0)
		if err != nil {
			return nil, 0, err
		}
		rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		hs, err := x.getMany(ctx, ids[:min(n, len(ids))])
		if err != nil {
			return nil, 0, err
		}
		return hs, len(ids), nil
	}
	return out, pending, nil
}

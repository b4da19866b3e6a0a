package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/audit"
	"github.com/breakwater/breakwater/breaker"
)

// The fields of an incident's hash besides its counts.
const (
	fieldAckBy           = "ack_by"
	fieldAckAt           = "ack_at"
	fieldOwner           = "owner"
	fieldStandingTo      = "standing_decision"
	fieldStandingActor   = "standing_actor"
	fieldStandingAt      = "standing_at"
	fieldStandingReason  = "standing_reason"
	fieldStandingApplied = "standing_applied"
	fieldStandingEntry   = "standing_entry"
	fieldStandingEnded   = "standing_ended"
)

// incidentKinds are the journal kinds that change an incident rather than
// its actions; the index is rebuilt from them too.
var incidentKinds = map[string]bool{
	audit.KindAcknowledge: true, audit.KindOwner: true, audit.KindNote: true,
	audit.KindStanding: true, audit.KindStandingRevoked: true, audit.KindStandingEnded: true,
}

// ErrConflict is returned for a change an incident's state does not allow.
var ErrConflict = errors.New("conflict")

// splitIncident returns the scope and generation an incident id names.
func splitIncident(id string) (string, uint64) {
	i := strings.LastIndexByte(id, '@')
	if i < 0 {
		return id, 0
	}
	gen, _ := strconv.ParseUint(id[i+1:], 10, 64)
	return id[:i], gen
}

// Incidents lists the incidents, newest first, with their lifecycle.
func (x *Index) Incidents(ctx context.Context) ([]Incident, error) {
	ids, err := x.opts.Redis.ZRevRange(ctx, x.incidentsKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	out := make([]Incident, 0, len(ids))
	states := map[string]breaker.Status{}
	for _, id := range ids {
		inc, err := x.read(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := x.lifecycle(ctx, &inc, states); err != nil {
			return nil, err
		}
		out = append(out, inc)
	}
	x.link(out)
	return out, nil
}

// Incident returns one incident with its lifecycle.
func (x *Index) Incident(ctx context.Context, id string) (Incident, error) {
	inc, err := x.read(ctx, id)
	if err != nil {
		return Incident{}, err
	}
	if err := x.lifecycle(ctx, &inc, map[string]breaker.Status{}); err != nil {
		return Incident{}, err
	}
	if x.opts.ContinueWithin > 0 {
		// The neighbours of the same breaker, for the continuation links.
		scope, _ := splitIncident(id)
		ids, err := x.opts.Redis.ZRange(ctx, x.incidentsKey(), 0, -1).Result()
		if err != nil {
			return Incident{}, fmt.Errorf("list incidents: %w", err)
		}
		same := []Incident{inc}
		for _, o := range ids {
			if s, _ := splitIncident(o); s != scope || o == id {
				continue
			}
			n, err := x.read(ctx, o)
			if err != nil {
				return Incident{}, err
			}
			same = append(same, n)
		}
		x.link(same)
		inc = same[0]
	}
	return inc, nil
}

// read returns an incident's record, without its lifecycle.
func (x *Index) read(ctx context.Context, id string) (Incident, error) {
	var h *redis.MapStringStringCmd
	var notes *redis.MapStringStringCmd
	_, err := x.opts.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, x.incidentKey(id))
		notes = p.HGetAll(ctx, x.keys.HeldIncidentNotes(id))
		return nil
	})
	if err != nil {
		return Incident{}, fmt.Errorf("read incident %s: %w", id, err)
	}
	m := h.Val()
	if len(m) == 0 {
		return Incident{}, fmt.Errorf("incident %q: %w", id, ErrNotFound)
	}
	num := func(k string) int64 { v, _ := strconv.ParseInt(m[k], 10, 64); return v }
	ms := func(k string) time.Time {
		if m[k] == "" {
			return time.Time{}
		}
		return time.UnixMilli(num(k)).UTC()
	}
	scope, _ := splitIncident(id)
	inc := Incident{
		ID: id, Scope: scope, Held: num("held"), Pending: num("pending"), Approved: num("approved"), Rejected: num("rejected"),
		Written: num("released"), ApprovedReleased: num("released_approved"), RejectedWritten: num("released_rejected"),
		FirstHeldAt: ms("first_held_at"), LastHeldAt: ms("last_held_at"),
		AckBy: m[fieldAckBy], AckAt: ms(fieldAckAt), Owner: m[fieldOwner],
	}
	if to := m[fieldStandingTo]; to != "" {
		inc.Standing = &api.Standing{
			Decision: to, Actor: m[fieldStandingActor], At: ms(fieldStandingAt), Reason: m[fieldStandingReason], Applied: num(fieldStandingApplied),
			Entry: m[fieldStandingEntry], Ended: ms(fieldStandingEnded),
		}
	}
	for _, v := range notes.Val() {
		var n api.Note
		if json.Unmarshal([]byte(v), &n) == nil {
			inc.Notes = append(inc.Notes, n)
		}
	}
	slices.SortStableFunc(inc.Notes, func(a, b api.Note) int { return a.At.Compare(b.At) })
	return inc, nil
}

// lifecycle sets the incident's state from its breaker's status (read once
// per scope into states) and its counts.
func (x *Index) lifecycle(ctx context.Context, inc *Incident, states map[string]breaker.Status) error {
	scope, gen := splitIncident(inc.ID)
	st, ok := states[scope]
	if !ok {
		s, err := breaker.ParseScope(scope)
		if err == nil {
			if st, err = x.opts.States.Status(ctx, s); err != nil {
				return fmt.Errorf("read breaker %s for incident %s: %w", scope, inc.ID, err)
			}
		}
		states[scope] = st
	}
	decided := inc.Approved + inc.Rejected
	switch {
	case gen != 0 && st.Holds() && st.Generation == gen:
		inc.State = api.IncidentActive
		inc.StateReason = fmt.Sprintf("%s is %s under generation %d: new actions of its scope join this incident", scope, st.State, gen)
	case inc.Pending > 0:
		inc.State = api.IncidentContained
		inc.StateReason = fmt.Sprintf("%s no longer holds under generation %d (it is %s, generation %d): nothing new joins; %d actions wait for a reviewer",
			scope, gen, orNone(st.State), st.Generation, inc.Pending)
		if gen == 0 {
			inc.StateReason = fmt.Sprintf("held without a trip (while the rate store was unreachable, or suppressed after a reversal: see each action's hold_reason); %d actions wait for a reviewer", inc.Pending)
		}
	case inc.Written < decided:
		inc.State = api.IncidentReviewed
		inc.StateReason = fmt.Sprintf("every action is decided; %d of %d are written to their topic", inc.Written, decided)
	default:
		inc.State = api.IncidentClosed
		inc.StateReason = "contained, every action decided and written to its topic"
	}
	return nil
}

func orNone(s breaker.State) string {
	if s == "" {
		return "unknown"
	}
	return string(s)
}

// link sets the continuation links between incidents of the same breaker:
// an incident continues the one of the next lower generation when it began
// holding within ContinueWithin of the last action that one held.
func (x *Index) link(incs []Incident) {
	if x.opts.ContinueWithin <= 0 {
		return
	}
	byScope := map[string][]int{}
	for i, inc := range incs {
		if _, gen := splitIncident(inc.ID); gen > 0 {
			byScope[inc.Scope] = append(byScope[inc.Scope], i)
		}
	}
	for _, is := range byScope {
		slices.SortFunc(is, func(a, b int) int {
			_, ga := splitIncident(incs[a].ID)
			_, gb := splitIncident(incs[b].ID)
			return int(ga) - int(gb)
		})
		for k := 1; k < len(is); k++ {
			prev, next := &incs[is[k-1]], &incs[is[k]]
			if gap := next.FirstHeldAt.Sub(prev.LastHeldAt); gap >= 0 && gap <= x.opts.ContinueWithin {
				next.Continues, prev.ContinuedBy = prev.ID, next.ID
			}
		}
	}
}

// Change is a change to an incident by a person: acknowledge, owner, note
// or a standing decision set or revoked.
type Change struct {
	// Kind is audit.KindAcknowledge, KindOwner, KindNote, KindStanding or
	// KindStandingRevoked.
	Kind string
	// Incident is the incident's id; Actor who changes it.
	Incident, Actor string
	// Text is the note, or the reason of a standing decision.
	Text string
	// Owner is the new owner (KindOwner).
	Owner string
	// Decision is Approved or Rejected (KindStanding).
	Decision Status
}

// Change applies c: it is written to the journal (the audit trail) first,
// then to the index, so that a rebuilt index has it. It returns the
// incident after the change. Acknowledging an incident someone already
// acknowledged, and revoking a standing decision that is not set, answer
// ErrConflict; an unknown incident ErrNotFound.
func (x *Index) Change(ctx context.Context, c Change) (Incident, error) {
	inc, err := x.Incident(ctx, c.Incident)
	if err != nil {
		return Incident{}, err
	}
	scope, _ := splitIncident(c.Incident)
	e := audit.Entry{AuditEntry: api.AuditEntry{
		ID: audit.NewID(), At: time.Now().UTC(), Actor: c.Actor, Kind: c.Kind, Scope: breaker.Scope(scope), Incident: c.Incident, Reason: c.Text,
	}}
	switch c.Kind {
	case audit.KindAcknowledge:
		if inc.AckBy != "" {
			return inc, fmt.Errorf("incident %s was acknowledged by %s at %s: %w", inc.ID, inc.AckBy, inc.AckAt.Format(time.RFC3339), ErrConflict)
		}
	case audit.KindOwner:
		e.Owner = c.Owner
	case audit.KindNote:
		if strings.TrimSpace(c.Text) == "" {
			return inc, errors.New("review: a note needs a text")
		}
	case audit.KindStanding:
		if c.Decision != Approved && c.Decision != Rejected {
			return inc, fmt.Errorf("review: a standing decision is approved or rejected, got %q", c.Decision)
		}
		if inc.State == api.IncidentClosed || inc.State == api.IncidentReviewed {
			return inc, fmt.Errorf("incident %s is %s: nothing is left for a standing decision: %w", inc.ID, inc.State, ErrConflict)
		}
		if inc.Standing != nil {
			return inc, fmt.Errorf("incident %s already has a standing decision to %s by %s; revoke it first: %w",
				inc.ID, verb(inc.Standing.Decision), inc.Standing.Actor, ErrConflict)
		}
		e.Decision = verb(string(c.Decision))
		e.Count = int(inc.Pending)
	case audit.KindStandingRevoked:
		if inc.Standing == nil {
			return inc, fmt.Errorf("incident %s has no standing decision: %w", inc.ID, ErrConflict)
		}
		e.Decision = inc.Standing.Decision
		e.Count = int(inc.Standing.Applied)
		e.Group = inc.Standing.Entry
	default:
		return inc, fmt.Errorf("review: unknown incident change %q", c.Kind)
	}
	if err := x.opts.Journal.Write(ctx, e); err != nil {
		return inc, fmt.Errorf("journal the %s of incident %s: %w", c.Kind, c.Incident, err)
	}
	if err := x.applyChange(ctx, e); err != nil {
		return inc, err
	}
	return x.Incident(ctx, c.Incident)
}

// verb returns the API's word for a decision: approve or reject.
func verb(decision string) string {
	switch decision {
	case string(Approved), "approve":
		return "approve"
	case string(Rejected), "reject":
		return "reject"
	}
	return decision
}

// applyChange records a journaled change of an incident in the index. It is
// idempotent: a replay beside the live change changes nothing twice.
func (x *Index) applyChange(ctx context.Context, e audit.Entry) error {
	key := x.incidentKey(e.Incident)
	at := strconv.FormatInt(e.At.UnixMilli(), 10)
	var err error
	switch e.Kind {
	case audit.KindAcknowledge:
		_, err = x.opts.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSetNX(ctx, key, fieldAckBy, e.Actor)
			p.HSetNX(ctx, key, fieldAckAt, at)
			if e.Reason != "" {
				note, _ := json.Marshal(api.Note{Actor: e.Actor, At: e.At, Text: e.Reason})
				p.HSet(ctx, x.keys.HeldIncidentNotes(e.Incident), e.ID, note)
			}
			return nil
		})
	case audit.KindOwner:
		if e.Owner == "" {
			err = x.opts.Redis.HDel(ctx, key, fieldOwner).Err()
		} else {
			err = x.opts.Redis.HSet(ctx, key, fieldOwner, e.Owner).Err()
		}
	case audit.KindNote:
		note, _ := json.Marshal(api.Note{Actor: e.Actor, At: e.At, Text: e.Reason})
		err = x.opts.Redis.HSet(ctx, x.keys.HeldIncidentNotes(e.Incident), e.ID, note).Err()
	case audit.KindStanding:
		_, err = x.opts.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, key, fieldStandingTo, e.Decision, fieldStandingActor, e.Actor, fieldStandingAt, at, fieldStandingReason, e.Reason,
				fieldStandingEntry, e.ID)
			p.HDel(ctx, key, fieldStandingEnded)
			p.SAdd(ctx, x.keys.HeldStanding(), e.Incident)
			return nil
		})
	case audit.KindStandingRevoked:
		_, err = x.opts.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HDel(ctx, key, fieldStandingTo, fieldStandingActor, fieldStandingAt, fieldStandingReason, fieldStandingApplied,
				fieldStandingEntry, fieldStandingEnded)
			p.SRem(ctx, x.keys.HeldStanding(), e.Incident)
			return nil
		})
	case audit.KindStandingEnded:
		// Only the decision it ended: a later one on the incident has
		// another entry.
		if cur, _ := x.opts.Redis.HGet(ctx, key, fieldStandingEntry).Result(); cur != "" && cur != e.Group {
			return nil
		}
		_, err = x.opts.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, key, fieldStandingEnded, at)
			p.SRem(ctx, x.keys.HeldStanding(), e.Incident)
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("record the %s of incident %s: %w", e.Kind, e.Incident, err)
	}
	return nil
}

// ApplyStanding decides the pending actions of every incident that has a
// standing decision, and returns how many it decided. An incident leaves
// the set it reads once it is no longer active and nothing of it is
// pending: its breaker stopped holding under it, so nothing new can join.
// The decision stays on the incident for people to see.
//
// Only the replica that holds the release lease calls it (Releaser.Step),
// so that each action is decided, and journaled, once.
func (x *Index) ApplyStanding(ctx context.Context) (int, error) {
	ids, err := x.opts.Redis.SMembers(ctx, x.keys.HeldStanding()).Result()
	if err != nil {
		return 0, fmt.Errorf("list standing decisions: %w", err)
	}
	slices.Sort(ids)
	n := 0
	for _, id := range ids {
		inc, err := x.Incident(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		if inc.Standing == nil {
			if err := x.opts.Redis.SRem(ctx, x.keys.HeldStanding(), id).Err(); err != nil {
				return n, fmt.Errorf("drop a revoked standing decision: %w", err)
			}
			continue
		}
		if inc.Pending > 0 {
			pending, err := x.Pending(ctx, id, 0)
			if err != nil {
				return n, err
			}
			to := Approved
			if inc.Standing.Decision == "reject" {
				to = Rejected
			}
			o, err := x.Decide(ctx, pending, Decision{
				To: to, Reviewer: inc.Standing.Actor, Reason: inc.Standing.Reason, Incident: id, Via: audit.ViaStanding,
				Group: inc.Standing.Entry,
			})
			if err != nil {
				return n, err
			}
			n += o.Changed
			continue
		}
		if inc.State != api.IncidentActive {
			// Its end is an entry of its own, journaled first: a rebuilt
			// index knows it ended and does not end it again.
			scope, _ := splitIncident(id)
			e := audit.Entry{AuditEntry: api.AuditEntry{
				ID: audit.NewID(), At: time.Now().UTC(), Actor: audit.System, Kind: audit.KindStandingEnded, Scope: breaker.Scope(scope),
				Incident: id, Decision: inc.Standing.Decision, Count: int(inc.Standing.Applied), Group: inc.Standing.Entry,
				Reason: inc.StateReason,
			}}
			if err := x.opts.Journal.Write(ctx, e); err != nil {
				return n, fmt.Errorf("journal the end of the standing decision on %s: %w", id, err)
			}
			if err := x.applyChange(ctx, e); err != nil {
				return n, fmt.Errorf("end a standing decision: %w", err)
			}
		}
	}
	return n, nil
}

package appeals

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/event"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/store"
	"github.com/breakwater/breakwater/wire"
)

// Breakers is the shared breaker state (store.Redis).
type Breakers interface {
	Status(ctx context.Context, scope breaker.Scope) (breaker.Status, error)
	Update(ctx context.Context, scope breaker.Scope, fn func(breaker.Status, time.Time) (breaker.Status, error)) (breaker.Transition, error)
}

// Recorder writes transitions durably (statelog.Log) or to the audit
// trail (audit.Trail); writing one twice keeps one.
type Recorder interface {
	Record(ctx context.Context, at time.Time, ts []breaker.Transition) error
}

// Auditor writes transitions to the audit trail (audit.Trail).
type Auditor interface {
	Record(ctx context.Context, ts []breaker.Transition) error
}

var _ Breakers = (*store.Redis)(nil)

// Options are the dependencies of a Service.
type Options struct {
	// Config gives the topics, the group, the appeals section and the
	// breakers' policies.
	Config config.Config
	// Kafka is the cluster.
	Kafka *kafkaconn.Endpoint
	// Store keeps the join and the outcomes.
	Store *Store
	// Breakers is the shared breaker state a trip is written to.
	Breakers Breakers
	// States is the durable record of breaker transitions.
	States Recorder
	// Audit is the audit trail.
	Audit Auditor
	// Alert, if set, raises the alert of a trip.
	Alert func(ctx context.Context, ts []breaker.Transition) error
	// Restore brings the breaker states back into a store that lost them.
	Restore func(ctx context.Context) error
	// Logger logs.
	Logger *zap.Logger
	// Now is the clock of the join's horizon; nil means time.Now.
	Now func() time.Time
	// Retry is the pause after a failure; 0 means a second.
	Retry time.Duration
}

func (o Options) validate() error {
	switch {
	case o.Kafka == nil:
		return errors.New("appeals: Options.Kafka is nil")
	case o.Store == nil:
		return errors.New("appeals: Options.Store is nil")
	case o.Breakers == nil:
		return errors.New("appeals: Options.Breakers is nil")
	case o.States == nil:
		return errors.New("appeals: Options.States is nil")
	case o.Audit == nil:
		return errors.New("appeals: Options.Audit is nil")
	case o.Restore == nil:
		return errors.New("appeals: Options.Restore is nil")
	case o.Logger == nil:
		return errors.New("appeals: Options.Logger is nil")
	}
	return PolicyOf(o.Config.Appeals).Validate()
}

// Service is the appeals signal of the live daemon: it indexes the gated
// topic into the join (its own consumer group, <group_id>.appeals-join)
// and reads the appeals topic (group <group_id>.appeals), each outside the
// action pipeline and its per-batch script. Every replica runs it; the
// groups share the partitions.
type Service struct {
	opts   Options
	policy Policy
	dead   *kafka.Writer
	tr     *kafka.Transport
}

// NewService returns the service; Run starts it.
func NewService(opts Options) (*Service, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Retry <= 0 {
		opts.Retry = time.Second
	}
	tr := opts.Kafka.Transport()
	return &Service{
		opts: opts, policy: PolicyOf(opts.Config.Appeals), tr: tr,
		dead: &kafka.Writer{
			Addr: opts.Kafka.Addr(), Transport: tr, Topic: opts.Config.Kafka.Topics.DeadLetter,
			Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 50 * time.Microsecond,
			WriteTimeout: opts.Config.Kafka.WriteTimeout, MaxAttempts: 5,
		},
	}, nil
}

// Close releases the dead-letter writer and its connections.
func (s *Service) Close() error {
	err := s.dead.Close()
	s.tr.CloseIdleConnections()
	return err
}

// The group ids of the service's consumers, after the pipeline's.
func joinGroup(cfg config.Config) string    { return cfg.Kafka.GroupID + ".appeals-join" }
func outcomeGroup(cfg config.Config) string { return cfg.Kafka.GroupID + ".appeals" }

func (s *Service) reader(group, topic string) *kafka.Reader {
	session := s.opts.Config.Kafka.SessionTimeout
	if session <= 0 {
		session = 10 * time.Second
	}
	return kafka.NewReader(s.opts.Kafka.Reader(kafka.ReaderConfig{
		GroupID: group, Topic: topic, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 200 * time.Millisecond,
		CommitInterval: 0, StartOffset: kafka.FirstOffset, SessionTimeout: session,
		HeartbeatInterval: max(session/4, 100*time.Millisecond), RebalanceTimeout: 2 * session,
		JoinGroupBackoff: 500 * time.Millisecond, ReadBackoffMin: 10 * time.Millisecond, ReadBackoffMax: 500 * time.Millisecond,
	}))
}

// Run indexes and judges until ctx ends. Failures of Kafka or Redis are
// logged and retried; nothing is committed before it is done.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.loop(ctx, "index the gated topic", s.index) }()
	go func() { defer wg.Done(); s.loop(ctx, "judge appeal outcomes", s.judge) }()
	wg.Wait()
}

// loop runs f again after a failure until ctx ends.
func (s *Service) loop(ctx context.Context, what string, f func(ctx context.Context) error) {
	for ctx.Err() == nil {
		err := f(ctx)
		if ctx.Err() != nil {
			return
		}
		s.opts.Logger.Warn("appeals: "+what+" failed; retrying", zap.Error(err))
		t := time.NewTimer(s.opts.Retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// index adds the gated topic's actions to the join, a batch at a time.
func (s *Service) index(ctx context.Context) error {
	r := s.reader(joinGroup(s.opts.Config), s.opts.Config.Kafka.Topics.Gated)
	defer r.Close()
	var a event.Action
	for {
		msgs, err := fetchBatch(ctx, r, 500, 200*time.Millisecond)
		if err != nil {
			return err
		}
		ids := make([]string, 0, len(msgs))
		joins := make([]Join, 0, len(msgs))
		for _, m := range msgs {
			if event.DecodeInto(&a, m.Value) != nil {
				continue // the pipeline gates only decodable actions
			}
			ids = append(ids, a.ActionID)
			joins = append(joins, Join{Rule: a.RuleID, Model: a.ModelVersion, At: a.OccurredAt})
		}
		if err := s.opts.Store.Forwarded(ctx, s.opts.Now(), ids, joins); err != nil {
			return err
		}
		if err := r.CommitMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("commit the gated topic's offsets: %w", err)
		}
	}
}

// fetchBatch waits for one message, then takes what else comes within
// wait, up to n.
func fetchBatch(ctx context.Context, r *kafka.Reader, n int, wait time.Duration) ([]kafka.Message, error) {
	m, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	msgs := []kafka.Message{m}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for len(msgs) < n {
		m, err := r.FetchMessage(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			break
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// judge reads the appeals topic: each outcome is parsed, joined, recorded
// and judged, or written to the dead-letter topic; then its offset is
// committed.
func (s *Service) judge(ctx context.Context) error {
	r := s.reader(outcomeGroup(s.opts.Config), s.opts.Config.Appeals.Topic)
	defer r.Close()
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return err
		}
		if err := s.one(ctx, m); err != nil {
			return err
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			return fmt.Errorf("commit the appeals topic's offset: %w", err)
		}
	}
}

// DeadLetter reasons of appeal outcomes (the breakwater-reason header).
const (
	ReasonMalformed = "appeal_malformed"
	ReasonUnknown   = "appeal_unknown_action"
	ReasonDuplicate = "appeal_duplicate"
)

// one handles one outcome; an error leaves it uncommitted, for a retry.
func (s *Service) one(ctx context.Context, m kafka.Message) error {
	pos := wire.Source(m.Topic, m.Partition, m.Offset)
	rec, err := Parse(m.Value)
	if err != nil {
		return s.deadLetter(ctx, m, ReasonMalformed, err)
	}
	j, day, err := s.opts.Store.Lookup(ctx, s.opts.Now(), rec.ActionID)
	if errors.Is(err, ErrUnknown) {
		return s.deadLetter(ctx, m, ReasonUnknown, err)
	}
	if err != nil {
		return err
	}
	windows, err := s.opts.Store.Record(ctx, s.opts.Now(), j, day, rec.ActionID, rec.Outcome, pos)
	if errors.Is(err, ErrDuplicate) {
		return s.deadLetter(ctx, m, ReasonDuplicate, err)
	}
	if err != nil {
		return err
	}
	v, ok, err := s.decide(ctx, j, windows)
	if err != nil || !ok {
		return err
	}
	scope := breaker.RuleScope(j.Rule)
	if v.Version {
		scope = breaker.ModelScope(j.Rule, v.Key.Model)
	}
	return s.trip(ctx, scope, v.Verdict)
}

// Versions reports whether a fall of rule's model version model can trip
// the version's breaker alone: model versions have breakers
// (breakers.segments.model_version) and the version's is not disabled.
func Versions(cfg config.Config, rule, model string) bool {
	return cfg.Breakers.Segments.ModelVersion && model != "" && !decide.ScopePolicy(cfg, breaker.ModelScope(rule, model)).Disabled
}

// decide judges the windows of j's rule and model version (Decide), with
// the trip times of the rule's breaker and of its versions' breakers read
// from the shared state: outcomes of actions forwarded before a trip of
// their rule or version do not trip again (a reversal undoes them).
func (s *Service) decide(ctx context.Context, j Join, windows map[Key][]Sample) (Scoped, bool, error) {
	ruleWin := windows[Key{Rule: j.Rule}]
	models := []string{j.Model}
	for _, x := range ruleWin {
		models = append(models, x.Model)
	}
	since, err := s.tripped(ctx, j.Rule, models)
	if err != nil {
		return Scoped{}, false, err
	}
	v, ok := Decide(s.policy, j.Rule, j.Model, ruleWin, windows[Key{Rule: j.Rule, Model: j.Model}], since,
		func(m string) bool { return Versions(s.opts.Config, j.Rule, m) })
	return v, ok, nil
}

// tripped reads when rule's breaker last tripped and, for each of models,
// the later of that and when the version's breaker did, as Decide's since.
func (s *Service) tripped(ctx context.Context, rule string, models []string) (func(rule, model string) time.Time, error) {
	scope := breaker.RuleScope(rule)
	st, err := s.opts.Breakers.Status(ctx, scope)
	if err != nil {
		return nil, fmt.Errorf("read breaker %s: %w", scope, err)
	}
	at := map[string]time.Time{"": st.TrippedAt}
	for _, m := range models {
		if _, ok := at[m]; ok {
			continue
		}
		at[m] = st.TrippedAt
		if !s.opts.Config.Breakers.Segments.ModelVersion {
			continue
		}
		vs, err := s.opts.Breakers.Status(ctx, breaker.ModelScope(rule, m))
		if err != nil {
			return nil, fmt.Errorf("read breaker %s: %w", breaker.ModelScope(rule, m), err)
		}
		if vs.TrippedAt.After(st.TrippedAt) {
			at[m] = vs.TrippedAt
		}
	}
	return func(_, m string) time.Time { return at[m] }, nil
}

// deadLetter writes an outcome that cannot be judged to the dead-letter
// topic, as it came, with the reason.
func (s *Service) deadLetter(ctx context.Context, m kafka.Message, reason string, why error) error {
	h := append([]kafka.Header{}, m.Headers...)
	h = append(h,
		kafka.Header{Key: wire.HeaderDecision, Value: []byte(decide.DeadLetter)},
		kafka.Header{Key: wire.HeaderReason, Value: []byte(reason)},
		kafka.Header{Key: wire.HeaderSource, Value: []byte(wire.Source(m.Topic, m.Partition, m.Offset))})
	if err := s.dead.WriteMessages(ctx, kafka.Message{Key: m.Key, Value: m.Value, Headers: h, Time: m.Time}); err != nil {
		return fmt.Errorf("write an appeal outcome to the dead-letter topic: %w", err)
	}
	s.opts.Logger.Info("appeal outcome dead-lettered", zap.String("reason", reason), zap.String("source", wire.Source(m.Topic, m.Partition, m.Offset)),
		zap.String("error", why.Error()))
	return nil
}

// trip trips scope for verdict v (overturn_rate) and records the
// transition on the state topic, in the audit trail and as an alert.
func (s *Service) trip(ctx context.Context, scope breaker.Scope, v Verdict) error {
	if decide.ScopePolicy(s.opts.Config, scope).Disabled {
		return nil
	}
	sw, err := s.opts.Store.Switch(ctx, s.opts.Now())
	if err != nil {
		return err
	}
	if !sw.Enabled {
		s.opts.Logger.Warn("appeals: the trip is turned off; not tripping", zap.String("scope", string(scope)),
			zap.String("by", sw.By), zap.String("reason", sw.Reason), zap.String("appeals", Explain(s.policy, v)))
		return nil
	}
	fig := breaker.Trip{Appeals: breaker.AppealsTrip{
		Key: v.Key.String(), Outcomes: v.Outcomes, Overturned: v.Overturned, Below: v.Below, Floor: s.policy.Floor, Confidence: s.policy.Confidence,
	}}
	changed := false
	fn := func(st breaker.Status, now time.Time) (breaker.Status, error) {
		n, ok := breaker.TripOn(st, breaker.ReasonOverturnRate, fig, v.Onset, now)
		changed = ok
		return n, nil
	}
	var t breaker.Transition
	for attempt := 0; ; attempt++ {
		t, err = s.opts.Breakers.Update(ctx, scope, fn)
		if !errors.Is(err, store.ErrStateLost) || attempt == 2 {
			break
		}
		if rerr := s.opts.Restore(ctx); rerr != nil {
			return fmt.Errorf("trip %s: %w; restore: %w", scope, err, rerr)
		}
	}
	if err != nil {
		return fmt.Errorf("trip %s: %w", scope, err)
	}
	if !changed {
		return nil
	}
	ts := []breaker.Transition{t}
	if err := s.opts.States.Record(ctx, t.To.Since, ts); err != nil {
		return fmt.Errorf("record the trip of %s: %w", scope, err)
	}
	if err := s.opts.Audit.Record(ctx, ts); err != nil {
		return fmt.Errorf("audit the trip of %s: %w", scope, err)
	}
	if s.opts.Alert != nil {
		if err := s.opts.Alert(ctx, ts); err != nil {
			s.opts.Logger.Error("raise the alert of an overturn_rate trip", zap.String("scope", string(scope)), zap.Error(err))
		}
	}
	s.opts.Logger.Warn("breaker transition", zap.String("scope", string(scope)), zap.String("state", string(t.To.State)),
		zap.Uint64("generation", t.To.Generation), zap.String("reason", t.To.Reason), zap.String("appeals", Explain(s.policy, v)))
	return nil
}

// Estimates returns the estimate of every rule and model version with
// outcomes in the join's horizon, judged as the trip judges them: without
// the outcomes of actions forwarded before the last trip of their rule's
// or version's breaker.
func (s *Service) Estimates(ctx context.Context) (api.AppealsEstimates, error) {
	now := s.opts.Now()
	out := api.AppealsEstimates{Floor: s.policy.Floor, Confidence: s.policy.Confidence, MinOutcomes: s.policy.MinOutcomes,
		Window: s.policy.Window, Estimates: []api.AppealsEstimate{}}
	sw, err := s.opts.Store.Switch(ctx, now)
	if err != nil {
		return out, err
	}
	out.Trip = sw
	windows, err := s.opts.Store.Windows(ctx, now)
	if err != nil {
		return out, err
	}
	byRule := map[string][]string{}
	for k, w := range windows {
		byRule[k.Rule] = append(byRule[k.Rule], k.Model)
		for _, x := range w {
			byRule[k.Rule] = append(byRule[k.Rule], x.Model)
		}
	}
	for k, w := range windows {
		since, err := s.tripped(ctx, k.Rule, byRule[k.Rule])
		if err != nil {
			return out, err
		}
		judged := make([]Sample, 0, len(w))
		for _, x := range w {
			m := x.Model
			if k.Model != "" {
				m = k.Model
			}
			if c := since(k.Rule, m); c.IsZero() || x.At.After(c) {
				judged = append(judged, x)
			}
		}
		v := Judge(s.policy, k, judged)
		scope := breaker.RuleScope(k.Rule)
		if k.Model != "" {
			scope = breaker.ModelScope(k.Rule, k.Model)
		}
		out.Estimates = append(out.Estimates, api.AppealsEstimate{
			Rule: k.Rule, ModelVersion: k.Model, Scope: string(scope), Outcomes: v.Outcomes, Overturned: v.Overturned,
			LeftOut: len(w) - len(judged), Below: v.Below, Trips: v.Trip,
		})
	}
	slices.SortFunc(out.Estimates, func(a, b api.AppealsEstimate) int {
		return cmp.Or(cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.ModelVersion, b.ModelVersion))
	})
	return out, nil
}

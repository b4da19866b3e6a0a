package decide

import (
	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/config"
)

// Policy returns the breaker policy of scope s for the action of it.
func (g *Gate) Policy(s breaker.Scope, it *Item) breaker.Policy {
	switch {
	case s == breaker.Global:
		return GlobalPolicy(g.cfg)
	case s == breaker.RuleScope(it.Act.RuleID):
		return RulePolicy(g.cfg, it.Act.RuleID)
	}
	if dim, _ := s.Segment(); dim == breaker.DimModel {
		return ModelPolicy(g.cfg, it.Act.RuleID)
	} else if dim != "" {
		return SegmentPolicy(g.cfg, it.Act.RuleID)
	}
	t, _ := g.cfg.ActionThresholds(it.Act.RuleID, it.Act.Action)
	return Policy(t)
}

// GlobalPolicy returns the policy of the global scope: its thresholds and
// what it holds when it trips.
func GlobalPolicy(cfg config.Config) breaker.Policy {
	p := Policy(cfg.Breakers.Global.Thresholds)
	p.HoldContributors = cfg.Breakers.Global.Hold != config.HoldAll
	p.ContributorFactor = cfg.Breakers.Global.ContributorFactor
	return p
}

// RulePolicy returns the policy of a rule's scope: its configured
// thresholds, or the defaults and the new-rule budget for a rule with no
// entry.
func RulePolicy(cfg config.Config, rule string) breaker.Policy {
	p := Policy(cfg.RuleThresholds(rule))
	if _, ok := cfg.Breakers.Rules[rule]; !ok && cfg.Breakers.NewRules.MaxActions > 0 {
		p.Learning = cfg.Breakers.NewRules.Learning
		p.LearningMax = cfg.Breakers.NewRules.MaxActions
	}
	return p
}

// SegmentPolicy returns the policy of a segment of a rule (a value of a
// dimension): its rule's. Its detector learns the segment's own
// expectation.
func SegmentPolicy(cfg config.Config, rule string) breaker.Policy {
	return RulePolicy(cfg, rule)
}

// ModelPolicy returns the policy of a model version of a rule: its rule's
// thresholds, only while the version is new on the rule (for
// breakers.new_rules.learning after its first action, when the rule had
// counts it started from). An established version is its rule's to guard.
func ModelPolicy(cfg config.Config, rule string) breaker.Policy {
	p := RulePolicy(cfg, rule)
	p.NewOnly = true
	p.Learning = cfg.Breakers.NewRules.Learning
	p.LearningMax = 0
	return p
}

// ScopePolicy returns the configured policy of scope s: the global
// thresholds, a configured rule and action type's, or the rule's (a rule
// with no entry gets the defaults). Where an action's decoded rule and type
// are at hand, Gate.Policy finds the same without matching the scope.
func ScopePolicy(cfg config.Config, s breaker.Scope) breaker.Policy {
	if s == breaker.Global {
		return GlobalPolicy(cfg)
	}
	rule := s.Rule()
	if dim, _ := s.Segment(); dim == breaker.DimModel {
		return ModelPolicy(cfg, rule)
	} else if dim != "" {
		return SegmentPolicy(cfg, rule)
	}
	if s != breaker.RuleScope(rule) {
		for action := range cfg.Breakers.Rules[rule].Actions {
			if breaker.ActionScope(rule, action) == s {
				t, _ := cfg.ActionThresholds(rule, action)
				return Policy(t)
			}
		}
	}
	return RulePolicy(cfg, rule)
}

// Policy converts configured thresholds to a breaker policy.
func Policy(t config.Thresholds) breaker.Policy {
	p := breaker.Policy{
		Window: t.Window, MaxActions: t.MaxActions, Baseline: t.Baseline, Factor: t.Factor,
		MinActions: t.MinActions, AutoCloseAfter: t.AutoCloseAfter, Probation: t.Probation,
		ProbationScale: t.ProbationScale, Disabled: t.Disabled,
	}
	if e := t.Evidence; !e.Off {
		p.EvidenceBin, p.EvidenceRatio, p.EvidenceThreshold = e.Bin, e.Ratio, e.Threshold
		p.EvidenceMinExpected, p.EvidenceDays = e.MinExpected, e.Days
	}
	return p
}

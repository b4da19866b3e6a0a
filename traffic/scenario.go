package traffic

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// IncidentKind names the shape of an injected incident.
type IncidentKind string

// The incident shapes.
const (
	// Spike multiplies one rule's rate by Factor.
	Spike IncidentKind = "spike"
	// Broad multiplies every rule's rate by Factor (an infrastructure bug
	// raising everything a little).
	Broad IncidentKind = "broad"
	// Ramp raises one rule's rate linearly up to Factor times over the
	// incident.
	Ramp IncidentKind = "ramp"
	// NewRule adds a rule that has never acted before, at Factor times an
	// average rule's rate.
	NewRule IncidentKind = "new_rule"
	// Malformed makes a share Factor of the lines undecodable.
	Malformed IncidentKind = "malformed"
	// Release puts a new model version (Version) on the rules concerned:
	// every action of theirs comes from it, at Factor times their rate,
	// and every one is the incident's (none was made by the version
	// vetted before), until the incident ends and the old version is back.
	Release IncidentKind = "release"
	// Misfire keeps the rules' rate but makes a share Factor of their
	// actions wrong (the same volume, the wrong people): each is the
	// incident's with probability Factor. Only their appeals show it.
	Misfire IncidentKind = "misfire"
)

// Incident is one injected anomaly.
type Incident struct {
	Kind IncidentKind
	// Rule is the index of the rule concerned (Spike, Ramp, Release).
	Rule int
	// Rules, when not empty, are the indexes of the rules concerned
	// instead of Rule: several rules at once.
	Rules []int
	// At is when, after the start, the incident begins, and For how long it lasts.
	At  time.Duration
	For time.Duration
	// Factor is the incident's strength; see the kinds.
	Factor float64
	// Action, when set, is the action type of every action the incident
	// adds (a rule that starts banning); otherwise they follow the usual mix.
	Action string
	// Rate, when positive, is the new rule's actions per hour (NewRule),
	// instead of Factor times an average rule's rate.
	Rate float64
	// Exponential makes a Ramp grow by the same ratio every hour (to
	// Factor times at the end) instead of linearly.
	Exponential bool
	// Rise, when positive, makes a Spike or Broad incident climb linearly
	// from its rules' normal rate to Factor times it over Rise, then stay
	// there until the incident ends (a slow ramp, then a plateau).
	Rise time.Duration
	// Region, when set, confines a Spike to one region (one segment of its
	// rule): the rule's actions in that region are Factor times as many,
	// and every action the incident adds is in that region.
	Region string
	// Version is the model version a Release introduces.
	Version string
}

func (in Incident) active(elapsed time.Duration) bool {
	return elapsed >= in.At && elapsed < in.At+in.For
}

// concerns reports whether the incident acts on rule r.
func (in Incident) concerns(r int) bool {
	switch in.Kind {
	case Broad:
		return true
	case Spike, Ramp, Release, Misfire:
		if len(in.Rules) > 0 {
			return slices.Contains(in.Rules, r)
		}
		return in.Rule == r
	}
	return false
}

// multiplier returns what the incident multiplies the rate of a rule it
// concerns by, elapsed after the start.
func (in Incident) multiplier(elapsed time.Duration) float64 {
	into := float64(elapsed - in.At)
	switch {
	case in.Kind == Misfire:
		return 1
	case in.Kind == Ramp && in.Exponential:
		return math.Pow(in.Factor, into/float64(in.For))
	case in.Kind == Ramp:
		return 1 + (in.Factor-1)*into/float64(in.For)
	case in.Rise > 0 && (in.Kind == Spike || in.Kind == Broad):
		m := 1 + (in.Factor-1)*min(1, into/float64(in.Rise))
		if in.Region != "" {
			return 1 + (m-1)/float64(len(regions))
		}
		return m
	case in.Region != "" && in.Kind == Spike:
		return 1 + (in.Factor-1)/float64(len(regions))
	}
	return in.Factor
}

// Concerned returns the indexes of the rules the incident acts on among
// rules rules, in increasing order.
func (in Incident) Concerned(rules int) []int {
	var out []int
	for r := range rules {
		if in.concerns(r) {
			out = append(out, r)
		}
	}
	return out
}

var incidentDefaults = map[IncidentKind]Incident{
	Spike:     {Kind: Spike, Rule: 2, At: time.Hour, For: 30 * time.Minute, Factor: 10},
	Broad:     {Kind: Broad, At: time.Hour, For: 30 * time.Minute, Factor: 1.6},
	Ramp:      {Kind: Ramp, Rule: 1, At: time.Hour, For: 2 * time.Hour, Factor: 8},
	NewRule:   {Kind: NewRule, At: time.Hour, For: 30 * time.Minute, Factor: 4},
	Malformed: {Kind: Malformed, At: time.Hour, For: 10 * time.Minute, Factor: 0.05},
	Release:   {Kind: Release, Rule: 1, At: time.Hour, For: time.Hour, Factor: 2, Version: "2025.06.0"},
	Misfire:   {Kind: Misfire, Rule: 1, At: time.Hour, For: 6 * time.Hour, Factor: 0.6},
}

// Regions are the regions the simulated actions come from.
func Regions() []string { return slices.Clone(regions) }

// maxRules bounds the rules= list of a parsed incident.
const maxRules = 1000

// token reports whether v can be written into an event as it is: not
// empty, at most 128 bytes, without spaces, quotes, backslashes or control
// characters.
func token(v string) bool {
	return v != "" && len(v) <= 128 && !strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r == 0x7f })
}

// ParseIncident parses an incident written as KIND[:key=value,...], for
// example "spike:rule=3,at=2h,for=30m,factor=12". Keys left out keep the
// kind's defaults.
func ParseIncident(s string) (Incident, error) {
	kind, args, _ := strings.Cut(strings.TrimSpace(s), ":")
	in, ok := incidentDefaults[IncidentKind(kind)]
	if !ok {
		return Incident{}, fmt.Errorf("incident %q: unknown kind %q (want spike, broad, ramp, new_rule, malformed, release or misfire)", s, kind)
	}
	if args == "" {
		return in, nil
	}
	for kv := range strings.SplitSeq(args, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return Incident{}, fmt.Errorf("incident %q: %q is not key=value", s, kv)
		}
		var err error
		switch k {
		case "rule":
			in.Rule, err = strconv.Atoi(v)
			if err == nil && (in.Rule < 0 || in.Rule > 9999) {
				err = errors.New("must be between 0 and 9999")
			}
		case "at":
			in.At, err = time.ParseDuration(v)
			if err == nil && in.At < 0 {
				err = errors.New("must not be negative")
			}
		case "for":
			in.For, err = time.ParseDuration(v)
			if err == nil && in.For <= 0 {
				err = errors.New("must be positive")
			}
		case "rules":
			in.Rules, err = parseRules(v)
		case "action":
			in.Action = v
			if !token(v) {
				err = errors.New("must be a non-empty action type without spaces, quotes or control characters")
			}
		case "version":
			in.Version = v
			if !token(v) {
				err = errors.New("must be a non-empty model version without spaces, quotes or control characters")
			}
		case "region":
			in.Region = v
			if !slices.Contains(regions, v) {
				err = fmt.Errorf("must be one of %s", strings.Join(regions, ", "))
			}
		case "rise":
			in.Rise, err = time.ParseDuration(v)
			if err == nil && in.Rise < 0 {
				err = errors.New("must not be negative")
			}
		case "rate":
			in.Rate, err = strconv.ParseFloat(v, 64)
			if err == nil && (math.IsNaN(in.Rate) || in.Rate <= 0 || in.Rate > 1e7) {
				err = errors.New("must be above 0 and at most 10000000 (actions per hour)")
			}
		case "curve":
			switch v {
			case "linear":
				in.Exponential = false
			case "exp":
				in.Exponential = true
			default:
				err = errors.New("must be linear or exp")
			}
		case "factor":
			in.Factor, err = strconv.ParseFloat(v, 64)
			if err == nil && (math.IsNaN(in.Factor) || in.Factor <= 0 || in.Factor > 1e4) {
				err = errors.New("must be above 0 and at most 10000")
			}
			if err == nil && in.Kind == Malformed && in.Factor > 1 {
				err = errors.New("is a share of the lines for malformed: at most 1")
			}
			if err == nil && in.Kind == Misfire && in.Factor > 1 {
				err = errors.New("is the share of wrong actions for misfire: at most 1")
			}
		default:
			err = errors.New("unknown key (want rule, rules, at, for, factor, action, rate, curve, rise, region or version)")
		}
		if err != nil {
			return Incident{}, fmt.Errorf("incident %q: %s: %w", s, k, err)
		}
	}
	if in.Kind == Release && in.Version == "" {
		return Incident{}, fmt.Errorf("incident %q: version: a release needs one", s)
	}
	return in, nil
}

// parseRules parses rule indexes joined by plus signs: 3+5+17.
func parseRules(v string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(v, "+") {
		if len(out) == maxRules {
			return nil, fmt.Errorf("at most %d rules", maxRules)
		}
		r, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("want rule indexes joined by +: %w", err)
		}
		if r < 0 || r > 9999 {
			return nil, errors.New("each must be between 0 and 9999")
		}
		out = append(out, r)
	}
	return out, nil
}

// String formats in so that ParseIncident reads it back.
func (in Incident) String() string {
	s := fmt.Sprintf("%s:rule=%d,at=%s,for=%s,factor=%g", in.Kind, in.Rule, in.At, in.For, in.Factor)
	if in.Action != "" {
		s += ",action=" + in.Action
	}
	if in.Rate > 0 {
		s += fmt.Sprintf(",rate=%g", in.Rate)
	}
	if in.Exponential {
		s += ",curve=exp"
	}
	if len(in.Rules) > 0 {
		rs := make([]string, len(in.Rules))
		for i, r := range in.Rules {
			rs[i] = strconv.Itoa(r)
		}
		s += ",rules=" + strings.Join(rs, "+")
	}
	if in.Rise > 0 {
		s += ",rise=" + in.Rise.String()
	}
	if in.Region != "" {
		s += ",region=" + in.Region
	}
	if in.Version != "" {
		s += ",version=" + in.Version
	}
	return s
}

// Scenario describes synthetic classifier traffic in event time: many rules
// of different sizes, each following a daily cycle with noise, plus
// injected incidents.
type Scenario struct {
	// Start is the event time of the first second.
	Start time.Time
	// Duration is how much event time to generate.
	Duration time.Duration
	// Rules is how many rules act.
	Rules int
	// Rate is the mean actions per second across all rules.
	Rate float64
	// Diurnal is the amplitude of the daily cycle, 0 (flat) to 1; the
	// rate peaks at 15:00 UTC and is lowest at 03:00.
	Diurnal float64
	// Skew sets how unequal the rules are: rule r acts in proportion to
	// 1/(r+1)^Skew. 0 means the default, 0.7 (a few large rules and a long
	// tail); values near 0 make the rules almost equal.
	Skew float64
	// Noise is the relative standard deviation of each rule's rate from
	// one minute to the next.
	Noise float64
	// Seed makes the traffic reproducible.
	Seed int64
	// Incidents are injected on top of the normal traffic.
	Incidents []Incident
}

// Validate checks the scenario and names the offending field.
func (s Scenario) Validate() error {
	var errs []error
	if s.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration: must be positive, got %v", s.Duration))
	}
	if s.Rules < 1 || s.Rules > 10000 {
		errs = append(errs, fmt.Errorf("rules: must be between 1 and 10000, got %d", s.Rules))
	}
	if !(s.Rate > 0 && s.Rate <= 1e6) {
		errs = append(errs, fmt.Errorf("rate: must be above 0 and at most 1000000, got %g", s.Rate))
	}
	if !(s.Diurnal >= 0 && s.Diurnal <= 1) {
		errs = append(errs, fmt.Errorf("diurnal: must be between 0 and 1, got %g", s.Diurnal))
	}
	if !(s.Skew >= 0 && s.Skew <= 3) {
		errs = append(errs, fmt.Errorf("skew: must be between 0 and 3, got %g", s.Skew))
	}
	if !(s.Noise >= 0 && s.Noise <= 1) {
		errs = append(errs, fmt.Errorf("noise: must be between 0 and 1, got %g", s.Noise))
	}
	for i, in := range s.Incidents {
		if in.Kind == Misfire && !(in.Factor > 0 && in.Factor <= 1) {
			errs = append(errs, fmt.Errorf("incidents[%d]: a misfire's factor is the share of wrong actions, above 0 and at most 1, got %g", i, in.Factor))
		}
		if in.Kind != Spike && in.Kind != Ramp && in.Kind != Release && in.Kind != Misfire {
			continue
		}
		for _, r := range append([]int{in.Rule}, in.Rules...) {
			if r < 0 || r >= s.Rules {
				errs = append(errs, fmt.Errorf("incidents[%d]: rule %d does not exist (rules: %d)", i, r, s.Rules))
			}
		}
		if in.Region != "" && !slices.Contains(regions, in.Region) {
			errs = append(errs, fmt.Errorf("incidents[%d]: region %q is not one of %s", i, in.Region, strings.Join(regions, ", ")))
		}
		if in.Kind == Release && !token(in.Version) {
			errs = append(errs, fmt.Errorf("incidents[%d]: a release needs a version without spaces, quotes or control characters, got %q", i, in.Version))
		}
	}
	return errors.Join(errs...)
}

// Simulation generates the events of a scenario in event-time order.
type Simulation struct {
	sc     Scenario
	rng    *rand.Rand
	lrng   *rand.Rand // labels and incident action types, apart from rng so that labels change no byte
	share  []float64  // each rule's share of the rate
	noise  []float64  // each rule's current noise multiplier
	sec    int64
	buf    []pending
	last   pending
	next   int
	seq    uint64
	prefix string
	key    []byte
	at     time.Time
}

type pending struct {
	at   int64 // Unix nanoseconds
	rule int   // -1: the new rule
	bad  int8  // >0: a malformed line of that variant
	inc  int16 // >0: produced by Incidents[inc-1]
}

// Label says whether an injected incident produced an action.
type Label struct {
	// Incident is the 1-based index in Scenario.Incidents of the incident
	// that produced the action, 0 for ordinary traffic.
	Incident int `json:"incident"`
	// Malformed is true for a line made undecodable.
	Malformed bool `json:"malformed,omitempty"`
}

// NewSimulation returns a simulation of sc, which must be valid.
func NewSimulation(sc Scenario) *Simulation {
	rng := rand.New(rand.NewPCG(uint64(sc.Seed), 0x5851f42d4c957f2d))
	s := &Simulation{
		sc: sc, rng: rng, lrng: rand.New(rand.NewPCG(uint64(sc.Seed), 0x2545f4914f6cdd1d)),
		share: make([]float64, sc.Rules), noise: make([]float64, sc.Rules),
	}
	skew := sc.Skew
	if skew == 0 {
		skew = 0.7
	}
	total := 0.0
	for r := range s.share {
		// Rules differ in size: a few large ones, a long tail of small ones.
		s.share[r] = 1 / math.Pow(float64(r+1), skew) * (0.8 + 0.4*rng.Float64())
		total += s.share[r]
		s.noise[r] = 1
	}
	for r := range s.share {
		s.share[r] /= total
	}
	s.prefix = fmt.Sprintf("act-%x-", uint32(sc.Seed))
	return s
}

// RuleRate returns the normal (incident-free, noise-free) actions per
// second of rule r at event time at.
func (s *Simulation) RuleRate(r int, at time.Time) float64 {
	return s.sc.Rate * s.share[r] * s.diurnal(at)
}

func (s *Simulation) diurnal(at time.Time) float64 {
	h := float64(at.UTC().Hour()) + float64(at.UTC().Minute())/60
	return 1 + s.sc.Diurnal*math.Cos(2*math.Pi*(h-15)/24)
}

// NewRuleID is the rule_id of the rule a NewRule incident introduces.
const NewRuleID = "rule-new"

// ModelVersion is the model version of every ordinary action.
const ModelVersion = "2025.04.1"

// Shares returns each rule's share of the scenario's rate.
func (s *Simulation) Shares() []float64 { return slices.Clone(s.share) }

// BySize returns the indexes of the scenario's rules, the busiest first.
func BySize(sc Scenario) []int {
	share := NewSimulation(sc).share
	out := make([]int, len(share))
	for i := range out {
		out[i] = i
	}
	sort.SliceStable(out, func(i, j int) bool { return share[out[i]] > share[out[j]] })
	return out
}

// Next appends the next event's JSON line (without a line break) to dst
// and returns it, or returns false at the end of the scenario.
func (s *Simulation) Next(dst []byte) ([]byte, bool) {
	for s.next >= len(s.buf) {
		if time.Duration(s.sec)*time.Second >= s.sc.Duration {
			return dst, false
		}
		s.second()
	}
	p := s.buf[s.next]
	s.next++
	s.last = p
	return s.encode(dst, p), true
}

// ActionID returns the action_id of the last event (also of a malformed
// line, which may not show it).
func (s *Simulation) ActionID() string { return s.prefix + strconv.FormatUint(s.seq, 10) }

// Label returns the label of the last event.
func (s *Simulation) Label() Label {
	return Label{Incident: int(s.last.inc), Malformed: s.last.bad > 0}
}

// Key returns the target id of the last event, its Kafka key. It is valid
// until the next call of Next.
func (s *Simulation) Key() []byte { return s.key }

// At returns the event time of the last event.
func (s *Simulation) At() time.Time { return s.at }

// second fills buf with the events of the next second of event time.
func (s *Simulation) second() {
	s.buf, s.next = s.buf[:0], 0
	elapsed := time.Duration(s.sec) * time.Second
	t0 := s.sc.Start.Add(elapsed)
	if s.sec%60 == 0 {
		for r := range s.noise {
			s.noise[r] = math.Max(0.05, 1+s.sc.Noise*s.rng.NormFloat64())
		}
	}
	day := s.diurnal(t0)
	badShare := 0.0
	for r := range s.sc.Rules {
		normal := s.sc.Rate * s.share[r] * day * s.noise[r]
		mean, cause, release := normal, 0, false
		misfire, wrong := 0, 0.0
		for i, in := range s.sc.Incidents {
			if !in.active(elapsed) || !in.concerns(r) {
				continue
			}
			if in.Kind == Misfire {
				misfire, wrong = i+1, in.Factor
				continue
			}
			m := in.multiplier(elapsed)
			if in.Kind == Release && !release {
				// Every action of the rule is the new version's.
				release, cause = true, i+1
			}
			if m != 1 && cause == 0 {
				cause = i + 1
			}
			mean *= m
		}
		from := len(s.buf)
		s.add(r, t0, mean)
		if release {
			for j := from; j < len(s.buf); j++ {
				s.buf[j].inc = int16(cause)
			}
		} else if misfire > 0 && cause == 0 {
			// The same volume, a share of it wrong.
			for j := from; j < len(s.buf); j++ {
				if s.lrng.Float64() < wrong {
					s.buf[j].inc = int16(misfire)
				}
			}
		} else if cause > 0 && mean > normal {
			// Each action is the incident's with the share it adds.
			for j := from; j < len(s.buf); j++ {
				if s.lrng.Float64()*mean >= normal {
					s.buf[j].inc = int16(cause)
				}
			}
		}
	}
	for i, in := range s.sc.Incidents {
		if !in.active(elapsed) {
			continue
		}
		switch in.Kind {
		case NewRule:
			from := len(s.buf)
			mean := s.sc.Rate / float64(s.sc.Rules) * day * in.Factor
			if in.Rate > 0 {
				mean = in.Rate / 3600
			}
			s.add(-1, t0, mean)
			for j := from; j < len(s.buf); j++ {
				s.buf[j].inc = int16(i + 1)
			}
		case Malformed:
			badShare = max(badShare, in.Factor)
		}
	}
	if badShare > 0 {
		for i := range s.buf {
			if s.rng.Float64() < badShare {
				s.buf[i].bad = int8(1 + s.rng.IntN(4))
			}
		}
	}
	sort.Slice(s.buf, func(i, j int) bool { return s.buf[i].at < s.buf[j].at })
	s.sec++
}

// add draws a Poisson count with the given mean for one rule in one second.
func (s *Simulation) add(rule int, t0 time.Time, mean float64) {
	n := s.poisson(mean)
	base := t0.UnixNano()
	for range n {
		s.buf = append(s.buf, pending{at: base + s.rng.Int64N(int64(time.Second)), rule: rule})
	}
}

func (s *Simulation) poisson(mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 30 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*s.rng.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= s.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

var regions = []string{"us", "eu", "br", "in"}

func (s *Simulation) encode(dst []byte, p pending) []byte {
	s.seq++
	x := s.rng.Float64()
	a := actions[len(actions)-1]
	for _, c := range actions {
		if x < c.share {
			a = c
			break
		}
		x -= c.share
	}
	if p.inc > 0 {
		if name := s.sc.Incidents[p.inc-1].Action; name != "" {
			a = actionOf(name)
		}
	}
	rule := NewRuleID
	if p.rule >= 0 {
		rule = RuleID(p.rule)
	}
	at := time.Unix(0, p.at).UTC().Truncate(time.Millisecond)
	s.at = at
	start := len(dst)
	dst = append(dst, `{"action_id":"`...)
	dst = append(dst, s.prefix...)
	dst = strconv.AppendUint(dst, s.seq, 10)
	dst = append(dst, `","rule_id":"`...)
	dst = append(dst, rule...)
	dst = append(dst, `","action":"`...)
	dst = append(dst, a.name...)
	dst = append(dst, `","target":{"type":"`...)
	dst = append(dst, a.target...)
	dst = append(dst, `","id":"`...)
	k := len(dst)
	dst = append(dst, a.target...)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, int64(s.rng.IntN(1000000)), 10)
	s.key = append(s.key[:0], dst[k:]...)
	version, region := ModelVersion, ""
	if p.inc > 0 {
		in := s.sc.Incidents[p.inc-1]
		if in.Kind == Release {
			version = in.Version
		}
		region = in.Region
	}
	dst = append(dst, `"},"occurred_at":"`...)
	dst = at.AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","model":{"name":"safety-classifier","version":"`...)
	dst = append(dst, version...)
	dst = append(dst, `"},"confidence":`...)
	dst = strconv.AppendFloat(dst, math.Round((0.5+s.rng.Float64()/2)*1000)/1000, 'f', -1, 64)
	dst = append(dst, `,"region":"`...)
	// The draw is made whatever the region, so that an incident's region
	// changes no other byte.
	if rg := regions[s.rng.IntN(len(regions))]; region == "" {
		region = rg
	}
	dst = append(dst, region...)
	dst = append(dst, `"}`...)
	switch p.bad {
	case 1: // cut short, as by a crashed producer
		dst = dst[:start+(len(dst)-start)/2]
	case 2: // a required field missing
		line := string(dst[start:])
		dst = append(dst[:start], strings.Replace(line, `"occurred_at"`, `"occurred"`, 1)...)
	case 3: // not JSON at all
		dst = append(dst[:start], "ERROR classifier: upstream timeout"...)
	case 4: // a mistyped field
		line := string(dst[start:])
		dst = append(dst[:start], strings.Replace(line, `"rule_id":"`, `"rule_id":7,"x":"`, 1)...)
	}
	return dst
}

// Live plays a simulation in wall-clock time: the embedded demo's
// classifier. Its scenario's Start is the wall time it begins at.
type Live struct {
	sim  *Simulation
	next Event
	at   time.Time
	has  bool
}

// NewLive returns a live player of sc, which must be valid.
func NewLive(sc Scenario) *Live { return &Live{sim: NewSimulation(sc)} }

// Until returns the events whose event time is not after now, in order.
func (l *Live) Until(now time.Time) []Event {
	var out []Event
	for {
		if !l.has {
			v, ok := l.sim.Next(nil)
			if !ok {
				return out
			}
			l.next = Event{Key: append([]byte(nil), l.sim.Key()...), Value: v}
			l.at, l.has = l.sim.At(), true
		}
		if l.at.After(now) {
			return out
		}
		out = append(out, l.next)
		l.has = false
	}
}

// actionOf returns the generator's action type called name, or a new one
// on an account.
func actionOf(name string) actionKind {
	for _, a := range actions {
		if a.name == name {
			return a
		}
	}
	return actionKind{name: name, target: "account"}
}

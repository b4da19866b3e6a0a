package replay

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/breakwater/breakwater/decide"
)

// Label says, for one input line, whether an injected incident produced it:
// the labels `breakwater simulate --labels` writes, one JSON line per line
// of its output, and `breakwater replay --labels` scores a replay against.
type Label struct {
	// Line is the 1-based line (event) number in the input.
	Line int64 `json:"line"`
	// ActionID is the line's action_id.
	ActionID string `json:"action_id"`
	// Incident is the 1-based number of the incident that produced the
	// action, 0 for ordinary traffic.
	Incident int `json:"incident"`
	// Kind is the incident's kind (spike, broad, ...), when Incident > 0.
	Kind string `json:"kind,omitempty"`
	// Malformed is true for a line made undecodable.
	Malformed bool `json:"malformed,omitempty"`
}

// LabelWriter writes labels as JSON Lines.
type LabelWriter struct {
	w   *bufio.Writer
	enc *json.Encoder
}

// NewLabelWriter returns a writer of labels to w; call Flush at the end.
func NewLabelWriter(w io.Writer) *LabelWriter {
	bw := bufio.NewWriterSize(w, 256<<10)
	return &LabelWriter{w: bw, enc: json.NewEncoder(bw)}
}

// Write writes one label.
func (l *LabelWriter) Write(lb Label) error {
	if err := l.enc.Encode(lb); err != nil {
		return fmt.Errorf("write label of line %d: %w", lb.Line, err)
	}
	return nil
}

// Flush writes what is buffered.
func (l *LabelWriter) Flush() error { return l.w.Flush() }

// LabelReader reads labels in line order, alongside the input they label.
type LabelReader struct {
	sc   *bufio.Scanner
	line int64
}

// NewLabelReader returns a reader of the JSON Lines labels in r.
func NewLabelReader(r io.Reader) *LabelReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &LabelReader{sc: sc}
}

// Next returns the label of input line seq; labels must come in line order,
// one per line.
func (l *LabelReader) Next(seq int64) (Label, error) {
	if !l.sc.Scan() {
		if err := l.sc.Err(); err != nil {
			return Label{}, fmt.Errorf("labels: %w", err)
		}
		return Label{}, fmt.Errorf("labels: no label for line %d: the labels end first", seq)
	}
	l.line++
	var lb Label
	if err := json.Unmarshal(l.sc.Bytes(), &lb); err != nil {
		return Label{}, fmt.Errorf("labels: line %d: %w", l.line, err)
	}
	if lb.Line != seq {
		return Label{}, fmt.Errorf("labels: line %d labels input line %d; want %d (labels must follow the input, one per line)", l.line, lb.Line, seq)
	}
	if lb.Incident < 0 {
		return Label{}, fmt.Errorf("labels: line %d: incident %d is negative", l.line, lb.Incident)
	}
	return lb, nil
}

// Scorer compares the decisions of a replay with labels.
type Scorer struct {
	incidents map[int]*IncidentScore
	// goodHeld are the event times (Unix ms) of the ordinary actions held.
	goodHeld  []int64
	good      int64
	malformed int64
	badDead   int64
	mismatch  int64
}

// NewScorer returns an empty scorer.
func NewScorer() *Scorer { return &Scorer{incidents: map[int]*IncidentScore{}} }

// Add scores the decision of one line under its label. A label for
// another action than the line's is an error, so that labels of another
// input are not scored.
func (s *Scorer) Add(lb Label, it *decide.Item) error {
	if lb.Malformed {
		s.malformed++
		if it.Decision == decide.DeadLetter {
			s.badDead++
		}
		return nil
	}
	if it.Decision == decide.DeadLetter {
		s.mismatch++
		return nil
	}
	if id := it.Act.ActionID; lb.ActionID != "" && id != lb.ActionID {
		return fmt.Errorf("labels: line %d labels action %q, the input has %q", lb.Line, lb.ActionID, id)
	}
	at := it.Act.OccurredAt
	if lb.Incident == 0 {
		s.good++
		if it.Decision == decide.Held {
			s.goodHeld = append(s.goodHeld, at.UnixMilli())
		}
		return nil
	}
	in := s.incidents[lb.Incident]
	if in == nil {
		in = &IncidentScore{Incident: lb.Incident, Kind: lb.Kind, First: at, Last: at}
		s.incidents[lb.Incident] = in
	}
	in.Actions++
	if at.Before(in.First) {
		in.First = at
	}
	if at.After(in.Last) {
		in.Last = at
	}
	switch it.Decision {
	case decide.Held:
		in.Held++
		if in.Detected.IsZero() {
			in.Detected = at
			in.Scope = string(it.Scope)
		}
	case decide.Gated:
		if in.Detected.IsZero() {
			in.GatedBefore++
		} else {
			in.GatedAfter++
		}
	}
	return nil
}

// IncidentScore is how the breakers met one labelled incident.
type IncidentScore struct {
	// Incident is the label's incident number and Kind its kind.
	Incident int    `json:"incident"`
	Kind     string `json:"kind,omitempty"`
	// Actions counts the incident's actions; Held those held.
	Actions int64 `json:"actions"`
	Held    int64 `json:"held"`
	// GatedBefore counts the incident's actions gated before its first
	// held one (in input order), GatedAfter those gated after it: leaks.
	GatedBefore int64 `json:"gated_before_detection"`
	GatedAfter  int64 `json:"gated_after_detection"`
	// First and Last are the event times of its first and last actions.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// Detected is the event time of its first held action (zero if none),
	// Scope the breaker that held it, and DetectAfter the time from First.
	Detected    time.Time `json:"detected,omitzero"`
	Scope       string    `json:"scope,omitempty"`
	DetectAfter string    `json:"time_to_detect,omitempty"`
}

// LabelSummary is the score of a replay against labels.
type LabelSummary struct {
	// Incidents are the labelled incidents in number order.
	Incidents []IncidentScore `json:"incidents"`
	// IncidentActions counts every incident's actions, GatedAfter their
	// leaks after detection.
	IncidentActions int64 `json:"incident_actions"`
	GatedBefore     int64 `json:"gated_before_detection"`
	GatedAfter      int64 `json:"gated_after_detection"`
	// Ordinary counts the ordinary (unlabelled) decodable actions.
	Ordinary int64 `json:"ordinary_actions"`
	// Collateral counts the ordinary actions held while an incident ran
	// (between its first and last action), FalseHolds those held outside.
	Collateral int64 `json:"collateral"`
	FalseHolds int64 `json:"false_holds"`
	// CollateralRatio is Collateral per incident action.
	CollateralRatio float64 `json:"collateral_ratio"`
	// TripsOutside counts the trips outside every incident (from its first
	// action to TripGrace after its last).
	TripsOutside int `json:"trips_outside_incidents"`
	// Malformed counts the malformed lines and MalformedDeadLetter those
	// that went to dead-letter.
	Malformed           int64 `json:"malformed"`
	MalformedDeadLetter int64 `json:"malformed_dead_letter"`
	// Unlabelled counts dead letters not labelled malformed.
	Unlabelled int64 `json:"dead_letter_unlabelled"`
}

// TripGrace is how long after an incident's last action a trip still
// counts as the incident's.
const TripGrace = 5 * time.Minute

// Summary returns the score, with the trips of sum.
func (s *Scorer) Summary(sum Summary) LabelSummary {
	out := LabelSummary{
		Incidents: []IncidentScore{}, Ordinary: s.good, Malformed: s.malformed,
		MalformedDeadLetter: s.badDead, Unlabelled: s.mismatch,
	}
	for _, k := range slices.Sorted(maps.Keys(s.incidents)) {
		in := *s.incidents[k]
		if !in.Detected.IsZero() {
			in.DetectAfter = in.Detected.Sub(in.First).String()
		}
		out.Incidents = append(out.Incidents, in)
		out.IncidentActions += in.Actions
		out.GatedBefore += in.GatedBefore
		out.GatedAfter += in.GatedAfter
	}
	during := func(ms int64, grace time.Duration) bool {
		for _, in := range out.Incidents {
			if ms >= in.First.UnixMilli() && ms <= in.Last.Add(grace).UnixMilli() {
				return true
			}
		}
		return false
	}
	for _, at := range s.goodHeld {
		if during(at, 0) {
			out.Collateral++
		} else {
			out.FalseHolds++
		}
	}
	if out.IncidentActions > 0 {
		out.CollateralRatio = float64(out.Collateral) / float64(out.IncidentActions)
	}
	for _, sc := range sum.Scopes {
		for _, tr := range sc.Trips {
			if !during(tr.At.UnixMilli(), TripGrace) {
				out.TripsOutside++
			}
		}
	}
	return out
}

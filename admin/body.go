package admin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/breaker"
)

// errTooLarge is returned for a body over the limit.
var errTooLarge = errors.New("request body too large")

// readBody reads at most limit bytes of r's body, and checks that a
// declared content type is JSON.
func readBody(r *http.Request, limit int64) ([]byte, int, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type must be application/json, got %q", ct)
		}
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("%w: the limit is %d bytes", errTooLarge, limit)
	}
	return data, 0, nil
}

// body reads a request body with readBody and parses it with parse. On an
// error it answers the request (415, 413 or 400) and returns false.
func body[T any](a *API, w http.ResponseWriter, r *http.Request, parse func([]byte) (T, error)) (T, bool) {
	var zero T
	data, code, err := readBody(r, a.opts.Config.Admin.MaxBodyBytes)
	if err != nil {
		writeError(w, code, err.Error())
		return zero, false
	}
	v, err := parse(data)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return zero, false
	}
	return v, true
}

// decodeStrict decodes exactly one JSON object into v: unknown fields,
// trailing data and a body that is not an object are errors that name what
// is wrong.
func decodeStrict(data []byte, v any) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return errors.New("request body is empty; want a JSON object")
	}
	if trimmed[0] != '{' {
		return errors.New("request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return fmt.Errorf("field %q: want a JSON %s, got %s", te.Field, te.Type, te.Value)
		case errors.As(err, &se):
			return fmt.Errorf("invalid JSON at byte %d: %w", se.Offset, err)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return fmt.Errorf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			return fmt.Errorf("invalid JSON: %w", err)
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("request body must hold one JSON value; something follows it")
	}
	return nil
}

// The limits of the fields of request bodies.
const (
	maxReason   = 1000
	maxOverride = 90 * 24 * time.Hour
)

// override is a validated api.OverrideRequest.
type override struct {
	state      breaker.State
	reason     string
	dur        time.Duration
	breakGlass string
}

// payload is the override as an approval request carries it: the request
// without its break-glass reason, in one canonical encoding.
func (o override) payload() []byte {
	req := api.OverrideRequest{State: o.state, Reason: o.reason}
	if o.dur > 0 {
		req.For = o.dur.String()
	}
	b, _ := json.Marshal(req)
	return b
}

// parseOverride decodes and checks an override body.
func parseOverride(data []byte) (override, error) {
	var req api.OverrideRequest
	if err := decodeStrict(data, &req); err != nil {
		return override{}, err
	}
	switch req.State {
	case breaker.ForcedOpen, breaker.ForcedClosed, breaker.Shadow:
	default:
		return override{}, fmt.Errorf("field \"state\": must be forced_open, forced_closed or shadow, got %q", req.State)
	}
	reason, err := checkReason(req.Reason)
	if err != nil {
		return override{}, err
	}
	o := override{state: req.State, reason: reason}
	if o.breakGlass, err = optionalReason(req.BreakGlass); err != nil {
		return override{}, fmt.Errorf("break_glass: %w", err)
	}
	if req.For != "" {
		d, err := time.ParseDuration(req.For)
		if err != nil || d <= 0 || d > maxOverride {
			return override{}, fmt.Errorf("field \"for\": must be a duration between 1s and %s such as \"2h\", got %q", maxOverride, req.For)
		}
		if d < time.Second {
			return override{}, fmt.Errorf("field \"for\": must be at least 1s, got %q", req.For)
		}
		o.dur = d
	}
	return o, nil
}

// parseReset decodes and checks a reset body, or the payload of a reset's
// approval request: the reason trimmed, the probation, if given, a
// non-negative duration in its canonical form.
func parseReset(data []byte) (api.ResetRequest, error) {
	var req api.ResetRequest
	if err := decodeStrict(data, &req); err != nil {
		return api.ResetRequest{}, err
	}
	var err error
	if req.Reason, err = checkReason(req.Reason); err != nil {
		return api.ResetRequest{}, err
	}
	if req.Probation != "" {
		d, err := time.ParseDuration(req.Probation)
		if err != nil || d < 0 {
			return api.ResetRequest{}, fmt.Errorf("field \"probation\": must be a duration of 0s or more such as \"0s\", got %q", req.Probation)
		}
		req.Probation = d.String()
	}
	if req.BreakGlass, err = optionalReason(req.BreakGlass); err != nil {
		return api.ResetRequest{}, fmt.Errorf("break_glass: %w", err)
	}
	return req, nil
}

// checkReason trims and checks a required reason.
func checkReason(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", errors.New("field \"reason\": is required")
	case len(s) > maxReason:
		return "", fmt.Errorf("field \"reason\": must be at most %d bytes, got %d", maxReason, len(s))
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "", errors.New("field \"reason\": must not contain control characters")
	}
	return s, nil
}

// The limits of review bodies.
const (
	maxDecideIDs = 10000
	maxActionID  = 128
)

// optionalReason checks a reason that may be empty.
func optionalReason(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", nil
	}
	return checkReason(s)
}

func parseDecide(data []byte) (api.DecideRequest, error) {
	var req api.DecideRequest
	if err := decodeStrict(data, &req); err != nil {
		return req, err
	}
	if len(req.IDs) == 0 || len(req.IDs) > maxDecideIDs {
		return req, fmt.Errorf("field \"ids\": want 1 to %d action ids, got %d", maxDecideIDs, len(req.IDs))
	}
	return checkDecide(req)
}

// checkDecide checks the ids and reasons of a decision of any size.
func checkDecide(req api.DecideRequest) (api.DecideRequest, error) {
	if len(req.IDs) == 0 {
		return req, errors.New("field \"ids\": want at least one action id")
	}
	for i, id := range req.IDs {
		if id == "" || len(id) > maxActionID || strings.IndexFunc(id, unicode.IsControl) >= 0 {
			return req, fmt.Errorf("field \"ids\"[%d]: an action id is 1 to %d characters without control characters", i, maxActionID)
		}
	}
	var err error
	if req.Reason, err = optionalReason(req.Reason); err != nil {
		return req, err
	}
	if req.BreakGlass, err = optionalReason(req.BreakGlass); err != nil {
		return req, fmt.Errorf("break_glass: %w", err)
	}
	return req, nil
}

// parseRelease decodes and checks the payload of a release approval
// request: a DecideRequest of any number of ids, without a break-glass
// reason.
func parseRelease(data []byte) (api.DecideRequest, error) {
	var req api.DecideRequest
	if err := decodeStrict(data, &req); err != nil {
		return req, err
	}
	if req.BreakGlass != "" {
		return req, errors.New("field \"break_glass\": has no place in an approval request's payload")
	}
	return checkDecide(req)
}

func parseIncidentDecision(data []byte) (api.IncidentDecisionRequest, error) {
	var req api.IncidentDecisionRequest
	if len(bytes.TrimSpace(data)) == 0 {
		return req, nil
	}
	if err := decodeStrict(data, &req); err != nil {
		return req, err
	}
	if req.Through < 0 {
		return req, fmt.Errorf("field \"through\": must not be negative, got %d", req.Through)
	}
	var err error
	if req.Reason, err = optionalReason(req.Reason); err != nil {
		return req, err
	}
	if req.BreakGlass, err = optionalReason(req.BreakGlass); err != nil {
		return req, fmt.Errorf("break_glass: %w", err)
	}
	return req, nil
}

func parseSample(data []byte) (api.SampleRequest, error) {
	var req api.SampleRequest
	if err := decodeStrict(data, &req); err != nil {
		return req, err
	}
	if req.N < 1 || req.N > maxDecideIDs {
		return req, fmt.Errorf("field \"n\": want 1 to %d, got %d", maxDecideIDs, req.N)
	}
	var err error
	if req.Reason, err = optionalReason(req.Reason); err != nil {
		return req, err
	}
	if req.BreakGlass, err = optionalReason(req.BreakGlass); err != nil {
		return req, fmt.Errorf("break_glass: %w", err)
	}
	return req, nil
}

// parseApprove decodes and checks an approval body.
func parseApprove(data []byte) (api.ApproveRequest, error) {
	var req api.ApproveRequest
	if err := decodeStrict(data, &req); err != nil {
		return req, err
	}
	if b, err := hex.DecodeString(req.PayloadSHA256); err != nil || len(b) != sha256.Size {
		return req, errors.New("field \"payload_sha256\": want the 64 hex digits of the request's payload_sha256")
	}
	req.PayloadSHA256 = strings.ToLower(req.PayloadSHA256)
	return req, nil
}

// parseRefuse decodes and checks a refusal body.
func parseRefuse(data []byte) (string, error) {
	var req api.RefuseRequest
	if err := decodeStrict(data, &req); err != nil {
		return "", err
	}
	return checkReason(req.Reason)
}

// parseEdit decodes an edit body; its payload is checked by the parser of
// the request's operation.
func parseEdit(data []byte) (json.RawMessage, error) {
	var req api.EditRequest
	if err := decodeStrict(data, &req); err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(req.Payload)) == 0 || bytes.Equal(bytes.TrimSpace(req.Payload), []byte("null")) {
		return nil, errors.New("field \"payload\": is required")
	}
	return req.Payload, nil
}

// maxNote bounds a note on an incident, in bytes.
const maxNote = 2000

// checkText trims and checks a required text field of at most limit bytes;
// newlines and tabs are allowed, other control characters are not.
func checkText(field, s string, limit int) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", fmt.Errorf("field %q: is required", field)
	case len(s) > limit:
		return "", fmt.Errorf("field %q: must be at most %d bytes, got %d", field, limit, len(s))
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0:
		return "", fmt.Errorf("field %q: must not contain control characters other than newlines and tabs", field)
	}
	return s, nil
}

func parseStanding(data []byte) (api.StandingRequest, error) {
	var req api.StandingRequest
	if err := decodeStrict(data, &req); err != nil {
		return req, err
	}
	if req.Decision != "approve" && req.Decision != "reject" {
		return req, fmt.Errorf("field \"decision\": must be approve or reject, got %q", req.Decision)
	}
	var err error
	req.Reason, err = checkReason(req.Reason)
	return req, err
}

// parseRevoke decodes the body of a standing decision's revocation: a
// reason alone (a reset's other fields have no place in it).
func parseRevoke(data []byte) (string, error) {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decodeStrict(data, &req); err != nil {
		return "", err
	}
	return checkReason(req.Reason)
}

func parseAck(data []byte) (string, error) {
	var req api.AckRequest
	if len(bytes.TrimSpace(data)) == 0 {
		return "", nil
	}
	if err := decodeStrict(data, &req); err != nil {
		return "", err
	}
	if strings.TrimSpace(req.Note) == "" {
		return "", nil
	}
	return checkText("note", req.Note, maxNote)
}

func parseOwner(data []byte) (string, error) {
	var req api.OwnerRequest
	if err := decodeStrict(data, &req); err != nil {
		return "", err
	}
	o := strings.TrimSpace(req.Owner)
	if len(o) > maxActionID || strings.IndexFunc(o, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("field \"owner\": must be at most %d characters without control characters", maxActionID)
	}
	return o, nil
}

func parseNote(data []byte) (string, error) {
	var req api.NoteRequest
	if err := decodeStrict(data, &req); err != nil {
		return "", err
	}
	return checkText("text", req.Text, maxNote)
}

// queryLimit reads the query parameter limit: def when it is absent, else
// an integer from 1 to most.
func queryLimit(v url.Values, def, most int) (int, error) {
	s := v.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > most {
		return 0, fmt.Errorf("limit: want an integer between 1 and %d, got %q", most, s)
	}
	return n, nil
}

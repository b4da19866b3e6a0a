package admin

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/breaker"
)

// FuzzParseOverride checks that the override decoder never panics, that
// what it accepts is a valid override, and that it accepts exactly the
// objects encoding/json decodes strictly into a valid request.
func FuzzParseOverride(f *testing.F) {
	for _, s := range []string{
		`{"state":"forced_open","reason":"bad model"}`,
		`{"state":"shadow","reason":"r","for":"2h"}`,
		`{"state":"forced_closed","reason":"r","for":"90s"}`,
		`{"state":"open","reason":"r"}`,
		`{"state":"forced_open","reason":"r"} {}`,
		`{"state":"forced_open","reason":"r","x":1}`,
		`[]`, ``, `{`, `{"reason":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := parseOverride(data)
		if err != nil {
			if err.Error() == "" {
				t.Errorf("parseOverride(%q) returned an empty error", data)
			}
			return
		}
		switch o.state {
		case breaker.ForcedOpen, breaker.ForcedClosed, breaker.Shadow:
		default:
			t.Errorf("parseOverride(%q) accepted state %q", data, o.state)
		}
		if o.reason == "" || strings.TrimSpace(o.reason) != o.reason || strings.IndexFunc(o.reason, unicode.IsControl) >= 0 || len(o.reason) > maxReason {
			t.Errorf("parseOverride(%q) accepted reason %q", data, o.reason)
		}
		if o.dur < 0 || o.dur > maxOverride {
			t.Errorf("parseOverride(%q) accepted duration %s", data, o.dur)
		}
		var req api.OverrideRequest
		if err := json.Unmarshal(data, &req); err != nil {
			t.Errorf("parseOverride(%q) accepted what encoding/json refuses: %v", data, err)
		}
	})
}

// FuzzParseReset checks the reset decoder likewise, for the reset body and
// the payload of a reset's approval request: a probation it accepts is a
// non-negative duration in its canonical form, and a payload it accepts
// for approval names one.
func FuzzParseReset(f *testing.F) {
	for _, s := range []string{
		`{"reason":"all clear"}`, `{"reason":""}`, `{"reason":"r","state":"closed"}`, `{"reason":"r"}x`, `null`,
		`{"reason":"r","probation":"0s"}`, `{"reason":"r","probation":"-1s"}`, `{"reason":"r","probation":"1h0m"}`,
		`{"reason":"r","probation":"soon"}`, `{"reason":"r","break_glass":"sev-1"}`, `{"reason":"r","break_glass":"\u0007"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := parseReset(data)
		if err != nil {
			if err.Error() == "" {
				t.Errorf("parseReset(%q) returned an empty error", data)
			}
			return
		}
		if req.Reason == "" || strings.IndexFunc(req.Reason, unicode.IsControl) >= 0 || len(req.Reason) > maxReason {
			t.Errorf("parseReset(%q) accepted reason %q", data, req.Reason)
		}
		if req.BreakGlass != "" && (strings.TrimSpace(req.BreakGlass) != req.BreakGlass || strings.IndexFunc(req.BreakGlass, unicode.IsControl) >= 0 || len(req.BreakGlass) > maxReason) {
			t.Errorf("parseReset(%q) accepted break_glass %q", data, req.BreakGlass)
		}
		if req.Probation != "" {
			d, err := time.ParseDuration(req.Probation)
			if err != nil || d < 0 || d.String() != req.Probation {
				t.Errorf("parseReset(%q) accepted probation %q", data, req.Probation)
			}
		}
		if _, d, err := resetPayload(data); err == nil && (req.Probation == "" || req.BreakGlass != "" || d.String() != req.Probation) {
			t.Errorf("resetPayload(%q) accepted probation %q, break_glass %q", data, req.Probation, req.BreakGlass)
		}
		var raw api.ResetRequest
		if err := json.Unmarshal(data, &raw); err != nil {
			t.Errorf("parseReset(%q) accepted what encoding/json refuses: %v", data, err)
		}
	})
}

// FuzzParseReview checks the review decoders: no panic, and what they
// accept is within the limits.
func FuzzParseReview(f *testing.F) {
	for _, s := range []string{
		`{"ids":["a","b"],"reason":"ok"}`, `{"ids":[]}`, `{"ids":[""]}`, `{"n":3}`, `{"n":-1}`,
		`{"reason":"x"}`, ``, `{"ids":["a"]} []`, `{"n":1e3}`, `{"ids":null}`,
		`{"decision":"reject","reason":"bad model"}`, `{"decision":"x","reason":"y"}`, `{"owner":"alice"}`,
		`{"text":"line\nline"}`, `{"note":"seen"}`, `{"through":12,"reason":"r"}`, `{"through":-1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if req, err := parseDecide(data); err == nil {
			if len(req.IDs) == 0 || len(req.IDs) > maxDecideIDs {
				t.Errorf("parseDecide(%q) accepted %d ids", data, len(req.IDs))
			}
			for _, id := range req.IDs {
				if id == "" || len(id) > maxActionID || strings.IndexFunc(id, unicode.IsControl) >= 0 {
					t.Errorf("parseDecide(%q) accepted id %q", data, id)
				}
			}
		}
		if req, err := parseSample(data); err == nil && (req.N < 1 || req.N > maxDecideIDs) {
			t.Errorf("parseSample(%q) accepted n %d", data, req.N)
		}
		if req, err := parseIncidentDecision(data); err == nil && (strings.IndexFunc(req.Reason+req.BreakGlass, unicode.IsControl) >= 0 || req.Through < 0) {
			t.Errorf("parseIncidentDecision(%q) accepted %+v", data, req)
		}
		if req, err := parseStanding(data); err == nil && ((req.Decision != "approve" && req.Decision != "reject") || req.Reason == "") {
			t.Errorf("parseStanding(%q) accepted %+v", data, req)
		}
		if o, err := parseOwner(data); err == nil && (len(o) > maxActionID || strings.IndexFunc(o, unicode.IsControl) >= 0) {
			t.Errorf("parseOwner(%q) accepted %q", data, o)
		}
		for name, parse := range map[string]func([]byte) (string, error){"parseNote": parseNote, "parseAck": parseAck, "parseRevoke": parseRevoke} {
			if text, err := parse(data); err == nil && (len(text) > maxNote || strings.IndexFunc(text, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0) {
				t.Errorf("%s(%q) accepted %q", name, data, text)
			}
		}
	})
}

// FuzzParseApproval fuzzes the bodies of the approval endpoints and the
// release payload an approval request carries.
func FuzzParseApproval(f *testing.F) {
	for _, s := range []string{
		`{"payload_sha256":"` + strings.Repeat("ab", 32) + `"}`, `{"payload_sha256":"xyz"}`, `{"reason":"no"}`, `{"reason":""}`,
		`{"payload":{"ids":["a"],"reason":"r"}}`, `{"payload":null}`, `{"ids":["a","b"]}`, `{"ids":["a"],"break_glass":"x"}`,
		``, `[]`, `{"payload":{"state":"forced_closed","reason":"r"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if req, err := parseApprove(data); err == nil {
			if b, herr := hex.DecodeString(req.PayloadSHA256); herr != nil || len(b) != 32 || strings.ToLower(req.PayloadSHA256) != req.PayloadSHA256 {
				t.Errorf("parseApprove(%q) accepted payload_sha256 %q", data, req.PayloadSHA256)
			}
		}
		if reason, err := parseRefuse(data); err == nil && (strings.TrimSpace(reason) == "" || strings.IndexFunc(reason, unicode.IsControl) >= 0) {
			t.Errorf("parseRefuse(%q) accepted reason %q", data, reason)
		}
		if p, err := parseEdit(data); err == nil && !json.Valid(p) {
			t.Errorf("parseEdit(%q) accepted payload %q that is not JSON", data, p)
		}
		if req, err := parseRelease(data); err == nil {
			if len(req.IDs) == 0 || req.BreakGlass != "" {
				t.Errorf("parseRelease(%q) accepted %d ids, break_glass %q", data, len(req.IDs), req.BreakGlass)
			}
			for _, id := range req.IDs {
				if id == "" || len(id) > maxActionID || strings.IndexFunc(id, unicode.IsControl) >= 0 {
					t.Errorf("parseRelease(%q) accepted id %q", data, id)
				}
			}
		}
	})
}

// FuzzParseReversal fuzzes the reversal request body, which is also the
// payload of its approval request.
func FuzzParseReversal(f *testing.F) {
	for _, s := range []string{
		`{"reason":"r"}`, `{"reason":"r","actions":["ban_account","ban_account"]}`, `{"reason":""}`,
		`{"reason":"r","from":"2026-01-01T00:00:00Z","to":"2025-01-01T00:00:00Z"}`, `{"reason":"r","ids":["a",""]}`,
		`{"reason":"r","actions":[""]}`, `{"reason":"r","break_glass":"now"}`, ``, `{"reason":"r","from":"yesterday"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := parseReversal(data)
		if err != nil {
			return
		}
		if strings.TrimSpace(req.Reason) == "" || strings.IndexFunc(req.Reason+req.BreakGlass, unicode.IsControl) >= 0 {
			t.Errorf("parseReversal(%q) accepted reason %q, break_glass %q", data, req.Reason, req.BreakGlass)
		}
		for i, a := range req.Actions {
			if a == "" || len(a) > maxActionType || (i > 0 && req.Actions[i-1] >= a) {
				t.Errorf("parseReversal(%q) accepted actions %q (want distinct, sorted, non-empty)", data, req.Actions)
			}
		}
		for _, id := range req.IDs {
			if id == "" || len(id) > maxActionID || strings.IndexFunc(id, unicode.IsControl) >= 0 {
				t.Errorf("parseReversal(%q) accepted id %q", data, id)
			}
		}
		if !req.From.IsZero() && !req.To.IsZero() && req.To.Before(req.From) {
			t.Errorf("parseReversal(%q) accepted to %s before from %s", data, req.To, req.From)
		}
	})
}

// FuzzParseAppealsTrip fuzzes the body of POST /v1/appeals/trip, which is
// also the payload of its approval request.
func FuzzParseAppealsTrip(f *testing.F) {
	for _, s := range []string{
		`{"enabled":false,"reason":"r"}`, `{"enabled":false,"reason":"r","for":"24h"}`, `{"enabled":true,"reason":"r","for":"1h"}`,
		`{"enabled":false,"reason":"r","for":"-1h"}`, `{"enabled":false,"reason":"r","for":"9999h"}`, `{"enabled":true,"reason":"r","break_glass":"x"}`,
		`{"enabled":false,"reason":""}`, `{"enabled":"no","reason":"r"}`, `{"enabled":false,"reason":"r","x":1}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := parseAppealsTrip(data)
		if err != nil {
			return
		}
		if strings.TrimSpace(req.Reason) == "" || strings.IndexFunc(req.Reason+req.BreakGlass, unicode.IsControl) >= 0 {
			t.Errorf("parseAppealsTrip(%q) accepted reason %q, break_glass %q", data, req.Reason, req.BreakGlass)
		}
		if req.Enabled && (req.For != "" || req.BreakGlass != "") {
			t.Errorf("parseAppealsTrip(%q) accepted turning on with for %q, break_glass %q", data, req.For, req.BreakGlass)
		}
		if req.For != "" {
			d, err := time.ParseDuration(req.For)
			if err != nil || d <= 0 || d > maxAppealsOff {
				t.Errorf("parseAppealsTrip(%q) accepted for %q", data, req.For)
			}
		}
	})
}

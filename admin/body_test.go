package admin

import (
	"encoding/json"
	"strings"
	"testing"
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

// FuzzParseReset checks the reset decoder likewise.
func FuzzParseReset(f *testing.F) {
	for _, s := range []string{`{"reason":"all clear"}`, `{"reason":""}`, `{"reason":"r","state":"closed"}`, `{"reason":"r"}x`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		reason, err := parseReset(data)
		if err != nil {
			return
		}
		if reason == "" || strings.IndexFunc(reason, unicode.IsControl) >= 0 || len(reason) > maxReason {
			t.Errorf("parseReset(%q) accepted reason %q", data, reason)
		}
		var req api.ResetRequest
		if err := json.Unmarshal(data, &req); err != nil {
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
		if reason, err := parseIncidentDecision(data); err == nil && strings.IndexFunc(reason, unicode.IsControl) >= 0 {
			t.Errorf("parseIncidentDecision(%q) accepted reason %q", data, reason)
		}
	})
}

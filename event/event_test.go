package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// minimal is a valid event with only the required members.
const minimal = `{"action_id":"a1","rule_id":"r1","action":"ban_account","target":{"type":"account","id":"u1"},"occurred_at":"2025-03-14T09:26:53Z"}`

// withMember returns minimal with extra members inserted before its first one.
func withMember(members string) string {
	return `{` + members + `,` + minimal[1:]
}

// withTrailing returns minimal with extra members appended after its last one.
func withTrailing(members string) string {
	return minimal[:len(minimal)-1] + `,` + members + `}`
}

// without returns minimal with the member name (and its value) removed.
func without(name string) string {
	parts := map[string]string{
		"action_id":   `"action_id":"a1"`,
		"rule_id":     `"rule_id":"r1"`,
		"action":      `"action":"ban_account"`,
		"target":      `"target":{"type":"account","id":"u1"}`,
		"occurred_at": `"occurred_at":"2025-03-14T09:26:53Z"`,
	}
	var kept []string
	for _, n := range []string{"action_id", "rule_id", "action", "target", "occurred_at"} {
		if n != name {
			kept = append(kept, parts[n])
		}
	}
	return "{" + strings.Join(kept, ",") + "}"
}

// replace returns minimal with old replaced by new, which must occur once.
func replace(old, new string) string {
	if strings.Count(minimal, old) != 1 {
		panic("replace: " + old + " does not occur exactly once")
	}
	return strings.Replace(minimal, old, new, 1)
}

// nested returns n nested arrays around 0.
func nested(n int) string {
	return strings.Repeat("[", n) + "0" + strings.Repeat("]", n)
}

// base is the Action decoded from minimal.
func base() Action {
	return Action{
		ActionID:   "a1",
		RuleID:     "r1",
		Action:     "ban_account",
		TargetType: "account",
		TargetID:   "u1",
		OccurredAt: time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC),
	}
}

// with returns base modified by f.
func with(f func(*Action)) Action {
	a := base()
	f(&a)
	return a
}

type goodCase struct {
	name string
	in   string
	want Action
}

func goodCases() []goodCase {
	return []goodCase{
		{"minimal", minimal, base()},
		{
			"all fields",
			`{"action_id":"act_01J9","rule_id":"spam/link-farm/v3","action":"remove_pin","target":{"type":"pin","id":"p42"},` +
				`"occurred_at":"2025-03-14T09:26:53.589793238Z","model":{"name":"spam-clf","version":"2025.03.1"},"region":"eu-west-1"}`,
			Action{
				ActionID: "act_01J9", RuleID: "spam/link-farm/v3", Action: "remove_pin", TargetType: "pin", TargetID: "p42",
				OccurredAt: time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC),
				ModelName:  "spam-clf", ModelVersion: "2025.03.1", Region: "eu-west-1",
			},
		},
		{
			"members in any order",
			`{"region":"us","occurred_at":"2025-03-14T09:26:53Z","target":{"id":"u1","type":"account"},"model":{"version":"7"},"action":"ban_account","rule_id":"r1","action_id":"a1"}`,
			with(func(a *Action) { a.Region = "us"; a.ModelVersion = "7" }),
		},
		{
			"escapes",
			`{"action_id":"caf\u00e9\n\t\"\\\/\b\f\r","rule_id":"r\/1 \u00e9","action":"ban\u005faccount","target":{"type":"acc\u006Fu\u006et","id":"\ud83d\ude00x"},"occurred_at":"2025-03-14T09:26:53\u005A","model":{"name":"\u65e5\u672c"}}`,
			with(func(a *Action) {
				a.ActionID = "café\n\t\"\\/\b\f\r"
				a.RuleID = "r/1 é"
				a.TargetID = "😀x"
				a.ModelName = "日本"
			}),
		},
		{
			"escaped keys",
			`{"action\u005fid":"a1","\u0072ule_id":"r1","action":"ban_account","target":{"\u0074ype":"account","i\u0064":"u1"},"occurred_at":"2025-03-14T09:26:53Z","\u006dodel":{"n\u0061me":"m"}}`,
			with(func(a *Action) { a.ModelName = "m" }),
		},
		{
			"raw UTF-8",
			`{"action_id":"ação","rule_id":"règle/日本","action":"ban_account","target":{"type":"account","id":"😀"},"occurred_at":"2025-03-14T09:26:53Z","region":"zürich"}`,
			with(func(a *Action) {
				a.ActionID = "ação"
				a.RuleID = "règle/日本"
				a.TargetID = "😀"
				a.Region = "zürich"
			}),
		},
		{
			"unknown fields",
			withMember(`"schema_version":1,"confidence":0.973,"neg":-0,"exp":1.5e+10,"exp2":0E-3,"big":12345678901234567890,` +
				`"t":true,"f":false,"n":null,"s":"x\u0000\"y","e":"","o":{},"a":[],"Confidence":1,"region_hint":"x"`),
			base(),
		},
		{
			"nested unknown objects and arrays",
			withMember(`"extra":{"a":[1,{"b":[[],[{}],{"c":null}]},"x",true],"action_id":5,"target":"ignored"},"list":[{"action_id":1}]`),
			base(),
		},
		{
			"unknown fields in target and model",
			replace(`"target":{"type":"account","id":"u1"}`,
				`"target":{"type":"account","region":"eu","meta":{"id":1},"id":"u1","tags":["a"]},"model":{"confidence":0.9,"name":"m","labels":{"x":[1]}}`),
			with(func(a *Action) { a.ModelName = "m" }),
		},
		{
			"whitespace",
			" \t\r\n{ \"action_id\" :\t\"a1\" ,\n\"rule_id\"\r:\"r1\",\"action\":\"ban_account\", \"target\" : { \"type\" : \"account\" , \"id\" : \"u1\" } ," +
				"\"occurred_at\":\"2025-03-14T09:26:53Z\" , \"x\" : [ 1 , { } , [ ] ] } \n\t\r ",
			base(),
		},
		{
			"null optional fields",
			withMember(`"model":null,"region":null`),
			base(),
		},
		{
			"null optional model fields",
			withMember(`"model":{"name":null,"version":null}`),
			base(),
		},
		{
			"empty optional fields",
			withMember(`"model":{"name":"","version":""},"region":""`),
			base(),
		},
		{
			"time offset and fraction",
			replace(`2025-03-14T09:26:53Z`, `2025-03-14T11:26:53.5+02:00`),
			with(func(a *Action) { a.OccurredAt = time.Date(2025, 3, 14, 9, 26, 53, 5e8, time.UTC) }),
		},
		{
			"long time fraction",
			replace(`2025-03-14T09:26:53Z`, `2025-03-14T09:26:53.`+strings.Repeat("1", 60)+`Z`),
			with(func(a *Action) { a.OccurredAt = time.Date(2025, 3, 14, 9, 26, 53, 111111111, time.UTC) }),
		},
		{
			"longest strings",
			replace(`"action_id":"a1","rule_id":"r1","action":"ban_account"`,
				`"action_id":"`+strings.Repeat("a", 128)+`","rule_id":"`+strings.Repeat("é", 128)+`","action":"`+strings.Repeat("c", 64)+`"`),
			with(func(a *Action) {
				a.ActionID = strings.Repeat("a", 128)
				a.RuleID = strings.Repeat("é", 128)
				a.Action = strings.Repeat("c", 64)
			}),
		},
		{
			"longest escaped strings",
			replace(`"rule_id":"r1"`, `"rule_id":"`+strings.Repeat(`\u00e9`, 128)+`"`),
			with(func(a *Action) { a.RuleID = strings.Repeat("é", 128) }),
		},
		{
			"control characters outside rule_id",
			`{"action_id":"a\u0000\u007f","rule_id":"r1","action":"ban_account","target":{"type":"account","id":"u\n1"},"occurred_at":"2025-03-14T09:26:53Z","region":"\u0085"}`,
			with(func(a *Action) { a.ActionID = "a\x00\x7f"; a.TargetID = "u\n1"; a.Region = "\u0085" }),
		},
		{
			"nesting 64 deep",
			withMember(`"deep":` + nested(63)),
			base(),
		},
		{
			"case variants of unknown keys",
			withMember(`"Rule":1,"ACTION_IDS":2,"Target_":3,"MODELS":{"NAME":4}`),
			base(),
		},
	}
}

type badCase struct {
	name   string
	in     string
	reason Reason
	field  string
}

func badCases() []badCase {
	big := withMember(`"blob":"` + strings.Repeat("x", MaxValueBytes) + `"`)
	return []badCase{
		// Syntax.
		{"empty", ``, ReasonMalformed, ""},
		{"whitespace only", " \n\t", ReasonMalformed, ""},
		{"open brace", `{`, ReasonMalformed, ""},
		{"unclosed object", minimal[:len(minimal)-1], ReasonMalformed, ""},
		{"key without value", `{"action_id"}`, ReasonMalformed, ""},
		{"end after colon", `{"action":`, ReasonMalformed, ""},
		{"end after colon in target", `{"target":{"id":`, ReasonMalformed, ""},
		{"end after colon in model", `{"model": {"name": `, ReasonMalformed, ""},
		{"missing colon", `{"action_id" "a1"}`, ReasonMalformed, ""},
		{"missing comma", replace(`"a1","rule_id"`, `"a1" "rule_id"`), ReasonMalformed, ""},
		{"trailing comma in object", withMember(`"x":1,`), ReasonMalformed, ""},
		{"trailing comma in array", withMember(`"x":[1,]`), ReasonMalformed, ""},
		{"leading comma", `{,"a":1}`, ReasonMalformed, ""},
		{"non-string key", `{1:2}`, ReasonMalformed, ""},
		{"single quotes", `{'action_id':'a1'}`, ReasonMalformed, ""},
		{"trailing garbage", minimal + ` x`, ReasonMalformed, ""},
		{"two objects", minimal + minimal, ReasonMalformed, ""},
		{"trailing NUL", minimal + "\x00", ReasonMalformed, ""},
		{"byte order mark", "\ufeff" + minimal, ReasonMalformed, ""},
		{"comment", "// event\n" + minimal, ReasonMalformed, ""},
		{"leading zero", withMember(`"x":01`), ReasonMalformed, ""},
		{"bare minus", withMember(`"x":-`), ReasonMalformed, ""},
		{"fraction without digits", withMember(`"x":1.`), ReasonMalformed, ""},
		{"fraction without integer", withMember(`"x":.5`), ReasonMalformed, ""},
		{"exponent without digits", withMember(`"x":1e+`), ReasonMalformed, ""},
		{"plus sign", withMember(`"x":+1`), ReasonMalformed, ""},
		{"hex number", withMember(`"x":0x1F`), ReasonMalformed, ""},
		{"NaN", withMember(`"x":NaN`), ReasonMalformed, ""},
		{"truncated literal", withMember(`"x":tru`), ReasonMalformed, ""},
		{"capitalised literal", withMember(`"x":True`), ReasonMalformed, ""},
		{"literal with suffix", withMember(`"x":nullx`), ReasonMalformed, ""},
		{"raw tab in string", replace(`"r1"`, "\"r\t1\""), ReasonMalformed, ""},
		{"raw newline in skipped string", withMember("\"x\":\"a\nb\""), ReasonMalformed, ""},
		{"raw control in key", withMember("\"x\x01\":1"), ReasonMalformed, ""},
		{"invalid escape", replace(`"r1"`, `"r\x41"`), ReasonMalformed, ""},
		{"invalid unicode escape", withMember(`"x":"\u12g4"`), ReasonMalformed, ""},
		{"short unicode escape", withMember(`"x":"\u12"`), ReasonMalformed, ""},
		{"single-quote escape", withMember(`"x":"\'"`), ReasonMalformed, ""},
		{"unterminated string", `{"action_id":"a1`, ReasonMalformed, ""},
		{"unterminated escape", `{"action_id":"a1\`, ReasonMalformed, ""},
		{"unclosed array", withMember(`"x":[1,2`) + `]`, ReasonMalformed, ""},
		{"mismatched brackets", withMember(`"x":[1}`), ReasonMalformed, ""},
		{"nesting 65 deep", withMember(`"deep":` + nested(64)), ReasonMalformed, ""},
		{"top-level array nesting 65 deep", nested(65), ReasonMalformed, ""},
		{"syntax error after schema error", replace(`"a1"`, `5`) + ` x`, ReasonMalformed, ""},
		{"malformed top-level array", `[1,2`, ReasonMalformed, ""},
		// Not an object.
		{"array", `[]`, ReasonNotObject, ""},
		{"array of events", `[` + minimal + `]`, ReasonNotObject, ""},
		{"string", `"event"`, ReasonNotObject, ""},
		{"number", ` -1.5e3 `, ReasonNotObject, ""},
		{"null", `null`, ReasonNotObject, ""},
		{"boolean", `true`, ReasonNotObject, ""},
		// Missing fields.
		{"empty object", `{}`, ReasonMissingField, "action_id"},
		{"no action_id", without("action_id"), ReasonMissingField, "action_id"},
		{"no rule_id", without("rule_id"), ReasonMissingField, "rule_id"},
		{"no action", without("action"), ReasonMissingField, "action"},
		{"no target", without("target"), ReasonMissingField, "target"},
		{"no occurred_at", without("occurred_at"), ReasonMissingField, "occurred_at"},
		{"no target.type", replace(`"type":"account",`, ``), ReasonMissingField, "target.type"},
		{"no target.id", replace(`,"id":"u1"`, ``), ReasonMissingField, "target.id"},
		{"only in a nested object", `{"x":` + minimal + `}`, ReasonMissingField, "action_id"},
		// Invalid fields.
		{"action_id number", replace(`"a1"`, `1`), ReasonInvalidField, "action_id"},
		{"action_id null", replace(`"a1"`, `null`), ReasonInvalidField, "action_id"},
		{"action_id empty", replace(`"a1"`, `""`), ReasonInvalidField, "action_id"},
		{"action_id too long", replace(`"a1"`, `"`+strings.Repeat("a", 129)+`"`), ReasonInvalidField, "action_id"},
		{"action_id too long after unescaping", replace(`"a1"`, `"`+strings.Repeat(`\u00e9`, 65)+`"`), ReasonInvalidField, "action_id"},
		{"action_id invalid UTF-8", replace(`"a1"`, "\"a\xff\""), ReasonInvalidField, "action_id"},
		{"action_id truncated UTF-8", replace(`"a1"`, "\"a\xc3\""), ReasonInvalidField, "action_id"},
		{"action_id lone high surrogate", replace(`"a1"`, `"\ud83d"`), ReasonInvalidField, "action_id"},
		{"action_id lone low surrogate", replace(`"a1"`, `"\ude00"`), ReasonInvalidField, "action_id"},
		{"action_id reversed surrogates", replace(`"a1"`, `"\ude00\ud83d"`), ReasonInvalidField, "action_id"},
		{"action_id surrogate and letter", replace(`"a1"`, `"\ud83d\u0041"`), ReasonInvalidField, "action_id"},
		{"rule_id escaped newline", replace(`"r1"`, `"r\n1"`), ReasonInvalidField, "rule_id"},
		{"rule_id escaped NUL", replace(`"r1"`, `"r\u00001"`), ReasonInvalidField, "rule_id"},
		{"rule_id DEL", replace(`"r1"`, "\"r\x7f1\""), ReasonInvalidField, "rule_id"},
		{"rule_id C1 control", replace(`"r1"`, "\"r\u00851\""), ReasonInvalidField, "rule_id"},
		{"rule_id escaped C1 control", replace(`"r1"`, `"r\u009f1"`), ReasonInvalidField, "rule_id"},
		{"rule_id too long", replace(`"r1"`, `"`+strings.Repeat("r", 257)+`"`), ReasonInvalidField, "rule_id"},
		{"rule_id object", replace(`"r1"`, `{"id":"r1"}`), ReasonInvalidField, "rule_id"},
		{"action array", replace(`"ban_account"`, `["ban_account"]`), ReasonInvalidField, "action"},
		{"action too long", replace(`"ban_account"`, `"`+strings.Repeat("b", 65)+`"`), ReasonInvalidField, "action"},
		{"action boolean", replace(`"ban_account"`, `true`), ReasonInvalidField, "action"},
		{"target string", replace(`{"type":"account","id":"u1"}`, `"u1"`), ReasonInvalidField, "target"},
		{"target null", replace(`{"type":"account","id":"u1"}`, `null`), ReasonInvalidField, "target"},
		{"target array", replace(`{"type":"account","id":"u1"}`, `[{"type":"account","id":"u1"}]`), ReasonInvalidField, "target"},
		{"target.type empty", replace(`"type":"account"`, `"type":""`), ReasonInvalidField, "target.type"},
		{"target.type null", replace(`"type":"account"`, `"type":null`), ReasonInvalidField, "target.type"},
		{"target.id number", replace(`"id":"u1"`, `"id":1`), ReasonInvalidField, "target.id"},
		{"occurred_at not a time", replace(`"2025-03-14T09:26:53Z"`, `"yesterday"`), ReasonInvalidField, "occurred_at"},
		{"occurred_at empty", replace(`"2025-03-14T09:26:53Z"`, `""`), ReasonInvalidField, "occurred_at"},
		{"occurred_at without zone", replace(`"2025-03-14T09:26:53Z"`, `"2025-03-14T09:26:53"`), ReasonInvalidField, "occurred_at"},
		{"occurred_at bad day", replace(`"2025-03-14T09:26:53Z"`, `"2025-02-30T09:26:53Z"`), ReasonInvalidField, "occurred_at"},
		{"occurred_at number", replace(`"2025-03-14T09:26:53Z"`, `1741944413`), ReasonInvalidField, "occurred_at"},
		{"occurred_at long and bad", replace(`"2025-03-14T09:26:53Z"`, `"2025-03-14T09:26:53.`+strings.Repeat("1", 60)+`"`), ReasonInvalidField, "occurred_at"},
		{"model string", withMember(`"model":"m"`), ReasonInvalidField, "model"},
		{"model.name number", withMember(`"model":{"name":1}`), ReasonInvalidField, "model.name"},
		{"model.version invalid UTF-8", withMember("\"model\":{\"version\":\"\xfe\"}"), ReasonInvalidField, "model.version"},
		{"region number", withMember(`"region":1`), ReasonInvalidField, "region"},
		{"region object", withMember(`"region":{}`), ReasonInvalidField, "region"},
		{"region lone surrogate", withMember(`"region":"\udfff"`), ReasonInvalidField, "region"},
		{"case variant key", replace(`"action_id"`, `"Action_ID"`), ReasonInvalidField, "action_id"},
		{"case variant of optional key", withMember(`"REGION":"eu"`), ReasonInvalidField, "region"},
		{"escaped case variant key", replace(`"rule_id"`, `"\u0052ule_id"`), ReasonInvalidField, "rule_id"},
		{"case variant in target", replace(`"id":"u1"`, `"id":"u1","ID":"u2"`), ReasonInvalidField, "target.id"},
		{"long s variant in model", withMember(`"model":{"ver\u017fion":"2"}`), ReasonInvalidField, "model.version"},
		{"invalid before missing", `{"action_id":1}`, ReasonInvalidField, "action_id"},
		{"missing before bad timestamp", `{"occurred_at":"x"}`, ReasonMissingField, "action_id"},
		{"first schema error wins", strings.Replace(replace(`"a1"`, `1`), `"r1"`, `2`, 1), ReasonInvalidField, "action_id"},
		// Duplicate fields.
		{"duplicate action_id", withMember(`"action_id":"a0"`), ReasonDuplicateField, "action_id"},
		{"duplicate rule_id with same value", withMember(`"rule_id":"r1"`), ReasonDuplicateField, "rule_id"},
		{"duplicate escaped key", withMember(`"act\u0069on":"x"`), ReasonDuplicateField, "action"},
		{"duplicate target", withMember(`"target":{"type":"account","id":"u2"}`), ReasonDuplicateField, "target"},
		{"duplicate occurred_at", withTrailing(`"occurred_at":5`), ReasonDuplicateField, "occurred_at"},
		{"duplicate target.type", replace(`"type":"account"`, `"type":"account","type":"pin"`), ReasonDuplicateField, "target.type"},
		{"duplicate model", withMember(`"model":null,"model":{"name":"m"}`), ReasonDuplicateField, "model"},
		{"duplicate model.name", withMember(`"model":{"name":"m","name":"n"}`), ReasonDuplicateField, "model.name"},
		{"duplicate region", withMember(`"region":"eu","region":null`), ReasonDuplicateField, "region"},
		{"duplicate before invalid", withTrailing(`"action_id":"a0","region":1`), ReasonDuplicateField, "action_id"},
		{"invalid before duplicate", withMember(`"region":1,"action_id":"a0"`), ReasonInvalidField, "region"},
		// Too large.
		{"too large", big, ReasonTooLarge, ""},
	}
}

func TestDecodeGood(t *testing.T) {
	for _, tc := range goodCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.in))
			switch {
			case err != nil:
				t.Errorf("Decode(%q) = %v; want %v", abbrev(tc.in), err, tc.want)
			case !equalAction(got, tc.want):
				t.Errorf("Decode(%q) = %v; want %v", abbrev(tc.in), got, tc.want)
			}
			if !json.Valid([]byte(tc.in)) {
				t.Errorf("json.Valid(%q) = false for a good case", abbrev(tc.in))
			}
		})
	}
}

func TestDecodeBad(t *testing.T) {
	for _, tc := range badCases() {
		t.Run(tc.name, func(t *testing.T) {
			in := abbrev(tc.in)
			got, err := Decode([]byte(tc.in))
			want := &DecodeError{Reason: tc.reason, Field: tc.field}
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason != tc.reason || de.Field != tc.field {
				t.Fatalf("Decode(%q) = %v; want %v", in, err, want)
			}
			if got != (Action{}) {
				t.Errorf("Decode(%q) = %v; want %v with the error", in, got, Action{})
			}
			wantErr := ErrInvalid
			if tc.reason == ReasonMalformed {
				wantErr = ErrMalformed
			}
			if !errors.Is(err, wantErr) {
				t.Errorf("Decode(%q) = %v; want %v wrapping %q", in, err, want, wantErr)
			}
			if de.Reason != ReasonMalformed && de.Reason != ReasonTooLarge && !json.Valid([]byte(tc.in)) {
				t.Errorf("json.Valid(%q) = false for a %s case", in, de.Reason)
			}
		})
	}
}

// abbrev shortens long inputs for failure messages.
func abbrev(s string) string {
	const limit = 300
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

// equalAction compares Actions, with time.Time.Equal for OccurredAt.
func equalAction(a, b Action) bool {
	ta, tb := a.OccurredAt, b.OccurredAt
	a.OccurredAt, b.OccurredAt = time.Time{}, time.Time{}
	return a == b && ta.Equal(tb)
}

func TestDecodeErrorString(t *testing.T) {
	tests := []struct {
		err  *DecodeError
		want string
	}{
		{&DecodeError{Reason: ReasonMissingField, Field: "occurred_at"}, `missing_field: "occurred_at"`},
		{&DecodeError{Reason: ReasonInvalidField, Field: "action_id", Detail: "longer than 128 bytes"}, `invalid_field "action_id": longer than 128 bytes`},
		{&DecodeError{Reason: ReasonMalformed, Detail: "unexpected end of input"}, `malformed_json: unexpected end of input`},
		{&DecodeError{Reason: ReasonNotObject}, `not_an_object`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("(%#v).Error() = %q; want %q", tt.err, got, tt.want)
		}
	}
}

func TestDecodeErrorMessages(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{without("occurred_at"), `missing_field: "occurred_at"`},
		{replace(`"a1"`, `"`+strings.Repeat("a", 129)+`"`), `invalid_field "action_id": longer than 128 bytes`},
		{replace(`"a1"`, `7`), `invalid_field "action_id": must be a string, not a number`},
		{withMember(`"region":"eu","region":"us"`), `duplicate_field: "region"`},
		{`[1]`, `not_an_object: value is an array`},
		{`{"a":1,}`, `malformed_json: invalid character '}' at offset 7: looking for object key`},
		{`{"a":`, `malformed_json: unexpected end of input`},
		{replace(`"action_id"`, `"ACTION_ID"`), `invalid_field "action_id": key "ACTION_ID" differs from "action_id" only in letter case`},
	}
	for _, tt := range tests {
		_, err := Decode([]byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Decode(%q) = %v; want %v", tt.in, err, tt.want)
		}
	}
}

func TestDecodeIntoOverwrites(t *testing.T) {
	a := Action{ActionID: "old", ModelName: "old", Region: "old", OccurredAt: time.Now()}
	if err := DecodeInto(&a, []byte(minimal)); err != nil || !equalAction(a, base()) {
		t.Errorf("DecodeInto(%q) = %v, left %v; want %v", minimal, err, a, base())
	}
	a.Region = "old"
	if err := DecodeInto(&a, []byte(`{}`)); err == nil || a != (Action{}) {
		t.Errorf("DecodeInto(%q) = %v, left %v; want an error and the zero Action", `{}`, err, a)
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	for _, tc := range goodCases() {
		buf := []byte(tc.in)
		got, err := Decode(buf)
		for i := range buf {
			buf[i] = 'X'
		}
		if err != nil || !equalAction(got, tc.want) {
			t.Errorf("%s: after reusing the buffer, Decode(%q) = %v, %v; want %v", tc.name, tc.in, got, err, tc.want)
		}
	}
}

func TestDecodeIntoAllocs(t *testing.T) {
	value := []byte(realisticEvent)
	var a Action
	allocs := testing.AllocsPerRun(100, func() {
		if err := DecodeInto(&a, value); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("DecodeInto(realisticEvent) makes %v allocations; want at most 1", allocs)
	}
}

// timestamps returns strings that time.Parse accepts or rejects with the
// time.RFC3339Nano layout, for comparing parseTime with it.
func timestamps() []string {
	return []string{
		"2025-03-14T09:26:53Z",
		"2025-03-14T09:26:53.5Z",
		"2025-03-14T09:26:53.123456789Z",
		"2025-03-14T09:26:53.123456789123Z",
		"2025-03-14T09:26:53.000000000000000000000000000000000000001Z",
		"2024-02-29T00:00:00Z",
		"2023-02-29T00:00:00Z",
		"1900-02-29T00:00:00Z",
		"2000-02-29T00:00:00Z",
		"0000-01-01T00:00:00Z",
		"9999-12-31T23:59:59.999999999Z",
		"2025-13-01T00:00:00Z",
		"2025-00-10T00:00:00Z",
		"2025-01-00T00:00:00Z",
		"2025-04-31T00:00:00Z",
		"2025-04-30T24:00:00Z",
		"2025-04-30T23:60:00Z",
		"2025-04-30T23:59:60Z",
		"2025-03-14t09:26:53Z",
		"2025-03-14T09:26:53z",
		"2025-03-14 09:26:53Z",
		"2025-03-14T09:26:53.Z",
		"2025-03-14T09:26:53,5Z",
		"2025-03-14T09:26:53.5.5Z",
		"2025-03-14T09:26:53.-5Z",
		"2025-03-14T09:26:53+02:00",
		"2025-03-14T09:26:53.25-07:30",
		"2025-03-14T09:26:53+24:00",
		"2025-03-14T09:26:53-00:00",
		"2025-3-14T09:26:53Z",
		"2025-03-14T9:26:53Z",
		"+2025-03-14T09:26:53Z",
		"2025-03-14T09:26:53",
		"2025-03-14T09:26:53ZZ",
		" 2025-03-14T09:26:53Z",
		"2025-03-14T09:26:53Z ",
		"",
	}
}

// checkParseTime checks that parseTime(s) gives what time.Parse gives.
func checkParseTime(t *testing.T, s string) {
	t.Helper()
	got, gotErr := parseTime(s)
	want, wantErr := time.Parse(time.RFC3339Nano, s)
	gotZone, gotOffset := got.Zone()
	wantZone, wantOffset := want.Zone()
	if (gotErr == nil) != (wantErr == nil) || !got.Equal(want) || gotZone != wantZone || gotOffset != wantOffset ||
		got.Location().String() != want.Location().String() {
		t.Fatalf("parseTime(%q) = %v, %v; want %v, %v as from time.Parse", s, got, gotErr, want, wantErr)
	}
}

func TestParseTime(t *testing.T) {
	for _, s := range timestamps() {
		checkParseTime(t, s)
	}
}

// oracleEvent is what encoding/json decodes from an event.
type oracleEvent struct {
	ActionID string `json:"action_id"`
	RuleID   string `json:"rule_id"`
	Action   string `json:"action"`
	Target   struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"target"`
	OccurredAt string `json:"occurred_at"`
	Model      struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"model"`
	Region string `json:"region"`
}

// maxNesting returns the deepest nesting of containers in the valid JSON
// value v.
func maxNesting(v []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case inString && c == '\\':
			i++
		case inString:
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

func FuzzDecode(f *testing.F) {
	for _, tc := range goodCases() {
		f.Add([]byte(tc.in))
	}
	for _, tc := range badCases() {
		if tc.reason != ReasonTooLarge {
			f.Add([]byte(tc.in))
		}
	}
	f.Add([]byte(realisticEvent))
	for _, ts := range timestamps() {
		f.Add([]byte(ts))
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		checkParseTime(t, string(value))
		buf := bytes.Clone(value)
		got, err := Decode(buf)
		for i := range buf {
			buf[i] = 0 // the Action must not alias the input
		}
		valid := json.Valid(value)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode(%q) = %v; want a *DecodeError", value, err)
			}
			if got != (Action{}) {
				t.Fatalf("Decode(%q) = %v, %v; want the zero Action with an error", value, got, err)
			}
			malformed := !valid || maxNesting(value) > maxDepth
			switch {
			case de.Reason == ReasonTooLarge:
				if len(value) <= MaxValueBytes {
					t.Fatalf("Decode(%q) = %v; want no %s for %d bytes", value, err, de.Reason, len(value))
				}
			case (de.Reason == ReasonMalformed) != malformed:
				t.Fatalf("Decode(%q) = %v; want malformed = %v (json.Valid = %v)", value, err, malformed, valid)
			case errors.Is(err, ErrMalformed) != (de.Reason == ReasonMalformed) || errors.Is(err, ErrInvalid) == (de.Reason == ReasonMalformed):
				t.Fatalf("Decode(%q) = %v; wraps the wrong sentinel", value, err)
			case !malformed && (de.Reason == ReasonNotObject) != (bytes.TrimLeft(value, " \t\r\n")[0] != '{'):
				t.Fatalf("Decode(%q) = %v; want %s exactly when the value is not an object", value, err, ReasonNotObject)
			case !malformed && de.Reason != ReasonNotObject:
				if ok, sure := referenceAccepts(value); ok && sure {
					t.Fatalf("Decode(%q) = %v; but the reference check accepts it", value, err)
				}
			}
			return
		}
		if ok, _ := referenceAccepts(value); !ok {
			t.Fatalf("Decode(%q) = %v, nil; but the reference check rejects it", value, got)
		}
		if !valid {
			t.Fatalf("Decode(%q) = %v, nil; want an error, json.Valid = false", value, got)
		}
		var o oracleEvent
		if err := json.Unmarshal(value, &o); err != nil {
			t.Fatalf("Decode(%q) = %v, nil; but json.Unmarshal = %v", value, got, err)
		}
		ts, err := time.Parse(time.RFC3339Nano, o.OccurredAt)
		if err != nil {
			t.Fatalf("Decode(%q) = %v, nil; but time.Parse(%q) = %v", value, got, o.OccurredAt, err)
		}
		want := Action{
			ActionID:     o.ActionID,
			RuleID:       o.RuleID,
			Action:       o.Action,
			TargetType:   o.Target.Type,
			TargetID:     o.Target.ID,
			OccurredAt:   ts,
			ModelName:    o.Model.Name,
			ModelVersion: o.Model.Version,
			Region:       o.Region,
		}
		if !equalAction(got, want) {
			t.Fatalf("Decode(%q) = %v; want %v (from encoding/json)", value, got, want)
		}
		switch {
		case got.ActionID == "" || len(got.ActionID) > maxActionIDBytes,
			got.RuleID == "" || len(got.RuleID) > maxRuleIDBytes || hasControl([]byte(got.RuleID)),
			got.Action == "" || len(got.Action) > maxActionBytes,
			got.TargetType == "" || got.TargetID == "":
			t.Fatalf("Decode(%q) = %v; breaks the schema", value, got)
		}
		again := Action{ActionID: "stale", Region: "stale"}
		if err := DecodeInto(&again, value); err != nil || !equalAction(again, got) {
			t.Fatalf("DecodeInto(%q) = %v, %v; want %v as from Decode", value, again, err, got)
		}
	})
}

// referenceAccepts is a slow reference for the schema checks of Decode, built
// on encoding/json, for a valid JSON object nested at most 64 deep. It
// reports whether the event satisfies the schema, and whether it is sure:
// encoding/json decodes invalid UTF-8 and unpaired surrogates to U+FFFD,
// which Decode rejects, so a decoded U+FFFD makes the reference unsure.
func referenceAccepts(value []byte) (ok, sure bool) {
	sure = true
	top, ok := referenceMembers(value, "action_id", "rule_id", "action", "target", "occurred_at", "model", "region")
	if !ok {
		return false, true
	}
	str := func(raw json.RawMessage, optional bool) (string, bool) {
		if raw == nil || optional && string(raw) == "null" {
			return "", optional
		}
		var s string
		if raw[0] != '"' || json.Unmarshal(raw, &s) != nil || !utf8.Valid(raw) {
			return "", false
		}
		if strings.ContainsRune(s, utf8.RuneError) {
			sure = false
		}
		return s, true
	}
	sub := func(raw json.RawMessage, optional bool, names ...string) (map[string]json.RawMessage, bool) {
		if raw == nil || optional && string(raw) == "null" {
			return map[string]json.RawMessage{}, optional
		}
		if raw[0] != '{' {
			return nil, false
		}
		return referenceMembers(raw, names...)
	}
	target, okTarget := sub(top["target"], false, "type", "id")
	model, okModel := sub(top["model"], true, "name", "version")
	if !okTarget || !okModel {
		return false, true
	}
	actionID, ok1 := str(top["action_id"], false)
	ruleID, ok2 := str(top["rule_id"], false)
	action, ok3 := str(top["action"], false)
	targetType, ok4 := str(target["type"], false)
	targetID, ok5 := str(target["id"], false)
	occurredAt, ok6 := str(top["occurred_at"], false)
	_, ok7 := str(model["name"], true)
	_, ok8 := str(model["version"], true)
	_, ok9 := str(top["region"], true)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8 && ok9) {
		return false, sure
	}
	control := strings.ContainsFunc(ruleID, unicode.IsControl)
	_, timeErr := time.Parse(time.RFC3339Nano, occurredAt)
	ok = actionID != "" && len(actionID) <= 128 &&
		ruleID != "" && len(ruleID) <= 256 && !control &&
		action != "" && len(action) <= 64 &&
		targetType != "" && targetID != "" && timeErr == nil
	return ok, sure
}

// referenceMembers returns the raw values of the members of the JSON object
// value with the given keys. It fails if one of them appears twice or a key
// equals one of them only when case is ignored.
func referenceMembers(value []byte, names ...string) (map[string]json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(value))
	if _, err := dec.Token(); err != nil {
		panic(err)
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			panic(err)
		}
		key := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			panic(err)
		}
		for _, name := range names {
			switch {
			case key == name && m[name] != nil:
				return nil, false
			case key == name:
				m[name] = raw
			case strings.EqualFold(key, name):
				return nil, false
			}
		}
	}
	return m, true
}

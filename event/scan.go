package event

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxInlineTimeBytes is the longest raw occurred_at that shares the
// allocation of the other strings; a longer one is parsed on its own so that the Action does
// not keep it alive.
const maxInlineTimeBytes = 64

// maxKeyBytes is the length of the longest key of a member the decoder reads
// (occurred_at).
const maxKeyBytes = 11

// maxEscapedKeyBytes is the longest raw key with escapes that can name a
// member the decoder reads: each of the at most 11 characters of such a name
// is spelled with at most 12 bytes (a surrogate pair escape).
const maxEscapedKeyBytes = 12 * maxKeyBytes

// field identifies a member that the decoder reads. The members of one object
// are numbered contiguously (see fieldRange).
type field uint8

const (
	fieldActionID field = iota
	fieldRuleID
	fieldAction
	fieldTarget
	fieldOccurredAt
	fieldModel
	fieldRegion
	fieldTargetType
	fieldTargetID
	fieldModelName
	fieldModelVersion
	numFields
	fieldUnknown = numFields
)

// key returns the JSON key of f inside its object.
func (f field) key() string {
	switch f {
	case fieldActionID:
		return "action_id"
	case fieldRuleID:
		return "rule_id"
	case fieldAction:
		return "action"
	case fieldTarget:
		return "target"
	case fieldOccurredAt:
		return "occurred_at"
	case fieldModel:
		return "model"
	case fieldRegion:
		return "region"
	case fieldTargetType:
		return "type"
	case fieldTargetID:
		return "id"
	case fieldModelName:
		return "name"
	case fieldModelVersion:
		return "version"
	}
	return ""
}

// path returns the dotted path of f from the top-level object.
func (f field) path() string {
	switch f {
	case fieldTargetType:
		return "target.type"
	case fieldTargetID:
		return "target.id"
	case fieldModelName:
		return "model.name"
	case fieldModelVersion:
		return "model.version"
	}
	return f.key()
}

// object identifies the kind of JSON object being scanned.
type object uint8

const (
	objectOther  object = iota // an object whose members are all ignored
	objectTop                  // the event itself
	objectTarget               // the target member
	objectModel                // the model member
)

// fieldRange returns the fields [lo, hi) that the decoder reads in o.
func (o object) fieldRange() (lo, hi field) {
	switch o {
	case objectTop:
		return fieldActionID, fieldRegion + 1
	case objectTarget:
		return fieldTargetType, fieldTargetID + 1
	case objectModel:
		return fieldModelName, fieldModelVersion + 1
	}
	return 0, 0
}

// lookup returns the field that key (already unescaped) names in o, and
// whether key only matches when letter case is ignored, the way encoding/json
// matches keys to struct fields.
func (o object) lookup(key []byte) (f field, caseVariant bool) {
	if f := o.exact(key); f != fieldUnknown || o == objectOther {
		return f, false
	}
	if len(key) <= maxKeyBytes {
		var lower [maxKeyBytes]byte
		ascii := true
		for i, c := range key {
			if c >= utf8.RuneSelf {
				ascii = false
				break
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower[i] = c
		}
		if ascii {
			f := o.exact(lower[:len(key)])
			return f, f != fieldUnknown
		}
	}
	// Rare: a non-ASCII key, which can still fold to a name.
	lo, hi := o.fieldRange()
	for f := lo; f < hi; f++ {
		if equalFoldKey(key, f.key()) {
			return f, true
		}
	}
	return fieldUnknown, false
}

// exact returns the field that key names in o, or fieldUnknown.
func (o object) exact(key []byte) field {
	switch o {
	case objectTop:
		switch string(key) {
		case "action_id":
			return fieldActionID
		case "rule_id":
			return fieldRuleID
		case "action":
			return fieldAction
		case "target":
			return fieldTarget
		case "occurred_at":
			return fieldOccurredAt
		case "model":
			return fieldModel
		case "region":
			return fieldRegion
		}
	case objectTarget:
		switch string(key) {
		case "type":
			return fieldTargetType
		case "id":
			return fieldTargetID
		}
	case objectModel:
		switch string(key) {
		case "name":
			return fieldModelName
		case "version":
			return fieldModelVersion
		}
	}
	return fieldUnknown
}

// equalFoldKey reports whether key equals name under the case folding that
// encoding/json uses to match object keys to struct fields. name must be
// ASCII.
func equalFoldKey(key []byte, name string) bool {
	// Every rune of key must fold to one byte of name, and a rune takes at
	// most utf8.UTFMax bytes.
	if len(key) < len(name) || len(key) > utf8.UTFMax*len(name) {
		return false
	}
	j := 0
	for i := 0; i < len(key); j++ {
		if j == len(name) {
			return false
		}
		c := key[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != name[j] {
				return false
			}
			i++
			continue
		}
		// A few non-ASCII runes fold to ASCII letters: U+017F (ſ) to s and
		// U+212A (Kelvin sign) to k.
		r, n := utf8.DecodeRune(key[i:])
		if foldRune(r) != foldRune(rune(name[j])) {
			return false
		}
		i += n
	}
	return j == len(name)
}

// foldRune returns the smallest rune in the case-folding orbit of r, as
// encoding/json does.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// span is the range of a string's contents in the input or in the decoded
// strings.
type span struct {
	start, end int
	escaped    bool // the contents contain escape sequences
}

// len returns the length of the range.
func (s span) len() int { return s.end - s.start }

// decoder holds the state of one call to DecodeInto.
type decoder struct {
	data  []byte
	pos   int
	spans [numFields]span // where the strings that were read are in data
	seen  uint16          // bit f is set when field f has been seen
	err   *DecodeError    // the first schema error
}

// fail records a schema error unless one has been recorded already. Schema
// errors do not stop the scan, because a syntax error later in the value
// takes precedence over them.
func (d *decoder) fail(reason Reason, f field, detail string) {
	if d.err == nil {
		d.err = &DecodeError{Reason: reason, Field: f.path(), Detail: detail}
	}
}

// syntaxError returns a ReasonMalformed error for the byte at d.pos, or for
// the end of the input.
func (d *decoder) syntaxError() *DecodeError {
	if d.pos >= len(d.data) {
		return &DecodeError{Reason: ReasonMalformed, Detail: "unexpected end of input"}
	}
	return d.syntaxErrorAt(d.pos, "")
}

// syntaxErrorAt returns a ReasonMalformed error for the byte at offset i,
// with an optional explanation.
func (d *decoder) syntaxErrorAt(i int, why string) *DecodeError {
	if i >= len(d.data) {
		return &DecodeError{Reason: ReasonMalformed, Detail: "unexpected end of input"}
	}
	detail := "invalid character " + quoteByte(d.data[i]) + " at offset " + strconv.Itoa(i)
	if why != "" {
		detail += ": " + why
	}
	return &DecodeError{Reason: ReasonMalformed, Detail: detail}
}

// quoteByte formats c for an error message.
func quoteByte(c byte) string {
	if c < utf8.RuneSelf {
		return strconv.QuoteRune(rune(c))
	}
	return "0x" + strconv.FormatUint(uint64(c), 16)
}

// document scans the whole value.
func (d *decoder) document() error {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return d.syntaxError()
	}
	c := d.data[d.pos]
	var err error
	if c == '{' {
		err = d.object(1, objectTop)
	} else {
		err = d.value(0)
	}
	if err != nil {
		return err
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return d.syntaxErrorAt(d.pos, "after top-level value")
	}
	if c != '{' {
		return &DecodeError{Reason: ReasonNotObject, Detail: "value is " + kindOf(c)}
	}
	return nil
}

// kindOf names the kind of JSON value that starts with c.
func kindOf(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// skipSpace advances past JSON whitespace.
func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// value scans any JSON value starting at d.pos, which is not whitespace.
// depth is the depth of the enclosing container (0 for the top level).
func (d *decoder) value(depth int) error {
	if d.pos >= len(d.data) {
		return d.syntaxError()
	}
	switch c := d.data[d.pos]; c {
	case '"':
		_, _, _, err := d.str()
		return err
	case '{':
		return d.object(depth+1, objectOther)
	case '[':
		return d.array(depth + 1)
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return d.number()
		}
		return d.syntaxError()
	}
}

// literal scans the literal lit at d.pos.
func (d *decoder) literal(lit string) error {
	for i := 0; i < len(lit); i++ {
		if d.pos >= len(d.data) || d.data[d.pos] != lit[i] {
			return d.syntaxError()
		}
		d.pos++
	}
	return nil
}

// number scans a JSON number at d.pos.
func (d *decoder) number() error {
	data, i := d.data, d.pos
	if data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return d.syntaxErrorAt(i, "")
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		i++
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	default:
		return d.syntaxErrorAt(i, "in number")
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || data[i] < '0' || '9' < data[i] {
			return d.syntaxErrorAt(i, "in number")
		}
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || data[i] < '0' || '9' < data[i] {
			return d.syntaxErrorAt(i, "in number")
		}
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	}
	d.pos = i
	return nil
}

// strFlags describes the contents of a JSON string.
type strFlags uint8

const (
	strEscaped  strFlags = 1 << iota // contains escape sequences
	strNonASCII                      // contains bytes above 0x7F
)

// str scans a JSON string whose opening quote is at d.pos. It returns the
// range of its contents, between the quotes, and what they contain.
func (d *decoder) str() (start, end int, flags strFlags, err error) {
	const highs = 0x8080808080808080
	data := d.data
	i := d.pos + 1
	start = i
	var seen uint64 // the bitwise OR of the unescaped bytes
	for {
		// Fast path: eight bytes at a time while none of them is a quote,
		// a backslash or a control character.
		for i+8 <= len(data) {
			x := le64(data[i:])
			if hasSpecial(x) {
				break
			}
			seen |= x
			i += 8
		}
		for i < len(data) {
			c := data[i]
			if c == '"' || c == '\\' || c < 0x20 {
				break
			}
			seen |= uint64(c)
			i++
		}
		if i >= len(data) {
			return 0, 0, 0, d.syntaxErrorAt(i, "")
		}
		switch data[i] {
		case '"':
			d.pos = i + 1
			if seen&highs != 0 {
				flags |= strNonASCII
			}
			return start, i, flags, nil
		case '\\':
			flags |= strEscaped
			i++
			if i >= len(data) {
				return 0, 0, 0, d.syntaxErrorAt(i, "")
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				for k := 1; k <= 4; k++ {
					if i+k >= len(data) || unhex(data[i+k]) < 0 {
						return 0, 0, 0, d.syntaxErrorAt(i+k, "in \\u escape")
					}
				}
				i += 5
			default:
				return 0, 0, 0, d.syntaxErrorAt(i, "in string escape")
			}
		default:
			return 0, 0, 0, d.syntaxErrorAt(i, "control character in string")
		}
	}
}

// le64 loads eight bytes of b as a little-endian integer.
func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// hasSpecial reports whether any byte of x is '"', '\\' or below 0x20. It may
// not report which one, only that str must look at them one by one.
func hasSpecial(x uint64) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	// A byte b of v has its high bit set in (v-ones)&^v when b == 0, and
	// (x - ones*0x20) &^ x flags bytes below 0x20. Borrows can only flag
	// extra bytes above a flagged one, which is harmless here.
	return ((quote-ones)&^quote|(backslash-ones)&^backslash|(x-ones*0x20)&^x)&highs != 0
}

// unhex returns the value of the hexadecimal digit c, or -1.
func unhex(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// array scans an array whose '[' is at d.pos and whose depth is depth.
func (d *decoder) array(depth int) error {
	if depth > maxDepth {
		return d.syntaxErrorAt(d.pos, "nesting deeper than "+strconv.Itoa(maxDepth))
	}
	d.pos++
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return nil
	}
	for {
		if err := d.value(depth); err != nil {
			return err
		}
		d.skipSpace()
		if d.pos >= len(d.data) {
			return d.syntaxError()
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.skipSpace()
		case ']':
			d.pos++
			return nil
		default:
			return d.syntaxErrorAt(d.pos, "after array element")
		}
	}
}

// object scans an object of kind o whose '{' is at d.pos and whose depth is
// depth, reading the members that o defines.
func (d *decoder) object(depth int, o object) error {
	if depth > maxDepth {
		return d.syntaxErrorAt(d.pos, "nesting deeper than "+strconv.Itoa(maxDepth))
	}
	d.pos++
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return nil
	}
	for {
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return d.syntaxErrorAt(d.pos, "looking for object key")
		}
		start, end, flags, err := d.str()
		if err != nil {
			return err
		}
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return d.syntaxErrorAt(d.pos, "after object key")
		}
		d.pos++
		d.skipSpace()
		if o == objectOther {
			err = d.value(depth)
		} else {
			err = d.member(depth, o, d.data[start:end], flags&strEscaped != 0)
		}
		if err != nil {
			return err
		}
		d.skipSpace()
		if d.pos >= len(d.data) {
			return d.syntaxError()
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.skipSpace()
		case '}':
			d.pos++
			return nil
		default:
			return d.syntaxErrorAt(d.pos, "after object member")
		}
	}
}

// member scans the value of the member with the raw key of an object of kind
// o, at depth depth, and reads it if o defines that member.
func (d *decoder) member(depth int, o object, key []byte, escaped bool) error {
	f, caseVariant := fieldUnknown, false
	switch {
	case escaped && len(key) > maxEscapedKeyBytes:
		// Too long to unescape to any key that o defines.
	case escaped:
		var buf [64]byte
		unescaped, _ := appendUnescaped(buf[:0], key)
		f, caseVariant = o.lookup(unescaped)
	default:
		f, caseVariant = o.lookup(key)
	}
	switch {
	case f == fieldUnknown:
		return d.value(depth)
	case caseVariant:
		if d.err == nil {
			d.fail(ReasonInvalidField, f, "key "+strconv.Quote(string(key))+" differs from "+strconv.Quote(f.key())+" only in letter case")
		}
		return d.value(depth)
	case d.seen&(1<<f) != 0:
		d.fail(ReasonDuplicateField, f, "")
		return d.value(depth)
	}
	d.seen |= 1 << f
	switch f {
	case fieldTarget:
		return d.objectField(depth, f, objectTarget, false)
	case fieldModel:
		return d.objectField(depth, f, objectModel, true)
	case fieldRegion, fieldModelName, fieldModelVersion:
		return d.stringField(depth, f, true)
	default:
		return d.stringField(depth, f, false)
	}
}

// objectField scans the value of field f, which must be an object of kind o,
// or null if optional.
func (d *decoder) objectField(depth int, f field, o object, optional bool) error {
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object(depth+1, o)
	case c == 'n' && optional:
		return d.literal("null")
	default:
		d.fail(ReasonInvalidField, f, "must be an object, not "+kindOf(c))
		return d.value(depth)
	}
}

// stringField scans the value of field f, which must be a string, or null if
// optional, and validates it. The string is decoded again by finish.
func (d *decoder) stringField(depth int, f field, optional bool) error {
	c := d.data[d.pos]
	if c != '"' {
		if c == 'n' && optional {
			return d.literal("null")
		}
		d.fail(ReasonInvalidField, f, "must be a string, not "+kindOf(c))
		return d.value(depth)
	}
	start, end, flags, err := d.str()
	if err != nil || d.err != nil {
		// After a schema error the value is only checked for syntax.
		return err
	}
	escaped := flags&strEscaped != 0
	v := d.data[start:end]
	if escaped {
		var buf [maxRuleIDBytes]byte
		var ok bool
		v, ok = appendUnescaped(buf[:0], v)
		if !ok {
			d.fail(ReasonInvalidField, f, "contains an unpaired surrogate escape")
			return nil
		}
	}
	if detail := check(f, v, flags&strNonASCII != 0); detail != "" {
		d.fail(ReasonInvalidField, f, detail)
		return nil
	}
	d.spans[f] = span{start, end, escaped}
	return nil
}

// check validates the decoded value v of field f and returns what is wrong
// with it, or "". nonASCII tells whether the raw string had bytes above 0x7F;
// escapes always decode to valid UTF-8.
func check(f field, v []byte, nonASCII bool) string {
	if nonASCII && !utf8.Valid(v) {
		return "not valid UTF-8"
	}
	var limit int
	switch f {
	case fieldActionID:
		limit = maxActionIDBytes
	case fieldRuleID:
		limit = maxRuleIDBytes
		if hasControl(v) {
			return "contains a control character"
		}
	case fieldAction:
		limit = maxActionBytes
	case fieldTargetType, fieldTargetID:
	default:
		return ""
	}
	if len(v) == 0 {
		return "empty"
	}
	if limit > 0 && len(v) > limit {
		return "longer than " + strconv.Itoa(limit) + " bytes"
	}
	return ""
}

// hasControl reports whether the valid UTF-8 text v contains a control
// character (Unicode category Cc: U+0000-U+001F and U+007F-U+009F).
func hasControl(v []byte) bool {
	for i, c := range v {
		if c < 0x20 || c == 0x7f {
			return true
		}
		// U+0080-U+009F are encoded as 0xC2 0x80-0x9F.
		if c == 0xc2 && i+1 < len(v) && v[i+1] <= 0x9f {
			return true
		}
	}
	return false
}

// appendUnescaped appends the decoded contents of a JSON string, which str
// has validated, to dst. An unpaired surrogate escape is decoded as U+FFFD,
// as encoding/json does, and makes ok false.
func appendUnescaped(dst, src []byte) (out []byte, ok bool) {
	ok = true
	for i := 0; i < len(src); {
		c := src[i]
		if c != '\\' {
			j := i + 1
			for j < len(src) && src[j] != '\\' {
				j++
			}
			dst = append(dst, src[i:j]...)
			i = j
			continue
		}
		switch src[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(src[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(src) && src[i] == '\\' && src[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, hex4(src[i+2:])); dec != utf8.RuneError {
						dst = utf8.AppendRune(dst, dec)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
				ok = false
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\' and '/'
			dst = append(dst, src[i+1])
		}
		i += 2
	}
	return dst, ok
}

// hex4 decodes the four hexadecimal digits at the start of b, which str has
// validated.
func hex4(b []byte) rune {
	return unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3])
}

// finish checks for missing fields and fills in *a. It copies the strings
// that the decoder reads into one allocation.
func (d *decoder) finish(a *Action) error {
	if d.err != nil {
		return d.err
	}
	for _, f := range [...]field{fieldActionID, fieldRuleID, fieldAction, fieldTarget, fieldTargetType, fieldTargetID, fieldOccurredAt} {
		if d.seen&(1<<f) == 0 {
			return &DecodeError{Reason: ReasonMissingField, Field: f.path()}
		}
	}
	// A long occurred_at is parsed on its own so that the Action does not
	// keep it alive.
	longTime := d.spans[fieldOccurredAt].len() > maxInlineTimeBytes
	n := 0
	for f := range numFields {
		if isStringField(f) && !(f == fieldOccurredAt && longTime) {
			n += d.spans[f].len() // an upper bound of the decoded length
		}
	}
	var b strings.Builder
	b.Grow(n)
	var at [numFields]span
	for f := range numFields {
		if isStringField(f) && !(f == fieldOccurredAt && longTime) {
			at[f].start = b.Len()
			d.write(&b, f)
			at[f].end = b.Len()
		}
	}
	s := b.String()
	sub := func(f field) string { return s[at[f].start:at[f].end] }
	var t time.Time
	var err error
	if longTime {
		var buf [maxRuleIDBytes]byte
		t, err = time.Parse(time.RFC3339Nano, string(d.decoded(buf[:0], fieldOccurredAt)))
	} else {
		t, err = time.Parse(time.RFC3339Nano, sub(fieldOccurredAt))
	}
	if err != nil {
		return &DecodeError{Reason: ReasonInvalidField, Field: fieldOccurredAt.path(), Detail: "not an RFC 3339 timestamp"}
	}
	*a = Action{
		ActionID:     sub(fieldActionID),
		RuleID:       sub(fieldRuleID),
		Action:       sub(fieldAction),
		TargetType:   sub(fieldTargetType),
		TargetID:     sub(fieldTargetID),
		OccurredAt:   t,
		ModelName:    sub(fieldModelName),
		ModelVersion: sub(fieldModelVersion),
		Region:       sub(fieldRegion),
	}
	return nil
}

// isStringField reports whether f is a string member rather than an object.
func isStringField(f field) bool {
	return f != fieldTarget && f != fieldModel
}

// write appends the decoded value of field f to b.
func (d *decoder) write(b *strings.Builder, f field) {
	sp := d.spans[f]
	if !sp.escaped {
		b.Write(d.data[sp.start:sp.end])
		return
	}
	var buf [maxRuleIDBytes]byte
	b.Write(d.decoded(buf[:0], f))
}

// decoded appends the decoded value of field f to dst.
func (d *decoder) decoded(dst []byte, f field) []byte {
	sp := d.spans[f]
	if !sp.escaped {
		return append(dst, d.data[sp.start:sp.end]...)
	}
	dst, _ = appendUnescaped(dst, d.data[sp.start:sp.end])
	return dst
}

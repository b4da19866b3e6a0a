package event

import (
	"strconv"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// This file describes the members that the decoder reads: their keys, how
// keys are matched, and how their values are unescaped, checked and parsed.

// maxKeyBytes is the length of the longest key of a member the decoder reads
// (occurred_at).
const maxKeyBytes = 11

// maxEscapedKeyBytes is the longest raw key with escapes that can name a
// member the decoder reads: each of its at most maxKeyBytes characters is
// spelled with at most 12 bytes (a surrogate pair escape).
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

// object identifies an object whose members the decoder reads.
type object uint8

const (
	objectTop    object = iota // the event itself
	objectTarget               // the target member
	objectModel                // the model member
)

// fieldRange returns the fields [lo, hi) of o.
func (o object) fieldRange() (lo, hi field) {
	switch o {
	case objectTop:
		return fieldActionID, fieldRegion + 1
	case objectTarget:
		return fieldTargetType, fieldTargetID + 1
	default:
		return fieldModelName, fieldModelVersion + 1
	}
}

// lookup returns the field that key (already unescaped) names in o, and
// whether key only matches when letter case is ignored, the way encoding/json
// matches keys to struct fields.
func (o object) lookup(key []byte) (f field, caseVariant bool) {
	if f := o.exact(key); f != fieldUnknown {
		return f, false
	}
	if len(key) == 0 || !o.mayStart(key[0]) {
		return fieldUnknown, false
	}
	var lower [maxKeyBytes]byte
	for i, c := range key {
		if c >= utf8.RuneSelf {
			return o.lookupFold(key)
		}
		if i == len(lower) {
			// Too many characters for any key of o.
			return fieldUnknown, false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	f = o.exact(lower[:len(key)])
	return f, f != fieldUnknown
}

// mayStart reports whether a key whose first byte is c can equal a key of o
// when case is ignored.
func (o object) mayStart(c byte) bool {
	if c >= utf8.RuneSelf {
		return true
	}
	c |= 'a' - 'A' // lower case for letters, and no other byte becomes one
	switch o {
	case objectTop:
		return c == 'a' || c == 'r' || c == 't' || c == 'o' || c == 'm'
	case objectTarget:
		return c == 't' || c == 'i'
	default:
		return c == 'n' || c == 'v'
	}
}

// lookupFold is lookup for a key that is not ASCII but can still fold to a
// key of o.
func (o object) lookupFold(key []byte) (f field, caseVariant bool) {
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

// check validates the decoded value v of field f and returns what is wrong
// with it, or "". nonASCII tells whether the raw string had bytes above 0x7F;
// escapes always decode to valid UTF-8.
func check(f field, v []byte, nonASCII bool) string {
	if nonASCII && !utf8.Valid(v) {
		return "is not valid UTF-8"
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
		return "is empty"
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

// appendUnescaped appends the decoded contents of a JSON string, which
// scanString has validated, to dst. An unpaired surrogate escape is decoded
// as U+FFFD, as encoding/json does, and makes ok false.
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

// hex4 decodes the four hexadecimal digits at the start of b, which
// scanString has validated.
func hex4(b []byte) rune {
	return unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3])
}

// parseTime parses s with the time.RFC3339Nano layout, exactly as time.Parse
// does, with a faster path for the common UTC form.
func parseTime(s string) (time.Time, error) {
	if t, ok := parseUTC(s); ok {
		return t, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// parseUTC parses s if it has the form 2006-01-02T15:04:05[.fraction]Z and
// is valid, returning what time.Parse would return for it. Otherwise it
// returns false and leaves s to time.Parse.
func parseUTC(s string) (time.Time, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || s[len(s)-1] != 'Z' ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := atoiDigits(s[0:4])
	month, ok2 := atoiDigits(s[5:7])
	day, ok3 := atoiDigits(s[8:10])
	hour, ok4 := atoiDigits(s[11:13])
	minute, ok5 := atoiDigits(s[14:16])
	sec, ok6 := atoiDigits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	// Like time.Parse, use the first nine digits of the fraction.
	nsec := 0
	if frac := s[len("2006-01-02T15:04:05") : len(s)-1]; frac != "" {
		if len(frac) < 2 || frac[0] != '.' {
			return time.Time{}, false
		}
		digits := frac[1:]
		for i := 0; i < len(digits); i++ {
			c := digits[i]
			if c < '0' || '9' < c {
				return time.Time{}, false
			}
			if i < 9 {
				nsec = nsec*10 + int(c-'0')
			}
		}
		for i := len(digits); i < 9; i++ {
			nsec *= 10
		}
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

// atoiDigits parses s, which must consist of decimal digits only.
func atoiDigits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || '9' < c {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysIn returns the number of days in month of year, in the proleptic
// Gregorian calendar.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

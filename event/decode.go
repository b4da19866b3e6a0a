package event

import (
	"math/bits"
	"strconv"
	"time"
)

// maxInlineTimeBytes is the longest raw occurred_at that shares the
// allocation of the other strings; a longer one is parsed on its own so that
// the Action does not keep it alive.
const maxInlineTimeBytes = 64

// finishBufBytes is the size of the stack buffer in which finish collects the
// decoded strings of a typical event before copying them into one string.
const finishBufBytes = 256

// span is the range of a string's contents in the input, or in the decoded
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

// document scans the whole value.
func (d *decoder) document() error {
	data := d.data
	i := skipSpace(data, 0)
	if i >= len(data) {
		return syntaxError(data, i, "")
	}
	first := data[i]
	var err error
	if first == '{' {
		i, err = d.object(i, 1, objectTop)
	} else {
		i, err = skipValue(data, i, 0)
	}
	if err != nil {
		return err
	}
	if i = skipSpace(data, i); i != len(data) {
		return syntaxError(data, i, "after top-level value")
	}
	if first != '{' {
		return &DecodeError{Reason: ReasonNotObject, Detail: "value is " + kindOf(first)}
	}
	return nil
}

// object scans the object of kind o whose '{' is at offset i and whose depth
// is depth, reading the members of o. The common cases of scanString,
// scanColon and endMember are inlined by hand.
func (d *decoder) object(i, depth int, o object) (int, error) {
	data := d.data
	if depth > maxDepth {
		return i, depthError(i)
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return i, syntaxError(data, i, "looking for object key")
		}
		// The key, usually short and plain.
		start := i + 1
		end := skipPlain(data, start)
		escaped := false
		if end >= len(data) || data[end] != '"' {
			var flags strFlags
			var err error
			if end, flags, err = scanString(data, i); err != nil {
				return end, err
			}
			escaped = flags&strEscaped != 0
		}
		key := data[start:end]
		// The colon.
		i = end + 1
		if i+1 < len(data) && data[i] == ':' && data[i+1] > ' ' {
			i++
		} else {
			var err error
			if i, err = scanColon(data, i); err != nil {
				return i, err
			}
		}
		// The value.
		var err error
		if i, err = d.member(i, depth, o, key, escaped); err != nil {
			return i, err
		}
		// The comma or the closing brace.
		if i+1 < len(data) && data[i] == ',' && data[i+1] == '"' {
			i++
			continue
		}
		var closed bool
		if i, closed, err = endMember(data, i); err != nil || closed {
			return i, err
		}
	}
}

// member scans the value at offset i of the member with the raw key of an
// object of kind o and depth depth, and reads it if o defines that member.
func (d *decoder) member(i, depth int, o object, key []byte, escaped bool) (int, error) {
	f, caseVariant := fieldUnknown, false
	switch {
	case !escaped:
		f, caseVariant = o.lookup(key)
	case len(key) <= maxEscapedKeyBytes:
		var buf [maxEscapedKeyBytes]byte
		unescaped, _ := appendUnescaped(buf[:0], key)
		f, caseVariant = o.lookup(unescaped)
	}
	switch {
	case f == fieldUnknown:
		return skipValue(d.data, i, depth)
	case caseVariant:
		if d.err == nil {
			d.fail(ReasonInvalidField, f, "key "+strconv.Quote(string(key))+" differs from "+strconv.Quote(f.key())+" only in letter case")
		}
		return skipValue(d.data, i, depth)
	case d.seen&(1<<f) != 0:
		d.fail(ReasonDuplicateField, f, "")
		return skipValue(d.data, i, depth)
	}
	d.seen |= 1 << f
	switch f {
	case fieldTarget:
		return d.objectField(i, depth, f, objectTarget, false)
	case fieldModel:
		return d.objectField(i, depth, f, objectModel, true)
	case fieldRegion, fieldModelName, fieldModelVersion:
		return d.stringField(i, depth, f, true)
	default:
		return d.stringField(i, depth, f, false)
	}
}

// objectField scans the value at offset i of field f, which must be an object
// of kind o, or null if optional.
func (d *decoder) objectField(i, depth int, f field, o object, optional bool) (int, error) {
	switch c := d.data[i]; {
	case c == '{':
		return d.object(i, depth+1, o)
	case c == 'n' && optional:
		return scanLiteral(d.data, i, "null")
	default:
		d.fail(ReasonInvalidField, f, "must be an object, not "+kindOf(c))
		return skipValue(d.data, i, depth)
	}
}

// stringField scans the value at offset i of field f, which must be a string,
// or null if optional, and validates it. The string is decoded again by
// finish.
func (d *decoder) stringField(i, depth int, f field, optional bool) (int, error) {
	data := d.data
	if c := data[i]; c != '"' {
		if c == 'n' && optional {
			return scanLiteral(data, i, "null")
		}
		d.fail(ReasonInvalidField, f, "must be a string, not "+kindOf(c))
		return skipValue(data, i, depth)
	}
	end, flags, err := scanString(data, i)
	if err != nil || d.err != nil {
		// After a schema error the value is only checked for syntax.
		return end + 1, err
	}
	sp := span{i + 1, end, flags&strEscaped != 0}
	v := data[sp.start:sp.end]
	if sp.escaped {
		var buf [maxRuleIDBytes]byte
		var ok bool
		if v, ok = appendUnescaped(buf[:0], v); !ok {
			d.fail(ReasonInvalidField, f, "contains an unpaired surrogate escape")
			return end + 1, nil
		}
	}
	if detail := check(f, v, flags&strNonASCII != 0); detail != "" {
		d.fail(ReasonInvalidField, f, detail)
		return end + 1, nil
	}
	d.spans[f] = sp
	return end + 1, nil
}

// finish checks for missing fields and fills in *a. It copies the strings
// that the decoder read into one allocation.
func (d *decoder) finish(a *Action) error {
	if d.err != nil {
		return d.err
	}
	const required = 1<<fieldActionID | 1<<fieldRuleID | 1<<fieldAction | 1<<fieldTarget |
		1<<fieldOccurredAt | 1<<fieldTargetType | 1<<fieldTargetID
	if missing := required &^ d.seen; missing != 0 {
		f := field(bits.TrailingZeros16(missing))
		return &DecodeError{Reason: ReasonMissingField, Field: f.path()}
	}
	// The strings, in the order in which they are copied. A long
	// occurred_at is left out and parsed on its own, so that the Action does
	// not keep it alive.
	fields := [...]field{
		fieldActionID, fieldRuleID, fieldAction, fieldTargetType, fieldTargetID,
		fieldModelName, fieldModelVersion, fieldRegion, fieldOccurredAt,
	}
	inline := fields[:]
	longTime := d.spans[fieldOccurredAt].len() > maxInlineTimeBytes
	if longTime {
		inline = fields[:len(fields)-1]
	}
	n := 0
	for _, f := range inline {
		n += d.spans[f].len() // at least the decoded length
	}
	var buf [finishBufBytes]byte
	dst := buf[:0]
	if n > len(buf) {
		dst = make([]byte, 0, n)
	}
	var at [numFields]span
	for _, f := range inline {
		at[f].start = len(dst)
		dst = d.decoded(dst, f)
		at[f].end = len(dst)
	}
	s := string(dst)
	sub := func(f field) string { return s[at[f].start:at[f].end] }
	var t time.Time
	var err error
	if longTime {
		var buf [maxInlineTimeBytes]byte
		t, err = parseTime(string(d.decoded(buf[:0], fieldOccurredAt)))
	} else {
		t, err = parseTime(sub(fieldOccurredAt))
	}
	if err != nil {
		return &DecodeError{Reason: ReasonInvalidField, Field: fieldOccurredAt.path(), Detail: "is not an RFC 3339 timestamp"}
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

// decoded appends the decoded value of field f to dst.
func (d *decoder) decoded(dst []byte, f field) []byte {
	sp := d.spans[f]
	if !sp.escaped {
		return append(dst, d.data[sp.start:sp.end]...)
	}
	dst, _ = appendUnescaped(dst, d.data[sp.start:sp.end])
	return dst
}

package event

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// This file holds the JSON syntax scanner. Its functions take the input and
// an offset into it, and return the offset after what they scanned, so that
// the offset stays in a register on the hot path.

// syntaxError returns a ReasonMalformed error for the byte of data at offset
// i, or for the end of the input, with an optional explanation.
func syntaxError(data []byte, i int, why string) error {
	if i >= len(data) {
		return &DecodeError{Reason: ReasonMalformed, Detail: "unexpected end of input"}
	}
	detail := "invalid character " + quoteByte(data[i]) + " at offset " + strconv.Itoa(i)
	if why != "" {
		detail += ": " + why
	}
	return &DecodeError{Reason: ReasonMalformed, Detail: detail}
}

// depthError returns the error for a container at offset i that nests deeper
// than maxDepth.
func depthError(i int) error {
	return &DecodeError{
		Reason: ReasonMalformed,
		Detail: "nesting deeper than " + strconv.Itoa(maxDepth) + " at offset " + strconv.Itoa(i),
	}
}

// quoteByte formats c for an error message.
func quoteByte(c byte) string {
	if c < utf8.RuneSelf {
		return strconv.QuoteRune(rune(c))
	}
	return "0x" + strconv.FormatUint(uint64(c), 16)
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

// skipSpace returns the offset of the first byte of data at or after i that
// is not JSON whitespace.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		c := data[i]
		if c > ' ' || c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return i
		}
		i++
	}
	return i
}

// skipValue scans the JSON value at offset i, which is not whitespace, inside
// a container of depth depth (0 at the top level).
func skipValue(data []byte, i, depth int) (int, error) {
	if i >= len(data) {
		return i, syntaxError(data, i, "")
	}
	switch c := data[i]; c {
	case '"':
		end, _, err := scanString(data, i)
		return end + 1, err
	case '{':
		return skipObject(data, i, depth+1)
	case '[':
		return skipArray(data, i, depth+1)
	case 't':
		return scanLiteral(data, i, "true")
	case 'f':
		return scanLiteral(data, i, "false")
	case 'n':
		return scanLiteral(data, i, "null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return scanNumber(data, i)
		}
		return i, syntaxError(data, i, "looking for a value")
	}
}

// scanLiteral scans the literal lit at offset i.
func scanLiteral(data []byte, i int, lit string) (int, error) {
	if len(data)-i >= len(lit) && string(data[i:i+len(lit)]) == lit {
		return i + len(lit), nil
	}
	for k := 0; k < len(lit); k++ {
		if i+k >= len(data) || data[i+k] != lit[k] {
			return i, syntaxError(data, i+k, "in literal")
		}
	}
	return i + len(lit), nil
}

// scanNumber scans the JSON number at offset i.
func scanNumber(data []byte, i int) (int, error) {
	if data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return i, syntaxError(data, i, "")
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		i++
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	default:
		return i, syntaxError(data, i, "in number")
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || data[i] < '0' || '9' < data[i] {
			return i, syntaxError(data, i, "in number")
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
			return i, syntaxError(data, i, "in number")
		}
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	}
	return i, nil
}

// strFlags describes the contents of a JSON string.
type strFlags uint8

const (
	strEscaped  strFlags = 1 << iota // contains escape sequences
	strNonASCII                      // contains bytes above 0x7F
)

// scanString scans the JSON string whose opening quote is at offset i. It
// returns the offset of the closing quote and what the contents hold.
func scanString(data []byte, i int) (end int, flags strFlags, err error) {
	const highs = 0x8080808080808080
	var seen uint64 // the bitwise OR of the bytes outside escapes
	i++
	for {
		// Find the next quote, backslash or control byte: eight bytes at a
		// time while they last, then one at a time.
		for i+8 <= len(data) {
			x := binary.LittleEndian.Uint64(data[i:])
			if m := specialMask(x); m != 0 {
				// The lowest flagged byte is a special one; shift is its
				// offset in bits.
				shift := uint(bits.TrailingZeros64(m)) &^ 7
				seen |= x & (1<<shift - 1)
				i += int(shift / 8)
				goto special
			}
			seen |= x
			i += 8
		}
		for ; i < len(data); i++ {
			c := data[i]
			if c == '"' || c == '\\' || c < 0x20 {
				break
			}
			seen |= uint64(c)
		}
	special:
		if i >= len(data) {
			return i, 0, syntaxError(data, i, "")
		}
		switch data[i] {
		case '"':
			if seen&highs != 0 {
				flags |= strNonASCII
			}
			return i, flags, nil
		case '\\':
			flags |= strEscaped
			i++
			if i >= len(data) {
				return i, 0, syntaxError(data, i, "")
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				for k := 1; k <= 4; k++ {
					if i+k >= len(data) || unhex(data[i+k]) < 0 {
						return i, 0, syntaxError(data, i+k, "in \\u escape")
					}
				}
				i += 5
			default:
				return i, 0, syntaxError(data, i, "in string escape")
			}
		default:
			return i, 0, syntaxError(data, i, "control character in string")
		}
	}
}

// skipPlain returns the offset of the first byte at or after offset i that is
// '"', '\\' or below 0x20, or len(data) if there is none.
func skipPlain(data []byte, i int) int {
	for i+8 <= len(data) {
		if m := specialMask(binary.LittleEndian.Uint64(data[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
		i += 8
	}
	for i < len(data) && data[i] != '"' && data[i] != '\\' && data[i] >= 0x20 {
		i++
	}
	return i
}

// specialMask returns a mask with the high bit set of at least each byte of x
// that is '"', '\\' or below 0x20, taking the bytes of x in little-endian
// order. Other bytes can be flagged only above (after) a special one.
func specialMask(x uint64) uint64 {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	// (v-ones)&^v flags each zero byte of v, and (x-ones*0x20)&^x each byte
	// of x below 0x20. A subtraction can borrow only from the byte above a
	// flagged one, so the flags below the lowest flagged byte are exact.
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	return ((quote-ones)&^quote | (backslash-ones)&^backslash | (x-ones*0x20)&^x) & highs
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

// skipArray scans the array whose '[' is at offset i and whose depth is
// depth.
func skipArray(data []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return i, depthError(i)
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = skipValue(data, i, depth); err != nil {
			return i, err
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return i, syntaxError(data, i, "")
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, syntaxError(data, i, "after array element")
		}
	}
}

// skipObject scans the object whose '{' is at offset i and whose depth is
// depth, ignoring its members.
func skipObject(data []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return i, depthError(i)
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = scanKey(data, i); err != nil {
			return i, err
		}
		if i, err = skipValue(data, i, depth); err != nil {
			return i, err
		}
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

// scanKey scans an object key and the colon after it, starting at offset i,
// and returns the offset of the member's value.
func scanKey(data []byte, i int) (int, error) {
	if i >= len(data) || data[i] != '"' {
		return i, syntaxError(data, i, "looking for object key")
	}
	// Usually short and plain.
	end := skipPlain(data, i+1)
	if end >= len(data) || data[end] != '"' {
		var err error
		if end, _, err = scanString(data, i); err != nil {
			return end, err
		}
	}
	i = end + 1
	if i+1 < len(data) && data[i] == ':' && data[i+1] > ' ' {
		return i + 1, nil
	}
	return scanColon(data, i)
}

// scanColon scans the colon after an object key, which ends before offset i,
// and returns the offset of the member's value.
func scanColon(data []byte, i int) (int, error) {
	i = skipSpace(data, i)
	if i >= len(data) || data[i] != ':' {
		return i, syntaxError(data, i, "after object key")
	}
	i = skipSpace(data, i+1)
	if i >= len(data) {
		return i, syntaxError(data, i, "")
	}
	return i, nil
}

// endMember scans what follows an object member's value, which ends before
// offset i: a comma and the whitespace after it, or the closing brace, which
// makes closed true. It returns the offset after them.
func endMember(data []byte, i int) (next int, closed bool, err error) {
	i = skipSpace(data, i)
	if i >= len(data) {
		return i, false, syntaxError(data, i, "")
	}
	switch data[i] {
	case ',':
		return skipSpace(data, i+1), false, nil
	case '}':
		return i + 1, true, nil
	}
	return i, false, syntaxError(data, i, "after object member")
}

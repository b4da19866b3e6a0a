package replay

import (
	"bufio"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/breakwater/breakwater/decide"
)

// DecisionWriter writes one JSON line per decided event:
// {"line", "action_id", "scope", "decision"}, leaving out the action_id and
// the scope that a dead letter does not have.
type DecisionWriter struct {
	w   *bufio.Writer
	buf []byte
}

// NewDecisionWriter returns a writer of decision lines to w; call Flush at
// the end.
func NewDecisionWriter(w io.Writer) *DecisionWriter {
	return &DecisionWriter{w: bufio.NewWriterSize(w, 256<<10)}
}

// Write writes the decision of the event numbered seq; it fits
// Options.OnDecision.
func (d *DecisionWriter) Write(seq int64, actionID string, it *decide.Item) error {
	b := append(d.buf[:0], `{"line":`...)
	b = strconv.AppendInt(b, seq, 10)
	if actionID == "" && it.Bad == nil {
		actionID = it.Act.ActionID
	}
	if actionID != "" {
		b = append(b, `,"action_id":`...)
		b = appendJSONString(b, actionID)
	}
	if it.Scope != "" {
		b = append(b, `,"scope":`...)
		b = appendJSONString(b, string(it.Scope))
	}
	b = append(b, `,"decision":"`...)
	b = append(b, it.Decision...)
	b = append(b, "\"}\n"...)
	d.buf = b
	_, err := d.w.Write(b)
	return err
}

// Flush writes out what is buffered.
func (d *DecisionWriter) Flush() error { return d.w.Flush() }

const hex = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping what JSON requires
// and replacing invalid UTF-8.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

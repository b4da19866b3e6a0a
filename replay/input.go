package replay

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/breakwater/breakwater/decide"
	"github.com/breakwater/breakwater/event"
)

// Source yields recorded action events in the order they were recorded.
type Source interface {
	// Next returns the next event's value and where it was read. The value
	// is valid until the following call. At the end it returns io.EOF.
	Next() (value []byte, pos decide.Position, err error)
}

// Lines reads JSON Lines: one event per line. A line longer than
// event.MaxValueBytes is returned cut to that length plus one byte, so that
// it is decided as a dead letter like an oversized Kafka message, without
// holding it in memory. A trailing carriage return is dropped.
type Lines struct {
	r     *bufio.Reader
	topic string
	line  int64
	long  []byte
}

// NewLines returns a reader of the JSON Lines in r, decompressing them
// first when r starts with the gzip magic bytes. Positions name topic,
// partition 0 and the line's zero-based index as the offset.
func NewLines(r io.Reader, topic string) (*Lines, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read input: %w", err)
	}
	if bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read gzip input: %w", err)
		}
		br = bufio.NewReaderSize(zr, 256<<10)
	}
	return &Lines{r: br, topic: topic}, nil
}

// Line returns the one-based number of the line last returned.
func (l *Lines) Line() int64 { return l.line }

// Next returns the next line without its line break.
func (l *Lines) Next() ([]byte, decide.Position, error) {
	b, err := l.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		b, err = l.readLong(b)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, decide.Position{}, fmt.Errorf("read line %d: %w", l.line+1, err)
	}
	if len(b) == 0 && err != nil {
		return nil, decide.Position{}, io.EOF
	}
	b = bytes.TrimSuffix(b, []byte{'\n'})
	b = bytes.TrimSuffix(b, []byte{'\r'})
	pos := decide.Position{Topic: l.topic, Partition: 0, Offset: l.line}
	l.line++
	return b, pos, nil
}

// readLong collects a line that does not fit the buffer, keeping at most
// event.MaxValueBytes+1 bytes of it.
func (l *Lines) readLong(first []byte) ([]byte, error) {
	l.long = append(l.long[:0], first...)
	for {
		b, err := l.r.ReadSlice('\n')
		if room := event.MaxValueBytes + 1 - len(l.long); room > 0 {
			l.long = append(l.long, b[:min(len(b), room)]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(b) > 0 && b[len(b)-1] == '\n' && len(l.long) <= event.MaxValueBytes {
			// The break itself was kept: the caller trims it.
			return l.long, err
		}
		if errors.Is(err, io.EOF) && len(l.long) > 0 {
			return l.long, nil
		}
		return l.long, err
	}
}

// Open opens the JSON Lines file at path, or standard input for "-".
// The returned closer closes the file.
func Open(path string, stdin io.Reader) (*Lines, io.Closer, error) {
	if path == "-" {
		l, err := NewLines(stdin, "stdin")
		return l, io.NopCloser(nil), err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open input: %w", err)
	}
	l, err := NewLines(f, path)
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, f, nil
}

package replay_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/event"
	"github.com/breakwater/breakwater/replay"
)

func readAll(t testing.TB, r io.Reader) [][]byte {
	t.Helper()
	l, err := replay.NewLines(r, "t")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		v, pos, err := l.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if pos.Offset != int64(len(out)) || l.Line() != int64(len(out)+1) {
			t.Fatalf("line %d at offset %d (Line %d)", len(out)+1, pos.Offset, l.Line())
		}
		out = append(out, bytes.Clone(v))
	}
}

func TestLines(t *testing.T) {
	long := strings.Repeat("x", 600<<10)
	huge := strings.Repeat("y", event.MaxValueBytes+5000)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"one without break", "a", []string{"a"}},
		{"crlf", "a\r\nb\r\n", []string{"a", "b"}},
		{"blank lines count", "a\n\nb\n", []string{"a", "", "b"}},
		{"long line", "a\n" + long + "\nb\n", []string{"a", long, "b"}},
		{"huge line is cut", huge + "\nb", []string{huge[:event.MaxValueBytes+1], "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, gz := range []bool{false, true} {
				var in io.Reader = strings.NewReader(tt.in)
				if gz {
					var buf bytes.Buffer
					zw := gzip.NewWriter(&buf)
					_, _ = zw.Write([]byte(tt.in))
					_ = zw.Close()
					in = &buf
				}
				got := readAll(t, in)
				if len(got) != len(tt.want) {
					t.Fatalf("gzip %v: %d lines; want %d", gz, len(got), len(tt.want))
				}
				for i := range got {
					if string(got[i]) != tt.want[i] {
						t.Errorf("gzip %v: line %d has %d bytes; want %d", gz, i+1, len(got[i]), len(tt.want[i]))
					}
				}
			}
		})
	}
}

// FuzzLines checks that the reader returns every line of any input, in
// order and unchanged apart from the line breaks.
func FuzzLines(f *testing.F) {
	for _, s := range []string{"", "\n", "a\nb", "{\"a\":1}\r\n{}\n", "\x1f\x8b", "\r\r\n\n", "a\rb\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		l, err := replay.NewLines(bytes.NewReader(in), "f")
		if err != nil {
			if bytes.HasPrefix(in, []byte{0x1f, 0x8b}) {
				return // not a valid gzip stream
			}
			t.Fatalf("NewLines: %v", err)
		}
		var got [][]byte
		for {
			v, _, err := l.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				if bytes.HasPrefix(in, []byte{0x1f, 0x8b}) {
					return
				}
				t.Fatalf("Next: %v", err)
			}
			if bytes.IndexByte(v, '\n') >= 0 {
				t.Fatalf("line %q holds a line break", v)
			}
			got = append(got, bytes.Clone(v))
		}
		if bytes.HasPrefix(in, []byte{0x1f, 0x8b}) {
			return
		}
		want := bytes.Split(in, []byte{'\n'})
		if len(want[len(want)-1]) == 0 {
			want = want[:len(want)-1]
		}
		if len(got) != len(want) {
			t.Fatalf("%d lines; want %d", len(got), len(want))
		}
		for i := range want {
			if w := bytes.TrimSuffix(want[i], []byte{'\r'}); !bytes.Equal(got[i], w) {
				t.Fatalf("line %d = %q; want %q", i+1, got[i], w)
			}
		}
	})
}

// FuzzLabels reads arbitrary label files: a label is returned only for the
// line asked for, with a non-negative incident; anything else is an error.
func FuzzLabels(f *testing.F) {
	f.Add([]byte("{\"line\":1,\"action_id\":\"a\",\"incident\":0}\n{\"line\":2,\"action_id\":\"b\",\"incident\":2,\"kind\":\"spike\"}\n"))
	f.Add([]byte("{\"line\":1,\"malformed\":true}\n{\"line\":3}\n"))
	f.Add([]byte("{\"line\":1,\"incident\":-1}\nnot json\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := replay.NewLabelReader(bytes.NewReader(data))
		for seq := int64(1); seq < 100; seq++ {
			lb, err := r.Next(seq)
			if err != nil {
				if err.Error() == "" {
					t.Fatal("an error without a message")
				}
				return
			}
			if lb.Line != seq || lb.Incident < 0 {
				t.Fatalf("Next(%d) = %+v", seq, lb)
			}
		}
	})
}

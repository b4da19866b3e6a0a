package consumer

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// kafkaGoRecordSet is the record set kafka-go encodes for msgs[idx...]
// into a produce request (version 2, no compression).
func kafkaGoRecordSet(t testing.TB, msgs []kafka.Message, idx []int32) []byte {
	recs := make([]kafka.Record, len(idx))
	for i, k := range idx {
		m := &msgs[k]
		recs[i] = kafka.Record{Time: m.Time, Headers: m.Headers}
		if m.Key != nil {
			recs[i].Key = protocol.NewBytes(m.Key)
		}
		if m.Value != nil {
			recs[i].Value = protocol.NewBytes(m.Value)
		}
	}
	rs := protocol.RecordSet{Version: 2, Records: kafka.NewRecordReader(recs...)}
	var buf bytes.Buffer
	if _, err := rs.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// randomMessages returns n messages with null, empty and long keys and
// values, null header values, and times out of order, all set.
func randomMessages(rng *rand.Rand, n int) []kafka.Message {
	bytesOf := func(max int) []byte {
		switch rng.IntN(6) {
		case 0:
			return nil
		case 1:
			return []byte{}
		}
		b := make([]byte, rng.IntN(max))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	base := time.UnixMilli(1_700_000_000_000)
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		m := &msgs[i]
		m.Key = bytesOf(40)
		m.Value = bytesOf(3000)
		for range rng.IntN(9) {
			m.Headers = append(m.Headers, kafka.Header{Key: fmt.Sprintf("h%d", rng.IntN(1000)), Value: bytesOf(200)})
		}
		m.Time = base.Add(time.Duration(rng.IntN(2_000_000)-1_000_000) * time.Millisecond)
	}
	return msgs
}

// TestRecordSetAsKafkaGo compares appendRecordSet with kafka-go's own
// encoding of the same records, byte for byte, for record sets of one
// record to thousands, picked by index in any order, appended after other
// bytes.
func TestRecordSetAsKafkaGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 1))
	for _, n := range []int{1, 2, 3, 17, 300, 2500} {
		msgs := randomMessages(rng, n)
		idx := make([]int32, 0, n)
		for i := range msgs {
			if rng.IntN(4) > 0 || len(idx) == 0 && i == n-1 {
				idx = append(idx, int32(i))
			}
		}
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		want := kafkaGoRecordSet(t, msgs, idx)
		prefix := []byte("earlier")
		got := appendRecordSet(append([]byte(nil), prefix...), msgs, idx, time.Now())
		if !bytes.HasPrefix(got, prefix) {
			t.Fatalf("%d records: the bytes before the set changed", n)
		}
		if got = got[len(prefix):]; !bytes.Equal(got, want) {
			at := 0
			for at < min(len(got), len(want)) && got[at] == want[at] {
				at++
			}
			t.Fatalf("%d records: %d bytes, kafka-go's %d, first difference at byte %d", n, len(got), len(want), at)
		}
	}
	if got := appendRecordSet([]byte("x"), nil, nil, time.Now()); string(got) != "x" {
		t.Fatalf("no records: %q", got)
	}
}

// TestRecordSetReadBack decodes an encoded set with kafka-go's reader: the
// records, their headers and times are those written, a zero time is
// stamped with now, and a damaged byte fails the checksum.
func TestRecordSetReadBack(t *testing.T) {
	msgs := randomMessages(rand.New(rand.NewPCG(7, 7)), 50)
	msgs[3].Time = time.Time{}
	now := time.UnixMilli(1_800_000_000_123)
	idx := []int32{0, 3, 49, 1, 2}
	set := appendRecordSet(nil, msgs, idx, now)
	var rs protocol.RecordSet
	if _, err := rs.ReadFrom(bytes.NewReader(set)); err != nil {
		t.Fatal(err)
	}
	for i, k := range idx {
		r, err := rs.Records.ReadRecord()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		m := &msgs[k]
		wantTime := m.Time
		if wantTime.IsZero() {
			wantTime = now
		}
		if r.Offset != int64(i) || !r.Time.Equal(wantTime) {
			t.Errorf("record %d: offset %d time %v, want %d %v", i, r.Offset, r.Time, i, wantTime)
		}
		for what, b := range map[string]struct {
			got  protocol.Bytes
			want []byte
		}{"key": {r.Key, m.Key}, "value": {r.Value, m.Value}} {
			if (b.got == nil) != (b.want == nil) {
				t.Fatalf("record %d: %s null %v, want null %v", i, what, b.got == nil, b.want == nil)
			}
			if b.got != nil {
				got, _ := io.ReadAll(b.got)
				if !bytes.Equal(got, b.want) {
					t.Fatalf("record %d: %s differs", i, what)
				}
			}
		}
		if len(r.Headers) != len(m.Headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(r.Headers), len(m.Headers))
		}
		for j, h := range r.Headers {
			if h.Key != m.Headers[j].Key || !bytes.Equal(h.Value, m.Headers[j].Value) {
				t.Fatalf("record %d: header %d is %q=%q, want %q=%q", i, j, h.Key, h.Value, m.Headers[j].Key, m.Headers[j].Value)
			}
		}
	}
	if _, err := rs.Records.ReadRecord(); err != io.EOF {
		t.Fatalf("after the last record: %v, want io.EOF", err)
	}
	bad := bytes.Clone(set)
	bad[len(bad)-1] ^= 1
	var rb protocol.RecordSet
	_, err := rb.ReadFrom(bytes.NewReader(bad))
	if err == nil {
		_, err = rb.Records.ReadRecord()
	}
	if err == nil || !strings.Contains(err.Error(), "crc32") {
		t.Fatalf("a set with a damaged record read back with %v, want a checksum mismatch", err)
	}
}

// FuzzRecordSetAsKafkaGo checks appendRecordSet against kafka-go's
// encoding for records made of arbitrary bytes.
func FuzzRecordSetAsKafkaGo(f *testing.F) {
	f.Add([]byte("key"), []byte("value"), "header", []byte("v"), int64(1_700_000_000_000), uint8(3))
	f.Add([]byte{}, []byte(nil), "", []byte(nil), int64(-5), uint8(1))
	f.Fuzz(func(t *testing.T, key, value []byte, hk string, hv []byte, ms int64, n uint8) {
		msgs := make([]kafka.Message, int(n%8)+1)
		for i := range msgs {
			msgs[i] = kafka.Message{Key: key, Value: value, Time: time.UnixMilli(ms + int64(i)*int64(n)), Headers: []kafka.Header{{Key: hk, Value: hv}}}
			if i%2 == 1 {
				msgs[i].Key, msgs[i].Headers = nil, nil
			}
		}
		idx := make([]int32, len(msgs))
		for i := range idx {
			idx[i] = int32(len(idx) - 1 - i)
		}
		if got, want := appendRecordSet(nil, msgs, idx, time.Now()), kafkaGoRecordSet(t, msgs, idx); !bytes.Equal(got, want) {
			t.Fatalf("%d bytes, kafka-go's %d", len(got), len(want))
		}
	})
}

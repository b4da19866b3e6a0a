// The encoding of a produce request's records: a Kafka record batch
// (magic 2, uncompressed), encoded in one pass into a buffer kept from
// write to write.

package consumer

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/segmentio/kafka-go"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Offsets in a record set as a produce request carries it: the set's size,
// then the batch header.
const (
	rbSize            = 0  // int32: the size of what follows
	rbBatchLength     = 12 // int32: the size of the batch after this field
	rbCRC             = 21 // uint32: CRC-32C of the batch from the attributes on
	rbAttributes      = 25
	rbLastOffsetDelta = 27
	rbFirstTimestamp  = 31
	rbMaxTimestamp    = 39
	rbRecordCount     = 61
	rbHeaderSize      = 65
)

// appendRecordSet appends to dst the record set of msgs[idx...], in
// order, as kafka-go's protocol.RecordSet (version 2, no compression)
// writes it into a produce request: its size, then the batch. A record
// whose Time is zero is stamped now. It returns dst unchanged when idx is
// empty.
func appendRecordSet(dst []byte, msgs []kafka.Message, idx []int32, now time.Time) []byte {
	if len(idx) == 0 {
		return dst
	}
	start := len(dst)
	dst = append(dst, make([]byte, rbHeaderSize)...)
	h := dst[start:]
	// Base offset 0 (h[4:12]), then:
	binary.BigEndian.PutUint32(h[16:], 0xffffffff) // partition leader epoch -1
	h[20] = 2                                      // magic
	// Attributes 0: no compression, create time, not transactional.
	binary.BigEndian.PutUint64(h[47:], 0xffffffffffffffff) // producer id -1
	binary.BigEndian.PutUint16(h[55:], 0xffff)             // producer epoch -1
	binary.BigEndian.PutUint32(h[57:], 0xffffffff)         // base sequence -1

	current := millis(now)
	var first, maxTS int64
	for i, k := range idx {
		m := &msgs[k]
		ts := millis(m.Time)
		if ts == 0 {
			ts = current
		}
		if i == 0 {
			first = ts
		}
		maxTS = max(maxTS, ts)
		delta := ts - first
		length := 1 + varintSize(delta) + varintSize(int64(i)) +
			nullBytesSize(m.Key) + nullBytesSize(m.Value) + varintSize(int64(len(m.Headers)))
		for _, hd := range m.Headers {
			length += varintSize(int64(len(hd.Key))) + len(hd.Key) + nullBytesSize(hd.Value)
		}
		dst = binary.AppendVarint(dst, int64(length))
		dst = append(dst, 0) // record attributes
		dst = binary.AppendVarint(dst, delta)
		dst = binary.AppendVarint(dst, int64(i))
		dst = appendNullBytes(dst, m.Key)
		dst = appendNullBytes(dst, m.Value)
		dst = binary.AppendVarint(dst, int64(len(m.Headers)))
		for _, hd := range m.Headers {
			dst = binary.AppendVarint(dst, int64(len(hd.Key)))
			dst = append(dst, hd.Key...)
			dst = appendNullBytes(dst, hd.Value)
		}
	}
	h = dst[start:]
	binary.BigEndian.PutUint32(h[rbLastOffsetDelta:], uint32(len(idx)-1))
	binary.BigEndian.PutUint64(h[rbFirstTimestamp:], uint64(first))
	binary.BigEndian.PutUint64(h[rbMaxTimestamp:], uint64(maxTS))
	binary.BigEndian.PutUint32(h[rbRecordCount:], uint32(len(idx)))
	binary.BigEndian.PutUint32(h[rbSize:], uint32(len(h)-4))
	binary.BigEndian.PutUint32(h[rbBatchLength:], uint32(len(h)-rbBatchLength-4))
	binary.BigEndian.PutUint32(h[rbCRC:], crc32.Checksum(h[rbAttributes:], castagnoli))
	return dst
}

// millis is t in milliseconds since the epoch, as kafka-go counts it; 0
// for the zero time.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano() / int64(time.Millisecond)
}

// varintSize is the size of i as a zig-zag varint.
func varintSize(i int64) int {
	u := uint64(i<<1) ^ uint64(i>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// nullBytesSize is the size of b with its varint length, -1 when nil.
func nullBytesSize(b []byte) int {
	if b == nil {
		return 1
	}
	return varintSize(int64(len(b))) + len(b)
}

func appendNullBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

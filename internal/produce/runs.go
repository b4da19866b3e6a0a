// Package produce cuts the records of one write into runs that kafka-go's
// Writer sends as a single produce request per partition.
//
// kafka-go's Writer sends a partition's records of one call as one produce
// request only while they fit its BatchSize and BatchBytes; past either it
// splits them into several requests, each retried on its own, and sends the
// later ones even when an earlier one failed for good. Records written
// again after such a failure would then land after later records of the
// same key. Written in runs (Runs), one run written (or given up on) before
// the next starts, a partition's records of a run fail or succeed together
// and nothing after a failed run is written.
package produce

import (
	"iter"

	"github.com/segmentio/kafka-go"
)

// Runs yields msgs in consecutive runs that kafka-go's Writer sends as a
// single produce request per partition: at most maxCount records and,
// counted as the Writer counts a record's size (key, value, headers and
// framing) with a margin, less than maxBytes in all. Pass the Writer's
// BatchSize and BatchBytes, set explicitly (their zero values mean
// kafka-go's defaults, 100 records and 1 MiB). A run is bounded in total,
// not per partition, so that it holds whatever partitions the balancer
// picks. A record larger than maxBytes on its own is a run of its own (the
// Writer sends it alone too). Almost every batch is one run.
func Runs(msgs []kafka.Message, maxCount int, maxBytes int64) iter.Seq[[]kafka.Message] {
	return func(yield func([]kafka.Message) bool) {
		maxCount = max(maxCount, 1)
		start, bytes := 0, int64(0)
		for i := range msgs {
			size := RecordSize(&msgs[i])
			if i > start && (i-start >= maxCount || bytes+size >= maxBytes) {
				if !yield(msgs[start:i]) {
					return
				}
				start, bytes = i, 0
			}
			bytes += size
		}
		if start < len(msgs) {
			yield(msgs[start:])
		}
	}
}

// RecordSize is at least the size kafka-go's Writer counts for m against
// BatchBytes: key and value with their lengths, the timestamp, the framing,
// and each header's key and value with theirs (every length taken at its
// widest).
func RecordSize(m *kafka.Message) int64 {
	n := int64(32 + len(m.Key) + len(m.Value))
	for _, h := range m.Headers {
		n += int64(16 + len(h.Key) + len(h.Value))
	}
	return n
}

package wire

import (
	"strconv"
	"strings"
)

// The headers Breakwater adds to the records it writes. The original key,
// value and headers of an action are kept as they are.
const (
	// HeaderPrefix starts every header Breakwater adds; a record read back
	// from an output topic sheds the headers with it before being written
	// again.
	HeaderPrefix = "breakwater-"
	// HeaderDecision is where the action went: gated, held, dead_letter, or
	// a reviewer's approved or rejected.
	HeaderDecision = HeaderPrefix + "decision"
	// HeaderScope is the breaker that decided the action.
	HeaderScope = HeaderPrefix + "scope"
	// HeaderState is that breaker's state when the action was decided.
	HeaderState = HeaderPrefix + "breaker-state"
	// HeaderIncident is the trip a held action was held under
	// (scope@generation).
	HeaderIncident = HeaderPrefix + "incident"
	// HeaderReason says why an action was dead-lettered, held without a
	// trip, or answered from an earlier decision.
	HeaderReason = HeaderPrefix + "reason"
	// HeaderSource is the input position of the action,
	// topic/partition/offset: on every record the pipeline writes, and on a
	// released one the position of the held record.
	HeaderSource = HeaderPrefix + "source"
	// HeaderReviewer is who approved or rejected a held action.
	HeaderReviewer = HeaderPrefix + "reviewer"
	// HeaderActionID is the action id of a released or reversed action.
	HeaderActionID = HeaderPrefix + "action-id"
	// HeaderReversalJob names the reversal that wrote a reversal record.
	HeaderReversalJob = HeaderPrefix + "reversal"
	// HeaderBatch names the decision that wrote a record: one per batch a
	// process decided (answered from the records of a first decision or
	// not). Two copies of an input with the same batch are one decision
	// written twice (a produce request retried after its answer was lost);
	// copies from different batches without the redelivered reason would
	// be one input decided twice.
	HeaderBatch = HeaderPrefix + "batch"
)

// Source formats an input position for HeaderSource.
func Source(topic string, partition int, offset int64) string {
	return topic + "/" + strconv.Itoa(partition) + "/" + strconv.FormatInt(offset, 10)
}

// AppendSource appends the HeaderSource value of an input position to dst.
func AppendSource(dst []byte, topic string, partition int, offset int64) []byte {
	dst = append(dst, topic...)
	dst = append(dst, '/')
	dst = strconv.AppendInt(dst, int64(partition), 10)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, offset, 10)
}

// ParseSource reads a HeaderSource value. Topic names may not contain a
// slash, so the last two fields are the partition and the offset.
func ParseSource(s string) (topic string, partition int, offset int64, ok bool) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return "", 0, 0, false
	}
	j := strings.LastIndexByte(s[:i], '/')
	if j <= 0 {
		return "", 0, 0, false
	}
	p, err1 := strconv.Atoi(s[j+1 : i])
	o, err2 := strconv.ParseInt(s[i+1:], 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		return "", 0, 0, false
	}
	return s[:j], p, o, true
}

package testbed

import (
	"fmt"
	"math/rand/v2"

	"github.com/segmentio/kafka-go"
)

// UnevenRecords returns n records to topic of uneven value sizes (50 to
// 949 bytes), keyed by one of 50 targets, with the headers the pipeline
// writes on gated: the same records for the same seed.
func UnevenRecords(topic string, n int, seed uint64) []kafka.Message {
	rng := rand.New(rand.NewPCG(seed, 1))
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		value := make([]byte, 50+rng.IntN(900))
		for j := range value {
			value[j] = byte('a' + rng.IntN(26))
		}
		msgs[i] = kafka.Message{
			Topic: topic,
			Key:   fmt.Appendf(nil, "account:%d", rng.IntN(50)),
			Value: value,
			Headers: []kafka.Header{
				{Key: "breakwater-decision", Value: []byte("gated")},
				{Key: "breakwater-scope", Value: []byte("rule:spam-links")},
			},
		}
	}
	return msgs
}

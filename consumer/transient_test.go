package consumer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/segmentio/kafka-go"
)

func TestTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"rebalance", kafka.RebalanceInProgress, true},
		{"not coordinator", fmt.Errorf("commit: %w", kafka.NotCoordinatorForGroup), true},
		{"leader moved", kafka.NotLeaderForPartition, true},
		{"broker gone", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"connection cut", io.ErrUnexpectedEOF, true},
		{"unknown", errors.New("something else"), true},
		{"topic denied", fmt.Errorf("fetch: %w", kafka.TopicAuthorizationFailed), false},
		{"group denied", kafka.GroupAuthorizationFailed, false},
		{"bad credentials", kafka.SASLAuthenticationFailed, false},
		{"write, one leader moved", kafka.WriteErrors{nil, kafka.NotLeaderForPartition}, true},
		{"write, one denied", kafka.WriteErrors{kafka.NotLeaderForPartition, kafka.TopicAuthorizationFailed}, false},
		{"nil", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Transient(tc.err); got != tc.want {
				t.Errorf("Transient(%v) = %v; want %v", tc.err, got, tc.want)
			}
		})
	}
}

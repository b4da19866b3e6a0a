package replay_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the Kafka readers of a topic replay are stopped.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

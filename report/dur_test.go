package report

import (
	"testing"
	"time"
)

// TestDur: durations in chart labels keep their unit ("per 10s window",
// not "per 1 window").
func TestDur(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{10 * time.Second, "10s"}, {20 * time.Second, "20s"}, {time.Minute, "1m"}, {90 * time.Second, "1m30s"},
		{time.Hour, "1h"}, {90 * time.Minute, "1h30m"}, {15 * time.Second, "15s"}, {0, "0s"},
	} {
		if got := dur(c.d); got != c.want {
			t.Errorf("dur(%s) = %q; want %q", c.d, got, c.want)
		}
	}
}

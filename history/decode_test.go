package history

import (
	"testing"
	"time"

	"github.com/breakwater/breakwater/breaker"
)

// FuzzDecode checks the decoder of ring values read back from Redis: no
// panic on any input, and what it accepts encodes back to the same sample.
func FuzzDecode(f *testing.F) {
	step := 15 * time.Second
	at := time.UnixMilli(1764650000123).UTC()
	n := at.UnixNano() / int64(step)
	f.Add(encode(n, Sample{At: at, Window: 634.5, Baseline: 27.25, BaselineReady: true, State: breaker.Open, HeldTotal: 12}))
	f.Add("1 2 3 4 5 6 7")
	f.Add(encode(n, Sample{At: at, Window: 10, Baseline: 5, State: breaker.Closed, Expected: 8.25, Evidence: 3.5}))
	f.Add("")
	f.Add("117643333 1764650000123 NaN -Inf 1 closed -1")
	f.Fuzz(func(t *testing.T, v string) {
		n, s, err := decode(v, step)
		if err != nil {
			return
		}
		n2, s2, err := decode(encode(n, s), step)
		if err != nil || n2 != n || !s2.At.Equal(s.At) || s2.State != s.State || s2.HeldTotal != s.HeldTotal || s2.BaselineReady != s.BaselineReady {
			t.Errorf("decode(%q) = %d %+v; re-encoded it decodes to %d %+v, %v", v, n, s, n2, s2, err)
		}
	})
}

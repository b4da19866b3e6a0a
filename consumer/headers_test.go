package consumer

import (
	"testing"

	"github.com/breakwater/breakwater/breaker"
	"github.com/breakwater/breakwater/decide"
)

// TestHeaderValue checks that every fixed header value (decisions, states,
// reasons) has its own bytes, shared from call to call, and that any other
// value gets its bytes.
func TestHeaderValue(t *testing.T) {
	fixed := []string{string(decide.Gated), string(decide.Held), string(decide.DeadLetter),
		decide.ReasonRedelivered, decide.ReasonStoreUnavailable}
	for _, st := range breaker.States {
		fixed = append(fixed, string(st))
	}
	for _, v := range fixed {
		a, b := headerValue(v), headerValue(v)
		if string(a) != v {
			t.Errorf("headerValue(%q) = %q", v, a)
		}
		if len(a) == 0 || &a[0] != &b[0] {
			t.Errorf("headerValue(%q): not shared between calls", v)
		}
	}
	if got := headerValue("rule:spam"); string(got) != "rule:spam" {
		t.Errorf("headerValue(rule:spam) = %q", got)
	}
}

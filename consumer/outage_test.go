package consumer

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/breakwater/breakwater/store"
)

// TestOutageLog: a pause logs its cause when it begins, again when the
// cause changes and at least once a minute, and its end.
func TestOutageLog(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(core)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	down := errors.New("dial tcp: connection refused")
	lagging := fmt.Errorf("%w: 0 of 1 acknowledged within 500ms", store.ErrNotReplicated)
	var o outage
	steps := []struct {
		at   time.Duration
		err  error
		logs int
	}{
		{0, down, 1},
		{10 * time.Second, down, 1},
		{59 * time.Second, down, 1},
		{61 * time.Second, down, 2},
		{62 * time.Second, lagging, 3},
		{90 * time.Second, lagging, 3},
		{123 * time.Second, lagging, 4},
	}
	for _, s := range steps {
		o.failed(log, t0.Add(s.at), s.err)
		if n := logs.Len(); n != s.logs {
			t.Fatalf("after a failure at +%v: %d log lines; want %d", s.at, n, s.logs)
		}
	}
	all := logs.All()
	if c := all[4-1].ContextMap()["cause"]; c != causeOf(lagging) {
		t.Errorf("cause of the last line = %v; want %q", c, causeOf(lagging))
	}
	o.end(log)
	last := logs.All()[logs.Len()-1]
	if last.Message != "rate store reachable again; resuming" || o.on() {
		t.Errorf("end logged %q (still on: %v); want the pause's end", last.Message, o.on())
	}
}

package replay_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/replay"
	"github.com/breakwater/breakwater/traffic"
)

// simulated returns n JSON lines of a seeded scenario with a spike.
func simulated(tb testing.TB, n int, rate float64) []byte {
	tb.Helper()
	sim := traffic.NewSimulation(traffic.Scenario{
		Start: time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC), Duration: 1000 * time.Hour,
		Rules: 40, Rate: rate, Diurnal: 0.5, Noise: 0.1, Seed: 7,
		Incidents: []traffic.Incident{{Kind: traffic.Spike, Rule: 2, At: 3 * time.Hour, For: 30 * time.Minute, Factor: 8}},
	})
	var buf bytes.Buffer
	var line []byte
	for range n {
		var ok bool
		if line, ok = sim.Next(line[:0]); !ok {
			tb.Fatal("scenario too short")
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// BenchmarkReplay replays one million simulated lines per iteration with
// the default configuration and batch size, and reports events per second.
func BenchmarkReplay(b *testing.B) {
	const n = 1_000_000
	data := simulated(b, n, 100)
	cfg := config.Default()
	// As `breakwater replay` runs (cmd/breakwater's tuneGC), unless GOGC
	// says otherwise.
	if _, set := os.LookupEnv("GOGC"); !set {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	b.ReportAllocs()
	var total, cpu time.Duration
	for b.Loop() {
		src, err := replay.NewLines(bytes.NewReader(data), "bench")
		if err != nil {
			b.Fatal(err)
		}
		r, err := replay.New(replay.Options{Config: cfg})
		if err != nil {
			b.Fatal(err)
		}
		t0, c0 := time.Now(), cpuTime()
		s, err := r.Run(context.Background(), src)
		total, cpu = total+time.Since(t0), cpu+cpuTime()-c0
		if err != nil || s.Actions != n {
			b.Fatalf("Run = %d actions, %v; want %d", s.Actions, err, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "events/s")
	// The CPU time of the whole process (garbage collector included): on a
	// shared machine the wall-clock rate understates the speed of a core.
	b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(0, "ns/op")
}

var _ = io.EOF

// cpuTime returns the user and system CPU time of the process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Package bench holds the end-to-end throughput benchmark of Breakwater.
//
// BenchmarkThroughput compares the breaker pipeline (package consumer with
// the real Redis store) with a raw batched kafka-go passthrough that fetches
// the same batches with the same reader configuration, writes them unchanged
// with a writer configured like the pipeline's (RequiredAcks all, Hash
// balancer, BatchTimeout 50µs, BatchBytes 1 MiB) and commits synchronously,
// without decoding and without Redis. Both run in the same process, one
// after the other and alternately, against the same in-process kfake broker
// (on a real TCP port) and the same redis-server; the figure that matters is
// the ratio of their rates, breaker / passthrough (goal: at least 0.9).
//
// One benchmark iteration is one full comparison, so run it once:
//
//	go test -run '^$' -bench Throughput -benchtime 1x -timeout 60m ./bench
//
// It needs redis-server on PATH. The environment tunes it:
//
//	BENCH_ACTIONS  actions per run (default 1000000; 20000 for a quick run)
//	BENCH_BATCH    kafka.batch_size of both sides (default: the config default, 2000)
//	BENCH_ROUNDS   passthrough+breaker pairs (default 3: P, B, P, B, P, B; medians reported)
//	BENCH_TRIP     1 gives rule-02 max_actions 20000: it trips after about 11 s of
//	               event time (110,000 actions) in each breaker run, and then
//	               its actions (about 9% of 1,000,000) go to the held topic
//	BENCH_MEMSTORE 1 adds to each round a diagnostic run of the pipeline on the
//	               in-process store.Memory instead of Redis, to split the gap
//	               between the Redis call and the pipeline's own work
//	BENCH_HEAPPROFILE a path: write a heap profile there at the end, while the
//	               broker still runs (-memprofile is written after it stopped)
//
// To see where the breaker's time goes, add -cpuprofile cpu.out (and
// -o bench.test to keep the binary somewhere else than the working
// directory); the breaker's goroutines carry the pprof label
// variant=breaker and the passthrough's variant=passthrough. Unlabelled are
// the in-process broker, the setup, the garbage collector's background
// workers and the connection goroutines of kafka-go's shared default
// transport, which the writers of both sides use:
//
//	go tool pprof -top -tagfocus variant=breaker bench.test cpu.out
package bench

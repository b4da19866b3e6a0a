// Package bench holds the end-to-end throughput benchmark of Breakwater.
//
// BenchmarkThroughput compares the breakwater binary (the daemon, with the
// real Redis store) with a raw batched kafka-go passthrough binary
// (bench/passthrough) that fetches batches like the pipeline, writes them
// unchanged with a writer configured like the pipeline's (RequiredAcks all,
// Hash balancer, BatchTimeout 50µs, BatchBytes 1 MiB) and commits each
// batch synchronously, without decoding and without Redis. Each runs in a
// process of its own, one after the other and alternately, against the same
// broker process (the test bed's kafkad) and the same redis-server; the
// figures that matter are the ratio of their rates, breaker / passthrough
// (goal: at least 0.9), and the ratio of their own CPU time per action
// (goal: at most 1.5).
//
// For each run it prints the rate over the span (from the first batch in
// hand to the last commit, on the measured process's clock, so the group
// join is left out), the CPU time per action of the measured process, the
// broker and redis-server (from the kernel: rusage, /proc/PID/stat, INFO
// cpu), the process's peak RSS, the requests the broker received per 1,000
// actions by API with their kilobytes (kafkad -stats counts them; the
// medians of each side close the report), and where the span went per
// batch. The
// passthrough has one lane (fetch, encode, write, commit). The breaker has
// three lanes that overlap, each adding up to the span (the commit lane
// exactly, the others up to their last batch): the decide lane (fetch,
// store call, the rest of deciding, encode, handoff to the writer), the
// write lane (wait for a decided batch, write, handoff to the committer)
// and the commit lane (wait for a written batch, commit, account), from
// the daemon's breakwater_pipeline_stage_seconds_total; its partition
// readers' decoding (timed on every 8th message) overlaps them all.
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
//	BENCH_PROFILE  a path: one more run of each side, not counted in the
//	               figures, writes a CPU profile there (breakwater run
//	               --cpuprofile) and beside it with -passthrough in the name
//	               (make bench keeps them in bin/)
//
// To see where the breaker's time goes:
//
//	go tool pprof -top bin/bench-breaker.pprof
package bench

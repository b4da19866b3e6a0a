// Package testbed starts real components for integration tests: an
// in-process Kafka-protocol cluster (kfake) listening on real TCP ports of
// 127.0.0.1, a real redis-server process, the kcat command line client, and
// binaries built from this module and run as subprocesses.
//
// Every constructor takes a testing.TB and registers its own cleanup with
// t.Cleanup, so tests never have to stop anything themselves. Helpers that
// take a testing.TB fail the test with t.Fatal on error, so they must be
// called from the goroutine running the test, like t.Fatal itself.
//
// No helper ever skips a test: a missing tool (redis-server, kcat, go) is a
// test failure with an installation hint.
package testbed

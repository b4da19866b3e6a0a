// Package e2e holds Breakwater's end-to-end tests. They run the daemon, in
// process through daemon.Run or as the built cmd/breakwater binary, against
// a Kafka-protocol cluster (kfake) over TCP and a real redis-server, both
// started by the tests on free ports of 127.0.0.1 through internal/testbed,
// and check what arrives on the gated, held and dead-letter topics.
//
// The package has no code of its own: everything is in its _test.go files.
// A missing tool (redis-server, kcat, go) fails the tests with an install
// hint; nothing is skipped.
package e2e

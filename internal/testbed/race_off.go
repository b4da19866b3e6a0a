//go:build !race

package testbed

// raceEnabled reports whether this test binary was built with -race, so that
// BuildBinary builds the binaries under test the same way.
const raceEnabled = false

// Command sigterm is a tiny daemon for the testbed tests: it prints "ready",
// then waits for SIGTERM and exits with status 0 after printing "bye", or
// ignores SIGTERM when started with -ignore.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ignore := flag.Bool("ignore", false, "ignore SIGTERM")
	flag.Parse()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	fmt.Printf("ready %s\n", os.Getenv("SIGTERM_GREETING"))
	fmt.Fprintln(os.Stderr, "stderr works")
	for range ch {
		if !*ignore {
			fmt.Println("bye")
			return
		}
		fmt.Println("ignoring SIGTERM")
	}
}

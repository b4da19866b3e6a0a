// Command kafkad runs a kfake Kafka-protocol cluster in its own process, so
// that a test can restart it (SIGTERM, then start it again on the same ports
// with the same data directory) without restarting itself, and so that the
// brokers' work does not share a process with the test's checks. Package
// testbed starts it (testbed.OwnProcess); it is not part of the product.
//
// Usage:
//
//	kafkad -ports 0,0,0 -data DIR -addrs FILE [-min-session-timeout 1s] [-stats 127.0.0.1:PORT]
//
// With -stats it counts the requests its brokers receive, by API, with the
// bytes of the requests and their responses, and serves the counts so far
// as JSON over HTTP on that address.
//
// It writes the brokers' host:port addresses, one a line, to FILE (through a
// rename, so a reader never sees half of it) once they listen, and runs until
// SIGTERM or SIGINT, when it saves its state to DIR and exits 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("kafkad", flag.ContinueOnError)
	ports := fs.String("ports", "0", "comma-separated ports of the brokers, 0 for a kernel-chosen one; their number is the number of brokers")
	data := fs.String("data", "", "data directory (kfake.DataDir); empty keeps everything in memory")
	addrs := fs.String("addrs", "", "file to write the brokers' addresses to, one a line")
	minSession := fs.Duration("min-session-timeout", 0, "smallest consumer group session timeout accepted (0: kfake's default)")
	autoCreate := fs.Int("auto-create", 0, "create unknown topics with this many partitions (0: off)")
	statsAddr := fs.String("stats", "", "serve the counts of requests by API as JSON over HTTP on this address (empty: off)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	var ps []int
	for _, s := range strings.Split(*ports, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || p < 0 || p > 65535 {
			fmt.Fprintf(os.Stderr, "kafkad: -ports: bad port %q\n", s)
			return 2
		}
		ps = append(ps, p)
	}
	if *addrs == "" {
		fmt.Fprintln(os.Stderr, "kafkad: -addrs is required")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	opts := []kfake.Opt{kfake.Ports(ps...), kfake.ClusterID("testbed")}
	if *data != "" {
		opts = append(opts, kfake.DataDir(*data))
	}
	if *minSession > 0 {
		opts = append(opts, kfake.GroupMinSessionTimeout(*minSession))
	}
	if *autoCreate > 0 {
		opts = append(opts, kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(*autoCreate))
	}
	if *statsAddr != "" {
		st := newRequestStats()
		ln, err := net.Listen("tcp", *statsAddr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kafkad: -stats: %v\n", err)
			return 1
		}
		srv := &http.Server{Handler: st, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		opts = append(opts, kfake.ListenFn(st.listen))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kafkad: %v\n", err)
		return 1
	}
	tmp := *addrs + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(c.ListenAddrs(), "\n")+"\n"), 0o644); err == nil {
		err = os.Rename(tmp, *addrs)
	}
	if err != nil {
		c.Close()
		fmt.Fprintf(os.Stderr, "kafkad: writing addresses: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "kafkad: %d brokers listening on %s\n", len(ps), strings.Join(c.ListenAddrs(), ","))
	<-ctx.Done()
	start := time.Now()
	c.Close()
	fmt.Fprintf(os.Stderr, "kafkad: stopped in %v\n", time.Since(start).Round(time.Millisecond))
	return 0
}

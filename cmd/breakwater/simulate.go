package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/replay"
	"github.com/breakwater/breakwater/traffic"
)

// incidents collects repeated --incident flags.
type incidents []traffic.Incident

func (i *incidents) String() string { return fmt.Sprint(*i) }

func (i *incidents) Set(s string) error {
	if s == "none" {
		*i = append(*i, traffic.Incident{Kind: "none"})
		return nil
	}
	in, err := traffic.ParseIncident(s)
	if err != nil {
		return err
	}
	*i = append(*i, in)
	return nil
}

func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sc traffic.Scenario
	var ins incidents
	start := fs.String("start", "2026-11-23T06:00:00Z", "event time of the first action (RFC 3339)")
	fs.DurationVar(&sc.Duration, "duration", 12*time.Hour, "event time to generate")
	fs.IntVar(&sc.Rules, "rules", 20, "number of rules (a few large, a long tail of small ones)")
	fs.Float64Var(&sc.Rate, "rate", 10, "mean actions per second across all rules")
	fs.Float64Var(&sc.Diurnal, "diurnal", 0.5, "amplitude of the daily cycle, 0..1 (peak at 15:00 UTC)")
	fs.Float64Var(&sc.Noise, "noise", 0.1, "relative noise of each rule's rate from minute to minute, 0..1")
	fs.Int64Var(&sc.Seed, "seed", 1, "random seed: the same flags and seed give the same output")
	fs.Var(&ins, "incident", "inject an incident KIND[:rule=N,at=DUR,for=DUR,factor=X,...], repeatable; kinds: spike, broad, ramp, new_rule, malformed, release (a new model version: version=V); rules=1+4+9 for several rules, rise=DUR to climb then stay, region=R for one region; \"none\" for normal traffic only (default: spike:rule=2,at=7h,for=30m,factor=8)")
	output := fs.String("output", "-", "JSON Lines file to write (- for stdout; a name ending in .gz is gzipped)")
	toTopic := fs.String("to-topic", "", "produce to this Kafka topic instead of writing JSON Lines (keyed by target id)")
	brokers := fs.String("brokers", "", "Kafka bootstrap brokers for --to-topic, comma separated (default: kafka.brokers of --config)")
	cfgPath := fs.String("config", "", "with --to-topic: the daemon's configuration, for its Kafka brokers, TLS and SASL settings (environment overrides apply)")
	labelsPath := fs.String("labels", "", "also write, per action, whether an injected incident produced it: one JSON line per output line, {line, action_id, incident, kind, malformed}, for breakwater replay --labels")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: breakwater simulate [flags] > actions.jsonl\n\n"+
			"Writes realistic synthetic classifier traffic: many rules with daily cycles\n"+
			"and noise, and injected incidents, in event-time order.\n\n")
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	t, err := time.Parse(time.RFC3339Nano, *start)
	if err != nil {
		fmt.Fprintf(stderr, "breakwater simulate: --start: %v\n", err)
		return 2
	}
	sc.Start = t
	if len(ins) == 0 {
		ins = incidents{{Kind: traffic.Spike, Rule: 2, At: 7 * time.Hour, For: 30 * time.Minute, Factor: 8}}
	}
	for _, in := range ins {
		if in.Kind != "none" {
			sc.Incidents = append(sc.Incidents, in)
		}
	}
	if err := sc.Validate(); err != nil {
		fmt.Fprintf(stderr, "breakwater simulate: %v\n", err)
		return 2
	}
	sim := traffic.NewSimulation(sc)
	if *toTopic != "" {
		cfg := config.Default()
		if *cfgPath != "" {
			if cfg, err = config.LoadWithEnv(*cfgPath, os.LookupEnv); err != nil {
				fmt.Fprintf(stderr, "breakwater simulate: %v\n", err)
				return 2
			}
		}
		if *brokers != "" {
			cfg.Kafka.Brokers = strings.Split(*brokers, ",")
		}
		return produce(ctx, sim, *toTopic, cfg, stderr)
	}
	var w io.Writer = stdout
	var closers []io.Closer
	if *output != "-" {
		f, err := os.Create(*output)
		if err != nil {
			fmt.Fprintf(stderr, "breakwater simulate: %v\n", err)
			return 1
		}
		w, closers = f, append(closers, f)
		if strings.HasSuffix(*output, ".gz") {
			zw := gzip.NewWriter(f)
			w, closers = zw, append([]io.Closer{zw}, closers...)
		}
	}
	var lw *replay.LabelWriter
	if *labelsPath != "" {
		lf, err := os.Create(*labelsPath)
		if err != nil {
			fmt.Fprintf(stderr, "breakwater simulate: --labels: %v\n", err)
			return 1
		}
		lw, closers = replay.NewLabelWriter(lf), append(closers, lf)
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	var line []byte
	var n int64
	for ok := true; ok; {
		line, ok = sim.Next(line[:0])
		if !ok {
			break
		}
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			fmt.Fprintf(stderr, "breakwater simulate: write: %v\n", err)
			return 1
		}
		n++
		if lw != nil {
			if err := lw.Write(simLabel(sim, sc, n)); err != nil {
				fmt.Fprintf(stderr, "breakwater simulate: --labels: %v\n", err)
				return 1
			}
		}
	}
	err = bw.Flush()
	if lw != nil && err == nil {
		err = lw.Flush()
	}
	for _, c := range closers {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "breakwater simulate: write: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "simulate: %d actions, %s of event time from %s, incidents: %v\n", n, sc.Duration, sc.Start.UTC().Format(time.RFC3339), sc.Incidents)
	return 0
}

func produce(ctx context.Context, sim *traffic.Simulation, topic string, cfg config.Config, stderr io.Writer) int {
	if len(cfg.Kafka.Brokers) == 0 {
		fmt.Fprintln(stderr, "breakwater simulate: --brokers (or kafka.brokers in --config) is required with --to-topic")
		return 2
	}
	kc, err := cliKafka(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "breakwater simulate: %v\n", err)
		return 2
	}
	tr := kc.Transport()
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr: kc.Addr(), Transport: tr, Topic: topic,
		Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 1000,
	}
	defer func() {
		if err := w.Close(); err != nil {
			fmt.Fprintf(stderr, "breakwater simulate: close the producer: %v\n", err)
		}
	}()
	var n int64
	batch := make([]kafka.Message, 0, 1000)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := w.WriteMessages(ctx, batch...)
		batch = batch[:0]
		return err
	}
	for {
		v, ok := sim.Next(nil)
		if !ok {
			break
		}
		batch = append(batch, kafka.Message{Key: bytes.Clone(sim.Key()), Value: v, Time: sim.At()})
		n++
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				fmt.Fprintf(stderr, "breakwater simulate: produce to %s: %v\n", topic, err)
				return 1
			}
		}
	}
	if err := flush(); err != nil {
		fmt.Fprintf(stderr, "breakwater simulate: produce to %s: %v\n", topic, err)
		return 1
	}
	fmt.Fprintf(stderr, "simulate: produced %d actions to %s\n", n, topic)
	return 0
}

// simLabel returns the label of the simulation's last event, line n.
func simLabel(sim *traffic.Simulation, sc traffic.Scenario, n int64) replay.Label {
	l := sim.Label()
	lb := replay.Label{Line: n, ActionID: sim.ActionID(), Incident: l.Incident, Malformed: l.Malformed}
	if l.Incident > 0 {
		lb.Kind = string(sc.Incidents[l.Incident-1].Kind)
	}
	return lb
}

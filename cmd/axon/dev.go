package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/axon-hs/axon/internal/devcluster"
)

// cmdDev holds the developer tools:
//
//	axon dev cluster up|down|status [flags]
func cmdDev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 || args[0] != "cluster" {
		fmt.Fprint(stderr, devUsage)
		return exitUsage
	}
	switch args[1] {
	case "up":
		return devClusterUp(ctx, args[2:], stdout, stderr)
	case "down":
		return devClusterDown(args[2:], stdout, stderr)
	case "status":
		return devClusterStatus(ctx, args[2:], stdout, stderr)
	}
	fmt.Fprint(stderr, devUsage)
	return exitUsage
}

const devUsage = `usage: axon dev cluster up|down|status [flags]

  up       start a local cluster on 127.0.0.1: PostgreSQL, 3 NATS JetStream
           nodes, etcd, axon workers per role and haproxy in front; print
           the client URL and return (the processes keep running)
  down     stop every process recorded in the state directory, by PID
  status   show the recorded processes, their readiness and the proxy's view

Run "axon dev cluster up --help" for the flags.
`

const devDefaultDir = "./axon-cluster"

func devClusterUp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("axon dev cluster up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", devDefaultDir, "state directory: data, logs, binaries, state.json")
	counts := map[devcluster.Role]*int{}
	for _, r := range devcluster.Roles() {
		counts[r] = fs.Int(string(r), 1, "number of "+string(r)+" workers")
	}
	slots := fs.Int("slots", 0, "proxy slots per HTTP role (0: the most workers of a role plus 2, at least 4)")
	serverName := fs.String("server-name", "localhost", "Matrix server name")
	replicas := fs.Int("nats-replicas", 0, "replicas of the streams (0: 3 when axon serve supports --nats-replicas, else 1)")
	logLevel := fs.String("log-level", "info", "the workers' log level")
	axonBin := fs.String("axon", "", "prebuilt axon binary for the workers (default: build ./cmd/axon)")
	repo := fs.String("repo", "", "root of the axon source tree (default: found from the working directory)")
	foreground := fs.Bool("foreground", false, "stay in the foreground and stop the cluster on Ctrl-C or SIGTERM")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	workers := map[devcluster.Role]int{}
	for r, n := range counts {
		workers[r] = *n
	}
	start := time.Now()
	c, err := devcluster.Start(ctx, devcluster.Options{
		Dir: *dir, Repo: *repo, Axon: *axonBin, Workers: workers, Slots: *slots, ServerName: *serverName,
		NATSReplicas: *replicas, LogLevel: *logLevel, Detach: !*foreground,
		Progress: func(s string) { fmt.Fprintf(stderr, "axon dev cluster: %s\n", s) },
	})
	if err != nil {
		fmt.Fprintf(stderr, "axon dev cluster up: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stderr, "axon dev cluster: up in %s; NATS streams with %d replica(s); state in %s\n",
		time.Since(start).Round(100*time.Millisecond), c.NATSReplicas(), c.Dir())
	if !c.ReplicasConfigurable() {
		fmt.Fprintln(stderr, "axon dev cluster: axon serve has no --nats-replicas yet: the streams have one replica")
	}
	fmt.Fprintln(stdout, c.ClientURL())
	if !*foreground {
		return exitOK
	}
	<-ctx.Done()
	fmt.Fprintln(stderr, "axon dev cluster: stopping")
	if err := c.Stop(); err != nil {
		fmt.Fprintf(stderr, "axon dev cluster: %v\n", err)
		return exitFailed
	}
	return exitOK
}

func devClusterDown(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("axon dev cluster down", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", devDefaultDir, "state directory of the cluster")
	keep := fs.Bool("keep", false, "keep the state directory (data and logs)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if err := devcluster.StopDir(*dir); err != nil {
		fmt.Fprintf(stderr, "axon dev cluster down: %v\n", err)
		return exitFailed
	}
	if !*keep {
		if _, err := devcluster.ReadState(*dir); err == nil {
			// Only a directory that holds a cluster's state is removed.
			if err := os.RemoveAll(*dir); err != nil {
				fmt.Fprintf(stderr, "axon dev cluster down: %v\n", err)
				return exitFailed
			}
		}
	}
	fmt.Fprintln(stdout, "stopped")
	return exitOK
}

func devClusterStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("axon dev cluster status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", devDefaultDir, "state directory of the cluster")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	st, err := devcluster.ReadState(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "axon dev cluster status: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "client URL   %s\ndatabase     %s\nNATS         %s (streams: %d replica(s))\netcd         %s\n\n",
		st.ClientURL, st.DatabaseURL, strings.Join(st.NATSURLs, ","), st.NATSReplicas, st.EtcdURL)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPID\tSTATE\tLISTEN\tREADY")
	down := 0
	for _, p := range st.Processes {
		state, ready := "running", ""
		if !p.Alive() {
			state, down = "gone", down+1
		} else if p.Kind == "worker" {
			ready = "yes"
			if err := devcluster.ProbeReady(ctx, p.Listen); err != nil {
				ready = err.Error()
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", p.Name, p.PID, state, p.Listen, ready)
	}
	_ = tw.Flush()
	if down > 0 {
		return exitFailed
	}
	return exitOK
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/axon-hs/axon/loadtest/bench"
)

// cmdLoadtest runs client-side load tools against a running server.
//
//	axon loadtest bench --target URL [--pid N] [--scale F] [--title T]
func cmdLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "bench" {
		fmt.Fprintln(stderr, "usage: axon loadtest bench --target URL [--pid N] [--scale F] [--title T]")
		return exitUsage
	}
	fs := flag.NewFlagSet("axon loadtest bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("target", "http://localhost:8008", "base URL of the server's Client-Server API")
	pid := fs.Int("pid", 0, "PID of the server process, to report its CPU time per event")
	scale := fs.Float64("scale", 1, "multiply the message counts of the scenarios")
	title := fs.String("title", "axon bench", "title of the result table")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	res, err := bench.Run(ctx, bench.Config{Target: *target, PID: *pid, Scale: *scale})
	bench.Print(stdout, *title, res)
	if err != nil {
		fmt.Fprintf(stderr, "axon loadtest bench: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// Command axon is the Axon homeserver binary. Every role runs from it,
// chosen with --roles; see internal/config for the settings.
//
// Subcommands available today:
//
//	axon version    print the version and the supported room versions
//	axon migrate    apply the database migrations once (under a lease) and exit
//
// axon serve and axon user are part of issue #3 and not in this build; the
// binary says so rather than pretending.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func run(ctx context.Context, args, env []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "version", "--version", "-version":
		return cmdVersion(stdout)
	case "migrate":
		return cmdMigrate(ctx, rest, env, stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return exitOK
	case "serve", "user":
		fmt.Fprintf(stderr, "axon %s: not in this build yet (the server and its admin commands are issue #3); this build has: version, migrate\n", cmd)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "axon: unknown command %q\n", cmd)
		usage(stderr)
		return exitUsage
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: axon <command> [flags]

commands:
  version   print the version and the supported room versions
  migrate   apply the database migrations and exit (run once per rollout)

Run "axon migrate --help" for the settings; every flag has an AXON_*
environment equivalent and a key in the optional --config YAML file.
`)
}

// exitForLoadError prints a configuration error and picks the exit code.
func exitForLoadError(err error, stdout, stderr io.Writer, printDefaults func(io.Writer) error) int {
	if errors.Is(err, flag.ErrHelp) {
		_ = printDefaults(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "axon: configuration:\n%v\n", err)
	return exitUsage
}

// Command axon is the Axon homeserver binary. Every role runs from it,
// chosen with --roles; see internal/config for the settings.
//
// Subcommands available today:
//
//	axon serve      run the server (every role by default)
//	axon migrate    apply the database migrations once (under a lease) and exit
//	axon user       create users and administrators from the command line
//	axon version    print the version and the supported room versions
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
	case "serve":
		return cmdServe(ctx, rest, env, stdout, stderr)
	case "user":
		return cmdUser(ctx, rest, env, stdout, stderr)
	case "key":
		return cmdKey(ctx, rest, env, stdout, stderr)
	case "loadtest":
		return cmdLoadtest(ctx, rest, stdout, stderr)
	case "dev":
		return cmdDev(ctx, rest, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "axon: unknown command %q\n", cmd)
		usage(stderr)
		return exitUsage
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: axon <command> [flags]

commands:
  serve     run the server (all roles unless --roles says otherwise)
  migrate   apply the database migrations and exit (run once per rollout)
  user      create a user: axon user create [--admin] [--password-file F] LOCALPART
  key       rotate the signing key: axon key rotate
  version   print the version and the supported room versions
  dev       a local cluster: axon dev cluster up|down|status

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

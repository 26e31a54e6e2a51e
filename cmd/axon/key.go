package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/axon-hs/axon/internal/config"
	"github.com/axon-hs/axon/internal/signingkey"
)

const keyUsage = `usage: axon key rotate [settings]

Replaces the signing key in the key file (signing_key_path): the key in
use is kept as an old key, published under old_verify_keys with the time
of the rotation, and a new key signs from now on. Servers read the key
file when they start, so restart them (one at a time) afterwards; until
then they sign with the old key, which other servers still accept.
`

// cmdKey is the operators' signing key tool.
func cmdKey(_ context.Context, args, env []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "rotate" {
		fmt.Fprint(stderr, keyUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("axon key rotate", flag.ContinueOnError)
	cfg, err := config.LoadFlags(fs, args[1:], env, os.ReadFile)
	if err != nil {
		return exitForLoadError(err, stdout, stderr, func(w io.Writer) error {
			fmt.Fprint(w, keyUsage+"\n")
			return config.PrintDefaults(w)
		})
	}
	if len(cfg.Args) != 0 {
		fmt.Fprint(stderr, keyUsage)
		return exitUsage
	}
	k, err := signingkey.Rotate(cfg.SigningKeyPath, time.Now(), nil)
	if err != nil {
		fmt.Fprintf(stderr, "axon key rotate: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "new signing key %s in %s; restart the servers to sign with it\n", k.ID, cfg.SigningKeyPath)
	return exitOK
}

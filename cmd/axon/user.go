package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/axon-hs/axon/internal/config"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/services/accounts"
)

const userUsage = `usage: axon user create [--admin] [--password-file FILE] [settings] LOCALPART

Creates a local user directly in the database (the server need not run).
The password is read from --password-file, or else from the first line of
standard input; it is never taken from the command line, where other users
of the machine could read it.
`

// cmdUser is the operators' account tool.
func cmdUser(ctx context.Context, args, env []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprint(stderr, userUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("axon user create", flag.ContinueOnError)
	admin := fs.Bool("admin", false, "make the user a server administrator")
	pwFile := fs.String("password-file", "", "file whose first line is the password (default: standard input)")
	cfg, err := config.LoadFlags(fs, args[1:], env, os.ReadFile)
	if err != nil {
		return exitForLoadError(err, stdout, stderr, func(w io.Writer) error {
			fmt.Fprint(w, userUsage+"\n")
			return config.PrintDefaults(w)
		})
	}
	if len(cfg.Args) != 1 {
		fmt.Fprint(stderr, userUsage)
		return exitUsage
	}
	localpart := cfg.Args[0]
	var pwSource io.Reader = os.Stdin
	if *pwFile != "" {
		f, err := os.Open(*pwFile)
		if err != nil {
			fmt.Fprintf(stderr, "axon user create: %v\n", err)
			return exitFailed
		}
		defer f.Close()
		pwSource = f
	}
	line, err := bufio.NewReader(io.LimitReader(pwSource, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintf(stderr, "axon user create: reading the password: %v\n", err)
		return exitFailed
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		fmt.Fprintln(stderr, "axon user create: the password is empty")
		return exitUsage
	}
	log := newLogger(cfg, stderr)
	if cfg.DatabaseKind() == config.DatabaseSQLite {
		if err := os.MkdirAll(filepath.Dir(cfg.Database), 0o700); err != nil {
			fmt.Fprintf(stderr, "axon user create: %v\n", err)
			return exitFailed
		}
	}
	db, err := store.Open(ctx, cfg.Database, store.Options{ApplicationName: "axon-user", Logger: log, Migrations: allMigrations()})
	if err != nil {
		fmt.Fprintf(stderr, "axon user create: database: %v\n", err)
		return exitFailed
	}
	defer db.Close()
	if cfg.DatabaseKind() == config.DatabaseSQLite {
		err = db.Migrate(ctx)
	} else {
		err = db.CheckSchema(ctx, db.LatestVersion())
	}
	if err != nil {
		fmt.Fprintf(stderr, "axon user create: database schema: %v\n", err)
		return exitFailed
	}
	acc, err := accounts.New(db, accounts.Config{ServerName: cfg.ServerName, Registration: string(cfg.Registration), Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "axon user create: %v\n", err)
		return exitFailed
	}
	uid, err := acc.CreateUser(ctx, localpart, password, *admin)
	if err != nil {
		fmt.Fprintf(stderr, "axon user create: %v\n", err)
		return exitFailed
	}
	kind := "user"
	if *admin {
		kind = "administrator"
	}
	fmt.Fprintf(stdout, "created %s %s\n", kind, uid)
	return exitOK
}

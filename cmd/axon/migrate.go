package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/axon-hs/axon/internal/config"
	"github.com/axon-hs/axon/internal/store"
)

// cmdMigrate applies every migration the binary knows to the configured
// database and exits: in Kubernetes it runs as the pre-upgrade Job, so that
// serving processes never migrate. Concurrent runs are safe: the store takes
// a lease and the second one waits.
func cmdMigrate(ctx context.Context, args, env []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(args, env, os.ReadFile)
	if err != nil {
		return exitForLoadError(err, stdout, stderr, config.PrintDefaults)
	}
	log := newLogger(cfg, stderr)
	if cfg.DatabaseKind() == config.DatabaseSQLite {
		// The embedded default keeps its database in the data directory.
		if err := os.MkdirAll(filepath.Dir(cfg.Database), 0o700); err != nil {
			log.Error("cannot create the database directory", "err", err)
			return exitFailed
		}
	}
	db, err := store.Open(ctx, cfg.Database, store.Options{ApplicationName: "axon-migrate", Logger: log, Migrations: allMigrations()})
	if err != nil {
		log.Error("cannot open the database", "kind", cfg.DatabaseKind(), "err", err)
		return exitFailed
	}
	defer db.Close()
	before, err := db.SchemaVersion(ctx)
	if err != nil {
		log.Error("cannot read the schema version", "err", err)
		return exitFailed
	}
	if err := db.Migrate(ctx); err != nil {
		log.Error("migration failed", "err", err)
		return exitFailed
	}
	after, err := db.SchemaVersion(ctx)
	if err != nil {
		log.Error("cannot read the schema version", "err", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "schema version %d (was %d; this binary knows up to %d)\n", after, before, db.LatestVersion())
	return exitOK
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel.Level()}
	if cfg.LogFormat == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

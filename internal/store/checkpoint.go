package store

import (
	"context"
	"database/sql"
	"log/slog"
	"time"
)

// SQLite in WAL mode copies the log back into the database file in a
// checkpoint, which by default the commit that crosses 1,000 log pages
// runs itself, fsync included: on the single writer connection that
// stalls every writer of the process for the duration, a tail latency
// that /sync's send-to-visible figures showed. A checkpointer instead
// runs passive checkpoints on a connection of its own every
// checkpointInterval: they copy what no reader still needs while the
// writer goes on, and the writer's own checkpoints only start when the
// log reaches walSafetyCheckpointPages (the checkpointer fell behind, or
// a long reader kept it from finishing).
const (
	checkpointInterval       = 250 * time.Millisecond
	walSafetyCheckpointPages = 16_384 // 64 MiB of 4 KiB pages
)

type checkpointer struct {
	db     *sql.DB
	cancel context.CancelFunc
	done   chan struct{}
}

func startCheckpointer(db *sql.DB, log *slog.Logger) *checkpointer {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		t := time.NewTicker(checkpointInterval)
		defer t.Stop()
		failing := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var busy, logPages, copied int
			err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logPages, &copied)
			switch {
			case err != nil && ctx.Err() == nil && !failing:
				// Not fatal: the writer's own checkpoints take over.
				log.Warn("store: background WAL checkpoint failed; the writer checkpoints itself meanwhile", "err", err)
				failing = true
			case err == nil && failing:
				log.Info("store: background WAL checkpoints work again")
				failing = false
			}
		}
	}()
	return c
}

// stop ends the checkpointer and closes its connection.
func (c *checkpointer) stop() {
	c.cancel()
	<-c.done
	_ = c.db.Close()
}

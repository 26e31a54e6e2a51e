package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBackgroundCheckpoint: on SQLite the WAL is copied into the database
// file by the background checkpointer, not by the writer's commits (whose
// own checkpoints start only at walSafetyCheckpointPages).
func TestBackgroundCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ckpt.db")
	db := open(t, path, Options{})
	ctx := testCtx(t)
	var auto int
	if err := db.w.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != walSafetyCheckpointPages {
		t.Fatalf("writer's wal_autocheckpoint = %d, %v; want %d", auto, err, walSafetyCheckpointPages)
	}
	if _, err := db.Exec(ctx, `CREATE TABLE ckpt (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	// About 4 MiB in one transaction: ~1,000 pages, below the writer's
	// threshold, so only the checkpointer moves them into the file.
	err := db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
		for i := range 1000 {
			if _, err := tx.Exec(ctx, `INSERT INTO ckpt (id, v) VALUES ($1, $2)`, i, strings.Repeat("x", 4000)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() >= 4_000_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file is %d bytes 10 s after the commit: the WAL was not checkpointed", fi.Size())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

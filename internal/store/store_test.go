package store

import (
	"context"
	"github.com/axon-hs/axon/internal/testenv"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for the test admin connection
)

type engine = testenv.Engine

// forEachEngine runs f as a subtest on every engine.
func forEachEngine(t *testing.T, f func(t *testing.T, e engine)) { testenv.ForEachEngine(t, f) }

func open(t *testing.T, dsn string, opts Options) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := Open(ctx, dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// openMigrated opens a fresh database of engine e with all migrations applied.
func openMigrated(t *testing.T, e engine, opts Options) *DB {
	t.Helper()
	db := open(t, e.NewDSN(t), opts)
	if err := db.Migrate(testCtx(t)); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestOpenKind(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := open(t, e.NewDSN(t), Options{})
		switch db.Kind() {
		case KindSQLite, KindPostgres, KindCockroach:
		default:
			t.Fatalf("Kind = %q", db.Kind())
		}
		if (db.Kind() == KindSQLite) != (e.Name == "sqlite") {
			t.Fatalf("engine %s opened as %s", e.Name, db.Kind())
		}
		if err := db.Ping(testCtx(t)); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

func TestOpenRejectsNonFileSQLite(t *testing.T) {
	for _, dsn := range []string{"", ":memory:", "file:x.db", "x.db?_txlock=deferred"} {
		if db, err := Open(context.Background(), dsn, Options{}); err == nil {
			_ = db.Close()
			t.Errorf("Open(%q) succeeded, want an error", dsn)
		}
	}
}

func TestSQLitePragmas(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "p.db"), Options{})
	ctx := testCtx(t)
	var mode string
	var fk int
	if err := db.QueryRow(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	if err := db.QueryRow(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}
}

func TestSQLiteReadPoolIsReadOnly(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "r.db"), Options{})
	ctx := testCtx(t)
	if _, err := db.Exec(ctx, "CREATE TABLE t (x BIGINT)"); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(ctx, "INSERT INTO t (x) VALUES (1) RETURNING x")
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
	}
	if err == nil {
		t.Fatal("a write through Query succeeded on SQLite; the read pool must be query_only")
	}
}

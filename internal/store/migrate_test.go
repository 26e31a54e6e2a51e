package store

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

// counterMigrations is a migration set whose second migration is
// deliberately not idempotent: test_counter.n counts its applications.
func counterMigrations() fs.FS {
	return fstest.MapFS{
		"9001_counter_table.sql": {Data: []byte(`CREATE TABLE IF NOT EXISTS test_counter (
			id {{bigint}} PRIMARY KEY, n {{bigint}} NOT NULL)`)},
		"9002_count.sql": {Data: []byte(`INSERT INTO test_counter (id, n) VALUES (1, 1)
			ON CONFLICT (id) DO UPDATE SET n = test_counter.n + 1;
			INSERT INTO test_counter (id, n) VALUES (2, 1)
			ON CONFLICT (id) DO UPDATE SET n = test_counter.n + 1`)},
	}
}

func applications(t *testing.T, db *DB) (a, b int) {
	t.Helper()
	ctx := testCtx(t)
	if err := db.QueryRow(ctx, "SELECT n FROM test_counter WHERE id = 1").Scan(&a); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, "SELECT n FROM test_counter WHERE id = 2").Scan(&b); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestMigrateAppliesOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dsn := e.NewDSN(t)
		db := open(t, dsn, Options{Migrations: []fs.FS{counterMigrations()}})
		ctx := testCtx(t)
		if v, err := db.SchemaVersion(ctx); err != nil || v != 0 {
			t.Fatalf("SchemaVersion before Migrate = %d, %v; want 0", v, err)
		}
		if err := db.CheckSchema(ctx, db.LatestVersion()); !errors.Is(err, ErrSchemaTooOld) {
			t.Fatalf("CheckSchema on an empty database = %v, want ErrSchemaTooOld", err)
		}
		for range 2 {
			if err := db.Migrate(ctx); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
		}
		// Both statements of the multi-statement migration ran, once.
		if a, b := applications(t, db); a != 1 || b != 1 {
			t.Fatalf("counter migration applied %d/%d times, want 1/1", a, b)
		}
		if got := db.LatestVersion(); got != 9002 {
			t.Fatalf("LatestVersion = %d, want 9002", got)
		}
		if v, err := db.SchemaVersion(ctx); err != nil || v != 9002 {
			t.Fatalf("SchemaVersion = %d, %v; want 9002", v, err)
		}
		if err := db.CheckSchema(ctx, db.LatestVersion()); err != nil {
			t.Fatalf("CheckSchema(latest): %v", err)
		}
		if err := db.CheckSchema(ctx, 9003); !errors.Is(err, ErrSchemaTooOld) {
			t.Fatalf("CheckSchema(9003) = %v, want ErrSchemaTooOld", err)
		}
		var n int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != len(db.Migrations()) {
			t.Fatalf("schema_migrations rows = %d, %v; want %d", n, err, len(db.Migrations()))
		}
		// The previous release (which knows fewer migrations) accepts the
		// newer schema: expand/contract makes N-1 run on N's schema.
		old := open(t, dsn, Options{})
		if err := old.CheckSchema(ctx, old.LatestVersion()); err != nil {
			t.Fatalf("N-1 on N's schema: %v", err)
		}
	})
}

// TestMigrateConcurrent races four migrators — two goroutines on each of two
// handles — and checks that every migration was applied exactly once.
func TestMigrateConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dsn := e.NewDSN(t)
		opts := Options{Migrations: []fs.FS{counterMigrations()}, MigrationPoll: 20 * time.Millisecond}
		dbs := []*DB{open(t, dsn, opts), open(t, dsn, opts)}
		ctx := testCtx(t)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for i := range 4 {
			wg.Go(func() { errs <- dbs[i%2].Migrate(ctx) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("Migrate: %v", err)
			}
		}
		if a, b := applications(t, dbs[0]); a != 1 || b != 1 {
			t.Fatalf("counter migration applied %d/%d times, want 1/1", a, b)
		}
	})
}

// TestApplyIsIdempotent calls apply directly, without the lock, from two
// goroutines: the in-transaction check must still apply it once.
func TestApplyIsIdempotent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := open(t, e.NewDSN(t), Options{Migrations: []fs.FS{counterMigrations()}})
		ctx := testCtx(t)
		if err := db.bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		ms := db.Migrations()
		for _, m := range ms[:len(ms)-1] {
			if err := db.apply(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if err := db.apply(ctx, ms[len(ms)-1]); err != nil {
					t.Errorf("apply: %v", err)
				}
			})
		}
		wg.Wait()
		if a, b := applications(t, db); a != 1 || b != 1 {
			t.Fatalf("applied %d/%d times, want 1/1", a, b)
		}
	})
}

func TestMigrateWaitsForLiveLock(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := open(t, e.NewDSN(t), Options{MigrationPoll: 20 * time.Millisecond})
		ctx := testCtx(t)
		if err := db.bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.tryLock(ctx, "other-migrator"); err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if err := db.Migrate(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Migrate under a live lock = %v, want it to wait until ctx ends", err)
		}
		if v, _ := db.SchemaVersion(ctx); v != 0 {
			t.Fatalf("migrated to %d while another migrator held the lock", v)
		}
		if _, err := db.Exec(ctx, "UPDATE schema_lock SET holder = '', expires_at = 0 WHERE id = 1"); err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("Migrate after release: %v", err)
		}
		var holder string
		if err := db.QueryRow(ctx, "SELECT holder FROM schema_lock WHERE id = 1").Scan(&holder); err != nil || holder != "" {
			t.Fatalf("lock not released: holder = %q, %v", holder, err)
		}
	})
}

func TestMigrateTakesOverExpiredLock(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := open(t, e.NewDSN(t), Options{MigrationPoll: 20 * time.Millisecond})
		ctx := testCtx(t)
		if err := db.bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		expired := time.Now().Add(-time.Second).UnixMilli()
		if _, err := db.Exec(ctx, "UPDATE schema_lock SET holder = 'dead-migrator', expires_at = $1 WHERE id = 1", expired); err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("Migrate over an expired lock: %v", err)
		}
		if err := db.CheckSchema(ctx, db.LatestVersion()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMigrationsAreChecked(t *testing.T) {
	dsn := t.TempDir() + "/m.db"
	tests := []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{"duplicate version", fstest.MapFS{"0001_again.sql": {Data: []byte("SELECT 1")}}, "used twice"},
		{"bad name", fstest.MapFS{"init.sql": {Data: []byte("SELECT 1")}}, "NNNN_name.sql"},
		{"unknown token", fstest.MapFS{"0500_x.sql": {Data: []byte("CREATE TABLE x (a {{blob}})")}}, "unknown type token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(context.Background(), dsn, Options{Migrations: []fs.FS{tt.fs}})
			if err == nil {
				_ = db.Close()
				t.Fatal("Open accepted bad migrations")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestMigrationRenamedIsRefused(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dsn := e.NewDSN(t)
		ctx := testCtx(t)
		a := open(t, dsn, Options{Migrations: []fs.FS{fstest.MapFS{"0700_first.sql": {Data: []byte("SELECT 1")}}}})
		if err := a.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		b := open(t, dsn, Options{Migrations: []fs.FS{fstest.MapFS{"0700_other.sql": {Data: []byte("SELECT 1")}}}})
		if err := b.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "in the database") {
			t.Fatalf("Migrate with a different migration under the same version = %v, want an error", err)
		}
	})
}

// TestAddColumnIfNotExists: a migration may add a column with ADD COLUMN IF
// NOT EXISTS on every engine (SQLite lacks the clause: the migrator
// resolves it), and running its SQL again after it was applied is a no-op.
func TestAddColumnIfNotExists(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		migs := fstest.MapFS{
			"9001_t.sql": {Data: []byte(`CREATE TABLE IF NOT EXISTS test_addcol (id {{bigint}} PRIMARY KEY)`)},
			"9002_addcol.sql": {Data: []byte(`-- two columns, one statement each
				ALTER TABLE test_addcol ADD COLUMN IF NOT EXISTS a {{text}};
				alter table test_addcol add column if not exists b {{bigint}} NOT NULL DEFAULT 7;
				INSERT INTO test_addcol (id, a) VALUES (1, 'x') ON CONFLICT (id) DO NOTHING;`)},
		}
		db := open(t, e.NewDSN(t), Options{Migrations: []fs.FS{migs}})
		ctx := testCtx(t)
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		var a string
		var b int
		if err := db.QueryRow(ctx, `SELECT a, b FROM test_addcol WHERE id = 1`).Scan(&a, &b); err != nil || a != "x" || b != 7 {
			t.Fatalf("row after the migration = %q, %d, %v; want x, 7", a, b, err)
		}
		for _, m := range db.Migrations() {
			body, err := db.MigrationSQL(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(ctx, body); err != nil {
				t.Errorf("migration %d again: %v\n%s", m.Version, err, body)
			}
		}
	})
}

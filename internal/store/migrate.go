package store

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var builtin embed.FS

// MigrationsDir returns the migrations directory of a package's embedded
// files (a //go:embed migrations/*.sql variable), for Options.Migrations.
func MigrationsDir(embedded fs.FS) fs.FS {
	sub, err := fs.Sub(embedded, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists at build time
	}
	return sub
}

// Migration is one versioned schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string // before dialect expansion
}

var migrationFileRE = regexp.MustCompile(`^([0-9]+)_([a-z0-9_]+)\.sql$`)

// bootstrapSQL creates the two tables that the migrator itself needs before
// it can take its lock. It is idempotent and in code, not in a migration,
// because the lock protects the migrations.
var bootstrapSQL = []string{
	`CREATE TABLE IF NOT EXISTS schema_migrations (
		version    BIGINT PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at BIGINT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS schema_lock (
		id         BIGINT PRIMARY KEY,
		holder     TEXT NOT NULL,
		expires_at BIGINT NOT NULL
	)`,
	`INSERT INTO schema_lock (id, holder, expires_at) VALUES (1, '', 0) ON CONFLICT (id) DO NOTHING`,
}

// Migrations returns every migration this binary knows — the package's own
// and those of Options.Migrations — sorted by version.
func (db *DB) Migrations() []Migration { return slices.Clone(db.migrations) }

// loadMigrations collects and checks the migrations at Open, so that a
// duplicate version or an unknown type token fails fast.
func loadMigrations(d Dialect, extra []fs.FS) ([]Migration, error) {
	sub, err := fs.Sub(builtin, "migrations")
	if err != nil {
		return nil, err
	}
	var all []Migration
	seen := map[int]string{}
	for _, fsys := range append([]fs.FS{sub}, extra...) {
		ms, err := readMigrations(fsys)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if prev, ok := seen[m.Version]; ok {
				return nil, fmt.Errorf("store: migration version %d used twice (%s, %s)", m.Version, prev, m.Name)
			}
			if _, err := d.Expand(m.SQL); err != nil {
				return nil, fmt.Errorf("store: migration %d_%s: %w", m.Version, m.Name, err)
			}
			seen[m.Version] = m.Name
			all = append(all, m)
		}
	}
	slices.SortFunc(all, func(a, b Migration) int { return a.Version - b.Version })
	return all, nil
}

func readMigrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("store: read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := migrationFileRE.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("store: migration file %q: want NNNN_name.sql", e.Name())
		}
		v, err := strconv.Atoi(m[1])
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("store: migration file %q: bad version", e.Name())
		}
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("store: read migration %q: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: m[2], SQL: string(body)})
	}
	return ms, nil
}

// LatestVersion is the highest migration version this binary knows: what its
// readiness check should ask CheckSchema for.
func (db *DB) LatestVersion() int {
	if len(db.migrations) == 0 {
		return 0
	}
	return db.migrations[len(db.migrations)-1].Version
}

// Migrate applies every known migration that has not been applied yet, in
// version order, each in its own transaction. Only one migrator works at a
// time: the others wait for the schema_lock lease (polling every
// Options.MigrationPoll) until it is released or expires, then find nothing
// left to do. Migrate returns when all migrations are applied or ctx ends.
func (db *DB) Migrate(ctx context.Context) error {
	if err := db.bootstrap(ctx); err != nil {
		return err
	}
	return db.withSchemaLock(ctx, func(ctx context.Context) error {
		applied, err := db.appliedMigrations(ctx)
		if err != nil {
			return err
		}
		for _, m := range db.migrations {
			if name, ok := applied[m.Version]; ok {
				if name != m.Name {
					return fmt.Errorf("store: migration %d is %q in the database but %q in this binary", m.Version, name, m.Name)
				}
				continue
			}
			if err := db.apply(ctx, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// bootstrap creates the migrator's tables. Concurrent CREATE TABLE IF NOT
// EXISTS can fail on PostgreSQL with a unique violation in its catalog, so a
// failure is retried a few times before it counts.
func (db *DB) bootstrap(ctx context.Context) error {
	var err error
	for range 5 {
		if err = db.bootstrapOnce(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff(4)):
		}
	}
	return fmt.Errorf("store: create migration tables: %w", err)
}

func (db *DB) bootstrapOnce(ctx context.Context) error {
	for _, q := range bootstrapSQL {
		if _, err := execOn(ctx, db.w, db.opts.StatementTimeout, q, nil); err != nil {
			return err
		}
	}
	return nil
}

// apply runs one migration and records it in the same transaction. It checks
// inside that transaction that the migration is still unapplied, so two
// migrators that both think they hold the lock (one paused past its lease)
// apply it once: the loser's SERIALIZABLE transaction is retried and then
// sees the record.
func (db *DB) apply(ctx context.Context, m Migration) error {
	start := db.opts.Now()
	d := db.opts.MigrationStatementTimeout
	skipped := false
	err := db.txWithin(ctx, d+time.Minute, d, func(ctx context.Context, tx *Tx) error {
		skipped = false
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, m.Version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			skipped = true
			return nil
		}
		if db.kind != KindSQLite {
			// The session's statement_timeout is sized for requests, not DDL.
			if _, err := tx.execRaw(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", d.Milliseconds())); err != nil {
				return err
			}
		}
		body, err := db.migrationSQL(ctx, tx, m)
		if err != nil {
			return err
		}
		if _, err := tx.execRaw(ctx, body); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.Version, m.Name, db.opts.Now().UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("store: migration %d_%s: %w", m.Version, m.Name, err)
	}
	if !skipped {
		db.opts.Logger.Info("applied migration", "version", m.Version, "name", m.Name,
			"duration", db.opts.Now().Sub(start))
	}
	return nil
}

func (db *DB) appliedMigrations(ctx context.Context) (map[int]string, error) {
	rows, err := db.Query(ctx, `SELECT version, name FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	applied := map[int]string{}
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			return nil, err
		}
		applied[v] = name
	}
	return applied, rows.Err()
}

// SchemaVersion is the highest applied migration version, 0 on an empty
// database.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	ok, err := db.tableExists(ctx, "schema_migrations")
	if err != nil || !ok {
		return 0, err
	}
	var v int
	err = db.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// CheckSchema returns nil when every known migration up to minVersion is
// applied, and an error wrapping ErrSchemaTooOld otherwise. A newer schema is
// fine: by the expand/contract rule (doc.go) release N-1 runs on release N's
// schema. Readiness calls it with LatestVersion.
func (db *DB) CheckSchema(ctx context.Context, minVersion int) error {
	applied := map[int]string{}
	if ok, err := db.tableExists(ctx, "schema_migrations"); err != nil {
		return err
	} else if ok {
		if applied, err = db.appliedMigrations(ctx); err != nil {
			return err
		}
	}
	var missing []int
	for _, m := range db.migrations {
		if _, ok := applied[m.Version]; !ok && m.Version <= minVersion {
			missing = append(missing, m.Version)
		}
	}
	current := 0
	for v := range applied {
		current = max(current, v)
	}
	if len(missing) > 0 || current < minVersion {
		return fmt.Errorf("%w: need version %d, database is at %d, missing %v", ErrSchemaTooOld, minVersion, current, missing)
	}
	return nil
}

func (db *DB) tableExists(ctx context.Context, name string) (bool, error) {
	q := `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`
	if db.kind == KindSQLite {
		q = `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1`
	}
	var n int
	err := db.QueryRow(ctx, q, name).Scan(&n)
	return n > 0, err
}

// errLockHeld means another migrator holds a live lease.
var errLockHeld = errors.New("store: schema lock held")

// withSchemaLock runs fn while holding the schema_lock lease, renewing it in
// the background; fn's context ends if the lease is lost.
func (db *DB) withSchemaLock(ctx context.Context, fn func(context.Context) error) error {
	holder := lockHolder()
	for {
		err := db.tryLock(ctx, holder)
		if err == nil {
			break
		}
		if !errors.Is(err, errLockHeld) {
			return err
		}
		db.opts.Logger.Info("waiting for the schema migration lock", "poll", db.opts.MigrationPoll)
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: waiting for the schema lock: %w", ctx.Err())
		case <-time.After(db.opts.MigrationPoll):
		}
	}
	lctx, cancel := context.WithCancelCause(ctx)
	renewed := make(chan struct{})
	go func() { // owned: stopped by cancel, waited for through renewed
		defer close(renewed)
		t := time.NewTicker(db.opts.MigrationLease / 3)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
				if err := db.tryLock(lctx, holder); err != nil {
					cancel(fmt.Errorf("store: schema lock lost: %w", err))
					return
				}
			}
		}
	}()
	err := fn(lctx)
	if cause := context.Cause(lctx); err != nil && cause != nil && ctx.Err() == nil {
		err = fmt.Errorf("%w (%w)", err, cause)
	}
	cancel(nil)
	<-renewed
	// Release with the caller's context, detached from its cancellation so
	// that a cancelled Migrate still frees the lock (bounded by the timeout).
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), db.opts.StatementTimeout)
	defer rcancel()
	if _, rerr := db.Exec(rctx, `UPDATE schema_lock SET holder = '', expires_at = 0 WHERE id = 1 AND holder = $1`, holder); rerr != nil {
		db.opts.Logger.Warn("releasing the schema lock failed; it expires by itself", "error", rerr)
	}
	return err
}

// tryLock takes or renews the lease; errLockHeld if someone else holds it.
func (db *DB) tryLock(ctx context.Context, holder string) error {
	return db.Tx(ctx, func(ctx context.Context, tx *Tx) error {
		now := db.opts.Now()
		res, err := tx.Exec(ctx, `UPDATE schema_lock SET holder = $1, expires_at = $2
			WHERE id = 1 AND (holder = '' OR holder = $1 OR expires_at < $3)`,
			holder, now.Add(db.opts.MigrationLease).UnixMilli(), now.UnixMilli())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return errLockHeld
		}
		return nil
	})
}

func lockHolder() string {
	host, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// MigrationSQL returns the SQL that applying m runs now: its type tokens
// expanded (Dialect.Expand) and, on SQLite, which lacks the clause, every
// "ALTER TABLE t ADD COLUMN IF NOT EXISTS c …;" resolved against the
// current schema (left out when t has c, run without the clause when not).
func (db *DB) MigrationSQL(ctx context.Context, m Migration) (string, error) {
	return db.migrationSQL(ctx, db, m)
}

type rowQuerier interface {
	QueryRow(ctx context.Context, query string, args ...any) *Row
}

var addColumnRE = regexp.MustCompile(`(?is)ALTER\s+TABLE\s+(\w+)\s+ADD\s+COLUMN\s+(IF\s+NOT\s+EXISTS\s+)(\w+)[^;]*;`)

func (db *DB) migrationSQL(ctx context.Context, q rowQuerier, m Migration) (string, error) {
	body, err := db.dialect.Expand(m.SQL)
	if err != nil || db.kind != KindSQLite {
		return body, err
	}
	var b strings.Builder
	last := 0
	for _, loc := range addColumnRE.FindAllStringSubmatchIndex(body, -1) {
		table, column := body[loc[2]:loc[3]], body[loc[6]:loc[7]]
		var n int
		if err := q.QueryRow(ctx, `SELECT count(*) FROM pragma_table_info($1) WHERE name = $2`, table, column).Scan(&n); err != nil {
			return "", fmt.Errorf("store: migration %d_%s: look up column %s.%s: %w", m.Version, m.Name, table, column, err)
		}
		b.WriteString(body[last:loc[0]])
		if n == 0 {
			b.WriteString(body[loc[0]:loc[4]])
			b.WriteString(body[loc[5]:loc[1]])
		}
		last = loc[1]
	}
	b.WriteString(body[last:])
	return b.String(), nil
}

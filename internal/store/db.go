package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// DB is a handle on the database shared by every role. It is safe for
// concurrent use. Writes go through Tx (or Exec for a single statement);
// Query and QueryRow are for reads.
type DB struct {
	kind    Kind
	dialect Dialect
	opts    Options
	// w runs transactions and Exec. On SQLite it has exactly one connection:
	// SQLite allows one writer at a time, and queueing writers in the pool
	// is cheaper and fairer than letting them spin on SQLITE_BUSY.
	w *sql.DB
	// r runs Query and QueryRow. On SQLite it is a separate pool of
	// read-only (query_only) connections, which WAL lets read concurrently
	// with the writer; elsewhere it is w.
	r *sql.DB
	// ws and rs cache prepared statements of w and r.
	ws, rs *stmtCache
	// migrations are all known migrations, sorted by version.
	migrations []Migration
	// ckpt checkpoints the WAL of a SQLite database in the background
	// (see checkpointer); nil elsewhere.
	ckpt *checkpointer
}

// Querier is what *DB and *Tx have in common, for storage code that works
// inside or outside a transaction.
type Querier interface {
	Exec(ctx context.Context, query string, args ...any) (sql.Result, error)
	Query(ctx context.Context, query string, args ...any) (*Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) *Row
}

var (
	_ Querier = (*DB)(nil)
	_ Querier = (*Tx)(nil)
)

// Open connects to the database named by dsn. A dsn starting with
// postgres:// or postgresql:// is PostgreSQL or CockroachDB (told apart by
// version()); anything else is the path of a SQLite file, created if
// missing. Open checks connectivity within ctx and fails if the database
// cannot be reached: the caller retries with backoff while reporting
// not-ready.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	opts = opts.withDefaults()
	var (
		db  *DB
		err error
	)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		db, err = openPostgres(ctx, dsn, opts)
	} else {
		db, err = openSQLite(ctx, dsn, opts)
	}
	if err != nil {
		return nil, err
	}
	if db.migrations, err = loadMigrations(db.dialect, opts.Migrations); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

func openPostgres(ctx context.Context, dsn string, opts Options) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: parse postgres dsn: %w", err)
	}
	if opts.ApplicationName != "" {
		cfg.RuntimeParams["application_name"] = opts.ApplicationName
	}
	// Session settings are SET after connecting rather than sent as startup
	// parameters, which CockroachDB accepts only for some variables.
	// idle_in_transaction_session_timeout frees the locks of a transaction
	// whose client stopped talking mid-way.
	//
	// DB.Tx asks for SERIALIZABLE explicitly. The session default is for
	// the single statements of DB.Query and DB.Exec: on PostgreSQL it is
	// READ COMMITTED, under which one statement still sees one snapshot
	// and a row it updates is re-checked rather than failing, but never
	// fails as a serialization victim of other transactions (and takes no
	// SSI predicate locks that make those transactions fail). CockroachDB
	// retries single statements itself and stays SERIALIZABLE.
	//
	// plan_cache_mode: every statement is prepared once per connection
	// (stmtCache, pgx's cache). By default PostgreSQL plans the first five
	// executions of each on each connection anew, and planning the
	// multi-room sync queries costs milliseconds: a user's first /sync
	// paid it on every pooled connection it happened to use. Our
	// statements are all shaped for the indexes (row-value ranges, keyed
	// lookups), so one generic plan serves: make bench on PostgreSQL went
	// from 23 to 16-18 ms for a first initial sync and from 12 to 5.5 ms
	// repeated, and (d) from p50 7.4 to 5.5-6.3 ms.
	session := fmt.Sprintf("SET statement_timeout = %d; SET idle_in_transaction_session_timeout = %d",
		opts.StatementTimeout.Milliseconds(), (2 * opts.TxTimeout).Milliseconds())
	sdb := stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(func(ctx context.Context, c *pgx.Conn) error {
		set := session + "; SET default_transaction_isolation = 'read committed'; SET plan_cache_mode = force_generic_plan"
		if c.PgConn().ParameterStatus("crdb_version") != "" {
			set = session + "; SET default_transaction_isolation = 'serializable'"
		}
		_, err := c.Exec(ctx, set)
		return err
	}))
	sdb.SetMaxOpenConns(opts.MaxOpenConns)
	sdb.SetMaxIdleConns(opts.MaxIdleConns)
	sdb.SetConnMaxLifetime(opts.ConnMaxLifetime)
	sdb.SetConnMaxIdleTime(opts.ConnMaxIdleTime)

	db := &DB{kind: KindPostgres, dialect: postgresDialect{}, opts: opts, w: sdb, r: sdb}
	db.ws = newStmtCache(sdb)
	db.rs = db.ws
	var version string
	if err := db.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		_ = sdb.Close()
		return nil, fmt.Errorf("store: connect to postgres: %w", err)
	}
	if strings.Contains(version, "CockroachDB") {
		db.kind = KindCockroach
	}
	return db, nil
}

// openSQLite opens two pools on one file: a single-connection write pool
// (BEGIN IMMEDIATE, so a transaction takes the write lock up front and never
// fails half-way on lock upgrade) and a read pool of query_only connections.
// WAL lets readers run while the writer writes; synchronous=NORMAL in WAL mode
// loses no committed transaction when the process dies, only (at most the
// last ones) when the machine loses power.
func openSQLite(ctx context.Context, path string, opts Options) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("store: %q: want a postgres:// URL or a plain SQLite file path", path)
	}
	busy := strconv.FormatInt(opts.SQLiteBusyTimeout.Milliseconds(), 10)
	wq := url.Values{}
	wq.Set("_busy_timeout", busy)
	wq.Set("_journal_mode", "WAL")
	wq.Set("_synchronous", "NORMAL")
	wq.Set("_foreign_keys", "1")
	wq.Set("_txlock", "immediate")
	// Checkpoints run in the background (checkpointer), not in the
	// commit that happens to cross the threshold; this much WAL is the
	// safety net should they fall behind.
	wq.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walSafetyCheckpointPages))
	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// Connect the writer first: it switches the file to WAL, which the
	// read-only connections cannot do.
	if err := pingWithin(ctx, w, opts.StatementTimeout); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}

	rq := url.Values{}
	rq.Set("_busy_timeout", busy)
	rq.Set("_foreign_keys", "1")
	rq.Set("_query_only", "1")
	r, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	r.SetMaxOpenConns(opts.MaxOpenConns)
	r.SetMaxIdleConns(opts.MaxIdleConns)
	r.SetConnMaxLifetime(opts.ConnMaxLifetime)
	r.SetConnMaxIdleTime(opts.ConnMaxIdleTime)
	db := &DB{kind: KindSQLite, dialect: sqliteDialect{}, opts: opts, w: w, r: r, ws: newStmtCache(w), rs: newStmtCache(r)}
	if err := db.Ping(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	cq := url.Values{}
	cq.Set("_busy_timeout", busy)
	c, err := sql.Open("sqlite", path+"?"+cq.Encode())
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	db.ckpt = startCheckpointer(c, opts.Logger)
	return db, nil
}

func pingWithin(ctx context.Context, p *sql.DB, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return p.PingContext(ctx)
}

// Kind reports the engine: KindSQLite, KindPostgres or KindCockroach.
func (db *DB) Kind() Kind { return db.kind }

// Dialect returns the dialect of the engine.
func (db *DB) Dialect() Dialect { return db.dialect }

// Ping checks that the database answers, for readiness.
func (db *DB) Ping(ctx context.Context) error {
	if err := pingWithin(ctx, db.w, db.opts.StatementTimeout); err != nil {
		return err
	}
	if db.r != db.w {
		return pingWithin(ctx, db.r, db.opts.StatementTimeout)
	}
	return nil
}

// Close closes the pools. Statements in flight are not interrupted.
func (db *DB) Close() error {
	if db.ckpt != nil {
		db.ckpt.stop()
	}
	db.ws.close()
	if db.rs != db.ws {
		db.rs.close()
	}
	err := db.w.Close()
	if db.r != db.w {
		err = errors.Join(err, db.r.Close())
	}
	return err
}

// Exec runs one writing statement outside an explicit transaction.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var e execer = db.w
	if st := db.ws.get(ctx, query); st != nil {
		e = stmtRunner{st}
	}
	var res sql.Result
	err := db.single(ctx, func() (err error) {
		res, err = execOn(ctx, e, db.opts.StatementTimeout, query, args)
		return err
	})
	return res, err
}

// single runs one statement outside a transaction, again after a
// retryable error (the statement's implicit transaction was rolled back
// whole), the way DB.Tx retries a transaction. Such errors are rare here
// (see openPostgres) but not impossible: a deadlock, a SQLite writer busy
// past its timeout, CockroachDB when it cannot retry by itself. ctx is not
// given a deadline here: the rows of a query outlive this call.
func (db *DB) single(ctx context.Context, run func() error) error {
	return db.retry(ctx, func() error {
		err := run()
		db.observe(err)
		return err
	})
}

// observe counts statement timeouts.
func (db *DB) observe(err error) {
	if err != nil && db.opts.OnStatementTimeout != nil && errors.Is(err, ErrStatementTimeout) {
		db.opts.OnStatementTimeout()
	}
}

// Query runs a reading statement. On SQLite it runs on a read-only
// connection, so a write here fails: use Exec or Tx.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*Rows, error) {
	var q queryer = db.r
	if st := db.rs.get(ctx, query); st != nil {
		q = stmtRunner{st}
	}
	// Only an error before the first row is retried; one that ends the
	// iteration is the caller's (its rows may be half-consumed).
	var rows *Rows
	err := db.single(ctx, func() (err error) {
		rows, err = queryOn(ctx, q, db.opts.StatementTimeout, query, args)
		return err
	})
	return rows, err
}

// QueryRow runs a reading statement that selects at most one row.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) *Row {
	rows, err := db.Query(ctx, query, args...)
	return &Row{rows: rows, err: err}
}

// execer and queryer are what *sql.DB and *sql.Tx share.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func execOn(ctx context.Context, e execer, d time.Duration, query string, args []any) (sql.Result, error) {
	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	res, err := e.ExecContext(sctx, query, args...)
	return res, stmtErr(ctx, sctx, err)
}

func queryOn(ctx context.Context, q queryer, d time.Duration, query string, args []any) (*Rows, error) {
	sctx, cancel := context.WithTimeout(ctx, d)
	rows, err := q.QueryContext(sctx, query, args...)
	if err != nil {
		cancel()
		return nil, stmtErr(ctx, sctx, err)
	}
	return &Rows{rows: rows, parent: ctx, sctx: sctx, cancel: cancel}, nil
}

// Rows is *sql.Rows under the statement deadline, which ends when the rows
// are exhausted or closed. Always Close it (defer rows.Close()).
type Rows struct {
	rows   *sql.Rows
	parent context.Context
	sctx   context.Context
	cancel context.CancelFunc
	done   bool
	err    error
}

// Next prepares the next row for Scan; false at the end or on error (see Err).
func (r *Rows) Next() bool {
	if r.done {
		return false
	}
	if r.rows.Next() {
		return true
	}
	r.finish()
	return false
}

// finish records the final error before releasing the deadline: cancelling
// first would make sql.Rows report the cancellation instead of the cause.
func (r *Rows) finish() {
	if r.done {
		return
	}
	r.done = true
	r.err = stmtErr(r.parent, r.sctx, r.rows.Err())
	r.cancel()
}

// Scan copies the current row's columns into dest.
func (r *Rows) Scan(dest ...any) error { return stmtErr(r.parent, r.sctx, r.rows.Scan(dest...)) }

// Columns returns the column names.
func (r *Rows) Columns() ([]string, error) { return r.rows.Columns() }

// Err returns the error that ended iteration, if any.
func (r *Rows) Err() error {
	if r.done {
		return r.err
	}
	return stmtErr(r.parent, r.sctx, r.rows.Err())
}

// Close releases the rows and their connection; it is idempotent.
func (r *Rows) Close() error {
	err := r.rows.Close()
	r.finish()
	return err
}

// Row is the result of QueryRow.
type Row struct {
	rows *Rows
	err  error
}

// Scan copies the first row's columns into dest and releases the row; it
// returns ErrNoRows when there was none.
func (r *Row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	return r.rows.Close()
}

// Err returns the error of the query, if it failed before Scan.
func (r *Row) Err() error { return r.err }

package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/crdb"
)

// Tx is one attempt of a transaction run by DB.Tx. It is valid only inside
// the function given to DB.Tx and must not be shared with other goroutines.
type Tx struct {
	tx    *sql.Tx
	d     time.Duration // statement timeout
	stmts *stmtCache
	db    *DB
}

// prepared returns the transaction's copy of query's cached statement, or
// nil.
func (tx *Tx) prepared(ctx context.Context, query string) *sql.Stmt {
	if tx.stmts == nil {
		return nil
	}
	if st := tx.stmts.cached(query); st != nil {
		return tx.tx.StmtContext(ctx, st)
	}
	return nil
}

// Exec runs a statement in the transaction.
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var e execer = tx.tx
	if st := tx.prepared(ctx, query); st != nil {
		e = stmtRunner{st}
	}
	res, err := execOn(ctx, e, tx.d, query, args)
	tx.db.observe(err)
	return res, err
}

// execRaw runs SQL that must not be prepared: migrations (several
// statements in one string) and session settings.
func (tx *Tx) execRaw(ctx context.Context, query string) (sql.Result, error) {
	return execOn(ctx, tx.tx, tx.d, query, nil)
}

// Query runs a query in the transaction. Close the rows before the next
// statement: one transaction is one connection.
func (tx *Tx) Query(ctx context.Context, query string, args ...any) (*Rows, error) {
	var q queryer = tx.tx
	if st := tx.prepared(ctx, query); st != nil {
		q = stmtRunner{st}
	}
	rows, err := queryOn(ctx, q, tx.d, query, args)
	tx.db.observe(err)
	return rows, err
}

// QueryRow runs a query that selects at most one row.
func (tx *Tx) QueryRow(ctx context.Context, query string, args ...any) *Row {
	rows, err := tx.Query(ctx, query, args...)
	return &Row{rows: rows, err: err}
}

// Tx runs fn in a SERIALIZABLE transaction and commits it if fn returns nil.
//
// fn may run more than once: when the transaction loses a race (see
// IsRetryable) it is rolled back and fn is called again, up to
// Options.MaxRetries times, within Options.TxTimeout for all attempts. So fn
// must have no effect outside the transaction other than ones that are safe
// to repeat (no publishing, no counters in memory), must use only tx (not db)
// inside, and must be short: a few statements, never a network call.
//
// How retries happen depends on the engine:
//   - CockroachDB: cockroach-go's crdb.ExecuteTx, which restarts fn inside
//     the same transaction with the cockroach_restart savepoint protocol.
//   - PostgreSQL: the whole transaction is begun again after a jittered
//     backoff, and the COMMIT's own error counts. (crdb.ExecuteTx is not used
//     here: it treats RELEASE SAVEPOINT as the commit, which is true only on
//     CockroachDB, and ignores the error of the real COMMIT, where
//     PostgreSQL reports most serialization failures.)
//   - SQLite: BEGIN IMMEDIATE on the single write connection; SQLITE_BUSY
//     (another process holds the write lock past the busy timeout) is
//     retried like a serialization failure.
//
// An error returned by fn is returned as it is (retryable ones only after
// retries are exhausted, wrapped with ErrTooManyRetries).
func (db *DB) Tx(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	return db.txWithin(ctx, db.opts.TxTimeout, db.opts.StatementTimeout, fn)
}

func (db *DB) txWithin(ctx context.Context, total, stmt time.Duration, fn func(context.Context, *Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, total)
	defer cancel()
	if db.kind == KindCockroach {
		return db.cockroachTx(ctx, stmt, fn)
	}
	for attempt := 0; ; attempt++ {
		err := db.attempt(ctx, stmt, fn)
		if err == nil || !IsRetryable(err) {
			return err
		}
		if attempt >= db.opts.MaxRetries {
			return fmt.Errorf("%w after %d retries: %w", ErrTooManyRetries, attempt, err)
		}
		db.opts.OnRetry()
		t := time.NewTimer(backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("store: transaction retry: %w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// attempt runs fn once in a fresh transaction.
func (db *DB) attempt(ctx context.Context, stmt time.Duration, fn func(context.Context, *Tx) error) (err error) {
	var opts *sql.TxOptions
	if db.kind != KindSQLite {
		// SQLite transactions are serializable by construction (one writer,
		// BEGIN IMMEDIATE), so no level is asked of the driver there.
		opts = &sql.TxOptions{Isolation: sql.LevelSerializable}
	}
	stx, err := db.w.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			_ = stx.Rollback() // also on panic; the panic goes on
		}
	}()
	if err := fn(ctx, &Tx{tx: stx, d: stmt, stmts: db.ws, db: db}); err != nil {
		return err
	}
	committed = true // Commit ends the transaction whether it succeeds or not
	return stx.Commit()
}

func (db *DB) cockroachTx(ctx context.Context, stmt time.Duration, fn func(context.Context, *Tx) error) error {
	attempt := 0
	err := crdb.ExecuteTx(crdb.WithMaxRetries(ctx, db.opts.MaxRetries), db.w,
		&sql.TxOptions{Isolation: sql.LevelSerializable},
		func(stx *sql.Tx) error {
			if attempt > 0 {
				db.opts.OnRetry()
			}
			attempt++
			return fn(ctx, &Tx{tx: stx, d: stmt, stmts: db.ws, db: db})
		})
	if IsRetryable(err) {
		return fmt.Errorf("%w: %w", ErrTooManyRetries, err)
	}
	return err
}

// backoff is a full-jitter exponential backoff: up to 2ms, 4ms, … capped at
// 256ms, so that contending transactions spread out instead of colliding
// again in lockstep.
func backoff(attempt int) time.Duration {
	ceiling := 2 * time.Millisecond << min(attempt, 7)
	return time.Duration(rand.Int64N(int64(ceiling))) + time.Millisecond
}

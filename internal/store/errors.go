package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

var (
	// ErrNoRows is returned by Row.Scan when the query selected no row. It is
	// database/sql's own, so errors.Is(err, sql.ErrNoRows) works too.
	ErrNoRows = sql.ErrNoRows
	// ErrStatementTimeout marks a statement cancelled because it ran past
	// Options.StatementTimeout (the client deadline or the server's
	// statement_timeout, whichever fired first).
	ErrStatementTimeout = errors.New("store: statement timeout")
	// ErrTooManyRetries marks a transaction that was still failing with a
	// retryable error after Options.MaxRetries retries. The last error is
	// wrapped too.
	ErrTooManyRetries = errors.New("store: transaction retries exhausted")
	// ErrSchemaTooOld is returned by CheckSchema when migrations this binary
	// needs have not been applied yet.
	ErrSchemaTooOld = errors.New("store: database schema is older than this binary needs")
)

// SQLSTATE codes and SQLite result codes that the retry classifier knows.
const (
	sqlStateSerializationFailure = "40001" // PostgreSQL and CockroachDB
	sqlStateDeadlockDetected     = "40P01" // PostgreSQL
	sqlStateCockroachRetry       = "CR000" // legacy CockroachDB retry code
	sqlStateQueryCanceled        = "57014" // statement_timeout or cancel request
	sqliteBusy                   = 5       // SQLITE_BUSY; extended codes share the low byte
)

// sqlStater is implemented by *pgconn.PgError and by anything else that
// carries a SQLSTATE; cockroach-go's crdb helpers use the same interface.
type sqlStater interface{ SQLState() string }

// sqliteCoder is implemented by *sqlite.Error (modernc.org/sqlite).
type sqliteCoder interface{ Code() int }

// IsRetryable reports whether err means "the transaction lost a race; run it
// again": a serialization failure (SQLSTATE 40001, CockroachDB's CR000), a
// PostgreSQL deadlock (40P01), or SQLITE_BUSY. It looks through wrapping, so
// a test or a caller can make any error retryable by giving it a
// SQLState() string method that returns "40001".
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var s sqlStater
	if errors.As(err, &s) {
		switch s.SQLState() {
		case sqlStateSerializationFailure, sqlStateDeadlockDetected, sqlStateCockroachRetry:
			return true
		}
	}
	var c sqliteCoder
	if errors.As(err, &c) {
		return c.Code()&0xff == sqliteBusy
	}
	return false
}

func sqlState(err error) string {
	var s sqlStater
	if errors.As(err, &s) {
		return s.SQLState()
	}
	return ""
}

// stmtErr marks err as a statement timeout when the statement's own deadline
// (not the caller's context) ended it.
func stmtErr(parent, stmt context.Context, err error) error {
	if err == nil || parent.Err() != nil {
		return err
	}
	if errors.Is(stmt.Err(), context.DeadlineExceeded) || sqlState(err) == sqlStateQueryCanceled {
		return fmt.Errorf("%w: %w", ErrStatementTimeout, err)
	}
	return err
}

package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

var (
	// ErrNoRows is returned by Row.Scan when the query selected no row. It is
	// database/sql's own, so errors.Is(err, sql.ErrNoRows) works too.
	ErrNoRows = sql.ErrNoRows
	// ErrStatementTimeout marks a statement cancelled because it ran past
	// Options.StatementTimeout (the client deadline or the server's
	// statement_timeout, whichever fired first). It is Transient.
	ErrStatementTimeout error = transient("store: statement timeout")
	// ErrTooManyRetries marks a transaction that was still failing with a
	// retryable error after Options.MaxRetries retries. The last error is
	// wrapped too. It is Transient.
	ErrTooManyRetries error = transient("store: transaction retries exhausted")
	// ErrUnavailable marks a failure to reach the database: it is
	// restarting or shutting down, the connection was lost, or it refuses
	// connections. Retrying may help a little later; it is Transient.
	ErrUnavailable error = transient("store: database unavailable")
	// ErrSchemaTooOld is returned by CheckSchema when migrations this binary
	// needs have not been applied yet.
	ErrSchemaTooOld = errors.New("store: database schema is older than this binary needs")
)

// transient is the type of the errors above that say "the database could
// not do it now" rather than "this request is wrong or this code is
// broken": their Transient method lets the HTTP layer answer 503 with
// Retry-After instead of 500, without knowing this package.
type transient string

func (e transient) Error() string { return string(e) }

// Transient reports true.
func (transient) Transient() bool { return true }

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

// unavailable reports whether err says the database could not be reached
// or ended the session (SQLSTATE class 08, 57P01–57P03 shutting down or
// starting up, 53300 too many connections, a refused or broken
// connection), and whether the statement certainly did not run, so that
// running it again is safe even for a write.
func unavailable(err error) (is, safe bool) {
	if err == nil {
		return false, false
	}
	switch st := sqlState(err); {
	case st == "57P01", st == "57P02", st == "57P03", st == "53300", strings.HasPrefix(st, "08"):
		// The server refused or ended the session instead of running
		// the statement (or the COMMIT): nothing was done.
		return true, true
	case st != "":
		return false, false
	}
	if pgconn.SafeToRetry(err) {
		return true, true
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true, true
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true, false
	}
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return true, false
	}
	return false, false
}

// markUnavailable wraps err with ErrUnavailable when it says so.
func markUnavailable(err error) error {
	if is, _ := unavailable(err); is && !errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
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
	return markUnavailable(err)
}

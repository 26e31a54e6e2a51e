package store

import (
	"io/fs"
	"log/slog"
	"time"
)

// Kind names the database engine behind a DB.
type Kind string

// The engines a DB can be backed by. PostgreSQL and CockroachDB share the
// postgres dialect; they differ only in how transactions are retried.
const (
	KindSQLite    Kind = "sqlite"
	KindPostgres  Kind = "postgres"
	KindCockroach Kind = "cockroachdb"
)

// Options bound the pools, statements and transactions of a DB. The zero
// value is usable: every zero field takes the default documented on it.
type Options struct {
	// MaxOpenConns bounds the connection pool (default 20). On SQLite it
	// bounds the read pool only; the write pool always has one connection.
	MaxOpenConns int
	// MaxIdleConns bounds idle connections kept open (default MaxOpenConns/2,
	// at least 1).
	MaxIdleConns int
	// ConnMaxLifetime recycles connections so that load balancers and
	// CockroachDB node drains spread them again (default 30m).
	ConnMaxLifetime time.Duration
	// ConnMaxIdleTime closes connections idle for longer (default 5m).
	ConnMaxIdleTime time.Duration

	// StatementTimeout is the deadline of every statement (default 5s). On
	// PostgreSQL and CockroachDB it is also the session's statement_timeout,
	// so the server gives up even when the client has vanished.
	StatementTimeout time.Duration
	// TxTimeout bounds one call of DB.Tx, all retries included (default 10s).
	TxTimeout time.Duration
	// MaxRetries bounds the retries of one DB.Tx call after retryable errors
	// (default 20).
	MaxRetries int
	// OnRetry, when set, is called once per retried transaction attempt, for
	// metrics. It must be cheap and must not block.
	OnRetry func()
	// OnStatementTimeout, when set, is called for every statement that
	// ran into StatementTimeout, for metrics. Same rules as OnRetry.
	OnStatementTimeout func()

	// SQLiteBusyTimeout is how long SQLite waits for another writer's lock
	// before returning SQLITE_BUSY (default 5s); DB.Tx then backs off and
	// retries.
	SQLiteBusyTimeout time.Duration

	// ApplicationName is reported to PostgreSQL/CockroachDB
	// (application_name), so that operators can tell roles apart.
	ApplicationName string

	// Migrations are extra migration sets, each an fs.FS with files named
	// NNNN_name.sql at its root, applied by Migrate together with the
	// package's own (see doc.go). Versions must be unique across all sets.
	Migrations []fs.FS
	// MigrationStatementTimeout bounds each migration statement (default
	// 10m): DDL on a large table may legitimately take longer than
	// StatementTimeout.
	MigrationStatementTimeout time.Duration
	// MigrationLease is how long the migration lock is held without renewal
	// (default 30s). A holder renews it every third of the lease; a migrator
	// that died loses it after at most one lease.
	MigrationLease time.Duration
	// MigrationPoll is how often a waiting migrator retries the lock
	// (default 1s).
	MigrationPoll time.Duration

	// Logger receives migration progress (default: discard).
	Logger *slog.Logger
	// Now is the clock used for migration leases and applied_at (default
	// time.Now). Migrators on different hosts compare their clocks through
	// the lease, so keep hosts NTP-synchronised.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = 20
	}
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = max(1, o.MaxOpenConns/2)
	}
	if o.ConnMaxLifetime <= 0 {
		o.ConnMaxLifetime = 30 * time.Minute
	}
	if o.ConnMaxIdleTime <= 0 {
		o.ConnMaxIdleTime = 5 * time.Minute
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 5 * time.Second
	}
	if o.TxTimeout <= 0 {
		o.TxTimeout = 10 * time.Second
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 20
	}
	if o.OnRetry == nil {
		o.OnRetry = func() {}
	}
	if o.SQLiteBusyTimeout <= 0 {
		o.SQLiteBusyTimeout = 5 * time.Second
	}
	if o.MigrationStatementTimeout <= 0 {
		o.MigrationStatementTimeout = 10 * time.Minute
	}
	if o.MigrationLease <= 0 {
		o.MigrationLease = 30 * time.Second
	}
	if o.MigrationPoll <= 0 {
		o.MigrationPoll = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

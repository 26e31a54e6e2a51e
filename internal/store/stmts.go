package store

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// maxCachedStatements bounds the prepared statements kept per pool. The
// queries of the code are a fixed set of strings; the bound only guards
// against a caller that builds query text dynamically.
const maxCachedStatements = 512

// stmtCache keeps one prepared statement per query text and pool, so that
// hot statements are parsed and planned once per connection rather than
// on every call (on SQLite parsing was a sixth of a send's CPU time).
// database/sql prepares a statement again on each connection that runs it,
// and Tx.StmtContext moves it into a transaction.
//
// Statements are written without SELECT *, so an expand-only migration
// (a new column) never changes the result shape of a cached statement.
type stmtCache struct {
	pool    *sql.DB
	mu      sync.RWMutex
	m       map[string]*sql.Stmt
	pending map[string]bool // being prepared in the background
	closed  bool
}

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, m: make(map[string]*sql.Stmt), pending: make(map[string]bool)}
}

// cached returns the statement of query if it is prepared already. When it
// is not, it starts preparing it in the background and returns nil. A
// transaction uses this: preparing on the pool from inside a transaction
// could wait for the very connection the transaction holds (SQLite's write
// pool has one).
func (c *stmtCache) cached(query string) *sql.Stmt {
	c.mu.RLock()
	st := c.m[query]
	c.mu.RUnlock()
	if st != nil {
		return st
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.pending[query] || len(c.m)+len(c.pending) >= maxCachedStatements {
		return nil
	}
	c.pending[query] = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := c.pool.PrepareContext(ctx, query)
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.pending, query)
		if err != nil {
			return
		}
		if c.closed || c.m[query] != nil {
			_ = st.Close()
			return
		}
		c.m[query] = st
	}()
	return nil
}

// get returns the prepared statement of query, preparing it on first use.
// It returns nil when the statement cannot be prepared (the caller then
// runs the query unprepared and reports its error) or the cache is full.
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	c.mu.RLock()
	st := c.m[query]
	c.mu.RUnlock()
	if st != nil {
		return st
	}
	c.mu.RLock()
	full := c.closed || len(c.m)+len(c.pending) >= maxCachedStatements
	c.mu.RUnlock()
	if full {
		return nil
	}
	// Prepared without holding the lock: preparing may wait for a
	// connection that a transaction holds, and that transaction may need
	// the lock for its own statements (SQLite's write pool has one
	// connection).
	st, err := c.pool.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev := c.m[query]; prev != nil || c.closed {
		_ = st.Close()
		return prev
	}
	c.m[query] = st
	return st
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for q, st := range c.m {
		_ = st.Close()
		delete(c.m, q)
	}
}

// stmtRunner adapts a prepared statement to execer and queryer.
type stmtRunner struct{ st *sql.Stmt }

func (s stmtRunner) ExecContext(ctx context.Context, _ string, args ...any) (sql.Result, error) {
	return s.st.ExecContext(ctx, args...)
}

func (s stmtRunner) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return s.st.QueryContext(ctx, args...)
}

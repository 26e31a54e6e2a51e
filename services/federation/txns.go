package federation

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/axon-hs/axon/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the package's migrations (versions 0800–0899), for
// store.Options.Migrations.
func Migrations() fs.FS { return store.MigrationsDir(migrations) }

// txnRetention is how long a transaction's answer is kept for repeats.
const txnRetention = 24 * time.Hour

// txnStore remembers the answers to transactions.
type txnStore struct {
	db  *store.DB
	now func() time.Time
}

func (s txnStore) lookup(ctx context.Context, origin, txnID string) ([]byte, bool, error) {
	var resp []byte
	err := s.db.QueryRow(ctx, `SELECT response FROM federation_txns WHERE origin = $1 AND txn_id = $2`, origin, txnID).Scan(&resp)
	if errors.Is(err, store.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("federation: look up transaction: %w", err)
	}
	return resp, true, nil
}

func (s txnStore) store(ctx context.Context, origin, txnID string, resp []byte) error {
	_, err := s.db.Exec(ctx, `INSERT INTO federation_txns (origin, txn_id, response, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (origin, txn_id) DO NOTHING`, origin, txnID, resp, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("federation: remember transaction: %w", err)
	}
	return nil
}

// expire deletes answers older than txnRetention, 1,000 rows at a time.
func (s txnStore) expire(ctx context.Context) error {
	cutoff := s.now().Add(-txnRetention).UnixMilli()
	for {
		res, err := s.db.Exec(ctx, `DELETE FROM federation_txns WHERE (origin, txn_id) IN
			(SELECT origin, txn_id FROM federation_txns WHERE created_at < $1 LIMIT 1000)`, cutoff)
		if err != nil {
			return fmt.Errorf("federation: expire transactions: %w", err)
		}
		if n, _ := res.RowsAffected(); n < 1000 {
			return nil
		}
	}
}

// RunJanitor deletes old transaction answers every interval until ctx
// ends.
func (a *API) RunJanitor(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := a.txns.expire(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("federation: expiring transactions failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

package accounts

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// cleanupBatch bounds the rows one cleanup statement deletes, so that no
// statement holds locks for long.
const cleanupBatch = 500

// expiring lists the tables whose rows die at expires_at.
var expiring = []struct{ table, key string }{
	{"accounts_uia_sessions", "session_id"},
	{"accounts_login_tokens", "token_hash"},
	{"accounts_admin_nonces", "nonce"},
	{"accounts_openid_tokens", "token_hash"},
}

// Cleanup deletes expired UIA sessions, login tokens, shared-secret
// nonces and OpenID tokens, in batches of cleanupBatch rows, and returns how many went.
// Expired rows are never honoured anyway; this only reclaims space.
// Running it on several workers at once is harmless.
func (s *Service) Cleanup(ctx context.Context) (int, error) {
	total := 0
	for _, t := range expiring {
		q := fmt.Sprintf(`DELETE FROM %[1]s WHERE %[2]s IN (SELECT %[2]s FROM %[1]s WHERE expires_at <= $1 LIMIT %[3]d)`,
			t.table, t.key, cleanupBatch)
		for {
			res, err := s.db.Exec(ctx, q, s.nowMS())
			if err != nil {
				return total, fmt.Errorf("accounts: clean up %s: %w", t.table, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return total, err
			}
			total += int(n)
			if n < cleanupBatch {
				break
			}
			if err := ctx.Err(); err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

// RunJanitor calls Cleanup every interval until ctx ends, logging failures.
// The caller owns the goroutine it runs in (it returns when ctx is done).
func (s *Service) RunJanitor(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.Cleanup(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "accounts cleanup failed", slog.Any("error", err))
		}
		if n > 0 {
			s.log.LogAttrs(ctx, slog.LevelDebug, "accounts cleanup", slog.Int("rows", n))
		}
	}
}

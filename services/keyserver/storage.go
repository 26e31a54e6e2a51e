package keyserver

import (
	"context"
	"errors"
	"fmt"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/keys"
)

// loadServer reads what the database holds of server's keys.
func (s *Service) loadServer(ctx context.Context, server string) (map[keys.KeyID]keys.VerifyKey, []byte, int64, error) {
	rows, err := s.db.Query(ctx, `SELECT key_id, public_key, verify_until_ts FROM server_keys WHERE server_name = $1`, server)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("keyserver: read keys of %s: %w", server, err)
	}
	defer rows.Close()
	ks := map[keys.KeyID]keys.VerifyKey{}
	for rows.Next() {
		var id, pub string
		var until int64
		if err := rows.Scan(&id, &pub, &until); err != nil {
			return nil, nil, 0, fmt.Errorf("keyserver: read keys of %s: %w", server, err)
		}
		raw, err := keys.DecodeBase64(pub)
		if err != nil {
			continue // not written by us; ignored
		}
		ks[keys.KeyID(id)] = keys.VerifyKey{Key: raw, ValidUntilTS: until}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, 0, fmt.Errorf("keyserver: read keys of %s: %w", server, err)
	}
	var doc []byte
	var until int64
	err = s.db.QueryRow(ctx, `SELECT doc, valid_until_ts FROM server_key_docs WHERE server_name = $1`, server).Scan(&doc, &until)
	if err != nil && !errors.Is(err, store.ErrNoRows) {
		return nil, nil, 0, fmt.Errorf("keyserver: read the keys document of %s: %w", server, err)
	}
	return ks, doc, until, nil
}

// store writes docs, oldest validity first so that the newest wins. A
// document older than the stored one changes no key that it also lists.
func (s *Service) store(ctx context.Context, server string, docs []fetched) error {
	err := s.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		for _, d := range docs {
			tx.Defer(`INSERT INTO server_key_docs (server_name, doc, valid_until_ts, fetched_ts) VALUES ($1, $2, $3, $4)
				ON CONFLICT (server_name) DO UPDATE SET doc = excluded.doc, valid_until_ts = excluded.valid_until_ts,
					fetched_ts = excluded.fetched_ts
				WHERE server_key_docs.valid_until_ts <= excluded.valid_until_ts`,
				server, d.sk.Raw.Canonical(), d.sk.ValidUntilTS, d.at)
			for id := range d.sk.VerifyKeys {
				s.deferKey(tx, server, d, id, false)
			}
			for id := range d.sk.OldKeys {
				s.deferKey(tx, server, d, id, true)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("keyserver: store keys of %s: %w", server, err)
	}
	return nil
}

// deferKey upserts one key of d. A key's row follows the document that was
// fetched last, except that a key once seen as old stays old.
func (s *Service) deferKey(tx *store.Tx, server string, d fetched, id keys.KeyID, old bool) {
	vk, _ := d.sk.Lookup(id, d.at)
	tx.Defer(`INSERT INTO server_keys (server_name, key_id, public_key, verify_until_ts, old, fetched_ts)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (server_name, key_id) DO UPDATE SET public_key = excluded.public_key,
			verify_until_ts = excluded.verify_until_ts, old = excluded.old, fetched_ts = excluded.fetched_ts
		WHERE server_keys.fetched_ts <= excluded.fetched_ts AND (excluded.old OR NOT server_keys.old)`,
		server, string(id), keys.Base64(vk.Key), vk.ValidUntilTS, old, d.at)
}

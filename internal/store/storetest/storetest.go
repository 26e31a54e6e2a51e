// Package storetest opens migrated test databases on the engines of
// internal/testenv. It lives apart from testenv because the store's own
// tests use testenv.
package storetest

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/internal/testenv"
)

// Open opens a fresh database on e, applies the migrations and closes it
// when the test ends.
func Open(t testing.TB, e testenv.Engine, migrations ...fs.FS) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, e.NewDSN(t), store.Options{Migrations: migrations})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

package clientapi

import (
	"embed"
	"io/fs"

	"github.com/axon-hs/axon/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the client API's migrations (versions 0400–0499).
func Migrations() fs.FS { return store.MigrationsDir(migrations) }

package syncapi

import (
	"embed"
	"io/fs"

	"github.com/axon-hs/axon/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the sync role's migrations (versions 0300–0399).
func Migrations() fs.FS { return store.MigrationsDir(migrations) }

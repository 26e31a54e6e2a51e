package userdata

import (
	"embed"
	"io/fs"

	"github.com/axon-hs/axon/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the package's migrations (versions 0500–0599), for
// store.Options.Migrations.
func Migrations() fs.FS { return store.MigrationsDir(migrations) }

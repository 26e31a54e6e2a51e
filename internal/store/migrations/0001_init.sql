-- 0001_init: the store package's own tables.
--
-- schema_migrations and schema_lock are created by the migrator itself before
-- it takes its lock (see bootstrapSQL in migrate.go); they are repeated here,
-- as no-ops, so that this file documents the whole initial schema.
CREATE TABLE IF NOT EXISTS schema_migrations (
	version    BIGINT PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS schema_lock (
	id         BIGINT PRIMARY KEY,
	holder     TEXT NOT NULL,
	expires_at BIGINT NOT NULL
);

-- kv holds small, rarely written, server-wide values that belong to no role's
-- tables: for example the server name this database was created for, so that
-- a worker pointed at the wrong database refuses to start. Namespaces are
-- owned by one package each. Not for hot paths or bulk data.
CREATE TABLE IF NOT EXISTS kv (
	namespace  {{text}} NOT NULL,
	key        {{text}} NOT NULL,
	value      {{bytes}} NOT NULL,
	updated_at {{bigint}} NOT NULL,
	PRIMARY KEY (namespace, key)
);

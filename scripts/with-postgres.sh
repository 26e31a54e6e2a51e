#!/usr/bin/env bash
# with-postgres.sh CMD [ARGS...]: run CMD with a throwaway PostgreSQL server
# on 127.0.0.1 and a random port, at SERIALIZABLE by default, and export its
# URL as AXON_TEST_POSTGRES. The server lives in a temporary directory and is
# stopped (by its data directory, with pg_ctl) and removed afterwards.
# PostgreSQL is installed from Debian's packages when it is missing and we
# may (root, or CI=true with sudo). fsync is off (tests need no durability)
# unless WITH_POSTGRES_FSYNC=on (benchmarks).
set -euo pipefail

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

bin=$(find_bin)
if [ -z "$bin" ]; then
  echo "with-postgres: installing PostgreSQL from Debian's packages" >&2
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }
  else
    sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
  fi
  bin=$(find_bin)
fi
[ -n "$bin" ] || { echo "with-postgres: no PostgreSQL server binaries found" >&2; exit 1; }

dir=$(mktemp -d /tmp/axon-pg.XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then
  # initdb refuses to run as root: use the postgres account Debian creates.
  chown postgres "$dir"
  as_pg=(runuser -u postgres --)
fi

cleanup() {
  "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }

for attempt in 1 2 3 4 5; do
  port=$(shuf -i 20000-60000 -n 1)
  if "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c default_transaction_isolation=serializable -c fsync=${WITH_POSTGRES_FSYNC:-off} -c max_connections=200" \
      start >/dev/null; then
    break
  fi
  port=""
done
[ -n "$port" ] || { echo "with-postgres: the server did not start" >&2; cat "$dir/server.log" >&2; exit 1; }

export AXON_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
echo "with-postgres: PostgreSQL on 127.0.0.1:$port (data in $dir)" >&2
"$@"

#!/usr/bin/env bash
# bench.sh: the standard send and sync scenarios (axon loadtest bench)
# against a freshly started server, once on the embedded default (SQLite,
# embedded NATS) and once on PostgreSQL (a throwaway server from
# with-postgres.sh, fsync on) with an external NATS (with-nats.sh). Each
# server runs on loopback on a random port, with rate limits off, and is
# stopped by its PID. SCALE multiplies the message counts (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${SCALE:-1}
work=$(mktemp -d /tmp/axon-bench.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/axon" ./cmd/axon

# run_one TITLE [SERVE FLAGS...]
run_one() {
  local title=$1; shift
  local port
  port=$(shuf -i 20000-60000 -n 1)
  rm -rf "$work/data"
  # The test servers' AXON_TEST_* variables are not settings: keep them
  # from the server, which refuses unknown AXON_* variables.
  env -u AXON_TEST_POSTGRES -u AXON_TEST_NATS "$work/axon" serve --data-dir "$work/data" --listen "127.0.0.1:$port" --federation-listen 127.0.0.1:0 --metrics-listen "" \
    --registration open --rate-limit-ip off --rate-limit-user off --log-level warn "$@" >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
  done
  "$work/axon" loadtest bench --target "http://127.0.0.1:$port" --pid "$pid" --scale "$scale" --title "$title ($(nproc) cores)"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

if [ "${1:-}" = "--postgres" ]; then
  env -u AXON_TEST_POSTGRES -u AXON_TEST_NATS "$work/axon" migrate --database "$AXON_TEST_POSTGRES" --log-level warn >/dev/null
  run_one "PostgreSQL + NATS" --database "$AXON_TEST_POSTGRES" --nats "$AXON_TEST_NATS"
  exit 0
fi
run_one "embedded (SQLite + embedded NATS)"
# PostgreSQL with fsync on, as the comparison figures were measured.
WITH_POSTGRES_FSYNC=on scripts/with-postgres.sh scripts/with-nats.sh "$0" --postgres

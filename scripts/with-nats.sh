#!/usr/bin/env bash
# with-nats.sh CMD [ARGS...]: run CMD with a throwaway NATS JetStream server
# on 127.0.0.1 and a random port, and export its URL as AXON_TEST_NATS. The
# server is the nats-server pinned as a Go tool in go.mod (no download at
# build time); it keeps its file store in a temporary directory and is
# stopped by its PID afterwards.
set -euo pipefail

dir=$(mktemp -d /tmp/axon-nats.XXXXXX)
go build -o "$dir/nats-server" github.com/nats-io/nats-server/v2
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

for attempt in 1 2 3 4 5; do
  port=$(shuf -i 20000-60000 -n 1)
  "$dir/nats-server" -a 127.0.0.1 -p "$port" -js -sd "$dir/store" -l "$dir/server.log" &
  pid=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break 2; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
done
[ -n "$pid" ] || { echo "with-nats: the server did not start" >&2; cat "$dir/server.log" >&2 || true; exit 1; }

export AXON_TEST_NATS="nats://127.0.0.1:$port"
echo "with-nats: NATS JetStream on 127.0.0.1:$port (store in $dir)" >&2
"$@"

#!/usr/bin/env bash
# with-etcd.sh CMD [ARGS...]: run CMD with a throwaway etcd server on
# 127.0.0.1 with random client and peer ports, and export its URL as
# AXON_TEST_ETCD. The server is Debian's etcd-server (installed by
# ensure-debs.sh when missing); its data lives in a temporary directory,
# and it is stopped by its PID and the directory removed afterwards.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
etcd=/usr/bin/etcd
if [ ! -x "$etcd" ]; then
  "$here/ensure-debs.sh" etcd-server
fi
[ -x "$etcd" ] || { echo "with-etcd: $etcd is missing (Debian's etcd-server)" >&2; exit 1; }

dir=$(mktemp -d /tmp/axon-etcd.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

# etcd answers /health with {"health":"true"} once it has a leader (plain
# HTTP/1.0 over bash's /dev/tcp: no curl needed).
healthy() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    timeout 1 cat <&3
  ) 2>/dev/null | grep -q '"health":"true"'
}

for attempt in 1 2 3 4 5; do
  port=$(shuf -i 20000-60000 -n 1)
  peer=$(shuf -i 20000-60000 -n 1)
  [ "$port" != "$peer" ] || continue
  rm -rf "$dir/data"
  # fsync is not needed by tests; --unsafe-no-fsync keeps etcd fast on a
  # busy machine (the flag exists since etcd 3.4).
  "$etcd" --name axon-test --data-dir "$dir/data" \
    --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "axon-test=http://127.0.0.1:$peer" --initial-cluster-state new \
    --unsafe-no-fsync --log-level warn --logger zap >"$dir/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do
    if healthy "$port"; then break 2; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
done
[ -n "$pid" ] || { echo "with-etcd: the server did not start" >&2; cat "$dir/server.log" >&2 || true; exit 1; }

export AXON_TEST_ETCD="http://127.0.0.1:$port"
echo "with-etcd: etcd on 127.0.0.1:$port (data in $dir)" >&2
"$@"

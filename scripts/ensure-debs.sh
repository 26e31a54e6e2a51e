#!/usr/bin/env bash
# ensure-debs.sh PACKAGE...: install the Debian packages that are missing
# (as root, or with password-less sudo). Used by make test for what the
# tests need beyond Go (the third-party client library of the end-to-end
# scenario).
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ensure-debs: installing ${missing[*]} from Debian's packages" >&2
run=()
[ "$(id -u)" = 0 ] || run=(sudo -n)
"${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
  { "${run[@]}" apt-get update -q >/dev/null && "${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }

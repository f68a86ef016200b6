#!/bin/sh
# Assembles the devtunnel-server runtime into <out-dir>: packs @devtunnel/core and
# @devtunnel/server from this repository (built beforehand: npm run build) and installs the two
# tarballs with production dependencies only, so that
#   node <out-dir>/node_modules/@devtunnel/server/dist/cli.js
# runs. The Dockerfile's build stage runs it into /app; test/e2e/container.test.ts runs it into a
# temporary directory and starts the result, since no Docker engine runs in CI.
#
# Usage: sh packages/server/container/assemble.sh <out-dir>
# Every npm call is bounded: ASSEMBLE_TIMEOUT seconds each (default 600) where `timeout` exists,
# and npm's own fetch timeout and retries.
set -eu

die() {
  printf 'assemble.sh: %s\n' "$*" >&2
  exit 1
}

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
  printf 'Usage: sh packages/server/container/assemble.sh <out-dir>\n' >&2
  exit 2
fi

LIMIT=${ASSEMBLE_TIMEOUT:-600}
case $LIMIT in '' | *[!0-9]*) die "ASSEMBLE_TIMEOUT must be a number of seconds (got '$LIMIT')" ;; esac

# The repository root, from this script's place in it (packages/server/container/).
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)

command -v node >/dev/null 2>&1 || die 'node is not on PATH'
command -v npm >/dev/null 2>&1 || die 'npm is not on PATH'
for built in packages/core/dist/index.js packages/core/dist/protocol.js packages/server/dist/cli.js packages/server/dist/index.js; do
  [ -f "$ROOT/$built" ] || die "$built is missing: run 'npm run build' at the repository root first"
done

# An existing, non-empty directory is refused: the runtime is exactly what this script installs.
if [ -e "$1" ]; then
  [ -d "$1" ] || die "$1 exists and is not a directory"
  [ -z "$(ls -A "$1")" ] || die "$1 is not empty; give a new or empty directory"
fi
mkdir -p "$1"
OUT=$(cd "$1" && pwd)

bounded() {
  if command -v timeout >/dev/null 2>&1; then
    timeout "$LIMIT" "$@"
  else
    "$@"
  fi
}

PACKS=$(mktemp -d "${TMPDIR:-/tmp}/devtunnel-packs.XXXXXX")
trap 'rm -rf "$PACKS"' EXIT INT TERM

# 1. Pack exactly what `npm run build` produced (each package's "files": dist, package.json, README).
(cd "$ROOT" && bounded npm pack --silent --ignore-scripts --pack-destination "$PACKS" -w @devtunnel/core -w @devtunnel/server >/dev/null) ||
  die "npm pack failed (exit $?)"
set -- "$PACKS"/devtunnel-core-*.tgz
CORE_TGZ=$1
set -- "$PACKS"/devtunnel-server-*.tgz
SERVER_TGZ=$1
[ -f "$CORE_TGZ" ] && [ -f "$SERVER_TGZ" ] || die "npm pack produced no devtunnel-core/devtunnel-server tarball in $PACKS"

# 2. Install both tarballs with production dependencies only. Both at once, so that the server's
# dependency on @devtunnel/core is the local tarball, never a registry package of that name.
cat >"$OUT/package.json" <<'EOF'
{
  "name": "devtunnel-server-runtime",
  "private": true,
  "description": "The devtunnel-server runtime assembled by packages/server/container/assemble.sh"
}
EOF
(cd "$OUT" && bounded npm install --prefix "$OUT" --omit=dev --no-audit --no-fund --no-save \
  --fetch-timeout=60000 --fetch-retries=2 --loglevel=error "$CORE_TGZ" "$SERVER_TGZ") ||
  die "npm install of the packed tarballs failed (exit $?); is the npm registry reachable (proxy settings)?"

# 3. Check the result: the entry point is there, core is the local one (a single copy), it starts.
CLI="$OUT/node_modules/@devtunnel/server/dist/cli.js"
[ -f "$CLI" ] || die "$CLI is missing after the install"
[ ! -e "$OUT/node_modules/@devtunnel/server/node_modules/@devtunnel/core" ] ||
  die '@devtunnel/server got its own @devtunnel/core (from the registry?) instead of the packed one'
version() { node -p 'require(process.argv[1]).version' "$1"; }
want=$(version "$ROOT/packages/core/package.json")
got=$(version "$OUT/node_modules/@devtunnel/core/package.json")
[ "$want" = "$got" ] || die "installed @devtunnel/core $got, expected the packed $want"
bounded node "$CLI" --help >/dev/null || die "node $CLI --help failed"

printf 'assemble.sh: %s is ready: node %s\n' "$OUT" "$CLI"

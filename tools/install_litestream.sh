#!/usr/bin/env bash
# Install the pinned Litestream release used by the failure-recovery lab.
#
#   bash tools/install_litestream.sh          # called by `make litestream` / `make test`
#
# Litestream 0.5.x is pure Go (modernc SQLite, no cgo), so `go install` builds it from the Go module
# proxy. The binary goes to ${SQLITEQUEUE_CACHE:-$HOME/.cache/sqlitequeue}/bin/litestream.
# Idempotent: returns at once when a fitting binary is already there (or on PATH).
# Knobs: LITESTREAM_VERSION (default below), LITESTREAM_BIN (use this binary, just check it).
set -euo pipefail

VERSION="${LITESTREAM_VERSION:-v0.5.18}"
WANT_SERIES="v0.5."
CACHE="${SQLITEQUEUE_CACHE:-$HOME/.cache/sqlitequeue}"
BIN_DIR="$CACHE/bin"
TARGET="$BIN_DIR/litestream"

say() { printf 'litestream: %s\n' "$*"; }

version_of() { "$1" version 2>/dev/null | head -n1 | tr -d '[:space:]'; }

fits() {  # fits BINARY -> 0 when it is a 0.5.x release
    local v
    v="$(version_of "$1" || true)"
    [[ "$v" == "$WANT_SERIES"* ]]
}

if [[ -n "${LITESTREAM_BIN:-}" ]]; then
    if fits "$LITESTREAM_BIN"; then
        say "using LITESTREAM_BIN=$LITESTREAM_BIN ($(version_of "$LITESTREAM_BIN"))"
        exit 0
    fi
    say "LITESTREAM_BIN=$LITESTREAM_BIN is not a ${WANT_SERIES}x release; unset it or fix it" >&2
    exit 1
fi

if [[ -x "$TARGET" ]] && [[ "$(version_of "$TARGET")" == "$VERSION" ]]; then
    say "$VERSION already installed at $TARGET"
    exit 0
fi

if on_path="$(command -v litestream 2>/dev/null)" && fits "$on_path"; then
    say "using $on_path from PATH ($(version_of "$on_path"))"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    say "Go is not installed: install Go >= 1.25 (https://go.dev/dl/), or put a litestream ${WANT_SERIES}x binary on PATH" >&2
    exit 1
fi

go_minor="$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')"
if [[ ! "$go_minor" =~ ^[0-9]+$ ]] || (( go_minor < 25 )); then
    say "Litestream $VERSION needs Go >= 1.25, found $(go env GOVERSION); upgrade Go" >&2
    exit 1
fi

mkdir -p "$BIN_DIR"
say "installing $VERSION with $(go version | awk '{print $3}') into $BIN_DIR (first build takes a few minutes)..."
start=$(date +%s)
CGO_ENABLED=0 GOBIN="$BIN_DIR" GOFLAGS="${GOFLAGS:-} -trimpath" \
    go install "github.com/benbjohnson/litestream/cmd/litestream@$VERSION"
elapsed=$(( $(date +%s) - start ))
got="$(version_of "$TARGET" || true)"
say "installed $TARGET (version '${got:-unknown}') in ${elapsed}s"
if [[ "$got" != "$WANT_SERIES"* ]]; then
    say "the new binary reports version '${got:-nothing}', expected $VERSION" >&2
    exit 1
fi

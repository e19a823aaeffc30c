#!/usr/bin/env bash
# Install the pinned Toxiproxy server used to emulate networks between Kafka clients and brokers.
#
#   bash tools/install_toxiproxy.sh          # called by `make toxiproxy` / `make test`
#
# Toxiproxy (Shopify) is a TCP proxy with latency and jitter toxics, pure Go, so `go install`
# builds it from the Go module proxy. The binary goes to
# ${SQLITEQUEUE_CACHE:-$HOME/.cache/sqlitequeue}/bin/toxiproxy-server.
# Idempotent: returns at once when the pinned version is already there.
# Knobs: TOXIPROXY_VERSION (default below), TOXIPROXY_BIN (use this binary, just check it).
set -euo pipefail

VERSION="${TOXIPROXY_VERSION:-v2.12.0}"
CACHE="${SQLITEQUEUE_CACHE:-$HOME/.cache/sqlitequeue}"
BIN_DIR="$CACHE/bin"
TARGET="$BIN_DIR/toxiproxy-server"

say() { printf 'toxiproxy: %s\n' "$*"; }

# A `go install` build reports "version git" itself; the module version is in its build info.
version_of() { go version -m "$1" 2>/dev/null | awk '$1 == "mod" {print $3}'; }

if [[ -n "${TOXIPROXY_BIN:-}" ]]; then
    if [[ -x "$TOXIPROXY_BIN" ]] && "$TOXIPROXY_BIN" -version >/dev/null 2>&1; then
        say "using TOXIPROXY_BIN=$TOXIPROXY_BIN"
        exit 0
    fi
    say "TOXIPROXY_BIN=$TOXIPROXY_BIN is not a toxiproxy server; unset it or fix it" >&2
    exit 1
fi

if [[ -x "$TARGET" ]] && [[ "$(version_of "$TARGET")" == "$VERSION" ]]; then
    say "$VERSION already installed at $TARGET"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    if [[ -x "$TARGET" ]]; then
        say "Go is not installed; using the cached $TARGET as it is"
        exit 0
    fi
    say "Go is not installed: install Go (https://go.dev/dl/), or set TOXIPROXY_BIN to a toxiproxy-server binary" >&2
    exit 1
fi

mkdir -p "$BIN_DIR"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
say "installing $VERSION with $(go version | awk '{print $3}') into $BIN_DIR..."
start=$(date +%s)
CGO_ENABLED=0 GOBIN="$build" GOFLAGS="${GOFLAGS:-} -trimpath" \
    go install "github.com/Shopify/toxiproxy/v2/cmd/server@$VERSION"
mv "$build/server" "$TARGET"
got="$(version_of "$TARGET" || true)"
say "installed $TARGET (version '${got:-unknown}') in $(( $(date +%s) - start ))s"
if [[ "$got" != "$VERSION" ]]; then
    say "the new binary reports version '${got:-nothing}', expected $VERSION" >&2
    exit 1
fi

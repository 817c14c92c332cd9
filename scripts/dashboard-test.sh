#!/usr/bin/env bash
# The dashboard in a real headless Chromium (issue 15): installs Debian's chromium if missing
# and a pinned playwright-core from npm into target/dashboard-test (idempotent; Playwright's
# own browser download is never used), builds the relay unless SIMRELAY_BIN names one, and runs
# server/tests/browser/dashboard.mjs, which starts `simrelay serve` and `simrelay sim-phones`
# itself. SHOTS=DIR writes a screenshot of each page there (docs/dashboard/ holds the ones
# docs/dashboard.md shows); by default they go to target/dashboard-test/shots.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PLAYWRIGHT_VERSION=1.65.2
out=target/dashboard-test

if ! command -v chromium >/dev/null; then
  echo "dashboard-test: installing Debian's chromium" >&2
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } >/dev/null || {
    echo "dashboard-test: DOWNLOAD REFUSED: apt-get could not install chromium" >&2
    exit 1
  }
fi

mkdir -p "$out"
if [ "$(cat "$out/node_modules/playwright-core/package.json" 2>/dev/null |
  sed -n 's/^ *"version": "\(.*\)",$/\1/p')" != "$PLAYWRIGHT_VERSION" ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$out" --no-save --no-audit --no-fund \
    "playwright-core@$PLAYWRIGHT_VERSION" >/dev/null || {
    echo "dashboard-test: DOWNLOAD REFUSED: npm could not install playwright-core@$PLAYWRIGHT_VERSION" >&2
    exit 1
  }
fi

if [ -z "${SIMRELAY_BIN:-}" ]; then
  cargo build -q -p simrelay-server --bin simrelay
  SIMRELAY_BIN="$PWD/target/debug/simrelay"
fi
[ -x "$SIMRELAY_BIN" ] || { echo "dashboard-test: $SIMRELAY_BIN is not an executable" >&2; exit 1; }

export SIMRELAY_BIN
export SHOTS="${SHOTS:-$out/shots}"
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
export PW_DIR="$PWD/$out"
exec node server/tests/browser/dashboard.mjs

#!/usr/bin/env bash
# The SMS Gateway for Android clients, published and unchanged, against a real relay (issue 14):
# the Python package `android-sms-gateway` on its four HTTP backends with its `encryption`
# extra, and the JS package `android-sms-gateway`. Installs them pinned into
# target/compat (a venv and an npm folder; idempotent), builds the relay, and runs
# scripts/compat/test_python_client.py, which starts `simrelay serve` and `simrelay
# sim-phones` itself. A refused download fails loudly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=target/compat
py_pkgs=(
  "android-sms-gateway[encryption]==4.3.3"
  "httpx==0.29.0"
  "requests==2.34.2"
  "aiohttp==3.14.5"
  "pytest==9.2.0"
)
js_pkg="android-sms-gateway@3.0.0"

mkdir -p "$out"
if [ ! -x "$out/venv/bin/python" ]; then
  python3 -m venv "$out/venv" || {
    echo "compat-clients: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi
"$out/venv/bin/pip" install -q "${py_pkgs[@]}" || {
  echo "compat-clients: pip could not install ${py_pkgs[*]} from PyPI" >&2
  exit 1
}
command -v node >/dev/null || { echo "compat-clients: node is missing (Debian: apt-get install nodejs npm)" >&2; exit 1; }
mkdir -p "$out/node"
if [ ! -f "$out/node/node_modules/android-sms-gateway/package.json" ] \
   || ! grep -q '"version": "3.0.0"' "$out/node/node_modules/android-sms-gateway/package.json"; then
  (cd "$out/node" && { [ -f package.json ] || npm init -y >/dev/null; } \
     && npm install --silent --no-audit --no-fund "$js_pkg") || {
    echo "compat-clients: npm could not install $js_pkg" >&2
    exit 1
  }
fi

cargo build -q --release -p simrelay-server --bin simrelay
export SIMRELAY_BIN="$PWD/target/release/simrelay"
export SIMRELAY_JS_DIR="$PWD/$out/node"
cd scripts/compat
exec "../../$out/venv/bin/python" -m pytest -q -p no:cacheprovider "$@" test_python_client.py

#!/usr/bin/env bash
# The relay against its own OpenAPI description (issue 15): installs a pinned schemathesis from
# PyPI into a venv in target/schemathesis (idempotent), builds the relay unless SIMRELAY_BIN
# names one, starts `simrelay serve` on a free loopback port with a private data directory and
# an admin key, and runs `schemathesis run` on its /openapi.json with that key: no 5xx, every
# response of its documented status and schema, every documented error JSON with a code.
# Bounded by --max-examples (a few minutes on 2 cores). Arguments go on to `schemathesis run`.
# A refused download fails loudly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=target/schemathesis
version=4.32.5
examples="${SCHEMATHESIS_MAX_EXAMPLES:-100}"

mkdir -p "$out"
if [ ! -x "$out/bin/python" ]; then
  python3 -m venv "$out" || {
    echo "schemathesis: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi
if ! "$out/bin/schemathesis" --version 2>/dev/null | grep -qF "$version"; then
  "$out/bin/pip" --disable-pip-version-check install -q "schemathesis==$version" || {
    echo "schemathesis: pip could not install schemathesis==$version from PyPI" >&2
    exit 1
  }
fi

if [ -z "${SIMRELAY_BIN:-}" ]; then
  cargo build -q --release -p simrelay-server --bin simrelay
  SIMRELAY_BIN="$PWD/target/release/simrelay"
fi
[ -x "$SIMRELAY_BIN" ] || { echo "schemathesis: $SIMRELAY_BIN is not an executable" >&2; exit 1; }

work="$(mktemp -d "$PWD/$out/run.XXXXXX")"
relay_pid=
stop() {
  if [ -n "$relay_pid" ]; then
    kill "$relay_pid" 2>/dev/null || true
    wait "$relay_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop EXIT

api_key="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
admin_key="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
"$SIMRELAY_BIN" serve --listen 127.0.0.1:0 --data "$work/data" \
  --api-key "$api_key" --admin-key "$admin_key" >"$work/serve.out" 2>"$work/serve.err" &
relay_pid=$!
url=
for _ in $(seq 1 300); do
  url="$(sed -n 's/^listening on //p' "$work/serve.out" | head -n 1)"
  [ -n "$url" ] && break
  kill -0 "$relay_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "schemathesis: simrelay serve did not start" >&2
  cat "$work/serve.err" >&2
  exit 1
fi

# /v1/inbox/wait holds each request until its timeout (up to 300 s) on an empty inbox: the
# in-process tests (server/tests/openapi.rs) cover it instead.
# Run from the temporary directory: schemathesis leaves its caches and reports in the current one.
st="$PWD/$out/bin/schemathesis"
status=0
(cd "$work" && "$st" run "$url/openapi.json" \
  --header "Authorization: Bearer $admin_key" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --exclude-path /v1/inbox/wait \
  --max-examples "$examples" \
  --request-timeout 10 \
  --seed "${SCHEMATHESIS_SEED:-1}" \
  --no-color \
  "$@") || status=$?
if [ "$status" -ne 0 ]; then
  echo "schemathesis: failed; the relay's log follows" >&2
  tail -n 50 "$work/serve.err" >&2
fi
exit "$status"

#!/usr/bin/env bash
# The Python client (clients/python, issue 15) against a real relay: installs the package
# from its folder with pinned httpx, pytest, mypy and hatchling (its build backend) into a venv
# in target/pyclient (idempotent), builds the relay unless SIMRELAY_BIN names one, checks the
# package and its tests with `mypy --strict`, and runs clients/python/tests, which start
# `simrelay serve` and `simrelay sim-phones` themselves. A refused download fails loudly.
# PYTHON names another interpreter (PYTHON=python3.13); it gets its own venv beside the first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=target/pyclient
python="${PYTHON:-python3}"
venv="$out/venv"
[ -z "${PYTHON:-}" ] || venv="$out/venv-$(basename "$python")"
py_pkgs=(
  "httpx==0.29.0"
  "pytest==9.2.0"
  "mypy==2.4.1"
  "hatchling==1.33.0"
)

mkdir -p "$out"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" || {
    echo "python-client: $python -m venv failed (Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi
pip=("$venv/bin/pip" --disable-pip-version-check)
"${pip[@]}" install -q "${py_pkgs[@]}" || {
  echo "python-client: pip could not install ${py_pkgs[*]} from PyPI" >&2
  exit 1
}
# The pinned hatchling above builds it (no build isolation: nothing unpinned is fetched);
# reinstalled every run so the venv always holds the folder's current code.
"${pip[@]}" install -q --no-build-isolation --no-deps --force-reinstall ./clients/python || {
  echo "python-client: pip could not install clients/python" >&2
  exit 1
}

if [ -z "${SIMRELAY_BIN:-}" ]; then
  cargo build -q --release -p simrelay-server --bin simrelay
  SIMRELAY_BIN="$PWD/target/release/simrelay"
fi
[ -x "$SIMRELAY_BIN" ] || { echo "python-client: $SIMRELAY_BIN is not an executable" >&2; exit 1; }
export SIMRELAY_BIN

(cd clients/python && "../../$venv/bin/mypy" --strict --cache-dir "../../$out/mypy-cache" src tests)
cd clients/python/tests
export PYTHONDONTWRITEBYTECODE=1
exec "../../../$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"

#!/usr/bin/env bash
# Runs every fuzz target for a while: scripts/fuzz.sh [SECONDS_EACH] (default 10).
# Longer runs: scripts/fuzz.sh 600. A crash stops the run; its input lands in
# fuzz/artifacts/<target>/ — turn it into a regression test next to the code it broke.
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain take them
# (no sanitizer: the fuzzed code has no unsafe). `-a` keeps debug assertions and overflow
# checks on, as in the test builds: an overflow is a crash here too.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_EACH=${1:-10}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz@0.13.2
cd "$ROOT/fuzz"
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none -a
for target in $(cargo fuzz list); do
    corpus="$ROOT/target/fuzz-corpus/$target"
    mkdir -p "$corpus"
    echo "== fuzz $target for ${SECONDS_EACH}s"
    log="$ROOT/target/fuzz-$target.log"
    status=0
    cargo fuzz run -s none -a "$target" "$corpus" "seeds/$target" -- \
        -max_total_time="$SECONDS_EACH" -max_len=8192 >"$log" 2>&1 || status=$?
    grep -E '^Done|SUMMARY|panicked|ERROR' "$log" || true
    if [ "$status" != 0 ]; then
        tail -40 "$log"
        echo "fuzz: $target failed (exit $status); the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
done

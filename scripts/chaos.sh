#!/usr/bin/env bash
# The chaos run at full size: MESSAGES messages to PHONES simulated phones (separate
# processes: `simrelay serve` and `simrelay sim-phones`) while the relay and the phones are
# killed with SIGKILL and restarted on the same files and a TCP proxy cuts and stalls links,
# one fault per wave. Prints the seed first and a `chaos summary:` line at the end.
#
#   scripts/chaos.sh [MESSAGES=10000] [PHONES=20] [WAVES=200] [SEED]
#
# The short version runs in `cargo test` (240 messages, 4 phones, 12 faults).
# CHAOS_KEEP=1 keeps the data directories and logs (their path is printed on failure).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CHAOS_MESSAGES="${1:-10000}" CHAOS_PHONES="${2:-20}" CHAOS_WAVES="${3:-200}"
if [[ -n "${4:-}" ]]; then export CHAOS_SEED="$4"; fi
# Every phone holds a WebSocket, a SQLite file and its ledger; the relay one file per link.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec cargo test --release -p simrelay-server --test chaos -- --nocapture

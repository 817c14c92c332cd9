#!/usr/bin/env bash
# The chaos run at full size: MESSAGES messages to PHONES simulated phones (separate
# processes: `simrelay serve` and `simrelay sim-phones`) while the relay and the phones are
# killed with SIGKILL and restarted on the same files and a TCP proxy cuts and stalls links,
# one fault per wave. Prints the seed first and a `chaos summary:` line at the end.
#
#   scripts/chaos.sh [MESSAGES=10000] [PHONES=20] [WAVES=200] [SEED]
#   scripts/chaos.sh cluster [MESSAGES=10000] [PHONES=20] [WAVES=200] [SEED]
#
# `cluster` runs the same against three relay nodes on one PostgreSQL, phones linked to all
# three, nodes killed and restarted, single nodes' links cut and stalled, and PostgreSQL
# itself killed and restarted once (`server/tests/cluster_chaos.rs`). It installs
# PostgreSQL if missing (scripts/postgres.sh); the test runs a private cluster of its own.
#
# The short versions run in `cargo test` (chaos: 240 messages, 4 phones, 12 faults;
# cluster: 150 messages, 4 phones, 10 faults, on PostgreSQL).
# CHAOS_KEEP=1 keeps the data directories and logs (their path is printed on failure).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
test_name=chaos
if [[ "${1:-}" == cluster ]]; then
    test_name=cluster_chaos
    shift
    SIMRELAY_TEST_DATABASE_URL="$(bash scripts/postgres.sh start)"
    export SIMRELAY_TEST_DATABASE_URL
fi
export CHAOS_MESSAGES="${1:-10000}" CHAOS_PHONES="${2:-20}" CHAOS_WAVES="${3:-200}"
if [[ -n "${4:-}" ]]; then export CHAOS_SEED="$4"; fi
# Every phone holds a WebSocket (one per node), a SQLite file and its ledger; the relay one
# file per link.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec cargo test --release -p simrelay-server --test "$test_name" -- --nocapture

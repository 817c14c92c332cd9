#!/usr/bin/env bash
# Load benchmarks against `simrelay serve` as its own process (server/benches/load.rs).
# Figures go to docs/BENCHMARKS.md ("## Load"). Raises the fd limit for 10,000 links.
#
#   scripts/load.sh            # accept, rate 2000/s, e2e 100 phones, 10,000 links, 150 s soak
#   scripts/load.sh soak --rate 300 --secs 1800 --phones 20     # one mode with its flags
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ulimit -n "$(ulimit -Hn)"
bench() { cargo bench -q -p simrelay-server --bench load -- "$@"; }
if [[ $# -gt 0 ]]; then bench "$@"; exit; fi
bench accept --secs 10 --concurrency 64
bench rate --rate 2000 --secs 10
bench rate --rate 5000 --secs 10
bench e2e --phones 100 --messages 20000
bench conns --count 10000 --secs 60
bench soak --rate 300 --secs 150 --phones 20

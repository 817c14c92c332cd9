#!/usr/bin/env bash
# Side by side with Kannel (issue 16): the same closed-loop accept load (server/benches/load.rs,
# one HTTP/1.1 keep-alive connection per client) against `simrelay serve` and against Kannel
# 1.4.5 (Debian's `kannel`: bearerbox + smsbox, the spool store, a fake SMSC connected by
# Kannel's own `fakesmsc`), alternated, at 1, 16 and 64 clients; each line prints accepted/s,
# latency percentiles and CPU per accepted message. Then end to end, alternated: E2E messages
# through 20 simulated phones until every one is `delivered` (the phones' delivery reports),
# against the same count through Kannel until every delivery report (dlr-mask 8) reached a
# local dlr-url receiver; msg/s and CPU per message of each side.
#
#   scripts/peer-bench.sh                 # 2 rounds of 10 s per client count, E2E=20000
#   ROUNDS=3 SECS=20 E2E=10000 scripts/peer-bench.sh
#   PARTS=e2e scripts/peer-bench.sh        # only one of the two parts (accept, e2e)
#   PARTS=accept CLIENTS=1 scripts/peer-bench.sh   # the accept part at these client counts
#
# What an accept means differs: simrelay answers 202 after the message is committed
# (SQLite, fsync'd WAL); Kannel answers 202 once bearerbox queued it (its spool file is
# written without fsync). So does a report: simrelay's `delivered` is the handset's status
# report through a phone (each message: a frame to the phone, its durable queue, the radio,
# sent and delivered events, each acked); Kannel's dlr-mask 8 is its fake SMSC taking the
# message (it gives no handset report). Installs Kannel idempotently (apt-get); a refused
# install fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS=${ROUNDS:-2}
SECS=${SECS:-10}
E2E=${E2E:-20000}
PARTS=${PARTS:-accept e2e}
CLIENTS=${CLIENTS:-1 16 64}
part() { [[ " $PARTS " == *" $1 "* ]]; }
FAKESMSC=/usr/lib/kannel/test/fakesmsc

if ! command -v /usr/sbin/bearerbox >/dev/null || [ ! -x "$FAKESMSC" ]; then
  echo "peer-bench: installing kannel and kannel-extras from Debian" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kannel kannel-extras; } \
    >/dev/null || { echo "peer-bench: apt-get could not install kannel" >&2; exit 1; }
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir="$PWD/target/peer-bench"
rm -rf "$dir" && mkdir -p "$dir/spool"
admin=$(free_port); box=$(free_port); smsc=$(free_port); http=$(free_port)
cat >"$dir/kannel.conf" <<EOF
group = core
admin-port = $admin
admin-password = bench
smsbox-port = $box
box-allow-ip = 127.0.0.1
log-file = "$dir/bearerbox.log"
log-level = 3
store-type = spool
store-location = "$dir/spool"

group = smsc
smsc = fake
smsc-id = fake
port = $smsc
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = $box
sendsms-port = $http
log-file = "$dir/smsbox.log"
log-level = 3

group = sendsms-user
username = bench
password = bench

group = sms-service
keyword = default
text = "none"
EOF

pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "peer-bench: nothing listens on $1 ($2); see $dir/*.log" >&2
  exit 1
}
/usr/sbin/bearerbox "$dir/kannel.conf" >"$dir/bearerbox.out" 2>&1 &
bearer=$!; pids+=("$bearer")
wait_port "$smsc" bearerbox
"$FAKESMSC" -H 127.0.0.1 -r "$smsc" -i 1 -m 0 "100 200 text none" >"$dir/fakesmsc.out" 2>&1 &
fake=$!; pids+=("$fake")
/usr/sbin/smsbox "$dir/kannel.conf" >"$dir/smsbox.out" 2>&1 &
smsbox=$!; pids+=("$smsbox")
wait_port "$http" smsbox

cargo bench -q -p simrelay-server --bench load --no-run
# The disk's single-commit rate: what one client's durable accepts are bounded by.
python3 - "$dir/fsync" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)
n, end = 0, time.monotonic() + 2
while time.monotonic() < end:
    os.pwrite(fd, b"x" * 512, 0)
    os.fdatasync(fd)
    n += 1
print(f"disk: {n / 2:.0f} fdatasync/s (512 bytes each, one writer)")
PY
# simrelay's figure over Kannel's, two decimals.
ratio() { python3 -c 'import sys; a, b = map(float, sys.argv[1:]); print(f"{a / b:.2f}" if b else "n/a")' "$1" "$2"; }
# The first number after `key` in file $2 (e.g. `relay 0.12 ms`, `= 1500/s`).
num() { sed -n "s/.*$1 \([0-9.]*\).*/\1/p" "$2" | head -1; }
part accept && for round in $(seq 1 "$ROUNDS"); do
  for c in $CLIENTS; do
    echo "== round $round, $c clients"
    cargo bench -q -p simrelay-server --bench load -- accept --secs "$SECS" --concurrency "$c" \
      | grep -E '^accept' | tee "$dir/ours"
    cargo bench -q -p simrelay-server --bench load -- kannel --url="http://127.0.0.1:$http" \
      --pids="$bearer,$smsbox" --secs "$SECS" --concurrency "$c" | tee "$dir/theirs"
    # `= N/s` is on each side's first line (the accepted rate; `accept: N answered` is a count).
    echo "ratio simrelay/Kannel: accepted/s $(ratio "$(num '=' "$dir/ours")" \
      "$(num '=' "$dir/theirs")"), CPU per accepted message $(ratio "$(num relay "$dir/ours")" \
      "$(num 'bearerbox+smsbox' "$dir/theirs")")"
  done
done
part e2e && for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round, end to end, $E2E messages"
  cargo bench -q -p simrelay-server --bench load -- e2e --phones 20 --messages "$E2E" \
    | grep -E '^e2e' | tee "$dir/ours"
  cargo bench -q -p simrelay-server --bench load -- kannel-e2e --url="http://127.0.0.1:$http" \
    --pids="$bearer,$smsbox" --smsc-pid "$fake" --messages "$E2E" | tee "$dir/theirs"
  echo "ratio simrelay/Kannel: msg/s $(ratio "$(num '=' "$dir/ours")" "$(num '=' "$dir/theirs")")," \
    "CPU per message $(ratio "$(num relay "$dir/ours")" "$(num 'bearerbox+smsbox' "$dir/theirs")")"
done
echo "Kannel RSS (KiB): bearerbox $(awk '/VmRSS/{print $2}' /proc/$bearer/status)," \
  "smsbox $(awk '/VmRSS/{print $2}' /proc/$smsbox/status)"

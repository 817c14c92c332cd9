#!/usr/bin/env bash
# A private PostgreSQL cluster for the relay's tests and benchmarks, in the build folder.
#
#   scripts/postgres.sh start    # installs Debian's postgresql if missing, initdb, starts; prints the URL
#   scripts/postgres.sh url      # the URL of the running cluster (starts it if needed)
#   scripts/postgres.sh status   # exit 0 and the URL when running, exit 3 when not
#   scripts/postgres.sh stop     # stops it (the data stays; `start` again reuses it)
#   scripts/postgres.sh kill     # stops it at once, as a crash would (`pg_ctl -m immediate`):
#                                # the next start runs crash recovery (the relay's outage tests)
#   scripts/postgres.sh restart  # stop, then start (the same port when it is still free)
#
# A data directory whose files are hard links (a build folder copied with `cp -al` into
# another checkout) is shared with another cluster: two servers would write the same files.
# `start` refuses to run on it and makes a fresh one instead.
#
# Idempotent: `start` on a running cluster only prints its URL. The cluster lives in
# SIMRELAY_PG_DIR (default target/pg): data/ (also the unix socket's directory), log, url.
# It listens on 127.0.0.1 only, on a port the OS picked as free, with trust authentication
# for loopback and the socket (the data directory is 0700). fsync and synchronous_commit are
# on: the relay's promise is a 202 only after a durable commit, and the benchmarks measure that.
# initdb refuses to run as root: as root the server runs as the `postgres` user.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PG_DIR="$(realpath -m "${SIMRELAY_PG_DIR:-$PWD/target/pg}")"
DB_NAME=simrelay
SUPERUSER=postgres

die() {
    printf 'postgres.sh: %s\n' "$*" >&2
    exit 1
}
say() { printf 'postgres.sh: %s\n' "$*" >&2; }

# The newest installed server's bin directory (Debian keeps them in /usr/lib/postgresql/N/bin).
find_bindir() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
        printf '%s\n' "$d"
        return 0
    fi
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return 0
    fi
    return 1
}

install_postgres() {
    say "PostgreSQL's server binaries are missing: installing Debian's postgresql"
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 ||
            die "not root and no sudo: install PostgreSQL with 'apt-get install -y postgresql' as root"
        sudo apt-get update || die "apt-get update failed"
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql ||
            die "apt-get install postgresql failed"
    else
        apt-get update || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql ||
            die "apt-get install postgresql failed"
    fi
}

BINDIR="$(find_bindir || true)"
if [[ -z "$BINDIR" && "${1:-}" != stop && "${1:-}" != status ]]; then
    install_postgres
    BINDIR="$(find_bindir)" || die "postgresql installed but initdb/pg_ctl not found"
fi

DATA="$PG_DIR/data"
LOG="$PG_DIR/log"
URL_FILE="$PG_DIR/url"

# Runs a PostgreSQL binary as the cluster's owner: the `postgres` user when we are root.
as_owner() {
    if [[ "$(id -u)" -eq 0 ]]; then
        (cd / && runuser -u "$OWNER" -- "$@")
    else
        "$@"
    fi
}

if [[ "$(id -u)" -eq 0 ]]; then
    OWNER=postgres
    if ! id -u "$OWNER" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$OWNER" ||
            die "cannot create the user $OWNER to run PostgreSQL as"
    fi
else
    OWNER="$(id -un)"
fi

# As root the server runs as $OWNER, who must reach the cluster's directory: a checkout under a
# private home (/root is 0700) is out of its reach, so the default moves to a directory of its
# own under /tmp, named after the checkout (every command of this script finds the same one).
if [[ "$(id -u)" -eq 0 && -z "${SIMRELAY_PG_DIR:-}" ]]; then
    parent="$(dirname "$PG_DIR")"
    while [[ ! -d "$parent" ]]; do parent="$(dirname "$parent")"; done
    if ! runuser -u "$OWNER" -- test -x "$parent"; then
        PG_DIR="/tmp/simrelay-pg-$(printf '%s' "$PWD" | cksum | cut -d' ' -f1)"
        DATA="$PG_DIR/data"
        LOG="$PG_DIR/log"
        URL_FILE="$PG_DIR/url"
    fi
fi

# A TCP port on 127.0.0.1 that the OS says is free (perl-base is in every Debian system).
# SO_REUSEADDR as PostgreSQL binds: the previous port stays usable while connections of the
# last run linger in TIME_WAIT (after `kill`, clients were cut), so the URL stays the same.
free_port() {
    perl -MSocket -e '
        socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
        setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1) or die "setsockopt: $!";
        bind($s, pack_sockaddr_in($ARGV[0], inet_aton("127.0.0.1"))) or exit 1;
        my ($port) = unpack_sockaddr_in(getsockname($s));
        print "$port\n";' "${1:-0}"
}

running() {
    [[ -f "$DATA/PG_VERSION" ]] && as_owner "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

current_port() {
    [[ -f "$DATA/simrelay.conf" ]] || return 0
    sed -n "s/^port = \([0-9]*\).*/\1/p" "$DATA/simrelay.conf" | tail -n 1
}

url_of() { printf 'postgres://%s@127.0.0.1:%s/%s\n' "$SUPERUSER" "$1" "$DB_NAME"; }

init_cluster() {
    say "initdb in $DATA"
    mkdir -p "$PG_DIR"
    if [[ "$(id -u)" -eq 0 ]]; then
        chown "$OWNER" "$PG_DIR"
        runuser -u "$OWNER" -- test -w "$PG_DIR" ||
            die "$OWNER cannot reach $PG_DIR (a parent directory is not searchable by it?); set SIMRELAY_PG_DIR"
    fi
    chmod 700 "$PG_DIR"
    rm -rf "$DATA"
    as_owner "$BINDIR/initdb" -D "$DATA" -U "$SUPERUSER" -E UTF8 --no-locale \
        --auth-local=trust --auth-host=trust >"$PG_DIR/initdb.log" 2>&1 ||
        die "initdb failed (see $PG_DIR/initdb.log)"
    # Loopback and the private socket only.
    as_owner sh -c "cat > '$DATA/pg_hba.conf'" <<'EOF'
# simrelay's private test cluster: trust on the socket (in the 0700 data dir) and loopback only.
local   all all               trust
host    all all 127.0.0.1/32  trust
EOF
    as_owner sh -c "echo \"include_if_exists = 'simrelay.conf'\" >> '$DATA/postgresql.conf'"
}

write_conf() {
    local port="$1"
    as_owner sh -c "cat > '$DATA/simrelay.conf'" <<EOF
# Written by scripts/postgres.sh (rewritten at each start).
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$DATA'
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 300
shared_buffers = 128MB
EOF
}

start() {
    mkdir -p "$PG_DIR"
    exec 9>"$PG_DIR/lock"
    flock 9
    if running; then
        url_of "$(current_port)" | tee "$URL_FILE"
        return 0
    fi
    if [[ -f "$DATA/PG_VERSION" && "$(stat -c %h "$DATA/PG_VERSION")" -gt 1 ]]; then
        say "$DATA is hard-linked with another copy (a copied build folder?): making a fresh cluster"
        # Removing our names only; the other copy keeps its files.
        rm -rf "$DATA"
    fi
    [[ -f "$DATA/PG_VERSION" ]] || init_cluster
    local tries port
    for tries in 1 2 3 4 5; do
        # The previous port when it is still free (a stable URL), else a new one.
        port="$(current_port)"
        if [[ -z "$port" ]] || ! free_port "$port" >/dev/null 2>&1; then
            port="$(free_port)"
        fi
        write_conf "$port"
        if as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null 2>&1 9>&-; then
            as_owner "$BINDIR/psql" -h "$DATA" -p "$port" -U "$SUPERUSER" -d postgres -Atq \
                -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1 ||
                as_owner "$BINDIR/createdb" -h "$DATA" -p "$port" -U "$SUPERUSER" "$DB_NAME" ||
                die "createdb $DB_NAME failed"
            url_of "$port" | tee "$URL_FILE"
            return 0
        fi
        say "start on port $port failed (try $tries; log: $LOG)"
        tail -n 5 "$LOG" >&2 || true
    done
    die "PostgreSQL did not start (see $LOG)"
}

stop() {
    local mode="${1:-fast}"
    [[ -d "$PG_DIR" ]] || return 0
    exec 9>"$PG_DIR/lock"
    flock 9
    if running; then
        as_owner "$BINDIR/pg_ctl" -D "$DATA" -m "$mode" -w -t 60 stop >/dev/null ||
            die "pg_ctl stop failed"
        say "stopped ($mode)"
    fi
    rm -f "$URL_FILE"
    exec 9>&-
}

case "${1:-}" in
start) start ;;
url)
    if running; then url_of "$(current_port)"; else start; fi
    ;;
status)
    if [[ -n "$BINDIR" ]] && running; then
        url_of "$(current_port)"
    else
        say "not running"
        exit 3
    fi
    ;;
stop)
    [[ -z "$BINDIR" ]] || stop fast
    ;;
kill)
    [[ -z "$BINDIR" ]] || stop immediate
    ;;
restart)
    stop fast
    start
    ;;
*)
    die "usage: scripts/postgres.sh start|stop|kill|restart|url|status"
    ;;
esac

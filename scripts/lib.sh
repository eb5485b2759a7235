# shellcheck shell=bash
# shellcheck disable=SC2034  # variables set here are read by the scripts that source this file
# Shared helpers of scripts/dev, scripts/test and .ci/run. Source it; do not execute it.
#
# Everything a script creates lives in gitignored folders of the repository:
#   .venv/     Python tools (cargo-lambda, cfn-lint, ...), pinned versions
#   .local/    logs, the dev env file, the throw-away Postgres cluster (.local/pg)
# `cargo lambda watch` restarts every function when a file it does not ignore changes, so nothing
# here ever writes outside those folders and target/.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL_DIR="$REPO_ROOT/.local"
VENV_DIR="$REPO_ROOT/.venv"

CARGO_LAMBDA_VERSION="1.9.2"

# Postgres: an existing server on 127.0.0.1:5432 (trust auth, user postgres) is used as is;
# otherwise a throw-away cluster is started on 127.0.0.1:$OWN_PG_PORT with data under .local/pg.
# REALSTAGING_OWN_PG=1 skips the 5432 probe and always uses the throw-away cluster.
SHARED_PG_PORT=5432
OWN_PG_PORT="${REALSTAGING_OWN_PG_PORT:-55432}"
PG_HOST=127.0.0.1

if [ -t 2 ]; then _B=$'\033[1m' _R=$'\033[0m' _E=$'\033[31m'; else _B="" _R="" _E=""; fi

log() { printf '%s==>%s %s\n' "$_B" "$_R" "$*" >&2; }
die() { printf '%serror:%s %s\n' "$_E" "$_R" "$*" >&2; exit 1; }

# All descendants of process $1 (children, grandchildren, ...), space separated.
descendant_pids() {
    ps -e -o pid= -o ppid= | awk -v root="$1" '
        { parent[$1] = $2 }
        END {
            for (pid in parent) {
                p = parent[pid]
                while (p != "" && p != 0 && p != 1) { if (p == root) { printf "%s ", pid; break } p = parent[p] }
            }
        }'
}

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

APT_UPDATED=""
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install these packages by hand: $*"
    if [ -z "$APT_UPDATED" ]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# ---------------------------------------------------------------------------------------------
# Python tools
# ---------------------------------------------------------------------------------------------

# Creates .venv (once) and puts its bin/ first on PATH.
ensure_venv() {
    if [ ! -x "$VENV_DIR/bin/python" ]; then
        log "creating $VENV_DIR"
        if ! python3 -m venv "$VENV_DIR" >&2; then
            # Debian's system python3 ships venv separately.
            rm -rf "$VENV_DIR"
            apt_install python3-venv
            python3 -m venv "$VENV_DIR" >&2
        fi
    fi
    case ":$PATH:" in *":$VENV_DIR/bin:"*) ;; *) export PATH="$VENV_DIR/bin:$PATH" ;; esac
}

# pip install into .venv, quietly.
venv_pip_install() {
    ensure_venv
    log "pip install $*"
    "$VENV_DIR/bin/python" -m pip install -q --disable-pip-version-check "$@" >&2
}

# `cargo lambda` (the local Lambda emulator), pinned; installed into .venv from PyPI when no
# cargo-lambda is on PATH. The PyPI package brings zig along.
ensure_cargo_lambda() {
    if [ -x "$VENV_DIR/bin/cargo-lambda" ]; then
        ensure_venv
    fi
    if ! cargo lambda --version >/dev/null 2>&1; then
        venv_pip_install "cargo-lambda==$CARGO_LAMBDA_VERSION"
    fi
    cargo lambda --version >/dev/null 2>&1 || die "cargo lambda is still not runnable after installing it"
    log "using $(cargo lambda --version | head -n1)"
}

# ---------------------------------------------------------------------------------------------
# Postgres
# ---------------------------------------------------------------------------------------------

# True when a TCP server accepts connections on 127.0.0.1:$1.
port_open() {
    python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket()
s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}

# psql as the postgres superuser over TCP (no password: trust auth).
pg_psql() {
    local port="$1"; shift
    PGCONNECT_TIMEOUT=5 psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$port" -U postgres "$@"
}

pg_accepts_trust_login() {
    pg_psql "$1" -d postgres -Atc 'select 1' >/dev/null 2>&1
}

# Directory of the newest installed server binaries (initdb, pg_ctl), empty when none.
pg_bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
    if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
        echo "$dir"
    elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    fi
}

# Runs a shell command line as the postgres OS user (the server refuses to run as root).
as_pg_user() {
    if [ "$(id -u)" -eq 0 ]; then
        # From /: the postgres user may not be allowed into the current directory.
        (cd / && su postgres -s /bin/sh -c "$1")
    else
        sh -c "$1"
    fi
}

# Where the throw-away cluster lives: .local/pg, unless the postgres OS user cannot reach it
# (e.g. a clone under a 0700 home directory) - then a folder under /tmp named after the clone.
own_pg_dir() {
    local dir="$LOCAL_DIR/pg"
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$dir"
        if ! su postgres -s /bin/sh -c "test -w '$dir'" 2>/dev/null; then
            dir="/tmp/realstaging-pg-$(printf '%s' "$REPO_ROOT" | cksum | cut -d' ' -f1)"
            mkdir -p "$dir" && chown postgres:postgres "$dir" && chmod 700 "$dir"
        fi
    fi
    echo "$dir"
}

# Starts (creating it on first use) the throw-away cluster on 127.0.0.1:$OWN_PG_PORT.
# Sets OWN_PG_STARTED=1 when this call started it (so the caller may stop it again).
start_own_pg() {
    OWN_PG_STARTED=""
    OWN_PG_DIR="$(own_pg_dir)"
    if pg_accepts_trust_login "$OWN_PG_PORT"; then
        log "throw-away Postgres already running on $PG_HOST:$OWN_PG_PORT"
        return 0
    fi
    if port_open "$OWN_PG_PORT"; then
        die "port $OWN_PG_PORT is taken by something that is not a trust-auth Postgres; free it or set REALSTAGING_OWN_PG_PORT"
    fi
    local bindir
    bindir="$(pg_bindir)"
    if [ -z "$bindir" ]; then
        apt_install postgresql
        bindir="$(pg_bindir)"
        [ -n "$bindir" ] || die "PostgreSQL server binaries still not found after installing postgresql"
    fi
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        die "the postgres OS user does not exist (install the postgresql package)"
    fi
    local dir="$OWN_PG_DIR"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        log "initdb $dir/data"
        rm -rf "$dir/data"
        as_pg_user "'$bindir/initdb' -D '$dir/data' -U postgres --auth=trust -E UTF8 --no-sync" >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
        # TCP on 127.0.0.1 only, no unix socket (its path could exceed the 107-byte limit),
        # durability off: this cluster holds throw-away development and test data.
        cat >>"$dir/data/postgresql.conf" <<EOF

# --- realstaging throw-away cluster (scripts/lib.sh) ---
port = $OWN_PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
    fi
    log "starting throw-away Postgres on $PG_HOST:$OWN_PG_PORT (data in $dir/data, log in $dir/server.log)"
    as_pg_user "'$bindir/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -t 60 start" >/dev/null \
        || { tail -n 30 "$dir/server.log" >&2; die "Postgres did not start"; }
    pg_accepts_trust_login "$OWN_PG_PORT" || die "started Postgres on $OWN_PG_PORT but cannot log in as postgres"
    OWN_PG_STARTED=1
}

# Stops the throw-away cluster (only that one; a shared server on 5432 is never touched).
stop_own_pg() {
    local dir="${OWN_PG_DIR:-}" bindir
    [ -n "$dir" ] || dir="$(own_pg_dir)"
    bindir="$(pg_bindir)"
    if [ -n "$bindir" ] && [ -f "$dir/data/postmaster.pid" ]; then
        log "stopping throw-away Postgres on $PG_HOST:$OWN_PG_PORT"
        as_pg_user "'$bindir/pg_ctl' -D '$dir/data' -m fast -w stop" >/dev/null 2>&1 || true
    fi
}

# Makes a Postgres server available and exports PG_PORT (and PGHOST/PGPORT/PGUSER for psql).
ensure_postgres() {
    command -v psql >/dev/null 2>&1 || apt_install postgresql-client
    PG_PORT=""
    if [ "${REALSTAGING_OWN_PG:-}" != "1" ] && port_open "$SHARED_PG_PORT"; then
        if pg_accepts_trust_login "$SHARED_PG_PORT"; then
            log "using the Postgres server on $PG_HOST:$SHARED_PG_PORT (user postgres, trust auth)"
            PG_PORT="$SHARED_PG_PORT"
        else
            log "something answers on $PG_HOST:$SHARED_PG_PORT but does not let user postgres in without a password; using a throw-away cluster instead"
        fi
    fi
    if [ -z "$PG_PORT" ]; then
        start_own_pg
        PG_PORT="$OWN_PG_PORT"
    fi
    export PG_PORT PGHOST="$PG_HOST" PGPORT="$PG_PORT" PGUSER=postgres
}

# Creates database $1 when it does not exist.
ensure_database() {
    local db="$1"
    if [ "$(pg_psql "$PG_PORT" -d postgres -Atc "select 1 from pg_database where datname = '$db'")" != "1" ]; then
        log "creating database $db"
        pg_psql "$PG_PORT" -d postgres -c "create database \"$db\"" >/dev/null
    fi
}

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

# What cargo needs besides the Rust toolchain: NASM assembles libjpeg-turbo's x86_64 SIMD for
# the mozjpeg crate (without it the JPEG encoder builds, warns, and runs several times slower).
# arm64 needs nothing: its NEON code is C and GNU assembly that cc compiles.
ensure_build_tools() {
    if [ "$(uname -m)" = "x86_64" ] && ! command -v nasm >/dev/null 2>&1; then
        apt_install nasm
    fi
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
    # shellcheck disable=SC2012  # fixed Debian paths (/usr/lib/postgresql/<major>/bin), sorted by version
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

# ---------------------------------------------------------------------------------------------
# Local S3 (s3s-fs) and SQS (moto)
# ---------------------------------------------------------------------------------------------
#
# s3s-fs: an S3 server over a local folder that checks SigV4 signatures (presigned URLs
# included), installed with `cargo install` into .tools/ (pinned; newer releases need a newer
# rustc). moto: an SQS-compatible server from PyPI, installed into .venv (pinned).
# An S3 server already listening on the S3 port is reused when it accepts the local credentials
# (access key `test`, secret `test-secret`); an SQS server already on the SQS port is reused
# when it answers SQS calls. Overrides: REALSTAGING_S3_PORT (8014), REALSTAGING_SQS_PORT (5000).

TOOLS_DIR="$REPO_ROOT/.tools"
S3S_FS_VERSION="0.14.1"
MOTO_VERSION="5.2.5"
S3_PORT="${REALSTAGING_S3_PORT:-8014}"
SQS_PORT="${REALSTAGING_SQS_PORT:-5000}"
LOCAL_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
LOCAL_SQS_ENDPOINT="http://127.0.0.1:$SQS_PORT"
LOCAL_S3_ACCESS_KEY="test"
LOCAL_S3_SECRET_KEY="test-secret"
LOCAL_AWS_REGION="us-east-1"

# .tools/bin/s3s-fs at the pinned version (cargo install, about 2 minutes the first time).
ensure_s3s_fs() {
    local bin="$TOOLS_DIR/bin/s3s-fs"
    if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "s3s-fs $S3S_FS_VERSION" ]; then
        return 0
    fi
    log "cargo install s3s-fs@$S3S_FS_VERSION into .tools/ (local S3 server; takes a few minutes once)"
    cargo install --root "$TOOLS_DIR" "s3s-fs@$S3S_FS_VERSION" --features binary --locked --force >&2
    [ "$("$bin" --version 2>/dev/null)" = "s3s-fs $S3S_FS_VERSION" ] || die "s3s-fs $S3S_FS_VERSION is still not runnable at $bin"
}

# moto (with its server extra, which brings boto3) in .venv at the pinned version.
ensure_moto() {
    ensure_venv
    if [ "$("$VENV_DIR/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null)" != "$MOTO_VERSION" ] \
        || [ ! -x "$VENV_DIR/bin/moto_server" ]; then
        venv_pip_install "moto[server]==$MOTO_VERSION"
    fi
}

# Small S3/SQS operations against the local servers, with the venv's boto3:
#   local_aws s3-check | s3-bucket NAME | sqs-check | sqs-queue NAME (prints the queue URL)
#   local_aws sqs-job-queue NAME VISIBILITY_SECONDS MAX_RECEIVE_COUNT
#       the queue NAME with that visibility timeout and a redrive policy to the dead-letter queue
#       NAME-dlq (created too); prints the queue URL, then the DLQ URL. Safe on existing queues.
local_aws() {
    "$VENV_DIR/bin/python" - "$@" <<PY
import json
import sys
import boto3
from botocore.config import Config

cfg = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1},
             s3={"addressing_style": "path"},
             request_checksum_calculation="when_required", response_checksum_validation="when_required")
def s3():
    return boto3.client("s3", endpoint_url="$LOCAL_S3_ENDPOINT", region_name="$LOCAL_AWS_REGION",
                        aws_access_key_id="$LOCAL_S3_ACCESS_KEY", aws_secret_access_key="$LOCAL_S3_SECRET_KEY", config=cfg)
def sqs():
    return boto3.client("sqs", endpoint_url="$LOCAL_SQS_ENDPOINT", region_name="$LOCAL_AWS_REGION",
                        aws_access_key_id="test", aws_secret_access_key="test", config=cfg)
cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "s3-check":
    s3().list_buckets()
elif cmd == "s3-bucket":
    client = s3()
    if args[0] not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket=args[0])
elif cmd == "sqs-check":
    sqs().list_queues()
elif cmd == "sqs-queue":
    print(sqs().create_queue(QueueName=args[0])["QueueUrl"])
elif cmd == "sqs-job-queue":
    name, visibility, max_receive = args
    client = sqs()
    # Created without attributes and configured afterwards: create_queue refuses an existing
    # queue whose attributes differ (a moto server reused from an earlier run).
    dlq_url = client.create_queue(QueueName=name + "-dlq")["QueueUrl"]
    client.set_queue_attributes(QueueUrl=dlq_url, Attributes={"MessageRetentionPeriod": "1209600"})
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = client.create_queue(QueueName=name)["QueueUrl"]
    client.set_queue_attributes(QueueUrl=url, Attributes={
        "VisibilityTimeout": visibility,
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": int(max_receive)}),
    })
    print(url)
    print(dlq_url)
else:
    sys.exit("unknown command " + cmd)
PY
}

# Waits up to $2 seconds for a server on port $1.
wait_for_port() {
    local i
    for i in $(seq 1 $(( $2 * 10 ))); do port_open "$1" && return 0; sleep 0.1; done
    return 1
}

# Starts (or reuses) the local S3 server; data under $1. Sets S3_PID when this call started it.
start_local_s3() {
    local data="$1"
    S3_PID=""
    ensure_moto   # boto3, for the checks
    if port_open "$S3_PORT"; then
        local_aws s3-check 2>/dev/null \
            || die "port $S3_PORT is in use by something that is not an S3 server accepting access key $LOCAL_S3_ACCESS_KEY / secret $LOCAL_S3_SECRET_KEY; stop it or set REALSTAGING_S3_PORT"
        log "S3 server already running on $LOCAL_S3_ENDPOINT (reusing it; it accepts the local credentials)"
        return 0
    fi
    ensure_s3s_fs
    mkdir -p "$data"
    set -m   # own process group, so cleanup stops it reliably
    "$TOOLS_DIR/bin/s3s-fs" --host 127.0.0.1 --port "$S3_PORT" \
        --access-key "$LOCAL_S3_ACCESS_KEY" --secret-key "$LOCAL_S3_SECRET_KEY" "$data" \
        </dev/null >"$LOCAL_DIR/s3.log" 2>&1 &
    S3_PID=$!
    set +m
    if ! wait_for_port "$S3_PORT" 20 || ! local_aws s3-check; then
        cat "$LOCAL_DIR/s3.log" >&2
        die "the local S3 server (s3s-fs) did not start"
    fi
    log "S3 server (s3s-fs $S3S_FS_VERSION) on $LOCAL_S3_ENDPOINT, data in ${data#"$REPO_ROOT"/} (log: .local/s3.log)"
}

# Starts (or reuses) the local SQS server. Sets SQS_PID when this call started it.
start_local_sqs() {
    SQS_PID=""
    ensure_moto
    if port_open "$SQS_PORT"; then
        local_aws sqs-check 2>/dev/null \
            || die "port $SQS_PORT is in use by something that does not answer SQS calls; stop it or set REALSTAGING_SQS_PORT"
        log "SQS server already running on $LOCAL_SQS_ENDPOINT (reusing it)"
        return 0
    fi
    set -m
    "$VENV_DIR/bin/moto_server" -H 127.0.0.1 -p "$SQS_PORT" </dev/null >"$LOCAL_DIR/sqs.log" 2>&1 &
    SQS_PID=$!
    set +m
    if ! wait_for_port "$SQS_PORT" 30 || ! local_aws sqs-check; then
        cat "$LOCAL_DIR/sqs.log" >&2
        die "the local SQS server (moto) did not start"
    fi
    log "SQS server (moto $MOTO_VERSION) on $LOCAL_SQS_ENDPOINT (in memory; log: .local/sqs.log)"
}

# Stops a server this run started (by the process group of its pid), leaving others alone.
stop_local_server() {
    local pid="$1" what="$2"
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    log "stopping $what"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local _
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

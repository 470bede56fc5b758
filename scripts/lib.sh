# scripts/lib.sh: shared set-up for scripts/run and scripts/test (sourced, not run).
# Installs missing Debian packages, builds, and runs a private PostgreSQL cluster under .data/
# when DATABASE_URL is unset. Works as root (PostgreSQL then runs as the postgres user) or as
# an ordinary user (packages must then already be installed).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin
DATA="$ROOT/.data"

log() { printf 'casetrail: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# ensure_packages PKG...: installs whichever are missing (needs root and the Debian mirror).
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing Debian packages (run as root to install them): ${missing[*]}"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || die "apt-get install failed"
}

BASE_PACKAGES=(gcc libc6-dev make cmake pkg-config libcivetweb-dev libcjson-dev libpq-dev
               libcurl4-openssl-dev libssl-dev postgresql-15 postgresql-client-15 openssl ca-certificates)

# build DIR [cmake args...]
build() {
    local dir=$1
    shift
    cmake -S "$ROOT" -B "$dir" "$@" >&2 || die "cmake configure failed"
    cmake --build "$dir" -j "$(nproc)" >&2 || die "build failed"
}

# as_pg CMD...: runs CMD as the cluster owner (postgres when we are root).
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# The socket lives in a short folder outside the checkout: Unix socket paths are limited to
# about 107 bytes and a checkout can be deep.
socket_dir() {
    local key
    key=$(printf '%s' "$1" | sha256sum | cut -c1-10)
    printf '/tmp/casetrail-%s' "$key"
}

# pg_start NAME [postgres -c options...]: initdb once into .data/NAME, start it, export PGHOST
# and PGDATA_DIR. Sets PG_STARTED=1 when this call started the postmaster.
pg_start() {
    local name=$1
    shift
    local dir="$DATA/$name" sock
    sock=$(socket_dir "$dir")
    PG_STARTED=0
    mkdir -p "$DATA"
    if [ "$(id -u)" -eq 0 ]; then
        # postgres must traverse every parent of the data folder (a 0700 /root would block it)
        local d="$DATA"
        while [ "$d" != "/" ]; do
            runuser -u postgres -- test -x "$d" 2>/dev/null || chmod o+x "$d"
            d=$(dirname "$d")
        done
    fi
    if [ ! -s "$dir/PG_VERSION" ]; then
        log "creating a private PostgreSQL cluster in $dir"
        mkdir -p "$dir"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
        chmod 700 "$dir"
        as_pg "$PGBIN/initdb" -D "$dir" -U postgres -E UTF8 --locale=C.UTF-8 --auth=trust >"$DATA/$name-initdb.log" 2>&1 \
            || { cat "$DATA/$name-initdb.log" >&2; die "initdb failed"; }
    fi
    mkdir -p "$sock"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$sock"
    chmod 700 "$sock"
    touch "$DATA/$name.log"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$DATA/$name.log"
    if ! as_pg "$PGBIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        local opts="-c listen_addresses='' -c unix_socket_directories='$sock'"
        local o
        for o in "$@"; do opts="$opts -c $o"; done
        as_pg "$PGBIN/pg_ctl" -D "$dir" -l "$DATA/$name.log" -w -t 60 -o "$opts" start >/dev/null \
            || { tail -20 "$DATA/$name.log" >&2; die "could not start PostgreSQL (log: $DATA/$name.log)"; }
        PG_STARTED=1
    fi
    export PGHOST=$sock PGUSER=postgres PGPORT=5432
    PG_DATA_DIR=$dir
}

pg_stop() {
    [ -n "${PG_DATA_DIR:-}" ] || return 0
    as_pg "$PGBIN/pg_ctl" -D "$PG_DATA_DIR" -m fast -w stop >/dev/null 2>&1 || true
}

# ensure_db NAME: creates the database when missing.
ensure_db() {
    if [ "$(psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$1'")" != "1" ]; then
        createdb "$1" || die "could not create database $1"
    fi
}

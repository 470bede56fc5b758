# scripts/lib.sh: shared set-up for scripts/run, scripts/test, scripts/stop and bench/run
# (sourced, not run). Installs missing Debian packages, builds, and runs a private PostgreSQL
# cluster named .data/NAME when DATABASE_URL is unset. Works as root (PostgreSQL then runs as the
# postgres user, its data in /var/lib/casetrail/ behind a .data/ symlink) or as an ordinary user
# (data in .data/ itself; packages must then already be installed).

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

is_root() { [ "$(id -u)" -eq 0 ]; }

# as_pg CMD...: runs CMD as the cluster owner (postgres when we are root).
as_pg() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# owned_by_pg PATH: gives PATH (a file or folder we created) to the cluster owner.
owned_by_pg() { if is_root; then chown postgres: "$1"; fi; }

# path_key PATH: a short, stable name for PATH (for folders outside the checkout).
path_key() { printf '%s' "$1" | sha256sum | cut -c1-10; }

# The socket lives in a short folder outside the checkout: Unix socket paths are limited to
# about 107 bytes and a checkout can be deep.
socket_dir() { printf '/tmp/casetrail-%s' "$(path_key "$1")"; }

# When root runs a cluster, its data and log live in PG_HOMES/<key of the checkout>/ and
# .data/NAME (and .data/NAME.log) are symlinks to them: the postgres user cannot traverse a
# checkout under a 0700 folder such as /root, and the permissions of folders outside the
# checkout are not ours to change.
PG_HOMES=${CASETRAIL_PG_HOMES:-/var/lib/casetrail}

# pg_reaches PATH: true when the postgres user can reach PATH through every parent folder.
pg_reaches() { runuser -u postgres -- test -e "$1" 2>/dev/null; }

# pg_home: prints this checkout's folder under PG_HOMES (owned by postgres), creating it.
pg_home() {
    local home
    home="$PG_HOMES/$(path_key "$ROOT")"
    if [ ! -d "$home" ]; then
        # 0755 so postgres can pass through; an existing PG_HOMES keeps the mode it has
        [ -d "$PG_HOMES" ] || install -d -m 755 "$PG_HOMES"
        install -d -m 700 -o postgres -g postgres "$home"
        # names the checkout, for whoever finds the folder later
        printf '%s\n' "$ROOT" >"$home/checkout"
    fi
    pg_reaches "$home" || die "the postgres user cannot reach $home: set CASETRAIL_PG_HOMES to a folder it can reach"
    printf '%s' "$home"
}

# pg_move_out NAME HOME: moves a stopped cluster of an earlier layout that postgres can no
# longer reach from .data/NAME to HOME/NAME, keeping its data.
pg_move_out() {
    local name=$1 home=$2 src="$DATA/$1" pid
    pid=$(head -1 "$src/postmaster.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        die "the cluster in $src runs (pid $pid) but the postgres user cannot reach it: stop it and retry"
    fi
    [ ! -e "$home/$name" ] || die "both $src and $home/$name hold a cluster: move one away"
    log "moving the cluster in $src to $home/$name (the postgres user cannot reach the checkout)"
    mv "$src" "$home/$name"
    if [ -f "$DATA/$name.log" ] && [ ! -L "$DATA/$name.log" ]; then
        mv "$DATA/$name.log" "$home/$name.log"
    fi
}

# pg_place NAME: sets PG_DATA_DIR and PG_LOG to where cluster NAME and its log really live
# (postgres is given these paths, never the symlinks it may not be able to follow).
pg_place() {
    local name=$1 link="$DATA/$1" home
    mkdir -p "$DATA"
    PG_DATA_DIR=$link
    PG_LOG="$DATA/$name.log"
    # as an ordinary user we run postgres ourselves: it reaches .data/ as we do
    is_root || return 0
    if [ -L "$link" ] && [ -s "$link/PG_VERSION" ] && pg_reaches "$(readlink -f "$link")/PG_VERSION"; then
        # placed by an earlier run (maybe from the checkout's former path): keep using it
        PG_DATA_DIR=$(readlink -f "$link")
        PG_LOG="$(dirname "$PG_DATA_DIR")/$name.log"
        return 0
    fi
    if [ -d "$link" ] && [ ! -L "$link" ] && [ -s "$link/PG_VERSION" ] && pg_reaches "$link/PG_VERSION"; then
        return 0  # a cluster from before the move out of .data/, still reachable: leave it be
    fi
    home=$(pg_home)
    if [ -d "$link" ] && [ ! -L "$link" ]; then
        if [ -s "$link/PG_VERSION" ]; then
            pg_move_out "$name" "$home"
        else
            rmdir "$link" 2>/dev/null || die "$link is neither a cluster nor empty: move it away"
        fi
    fi
    PG_DATA_DIR="$home/$name"
    PG_LOG="$home/$name.log"
    ln -sfn "$PG_DATA_DIR" "$link"
    if [ -f "$DATA/$name.log" ] && [ ! -L "$DATA/$name.log" ]; then
        mv -f "$DATA/$name.log" "$PG_LOG"  # an old layout's log: keep it with the cluster
    fi
    ln -sfn "$PG_LOG" "$DATA/$name.log"
}

# pg_init NAME: creates cluster NAME in PG_DATA_DIR unless it exists.
pg_init() {
    local initlog="${PG_LOG%.log}-initdb.log"
    [ -s "$PG_DATA_DIR/PG_VERSION" ] && return 0
    log "creating a private PostgreSQL cluster in .data/$1 ($PG_DATA_DIR)"
    mkdir -p "$PG_DATA_DIR"
    owned_by_pg "$PG_DATA_DIR"
    chmod 700 "$PG_DATA_DIR"
    as_pg "$PGBIN/initdb" -D "$PG_DATA_DIR" -U postgres -E UTF8 --locale=C.UTF-8 --auth=trust >"$initlog" 2>&1 \
        || { cat "$initlog" >&2; die "initdb failed"; }
}

# pg_start NAME [postgres -c options...]: initdb once into .data/NAME, start it, export PGHOST
# and set PG_DATA_DIR and PG_LOG. Sets PG_STARTED=1 when this call started the postmaster.
pg_start() {
    local name=$1 sock opts o
    shift
    sock=$(socket_dir "$DATA/$name")
    PG_STARTED=0
    pg_place "$name"
    pg_init "$name"
    mkdir -p "$sock"
    owned_by_pg "$sock"
    chmod 700 "$sock"
    touch "$PG_LOG"
    owned_by_pg "$PG_LOG"
    if ! as_pg "$PGBIN/pg_ctl" -D "$PG_DATA_DIR" status >/dev/null 2>&1; then
        opts="-c listen_addresses='' -c unix_socket_directories='$sock'"
        for o in "$@"; do opts="$opts -c $o"; done
        as_pg "$PGBIN/pg_ctl" -D "$PG_DATA_DIR" -l "$PG_LOG" -w -t 60 -o "$opts" start >/dev/null \
            || { tail -20 "$PG_LOG" >&2; die "could not start PostgreSQL (log: $PG_LOG)"; }
        PG_STARTED=1
    fi
    export PGHOST=$sock PGUSER=postgres PGPORT=5432
}

# pg_stop: stops the cluster pg_start started; one that was already running (another script's,
# or the user's) is left running.
pg_stop() {
    [ "${PG_STARTED:-0}" = 1 ] && [ -n "${PG_DATA_DIR:-}" ] || return 0
    as_pg "$PGBIN/pg_ctl" -D "$PG_DATA_DIR" -m fast -w stop >/dev/null 2>&1 || true
}

# ensure_db NAME: creates the database when missing.
ensure_db() {
    if [ "$(psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$1'")" != "1" ]; then
        createdb "$1" || die "could not create database $1"
    fi
}

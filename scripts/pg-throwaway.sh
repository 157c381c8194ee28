#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1, for tests.
#
# Run a command against one:
#     scripts/pg-throwaway.sh cargo nextest run
# The command sees HUMANPING_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres;
# the cluster is stopped and its folder removed when the command ends.
#
# Or source this file and call `pg_throwaway_start` (exports the URL and sets PG_THROWAWAY_DIR)
# and `pg_throwaway_stop` yourself, as scripts/test.sh does.
#
# The data and socket folders live in a fresh `mktemp -d`, the server listens on loopback only,
# with trust authentication and fsync off: fast, and for tests only. As root the server runs as
# the `postgres` user, which PostgreSQL requires; as anyone else it runs as that user. When
# initdb/pg_ctl are not installed, root installs Debian's `postgresql` package with apt-get.

# Prints a line for a person to stderr.
pg_throwaway_say() {
    printf 'pg-throwaway: %s\n' "$*" >&2
}

# Finds the folder holding initdb, pg_ctl and postgres; prints nothing if there is none.
pg_throwaway_find_bindir() {
    local initdb
    if initdb=$(command -v initdb 2>/dev/null) && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$initdb")"
        return 0
    fi
    # Debian keeps the server programs off PATH, one folder per major version.
    local dir
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5 -n -r); do
        if [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    return 0
}

# Makes sure the PostgreSQL server programs are installed; sets PG_THROWAWAY_BINDIR.
pg_throwaway_ensure_installed() {
    PG_THROWAWAY_BINDIR=$(pg_throwaway_find_bindir)
    if [[ -n $PG_THROWAWAY_BINDIR ]]; then
        return 0
    fi
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        pg_throwaway_say "initdb and pg_ctl are not installed, and this is not root on Debian:"
        pg_throwaway_say "install PostgreSQL (apt-get install postgresql) or set HUMANPING_TEST_POSTGRES_URL"
        return 1
    fi
    pg_throwaway_say "initdb/pg_ctl not found; installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || { pg_throwaway_say "apt-get update failed"; return 1; }
    apt-get install -y -qq --no-install-recommends postgresql >&2 \
        || { pg_throwaway_say "apt-get install postgresql failed"; return 1; }
    PG_THROWAWAY_BINDIR=$(pg_throwaway_find_bindir)
    if [[ -z $PG_THROWAWAY_BINDIR ]]; then
        pg_throwaway_say "postgresql is installed but initdb/pg_ctl are still not found"
        return 1
    fi
}

# Prints a TCP port on 127.0.0.1 that nothing listens on right now.
pg_throwaway_free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
        return
    fi
    local port
    while true; do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return
        fi
    done
}

# Runs a PostgreSQL program as the user the cluster belongs to, from a folder that user can read.
pg_throwaway_as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        # runuser lives in sbin, which a minimal PATH may leave out.
        local runuser
        runuser=$(PATH=$PATH:/usr/sbin:/sbin command -v runuser) \
            || { pg_throwaway_say "runuser (util-linux) is not installed"; return 1; }
        (cd "$PG_THROWAWAY_DIR" && "$runuser" -u postgres -- "$@")
    else
        (cd "$PG_THROWAWAY_DIR" && "$@")
    fi
}

# Creates and starts a cluster; exports HUMANPING_TEST_POSTGRES_URL. Fails loudly.
pg_throwaway_start() {
    pg_throwaway_ensure_installed || return 1
    if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
        pg_throwaway_say "creating the system user postgres to own the cluster"
        useradd --system --no-create-home --shell /usr/sbin/nologin postgres \
            || { pg_throwaway_say "could not create the postgres user"; return 1; }
    fi

    # Callers often run this under `||`, where `set -e` does not apply: check every step.
    PG_THROWAWAY_DIR=$(mktemp -d "${TMPDIR:-/tmp}/humanping-pg.XXXXXX") \
        || { pg_throwaway_say "mktemp -d failed"; return 1; }
    local data=$PG_THROWAWAY_DIR/data sockets=$PG_THROWAWAY_DIR/sockets
    local log=$PG_THROWAWAY_DIR/postgres.log
    if ! { mkdir -p "$data" "$sockets" && chmod 0700 "$data"; }; then
        pg_throwaway_say "could not create $data"
        return 1
    fi
    if [[ $(id -u) -eq 0 ]]; then
        chown -R postgres: "$PG_THROWAWAY_DIR" \
            || { pg_throwaway_say "could not give $PG_THROWAWAY_DIR to postgres"; return 1; }
    fi

    if ! pg_throwaway_as_owner "$PG_THROWAWAY_BINDIR/initdb" -D "$data" -A trust -U postgres \
        -E UTF8 --no-locale >"$PG_THROWAWAY_DIR/initdb.log" 2>&1; then
        pg_throwaway_say "initdb failed:"
        cat "$PG_THROWAWAY_DIR/initdb.log" >&2
        return 1
    fi

    # A port found free can be taken before the server binds it; try a few.
    local attempt port
    for attempt in 1 2 3 4 5; do
        port=$(pg_throwaway_free_port)
        if pg_throwaway_as_owner "$PG_THROWAWAY_BINDIR/pg_ctl" -D "$data" -l "$log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $sockets -c fsync=off \
                -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
            start >/dev/null 2>&1; then
            export HUMANPING_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
            pg_throwaway_say "PostgreSQL $("$PG_THROWAWAY_BINDIR/postgres" --version | sed -n 's/.*(PostgreSQL) \([0-9.]*\).*/\1/p') \
on 127.0.0.1:$port (data in $data)"
            return 0
        fi
        pg_throwaway_say "PostgreSQL did not start on port $port (attempt $attempt)"
    done
    pg_throwaway_say "PostgreSQL could not start; its log follows"
    cat "$log" >&2 2>/dev/null || true
    return 1
}

# Stops the cluster and removes its folder. Safe to call twice, or when nothing was started.
pg_throwaway_stop() {
    if [[ -n ${PG_THROWAWAY_DIR:-} && -d $PG_THROWAWAY_DIR ]]; then
        if [[ -f $PG_THROWAWAY_DIR/data/postmaster.pid ]]; then
            pg_throwaway_as_owner "$PG_THROWAWAY_BINDIR/pg_ctl" -D "$PG_THROWAWAY_DIR/data" \
                -m fast -w -t 30 stop >/dev/null 2>&1 \
                || pg_throwaway_say "pg_ctl stop failed for $PG_THROWAWAY_DIR/data"
        fi
        rm -rf "$PG_THROWAWAY_DIR"
    fi
    PG_THROWAWAY_DIR=
}

# Run as a program: start a cluster, run the command given, stop the cluster.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    if [[ $# -eq 0 ]]; then
        echo "usage: $0 COMMAND [ARGS...]   (runs COMMAND with HUMANPING_TEST_POSTGRES_URL set)" >&2
        exit 2
    fi
    trap pg_throwaway_stop EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    pg_throwaway_start
    export HUMANPING_REQUIRE_POSTGRES=1
    status=0
    "$@" || status=$?
    exit "$status"
fi

#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster:
#
#   scripts/with-postgres.sh .venv/bin/python -m pytest
#   scripts/with-postgres.sh psql -c 'select 1'
#
# Starts a cluster in a temporary directory (trust auth, 127.0.0.1 on a free port, its unix
# socket in the same directory, fsync off: the data is thrown away), creates the database
# "microfactory", exports DATABASE_URL (and PGHOST/PGPORT/PGUSER/PGDATABASE for psql), runs
# the command, then always stops the cluster and removes the directory. Exits with the
# command's status.
#
# The server binaries come from PG_BIN if set, else the newest /usr/lib/postgresql/*/bin
# (Debian's postgresql package). PostgreSQL refuses to run as root: as root the cluster runs
# as the "postgres" system user (created if missing); the command itself runs as the caller.
set -euo pipefail

if [ $# -eq 0 ]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi

find_pg_bin() {
    if [ -n "${PG_BIN:-}" ]; then
        echo "$PG_BIN"
        return
    fi
    local candidate
    candidate=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$candidate" ] && [ -x "$candidate/initdb" ]; then
        echo "$candidate"
        return
    fi
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return
    fi
    echo "with-postgres: PostgreSQL server binaries not found (install the Debian package" \
        "'postgresql', or set PG_BIN)" >&2
    exit 1
}

PG_BIN=$(find_pg_bin)
DB_USER=microfactory
DB_NAME=microfactory

# Who runs the server, and how to run a command as them.
if [ "$(id -u)" -eq 0 ]; then
    SERVER_USER=postgres
    if ! id -u "$SERVER_USER" >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$SERVER_USER"
    fi
    # setpriv execs (no intermediate process), so $! below is the server itself.
    AS_SERVER=(setpriv --reuid="$SERVER_USER" --regid="$SERVER_USER" --init-groups --)
    BASE_TMP=/tmp  # TMPDIR may be a directory the server user cannot enter
else
    SERVER_USER=$(id -un)
    AS_SERVER=()
    BASE_TMP=${TMPDIR:-/tmp}
fi

WORK_DIR=$(mktemp -d "$BASE_TMP/mf-postgres.XXXXXX")
DATA_DIR=$WORK_DIR/data
LOG_FILE=$WORK_DIR/server.log
server_pid=
PORT=

cleanup() {
    local status=$?
    if [ -n "$server_pid" ]; then
        # SIGINT is PostgreSQL's "fast" shutdown; SIGQUIT its "immediate" one.
        kill -INT "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 300); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -QUIT "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$WORK_DIR"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [ "$(id -u)" -eq 0 ]; then
    chown "$SERVER_USER:" "$WORK_DIR"
fi
chmod 700 "$WORK_DIR"

"${AS_SERVER[@]}" "$PG_BIN/initdb" --pgdata="$DATA_DIR" --username="$DB_USER" --auth=trust \
    --encoding=UTF8 --locale=C --no-sync >"$WORK_DIR/initdb.log" 2>&1 \
    || { cat "$WORK_DIR/initdb.log" >&2; exit 1; }

# The server is this script's own child (not daemonized by pg_ctl), so stopping it also
# reaps it: nothing is left behind, not even a zombie.
start_server() {
    "${AS_SERVER[@]}" "$PG_BIN/postgres" -D "$DATA_DIR" -p "$1" \
        -c listen_addresses=127.0.0.1 -c unix_socket_directories="$WORK_DIR" \
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        -c max_connections=200 >>"$LOG_FILE" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 300); do
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$1"; then
            return 0
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            wait "$server_pid" || true
            server_pid=
            return 1
        fi
        sleep 0.1
    done
    kill -QUIT "$server_pid" 2>/dev/null || true
    wait "$server_pid" || true
    server_pid=
    return 1
}

# A free port can be taken between choosing and binding it: try a few.
for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    if start_server "$PORT"; then
        break
    fi
    echo "with-postgres: server did not start on port $PORT (attempt $attempt)" >&2
    PORT=
done
if [ -z "$PORT" ]; then
    cat "$LOG_FILE" >&2 || true
    exit 1
fi

export PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=$DB_USER PGDATABASE=$DB_NAME
"$PG_BIN/createdb" "$DB_NAME"
export DATABASE_URL="postgres://$DB_USER@127.0.0.1:$PORT/$DB_NAME"
echo "with-postgres: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') at $DATABASE_URL"

# Not exec: the EXIT trap must stop the cluster after the command.
set +e
"$@"
status=$?
set -e
exit "$status"

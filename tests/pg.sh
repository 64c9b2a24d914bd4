#!/usr/bin/env bash
# A throwaway PostgreSQL for tests, benchmarks and the demo.
#   tests/pg.sh start DIR PORT   initdb into DIR (if new) and start on 127.0.0.1:PORT
#   tests/pg.sh stop DIR         stop it (the server started from DIR, by its pid)
#   tests/pg.sh restart DIR      stop with -m immediate, then start again
#   tests/pg.sh destroy DIR      stop and delete DIR
# PG_LISTEN=ADDR (default 127.0.0.1) and PG_TRUST_NET=CIDR (clients of that
# network are trusted, for the multi-host test's own namespaces) apply when
# DIR is new.
# Server programs refuse to run as root, so as root they run as "postgres".
set -euo pipefail
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
cmd=${1:?usage: pg.sh start|stop|restart|destroy DIR [PORT]}
dir=$(realpath -m "${2:?DIR missing}")
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
start() {
  local port=$1
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    mkdir -p "$dir/data"
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"
    as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '${PG_LISTEN:-127.0.0.1}'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
synchronous_commit = on
fsync = on
log_min_messages = warning
CONF
    if [ -n "${PG_TRUST_NET:-}" ]; then
      echo "host all all $PG_TRUST_NET trust" >>"$dir/data/pg_hba.conf"
    fi
  fi
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
}
stop() {
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m "${1:-fast}" -w -t 60 stop >/dev/null || true
}
case "$cmd" in
  start) start "${3:?PORT missing}" ;;
  stop) stop fast ;;
  restart) port=$(sed -n 's/^port = //p' "$dir/data/postgresql.conf" | tail -n1); stop immediate; start "$port" ;;
  destroy) stop immediate; rm -rf "$dir" ;;
  *) echo "pg.sh: unknown command $cmd" >&2; exit 2 ;;
esac

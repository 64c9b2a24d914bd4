#!/usr/bin/env bash
# A throwaway PostgreSQL for tests, benchmarks and the demo.
#   tests/pg.sh start DIR PORT   initdb (if new) and start on 127.0.0.1:PORT
#   tests/pg.sh stop DIR         stop it (the server started from DIR, by its pid)
#   tests/pg.sh restart DIR      stop with -m immediate, then start again
#   tests/pg.sh destroy DIR      stop and delete it
#   tests/pg.sh where DIR        print the cluster folder (its unix socket, logs)
# DIR is the caller's handle, anywhere (a build tree under /root too). The
# cluster itself lives where the server's user can reach it: in DIR when
# that user can enter it, else in a fresh `mktemp -d` under /tmp owned by
# that user, whose path DIR/location records. The logs stay in the cluster
# folder (initdb.log, server.log); when a step fails they are printed.
# PG_LISTEN=ADDR (default 127.0.0.1) and PG_TRUST_NET=CIDR (clients of that
# network are trusted, for the multi-host test's own namespaces) apply when
# the cluster is new.
# Server programs refuse to run as root, so as root they run as "postgres".
set -euo pipefail
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
cmd=${1:?usage: pg.sh start|stop|restart|destroy|where DIR [PORT]}
dir=$(realpath -m "${2:?DIR missing}")
root=false; [ "$(id -u)" -eq 0 ] && root=true
# Run as the server's user, from / (its home may be unreachable to it).
as_pg() { if $root; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

# The cluster folder of DIR: DIR/location when recorded, else DIR itself.
where() { if [ -f "$dir/location" ]; then cat "$dir/location"; else echo "$dir"; fi; }

# Print the logs of cluster folder $1 to stderr (after a failure).
show_logs() {
  local f
  for f in "$1/initdb.log" "$1/server.log"; do
    [ -s "$f" ] || continue
    echo "pg.sh: --- $f (last 40 lines)" >&2
    tail -n 40 "$f" >&2
  done
}

start() {
  local port=$1 pg
  pg=$(where)
  if [ ! -f "$pg/data/PG_VERSION" ]; then
    mkdir -p "$dir"
    pg=$dir
    if $root; then
      chown postgres: "$dir"
      if ! runuser -u postgres -- test -x "$dir" -a -w "$dir"; then
        pg=$(mktemp -d /tmp/nf-pg.XXXXXX)
        echo "$pg" >"$dir/location"
      fi
      chown postgres: "$pg"
    fi
    mkdir -p "$pg/data"
    $root && chown postgres: "$pg/data"
    if ! as_pg "$PGBIN/initdb" -D "$pg/data" -U postgres -A trust --no-sync >"$pg/initdb.log" 2>&1; then
      echo "pg.sh: initdb into $pg/data failed" >&2
      show_logs "$pg"
      exit 1
    fi
    cat >>"$pg/data/postgresql.conf" <<CONF
listen_addresses = '${PG_LISTEN:-127.0.0.1}'
port = $port
unix_socket_directories = '$pg'
max_connections = 200
synchronous_commit = on
fsync = on
log_min_messages = warning
CONF
    if [ -n "${PG_TRUST_NET:-}" ]; then
      echo "host all all $PG_TRUST_NET trust" >>"$pg/data/pg_hba.conf"
    fi
  fi
  if ! as_pg "$PGBIN/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w -t 60 start >/dev/null; then
    echo "pg.sh: the server in $pg/data did not start on port $port" >&2
    show_logs "$pg"
    exit 1
  fi
}
stop() {
  local pg
  pg=$(where)
  [ -f "$pg/data/postmaster.pid" ] || return 0
  as_pg "$PGBIN/pg_ctl" -D "$pg/data" -m "${1:-fast}" -w -t 60 stop >/dev/null || true
}
case "$cmd" in
  start) start "${3:?PORT missing}" ;;
  stop) stop fast ;;
  restart)
    port=$(sed -n 's/^port = //p' "$(where)/data/postgresql.conf" | tail -n1)
    stop immediate
    start "$port"
    ;;
  destroy)
    stop immediate
    pg=$(where)
    [ "$pg" = "$dir" ] || rm -rf "$pg"
    rm -rf "$dir"
    ;;
  where) where ;;
  *) echo "pg.sh: unknown command $cmd" >&2; exit 2 ;;
esac

#!/bin/bash
# Container health check.
#   nf-healthcheck broker   GET /metrics on the metrics port answers and says
#                           the database is connected (nf_database_up 1)
#   nf-healthcheck worker   NF_HEALTH_FILE was renewed in the last 10 s: the
#                           worker hears its broker (a refused CURVE key or a
#                           cut link makes it stale)
#   nf-healthcheck web      nf-web answers on NF_WEB_BIND (GET /favicon.ico,
#                           which needs no login: 204)
set -euo pipefail
case "${1:-}" in
  broker)
    bind=${NF_METRICS_BIND:-127.0.0.1:9464}
    host=${bind%:*}
    case "$host" in ""|0.0.0.0|"*") host=127.0.0.1 ;; esac
    exec 3<>"/dev/tcp/$host/${bind##*:}"
    printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
    grep -q '^nf_database_up 1' <&3 ;;
  worker)
    f=${NF_HEALTH_FILE:-/tmp/nf-health}
    [ -f "$f" ] && [ $(( $(date +%s) - $(stat -c %Y "$f") )) -lt 10 ] ;;
  web)
    bind=${NF_WEB_BIND:-127.0.0.1:8090}
    host=${bind%:*}
    case "$host" in ""|0.0.0.0|"*") host=127.0.0.1 ;; esac
    exec 3<>"/dev/tcp/$host/${bind##*:}"
    printf 'GET /favicon.ico HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$host" "${bind##*:}" >&3
    head -n 1 <&3 | grep -q ' 204 ' ;;
  *) echo "usage: nf-healthcheck broker|worker|web" >&2; exit 2 ;;
esac

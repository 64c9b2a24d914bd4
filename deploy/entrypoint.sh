#!/bin/sh
# nicheflow container entrypoint: checks that the command names a nicheflow
# program, then execs it, so the program is PID 1 itself: SIGTERM from
# `docker stop` reaches it directly and it drains (a worker finishes its
# task, the broker commits what it holds). Its exit code is the container's:
# 0 clean drain, 1 runtime failure, 2 bad settings.
set -eu
case "${1:-}" in
  nf-*) ;;
  "") set -- nf-broker ;;
  *) echo "nf-entrypoint: '$1' is not a nicheflow program (nf-broker, nf-scraper, ...)" >&2; exit 2 ;;
esac
command -v "$1" >/dev/null 2>&1 || { echo "nf-entrypoint: no program '$1' in this image" >&2; exit 2; }
exec "$@"

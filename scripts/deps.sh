#!/usr/bin/env bash
# Installs the Debian 12 packages nicheflow builds, runs and tests with.
# Idempotent: installs only what is missing, so it is cheap on a set-up machine.
set -euo pipefail
PKGS=(build-essential cmake pkg-config
      libzmq3-dev libczmq-dev libcurl4-openssl-dev libpq-dev libmsgpack-dev
      libxlsxwriter-dev libjansson-dev libxml2-dev libutf8proc-dev libmicrohttpd-dev
      zlib1g-dev libsodium-dev libjpeg-dev
      postgresql-15 postgresql-client-15
      python3 python3-openpyxl python3-zmq python3-psycopg2 python3-msgpack
      cppcheck clang clang-format libclang-rt-14-dev libncurses-dev tmux iproute2 valgrind
      docker-compose
      libreoffice-calc poppler-utils python3-pil
      chromium chromium-driver python3-selenium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

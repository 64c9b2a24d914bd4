#!/usr/bin/env bash
# The Debian 12 base image that deploy/Dockerfile builds on, for an engine
# that cannot pull one (no registry): prints the image to pass as
#     docker build -f deploy/Dockerfile --build-arg DEBIAN=$(bash deploy/base-image.sh) .
# debian:bookworm-slim when the engine has it (pulled, or loaded), else
# NF_BASE_IMAGE (default nicheflow/debian:bookworm), made once from
# Debian's own packages: debootstrap bookworm (minbase) into a folder,
# tar it (scripts/bookworm-tarball.sh, cached in NF_FRESH_CACHE), docker
# import it. With a registry none of this is needed: the Dockerfile's
# default base works unchanged. Root only (debootstrap).
set -euo pipefail
cd "$(dirname "$0")/.."
if docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  echo debian:bookworm-slim
  exit 0
fi
tag=${NF_BASE_IMAGE:-nicheflow/debian:bookworm}
if ! docker image inspect "$tag" >/dev/null 2>&1; then
  tarball=$(bash scripts/bookworm-tarball.sh)
  echo "== base-image: docker import $tarball as $tag" >&2
  docker import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' \
    --message "debootstrap bookworm minbase (deploy/base-image.sh)" "$tarball" "$tag" >/dev/null
fi
echo "$tag"

#!/bin/sh
# Install the peer tools the test suite round-trips against, from Debian, when missing.
set -eu
need=""
for pair in skopeo:skopeo umoci:umoci oci-image-tool:oci-image-tool docker-registry:docker-registry \
            podman:podman buildah:buildah openssl:openssl chromium:chromium gpg:gnupg node:nodejs npm:npm; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need="$need $pkg"
done
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if [ -n "$need" ]; then
  echo "installing peers:$need"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need uidmap >/dev/null
fi
# sigstore-js (the sigstore peer of tests/trust), pinned by its package-lock.json
js="$(dirname "$0")/../tests/trust/js"
if [ ! -d "$js/node_modules/@sigstore/verify" ]; then
  echo "installing sigstore-js into tests/trust/js"
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

#!/bin/sh
# Install the peer tools the test suite round-trips against, from Debian, when missing.
set -eu
need=""
for pair in skopeo:skopeo umoci:umoci oci-image-tool:oci-image-tool docker-registry:docker-registry \
            podman:podman buildah:buildah openssl:openssl chromium:chromium; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need="$need $pkg"
done
[ -z "$need" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing peers:$need"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need uidmap >/dev/null

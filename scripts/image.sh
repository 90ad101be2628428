#!/usr/bin/env bash
# Builds the container image `sealkm:dev` (TAG) from our own release binary, with no registry
# pull: FROM scratch, holding only the binary (debug info stripped), the shared libraries `ldd`
# names for it, a passwd/group entry for the non-root user 10001 and an empty /data and /tmp.
# The image's HEALTHCHECK is the binary itself (`sealkm health`). Prints the image size.
#
# Environment: TAG (default sealkm:dev), BIN (a prebuilt binary; default: cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${TAG:-sealkm:dev}
if [[ -z "${BIN:-}" ]]; then
    cargo build --release --quiet
    BIN=target/release/sealkm
fi

CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
ROOT="$CTX/rootfs"
mkdir -p "$ROOT/usr/local/bin" "$ROOT/etc/sealkm" "$ROOT/tmp" "$CTX/data"
chmod 1777 "$ROOT/tmp"
# /data (each node's volume; a fresh named volume takes this owner and mode) belongs to user
# 10001 and is sticky-writable, so the node also runs as another user (compose: the owner of
# the secrets); the node makes its own directories inside it 0700. A tar keeps the owner.
chmod 1777 "$CTX/data"
tar --owner=10001 --group=10001 -C "$CTX" -cf "$CTX/data.tar" data
objcopy --strip-debug "$BIN" "$ROOT/usr/local/bin/sealkm"
# The libraries the dynamic loader needs (glibc >= 2.34 has the NSS modules inside libc).
for lib in $(ldd "$BIN" | awk '/=>/ { print $3 } /ld-linux/ { print $1 }'); do
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
done
echo "sealkm:x:10001:10001:sealkm:/data:/nonexistent" >"$ROOT/etc/passwd"
echo "sealkm:x:10001:" >"$ROOT/etc/group"

cat >"$CTX/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY --chown=0:0 rootfs/ /
ADD data.tar /
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8443 9443 10443
ENTRYPOINT ["/usr/local/bin/sealkm"]
CMD ["serve", "--config", "/etc/sealkm/node.toml"]
HEALTHCHECK --interval=5s --timeout=7s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/sealkm", "health", "--url", "https://localhost:8443/healthz", "--cacert", "/etc/sealkm/ca.pem"]
DOCKERFILE

docker build --quiet -t "$TAG" "$CTX" >/dev/null
echo "built $TAG: $(docker image inspect "$TAG" --format '{{.Size}}' | awk '{ printf "%.1f MB", $1 / 1e6 }')"

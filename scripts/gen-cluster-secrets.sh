#!/usr/bin/env bash
# Generates the secrets the configs in cluster-config/ name into cluster-config/generated/, which
# git ignores: a CA for the parties and the client-facing listeners (ca.pem), one certificate and
# key per node for those listeners (node1..node5, plus two spares; each valid for localhost and
# 127.0.0.1), a separate node CA (node-ca.pem) and one peer certificate per node
# (nodeN-peer-cert.pem, naming nodeN.sealkm.test) for the peer listeners, the unseal key every node shares, the identity
# provider's key and JWKS, the admin credential (admin-token) with its SHA-256, and the client
# certificates of a group management server (gms-*.pem) and a VAL server (val-*.pem). Enough for
# cluster-config/node1.toml (one node), cluster-config/three/ and cluster-config/five/.
#
# Idempotent: an existing complete folder is kept. A folder generated for fewer nodes (by an
# older version of this script) is refused rather than replaced: its unseal key seals every
# data dir made with it, so moving it away is left to you.
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=5
GEN=cluster-config/generated
if [[ -e "$GEN" && ! -e "$GEN/node$NODES-cert.pem" ]]; then
    echo "$GEN holds secrets for fewer than $NODES nodes; move it away (with any data made with" >&2
    echo "its unseal key) and run $0 again" >&2
    exit 1
fi
if [[ -e "$GEN" && ! -e "$GEN/node-ca.pem" ]]; then
    echo "$GEN was made by an older version whose nodes and parties share one CA; move it away" >&2
    echo "(keep its unseal.key if data made with it must be kept) and run $0 again" >&2
    exit 1
fi
cargo build --release --quiet
./target/release/sealkm config generate --dir "$GEN" --nodes "$NODES" --addr 127.0.0.1:8443
for f in cluster-config/node1.toml cluster-config/three/*.toml cluster-config/five/*.toml; do
    ./target/release/sealkm config check "$f"
done

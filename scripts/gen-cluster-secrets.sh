#!/usr/bin/env bash
# Generates the secrets the configs in cluster-config/ name (CA, node certificate and key,
# unseal key, identity-provider key and JWKS, admin credential) into cluster-config/generated/,
# which git ignores. Idempotent: an existing folder is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
./target/release/sealkm config generate --dir cluster-config/generated --addr 127.0.0.1:8443
./target/release/sealkm config check cluster-config/node1.toml

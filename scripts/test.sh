#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every unit, property, vector and
# multi-process test (the test profile is optimised, see Cargo.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
# No incremental caches: a one-shot build gains nothing from them and they double the disk use.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
df -h . | tail -1 | awk '{print "disk before the build: " $4 " free"}'
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
du -sh target | awk '{print "target/ after the suite: " $1}'

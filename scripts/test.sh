#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every unit, property, vector and
# multi-process test (the test profile is optimised, see Cargo.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets

#!/usr/bin/env bash
# Builds the wolfSSL side of the same-window ECCSI/SAKKE comparison (see run.sh).
#
#   scripts/bench/wolfssl/build.sh
#
# Takes the wolfSSL C source (5.9.x) that ships inside the `wolfssl-sys` crate, version 5.3.0,
# from crates.io (`cargo fetch` in a throwaway project), copies it to target/wolfssl/, and
# configures it as wolfSSL's tuned x86-64 build: ECCSI and SAKKE with the Intel assembly and
# the single-precision (SP) math with its x86-64 assembly, static library only. Then compiles
# harness.c against it (-O2, static) into target/wolfssl/harness.
#
# Idempotent: wolfSSL is rebuilt only when its configuration line changes (or FORCE=1); the
# harness is recompiled every time (a second). Installs autoconf/automake/libtool with apt-get
# when missing (autogen.sh needs them: the crate ships configure.ac, not configure).
#
# Environment: JOBS (make -j, default: number of CPUs), FORCE=1 to rebuild wolfSSL, CC.
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT=$PWD
HERE=$ROOT/scripts/bench/wolfssl
CACHE=$ROOT/target/wolfssl
SRC=$CACHE/wolfssl-src
PREFIX=$CACHE/install
CRATE=wolfssl-sys
CRATE_VERSION=5.3.0
JOBS=${JOBS:-$(nproc)}
CC=${CC:-cc}
CONFIGURE_FLAGS=(
    --enable-eccsi --enable-sakke --enable-intelasm --enable-sp --enable-sp-asm
    --enable-static --disable-shared
    # Only the library: no TLS, examples, test or benchmark programs (a shorter build).
    --enable-cryptonly --disable-examples --disable-crypttests --disable-benchmark
    --prefix="$PREFIX"
)
STAMP=$CACHE/.built
STAMP_TEXT="$CRATE $CRATE_VERSION ${CONFIGURE_FLAGS[*]}"
mkdir -p "$CACHE"

if [[ "${FORCE:-0}" != 1 && -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_TEXT" \
      && -f "$PREFIX/lib/libwolfssl.a" ]]; then
    echo "wolfSSL: already built in target/wolfssl (FORCE=1 to rebuild)" >&2
else
    rm -f "$STAMP"
    # 1. The crate's source, through cargo's own registry cache.
    FETCH=$(mktemp -d)
    trap 'rm -rf "$FETCH"' EXIT
    mkdir -p "$FETCH/src"
    cat >"$FETCH/Cargo.toml" <<TOML
[package]
name = "wolfssl-src-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$CRATE = "=$CRATE_VERSION"
TOML
    echo "fn main() {}" >"$FETCH/src/main.rs"
    (cd "$FETCH" && cargo fetch --quiet)
    CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
    CRATE_DIR=$(ls -d "$CARGO_HOME"/registry/src/*/"$CRATE-$CRATE_VERSION" 2>/dev/null | head -n1 || true)
    [[ -n "$CRATE_DIR" ]] || { echo "$CRATE-$CRATE_VERSION not found in the cargo registry" >&2; exit 1; }
    # The wolfSSL tree is the directory holding configure.ac and wolfssl/wolfcrypt/sakke.h.
    WOLF=""
    for ac in $(find "$CRATE_DIR" -maxdepth 3 -name configure.ac); do
        d=$(dirname "$ac")
        if [[ -f "$d/wolfssl/wolfcrypt/sakke.h" && -f "$d/wolfcrypt/src/eccsi.c" ]]; then WOLF=$d; break; fi
    done
    [[ -n "$WOLF" ]] || { echo "no wolfSSL source tree inside $CRATE-$CRATE_VERSION" >&2; exit 1; }
    echo "wolfSSL: $(grep -m1 '^AC_INIT' "$WOLF/configure.ac") from $CRATE $CRATE_VERSION" >&2

    # 2. A private copy (autogen and the build write into the tree; the registry stays clean).
    rm -rf "$SRC" "$PREFIX"
    cp -a "$WOLF" "$SRC"

    # 3. autogen, configure, build, install into target/wolfssl/install.
    missing=()
    for t in autoconf automake libtoolize make; do command -v "$t" >/dev/null || missing+=("$t"); done
    if ((${#missing[@]})); then
        echo "installing autoconf automake libtool make (missing: ${missing[*]})" >&2
        apt-get install -y autoconf automake libtool make >/dev/null \
            || { apt-get update >/dev/null && apt-get install -y autoconf automake libtool make >/dev/null; }
    fi
    cd "$SRC"
    ./autogen.sh >"$CACHE/autogen.log" 2>&1 || { tail -n 30 "$CACHE/autogen.log" >&2; exit 1; }
    ./configure "${CONFIGURE_FLAGS[@]}" >"$CACHE/configure.log" 2>&1 \
        || { tail -n 30 "$CACHE/configure.log" >&2; exit 1; }
    make -j"$JOBS" >"$CACHE/make.log" 2>&1 || { tail -n 40 "$CACHE/make.log" >&2; exit 1; }
    make install >>"$CACHE/make.log" 2>&1 || { tail -n 20 "$CACHE/make.log" >&2; exit 1; }
    cd "$ROOT"
    echo "$STAMP_TEXT" >"$STAMP"
    echo "wolfSSL: built (logs in target/wolfssl/*.log)" >&2
fi

# 4. The harness, statically linked against that build. wolfssl/options.h (installed by
# configure) carries the build's defines, so the harness sees the same struct layouts.
"$CC" -O2 -Wall -Wextra -I"$PREFIX/include" -o "$CACHE/harness" "$HERE/harness.c" \
    "$PREFIX/lib/libwolfssl.a" -lm -lpthread -static
echo "harness: target/wolfssl/harness" >&2

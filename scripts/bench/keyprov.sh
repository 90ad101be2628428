#!/usr/bin/env bash
# KM-UU keyprov load test: cold and warm requests/s and latency at concurrency 1 and 32.
#
# Builds the release binary, creates a dev environment in a temp dir, raises its admission
# limits (see below), starts the node with `sealkm dev`, waits for cluster.json, runs
# `sealkm bench keyprov` and stops only the process it started.
#
# Admission limits: the generated config has `max_inflight_issuance = 64` and
# `per_identity_burst = 20`. The cold test uses one fresh identity per request and at most 32
# requests in flight, so neither limit should shed; they are raised anyway (to 1024 / 1000) so
# that a 429 in the results means something other than the dev defaults. Any non-200 answer is
# reported by the load tool.
#
# Prints at the end the node's mean issuance time (from its /metrics).
#
# Environment: DURATION (s, default 10), CONCURRENCY (default "1 32"), USERS (cold identity
# pool per run, default 40000), PORT (default 18443), JSON=1 for JSON lines, SEALKM_BIN (a
# built sealkm binary instead of `cargo build --release`).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-"1 32"}
USERS=${USERS:-40000}
PORT=${PORT:-18443}
JSON_FLAG=()
[[ "${JSON:-0}" == 1 ]] && JSON_FLAG=(--json)

if [[ -n "${SEALKM_BIN:-}" ]]; then
    BIN=$SEALKM_BIN
else
    cargo build --release --quiet
    BIN=target/release/sealkm
fi

TMP=$(mktemp -d)
NODE_PID=""
cleanup() {
    if [[ -n "$NODE_PID" ]]; then
        kill "$NODE_PID" 2>/dev/null || true
        wait "$NODE_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# First run creates the environment and starts the node; stop it, edit the config, restart.
# (`sealkm dev` only writes the config when it does not exist, so edits survive a restart.)
"$BIN" dev --nodes 1 --dir "$TMP/env" --addr "127.0.0.1:$PORT" >"$TMP/dev.log" 2>&1 &
NODE_PID=$!
wait_cluster() {
    for _ in $(seq 1 300); do
        [[ -s "$TMP/env/cluster.json" ]] && return 0
        kill -0 "$NODE_PID" 2>/dev/null || { cat "$TMP/dev.log" >&2; return 1; }
        sleep 0.1
    done
    echo "node did not come up" >&2
    return 1
}
wait_cluster
# `sealkm dev` stops its node (the `serve` child named in cluster.json) on SIGTERM; wait for
# that child to be gone so the port is free for the restart.
CHILD_PID=$(sed -n 's/.*"pid": \([0-9]*\).*/\1/p' "$TMP/env/cluster.json" | head -1)
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
NODE_PID=""
for _ in $(seq 1 100); do
    [[ -n "$CHILD_PID" ]] && kill -0 "$CHILD_PID" 2>/dev/null || break
    sleep 0.1
done
rm -f "$TMP/env/cluster.json"
sed -i -e 's/^max_inflight_issuance = .*/max_inflight_issuance = 1024/' \
       -e 's/^per_identity_burst = .*/per_identity_burst = 1000/' "$TMP/env/node1.toml"
grep -A3 '^\[admission\]' "$TMP/env/node1.toml"

"$BIN" dev --nodes 1 --dir "$TMP/env" --addr "127.0.0.1:$PORT" >"$TMP/dev.log" 2>&1 &
NODE_PID=$!
wait_cluster
URL="https://localhost:$PORT"

echo "machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for c in $CONCURRENCY; do
    "$BIN" bench keyprov --url "$URL" --cacert "$TMP/env/ca.pem" --dir "$TMP/env" \
        --users "$USERS" --concurrency "$c" --duration "$DURATION" --mode both "${JSON_FLAG[@]}"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# Where a cold request's time goes on the node: the issuance (blocking-pool hand-off and the
# crypto of a key set) from the node's own histogram, over every run above.
if metrics=$(curl -sf --cacert "$TMP/env/ca.pem" "$URL/metrics"); then
    awk '/^sealkm_issuance_seconds_sum /{s=$2} /^sealkm_issuance_seconds_count /{n=$2}
         END{if (n>0) printf "node: %d issuances, mean %.3f ms each (hand-off + crypto)\n", n, 1000*s/n}' <<<"$metrics"
fi

#!/usr/bin/env bash
# KMS-managed group keys over the service listener (mutual TLS + token, as the dev GMS) on a
# 3-node cluster: creations/s (each one a replicated write) and fetches/s of the current key,
# through the leader and through a follower.
#
# Builds the release binary, starts `sealkm dev --nodes 3` in a temp dir (it grants the dev
# GMS every group), runs `sealkm bench group-keys` against each node's service listener and
# stops only the process it started.
#
# Environment: DURATION (s, default 6), CREATE_C (default "1 16 64"), FETCH_C (default "1 32"),
# JSON=1 for JSON lines.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-6}
CREATE_C=${CREATE_C:-"1 16 64"}
FETCH_C=${FETCH_C:-"1 32"}
JSON_FLAG=()
[[ "${JSON:-0}" == 1 ]] && JSON_FLAG=(--json)

cargo build --release --quiet
BIN=target/release/sealkm

TMP=$(mktemp -d)
DEV_PID=""
cleanup() {
    if [[ -n "$DEV_PID" ]]; then
        kill "$DEV_PID" 2>/dev/null || true
        wait "$DEV_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

"$BIN" dev --nodes 3 --dir "$TMP/env" --addr "127.0.0.1:0" >"$TMP/dev.log" 2>&1 &
DEV_PID=$!
for _ in $(seq 1 600); do
    grep -q "Ctrl-C stops" "$TMP/dev.log" 2>/dev/null && break
    kill -0 "$DEV_PID" 2>/dev/null || { cat "$TMP/dev.log" >&2; exit 1; }
    sleep 0.1
done
grep -q "Ctrl-C stops" "$TMP/dev.log" || { echo "cluster did not come up" >&2; exit 1; }

LEADER=$("$BIN" cluster status --dir "$TMP/env" --json |
    python3 -c 'import json,sys; print([n["id"] for n in json.load(sys.stdin)["nodes"] if n.get("role")=="leader"][0])')
service() {
    python3 -c "import json,sys; print([n['service'] for n in json.load(open('$TMP/env/cluster.json'))['nodes'] if n['id']==$1][0])"
}
FOLLOWER=$(( LEADER % 3 + 1 ))

echo "machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for node in "$LEADER" "$FOLLOWER"; do
    role=leader; [[ "$node" == "$FOLLOWER" ]] && role=follower
    echo "== via node $node ($role)"
    for c in $CREATE_C; do
        "$BIN" bench group-keys --dir "$TMP/env" --url "$(service "$node")" --mode create \
            --concurrency "$c" --duration "$DURATION" "${JSON_FLAG[@]}"
    done
    for c in $FETCH_C; do
        "$BIN" bench group-keys --dir "$TMP/env" --url "$(service "$node")" --mode fetch \
            --concurrency "$c" --duration "$DURATION" "${JSON_FLAG[@]}"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

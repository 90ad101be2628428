#!/usr/bin/env bash
# Cluster-level scale curves (issue 15, item 6): a 3-node cluster (`sealkm dev --nodes 3`) is
# grown in steps to STEPS applied entries (identity revocations through the admin API, 64
# clients), and at each size it measures, over the network and through Raft:
#   - write_p50_ms / write_p99_ms: one-client replicated writes (`sealkm bench write`, DURATION s)
#   - keyprov_p50_ms: one-client cold KM-UU key sets (`sealkm bench keyprov --mode cold`)
#   - restart_s: a follower killed (-9) and restarted with its data, until its applied index
#     reaches the leader's commit index as read before the kill
#   - catchup_s: a new node (the next spare of `sealkm dev`: node 4, then node 5) started
#     empty and joined through the leader's admin API, until its applied index reaches the
#     leader's commit index as read before the join (a snapshot sent over the peer network and
#     installed, then the log after it); it then leaves and is stopped. (A node is never
#     restarted empty under its old id: Raft forbids it, and raft-rs stops such a node at the
#     leader's first heartbeat; see docs/PERFORMANCE.md.)
#   - snapshot_mb: the new node's snapshot folder after the catch-up; leader_rss_mb: the
#     leader's resident memory
# Two spares, so at most two STEPS.
# Prints one CSV line per step (header first) on stdout; progress on stderr.
#
#   SEALKM_BIN=target/release/sealkm scripts/bench/scale_cluster.sh > docs/scale-cluster.csv
#
# Environment: SEALKM_BIN (default: `cargo build --release`), STEPS (applied entries, default
# "50000 250000"), DURATION (s per latency run, default 5), PORT (node 1, default 27443).
# Needs jq and curl. Every process it started is stopped on exit; its folder is removed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STEPS=${STEPS:-"50000 250000"}
DURATION=${DURATION:-5}
PORT=${PORT:-27443}
if [[ -n "${SEALKM_BIN:-}" ]]; then
    B=$SEALKM_BIN
else
    (cd "$ROOT" && cargo build --release --quiet)
    B=${CARGO_TARGET_DIR:-$ROOT/target}/release/sealkm
fi
for tool in jq curl; do command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 2; }; done

DIR=$(mktemp -d)
DEV=
STARTED=()
log() { echo "scale: $*" >&2; }
cleanup() {
    local p
    for p in "${STARTED[@]}" $(jq -r '.nodes[].pid' "$DIR/cluster.json" 2>/dev/null) $DEV; do
        kill "$p" 2>/dev/null || true
    done
    sleep 1
    rm -rf "$DIR"
}
trap cleanup EXIT

TOKEN=
status_of() { # the cluster status node ID reports (its own view first)
    curl -s --max-time 5 --cacert "$DIR/ca.pem" -H "Authorization: Bearer $TOKEN" \
        "$(jq -r --argjson id "$1" '.nodes[] | select(.id == $id) | .km_uu' "$DIR/cluster.json")/admin/v1/cluster/status" 2>/dev/null || true
}
field() { status_of "$1" | jq -r ".nodes[0].$2 // 0" 2>/dev/null || echo 0; }
leader() {
    local id l
    for id in 1 2 3; do
        l=$(status_of "$id" | jq -r '[.nodes[]? | select(.role == "leader")] | max_by(.term) | .id // 0' 2>/dev/null || echo 0)
        if [[ -n "$l" && "$l" != 0 && "$l" != null ]]; then echo "$l"; return; fi
    done
    echo 0
}
now_ms() { date +%s%3N; }
wait_applied() { # wait_applied ID INDEX: until node ID has applied INDEX (at most 600 s)
    local end=$((SECONDS + 600))
    until [[ $(field "$1" applied) -ge $2 ]]; do
        [[ $SECONDS -lt $end ]] || { log "node $1 never reached $2"; exit 1; }
        sleep 0.05
    done
}
start_node() { # start_node ID: its restart command; records the pid in cluster.json
    local id=$1 argv pid
    mapfile -t argv < <(jq -r --argjson id "$id" '.nodes[] | select(.id == $id) | .restart[]' "$DIR/cluster.json")
    "${argv[@]}" >> "$DIR/node$id.out" 2>> "$DIR/node$id.log" &
    pid=$!
    STARTED+=("$pid")
    jq --argjson id "$id" --argjson pid "$pid" '(.nodes[] | select(.id == $id) | .pid) = $pid' \
        "$DIR/cluster.json" > "$DIR/c.tmp" && mv "$DIR/c.tmp" "$DIR/cluster.json"
}
kill9() {
    local p
    p=$(jq -r --argjson id "$1" '.nodes[] | select(.id == $id) | .pid' "$DIR/cluster.json")
    kill -9 "$p" 2>/dev/null || true
    while alive "$p"; do sleep 0.05; done
}
# A killed node of `sealkm dev` stays a zombie until dev reaps it: not alive.
alive() { [ -e "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
url_of() { jq -r --argjson id "$1" '.nodes[] | select(.id == $id) | .km_uu' "$DIR/cluster.json"; }

"$B" dev --dir "$DIR" --nodes 3 --addr "127.0.0.1:$PORT" > "$DIR/dev.out" 2>&1 &
DEV=$!
until grep -q '^files in ' "$DIR/dev.out" 2>/dev/null; do
    kill -0 "$DEV" 2>/dev/null || { cat "$DIR/dev.out" >&2; exit 1; }
    sleep 0.2
done
TOKEN=$(cat "$DIR/admin-token")
until [[ $(leader) != 0 ]]; do sleep 0.1; done

SPARE=3
echo "applied,write_p50_ms,write_p99_ms,keyprov_p50_ms,restart_s,catchup_s,snapshot_mb,leader_rss_mb"
for target in $STEPS; do
    L=$(leader)
    while [[ $(field "$L" applied) -lt $target ]]; do
        "$B" bench write --dir "$DIR" --url "$(url_of "$L")" --concurrency 64 --duration 10 --json > /dev/null
        L=$(leader)
    done
    applied=$(field "$L" applied)
    log "applied $applied on node $L"
    w=$("$B" bench write --dir "$DIR" --url "$(url_of "$L")" --concurrency 1 --duration "$DURATION" --json)
    k=$("$B" bench keyprov --url "$(url_of "$L")" --cacert "$DIR/ca.pem" --dir "$DIR" --mode cold \
        --duration "$DURATION" --json)
    log "write and keyprov measured; restarts next"
    F=$(( L % 3 + 1 ))
    # A restart with its data.
    commit=$(field "$L" commit)
    t0=$(now_ms); kill9 "$F"; start_node "$F"; wait_applied "$F" "$commit"
    restart=$(( $(now_ms) - t0 ))
    # A new node catching up from nothing.
    SPARE=$((SPARE + 1))
    conf=$DIR/node$SPARE.toml
    surl=https://$(awk '/^\[/ { s = $0 } s == "[client_listener]" && /^addr = / { gsub(/"/, "", $3); print $3; exit }' "$conf")
    speer=$(awk '/^\[/ { s = $0 } s == "[raft.peer_listener]" && /^addr = / { gsub(/"/, "", $3); print $3; exit }' "$conf")
    "$B" serve --config "$conf" >> "$DIR/node$SPARE.out" 2>> "$DIR/node$SPARE.log" &
    spid=$!
    STARTED+=("$spid")
    # It serves once it is a member: the join is retried until the leader takes it.
    commit=$(field "$L" commit)
    t0=$(now_ms)
    end=$((SECONDS + 120))
    until [[ $(curl -s -o "$DIR/join.out" -w '%{http_code}' --max-time 600 --cacert "$DIR/ca.pem" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -X POST \
        "$(url_of "$(leader)")/admin/v1/cluster/join" -d "{\"id\": $SPARE, \"peer\": \"$speer\"}") == 200 ]]; do
        [[ $SECONDS -lt $end ]] || { log "join of node $SPARE: $(cat "$DIR/join.out")"; exit 1; }
        sleep 0.1
    done
    end=$((SECONDS + 600))
    until [[ $(curl -s --max-time 5 --cacert "$DIR/ca.pem" -H "Authorization: Bearer $TOKEN" \
        "$surl/admin/v1/cluster/status" | jq -r '.nodes[0].applied // 0' 2>/dev/null || echo 0) -ge $commit ]]; do
        [[ $SECONDS -lt $end ]] || { log "node $SPARE never caught up"; exit 1; }
        sleep 0.05
    done
    catchup=$(( $(now_ms) - t0 ))
    snap=$(du -sm "$DIR/node$SPARE-data/snapshots" 2>/dev/null | cut -f1 || echo 0)
    curl -s -o /dev/null --max-time 60 --cacert "$DIR/ca.pem" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' -X POST "$(url_of "$(leader)")/admin/v1/cluster/leave" \
        -d "{\"id\": $SPARE}" || true
    kill "$spid" 2>/dev/null || true
    lpid=$(jq -r --argjson id "$L" '.nodes[] | select(.id == $id) | .pid' "$DIR/cluster.json")
    rss=$(( $(awk '/^VmRSS/ {print $2}' "/proc/$lpid/status" 2>/dev/null || echo 0) / 1024 ))
    printf '%s,%s,%s,%s,%s,%s,%s,%s\n' "$applied" \
        "$(jq -r '.latency_us.p50 / 1000' <<< "$w")" "$(jq -r '.latency_us.p99 / 1000' <<< "$w")" \
        "$(jq -r '.latency_us.p50 / 1000' <<< "$k")" \
        "$(awk -v m="$restart" 'BEGIN { printf "%.2f", m / 1000 }')" \
        "$(awk -v m="$catchup" 'BEGIN { printf "%.2f", m / 1000 }')" "$snap" "$rss"
done

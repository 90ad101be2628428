#!/usr/bin/env bash
# Replicated writes, sealkm against etcd (issue 4): writes/s, p50 and p99 at concurrency 1 and 64,
# next to the floor of one write on this machine (4 KiB append + fdatasync, loopback round trip).
#
# Builds the release binary, installs Debian's etcd-server if `etcd` is missing, then in a temp
# dir starts
#   - a 3-node sealkm cluster (`sealkm dev --nodes 3`), and
#   - a 3-member etcd cluster on loopback, fsync ON (no --unsafe-no-fsync), TLS ON for clients
#     and peers with the sealkm dev CA's node certificates (sealkm cannot turn TLS off, so etcd
#     gets TLS too: TLS on both sides).
# Each write carries 256 bytes: sealkm an identity revocation (fresh identity, 256-byte reason)
# through the admin API, etcd a put (fresh key, 256-byte value) through its v3 JSON gateway;
# both driven by `sealkm bench write` (HTTP/1.1 over TLS, one keep-alive connection per client)
# against each cluster's leader. Only the PIDs this script started are stopped (trap on EXIT).
#
# Environment: DURATION (s per run, default 10), CONCURRENCY (default "1 64"), PORT (sealkm
# node 1, default 18443; peers at PORT+1000..), ETCD_PORT (default 23790: clients +1..+3,
# peers +11..+13), FSYNC_RUNS (default 200), KEEP=1 keeps the temp dir, SEALKM_BIN (a built
# sealkm binary instead of `cargo build --release`, e.g. the test-profile target/debug/sealkm).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-"1 64"}
PORT=${PORT:-18443}
ETCD_PORT=${ETCD_PORT:-23790}
FSYNC_RUNS=${FSYNC_RUNS:-200}

if [[ -n "${SEALKM_BIN:-}" ]]; then
    BIN=$SEALKM_BIN
else
    cargo build --release --quiet
    BIN=target/release/sealkm
fi
if ! command -v etcd >/dev/null; then
    apt-get install -y etcd-server >/dev/null || { apt-get update >/dev/null && apt-get install -y etcd-server >/dev/null; }
fi
command -v jq >/dev/null || apt-get install -y jq >/dev/null
command -v curl >/dev/null || apt-get install -y curl >/dev/null

TMP=$(mktemp -d)
STARTED=()   # every PID this script started (sealkm dev, its node processes, etcd members)
cleanup() {
    local pid
    for pid in "${STARTED[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${STARTED[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [[ "${KEEP:-0}" == 1 ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# Polls (every 0.1 s, up to $2 s) until the command in the remaining arguments succeeds.
wait_for() {
    local what=$1 limit=$2; shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS > deadline)); then echo "timed out waiting for $what" >&2; return 1; fi
        sleep 0.1
    done
}

# ---- sealkm: 3 nodes -------------------------------------------------------------------------
SK=$TMP/sealkm
"$BIN" dev --dir "$SK" --nodes 3 --addr "127.0.0.1:$PORT" >"$TMP/sealkm-dev.log" 2>&1 &
DEV_PID=$!
STARTED+=($DEV_PID)
# cluster.json appears once every node listens; `sealkm dev` exits (stopping its nodes) if one
# of them fails to start.
deadline=$((SECONDS + 120))
until [[ -s "$SK/cluster.json" ]]; do
    if ! kill -0 "$DEV_PID" 2>/dev/null; then
        echo "sealkm dev failed:" >&2
        cat "$TMP/sealkm-dev.log" >&2
        exit 1
    fi
    ((SECONDS < deadline)) || { echo "timed out waiting for the sealkm cluster" >&2; exit 1; }
    sleep 0.1
done
SK_PIDS=($(jq -r '.nodes[].pid' "$SK/cluster.json"))
STARTED+=("${SK_PIDS[@]}")
sk_leader() { "$BIN" cluster status --dir "$SK" --json | jq -er '.nodes[] | select(.role == "leader") | .id'; }
wait_for "a sealkm leader" 60 sk_leader
SK_LEADER=$(sk_leader)
SK_URL=$(jq -r --argjson id "$SK_LEADER" '.nodes[] | select(.id == $id) | .km_uu' "$SK/cluster.json")

# ---- etcd: 3 members, TLS with the dev CA's node certificates, fsync on ----------------------
CLUSTER=""
ETCD_PIDS=()
for k in 1 2 3; do CLUSTER+="${CLUSTER:+,}e$k=https://127.0.0.1:$((ETCD_PORT + 10 + k))"; done
for k in 1 2 3; do
    etcd --name "e$k" --data-dir "$TMP/etcd$k" \
        --listen-client-urls "https://127.0.0.1:$((ETCD_PORT + k))" \
        --advertise-client-urls "https://127.0.0.1:$((ETCD_PORT + k))" \
        --listen-peer-urls "https://127.0.0.1:$((ETCD_PORT + 10 + k))" \
        --initial-advertise-peer-urls "https://127.0.0.1:$((ETCD_PORT + 10 + k))" \
        --initial-cluster "$CLUSTER" --initial-cluster-state new --initial-cluster-token sealkm-bench \
        --cert-file "$SK/node$k-cert.pem" --key-file "$SK/node$k-key.pem" \
        --peer-cert-file "$SK/node$k-cert.pem" --peer-key-file "$SK/node$k-key.pem" \
        --peer-trusted-ca-file "$SK/ca.pem" --peer-client-cert-auth \
        >"$TMP/etcd$k.log" 2>&1 &
    STARTED+=($!)
    ETCD_PIDS+=($!)
done
etcd_status() { curl -sf --cacert "$SK/ca.pem" -X POST -d '{}' "https://127.0.0.1:$((ETCD_PORT + $1))/v3/maintenance/status"; }
etcd_leader() {
    local k
    for k in 1 2 3; do
        etcd_status "$k" | jq -e '.leader != null and .leader == .header.member_id' >/dev/null && { echo "$k"; return 0; }
    done
    return 1
}
wait_for "an etcd leader" 60 etcd_leader
ETCD_LEADER=$(etcd_leader)
ETCD_URL="https://127.0.0.1:$((ETCD_PORT + ETCD_LEADER))"
ETCD_VERSION=$(etcd --version | head -1)

# ---- runs ------------------------------------------------------------------------------------
RES=$TMP/results.jsonl
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) cores, $(uname -r); disk of the temp dir: $(df --output=source,fstype "$TMP" | tail -1)"
echo "sealkm: 3 nodes, leader node $SK_LEADER at $SK_URL; TLS ON (client HTTPS, peers mutual TLS)"
echo "etcd:   3 members ($ETCD_VERSION), leader e$ETCD_LEADER at $ETCD_URL; TLS ON (client HTTPS, peers mutual TLS), fsync on"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# The floor is measured before and after the write runs (the disk's fsync time drifts).
"$BIN" bench fsync --dir "$TMP" --runs "$FSYNC_RUNS" --json >"$TMP/fsync.json"
jq -c . "$TMP/fsync.json"
# CPU seconds (user + system) used so far by the PIDs given.
cpu_s() {
    local pid sum=0
    for pid in "$@"; do sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
    jq -n "$sum / $(getconf CLK_TCK)"
}
# Runs one `bench write` ($1 target, $2 concurrency, then its own arguments) and reports the
# CPU its cluster's processes used per write.
run_write() {
    local target=$1 c=$2; shift 2
    local pids=("${SK_PIDS[@]}")
    [[ "$target" == etcd ]] && pids=("${ETCD_PIDS[@]}")
    local c0 c1 line
    c0=$(cpu_s "${pids[@]}")
    line=$("$BIN" bench write --target "$target" --concurrency "$c" --duration "$DURATION" --json "$@")
    c1=$(cpu_s "${pids[@]}")
    echo "$line" >>"$RES"
    jq -c '{target, concurrency, writes_per_s, latency_us, non_200, transport_errors}' <<<"$line"
    jq -r --argjson c0 "$c0" --argjson c1 "$c1" \
        '"  \(.target) processes (3): \(($c1 - $c0) * 100 | round / 100) CPU s = \(($c1 - $c0) * 1e6 / (.ok + .concurrency) | round) µs of CPU per write"' <<<"$line"
}
sk_fsyncs() { "$BIN" cluster status --dir "$SK" --json | jq -r --argjson id "$SK_LEADER" '.nodes[] | select(.id == $id) | .fsyncs'; }
for c in $CONCURRENCY; do
    f0=$(sk_fsyncs)
    run_write sealkm "$c" --url "$SK_URL" --dir "$SK"
    f1=$(sk_fsyncs)
    echo "  sealkm leader: $((f1 - f0)) synced raft-engine writes during the run (untimed first writes included)"
    run_write etcd "$c" --url "$ETCD_URL" --cacert "$SK/ca.pem"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN" bench fsync --dir "$TMP" --runs "$FSYNC_RUNS" --json >"$TMP/fsync-after.json"
jq -c . "$TMP/fsync-after.json"

# ---- table -----------------------------------------------------------------------------------
echo
jq -rs --slurpfile f "$TMP/fsync.json" '
  def ms: if . == null then "-" else ((. / 10 | round) / 100 | tostring) + " ms" end;
  def r2: (. * 100 | round) / 100 | tostring;
  (group_by(.concurrency)[] | . as $g
   | ($g[] | select(.target == "sealkm")) as $s | ($g[] | select(.target == "etcd")) as $e
   | "| \($s.concurrency) | \($s.writes_per_s | round) | \($e.writes_per_s | round) | \(($s.writes_per_s / $e.writes_per_s) | r2) | \($s.latency_us.p50 | ms) | \($e.latency_us.p50 | ms) | \(($s.latency_us.p50 / $e.latency_us.p50) | r2) | \($s.latency_us.p99 | ms) | \($e.latency_us.p99 | ms) | \(($s.latency_us.p99 / $e.latency_us.p99) | r2) |")
  ' "$RES" >"$TMP/rows.md"
echo "| clients | sealkm writes/s | etcd writes/s | ratio | sealkm p50 | etcd p50 | ratio | sealkm p99 | etcd p99 | ratio |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
cat "$TMP/rows.md"
echo
SK1=$(jq -rs 'map(select(.target == "sealkm" and .concurrency == 1))[0].latency_us.p50 // empty' "$RES")
for when in before after; do
    f=$TMP/fsync.json
    [[ $when == after ]] && f=$TMP/fsync-after.json
    jq -r --arg when "$when" '"floor \($when): 4 KiB append + fdatasync p50 \(.append_4k_fdatasync_us.p50) µs (p99 \(.append_4k_fdatasync_us.p99) µs; with fsync p50 \(.append_4k_fsync_us.p50) µs), loopback round trip p50 \(.loopback_rtt_us.p50) µs (p99 \(.loopback_rtt_us.p99) µs) → fdatasync + round trip = \(.floor_p50_us) µs"' "$f"
    if [[ -n "$SK1" ]]; then
        FLOOR=$(jq -r '.floor_p50_us' "$f")
        echo "  sealkm single-client p50 $SK1 µs = $(jq -n "($SK1 / $FLOOR * 100 | round) / 100")× this floor (goal: ≤ 2×)"
    fi
done
echo "TLS: on for sealkm and on for etcd (clients and peers); fsync on for both."

#!/usr/bin/env bash
# A local sealkm cluster from the configs in cluster-config/:
#
#   scripts/cluster.sh up     [three|five]   build release, generate secrets if missing, start
#                                            every node in the background, wait until each listens
#   scripts/cluster.sh status [three|five]   `sealkm cluster status` against the running nodes
#   scripts/cluster.sh down   [three|five]   stop the nodes `up` started (and only those)
#
# Size `three` (default): cluster-config/three/node{1..3}.toml, clients on 127.0.0.1:7101-7103,
# peers on 7201-7203. Size `five`: cluster-config/five/node{1..5}.toml, clients 7301-7305, peers
# 7401-7405. Secrets: cluster-config/generated/ (scripts/gen-cluster-secrets.sh). Run state —
# data dirs, audit files, node stdout (`nodeK.out`, this start only), logs (`nodeK.log`, every
# start) and the pid file — lives in cluster-config/run/SIZE/; both folders are git-ignored.
# WAIT_S (default 60) bounds how long `up` waits for the nodes. `up` on existing data restarts
# the cluster from it; `rm -rf cluster-config/run/SIZE` (after `down`) starts afresh.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 up|down|status [three|five]" >&2; exit 2; }
CMD=${1:-}
SIZE=${2:-three}
case "$SIZE" in
    three) N=3 ;;
    five) N=5 ;;
    *) usage ;;
esac
CONF=cluster-config/$SIZE
RUN=cluster-config/run/$SIZE
PIDFILE=$RUN/pids
GEN=cluster-config/generated
BIN=target/release/sealkm
WAIT_S=${WAIT_S:-60}

# The client listener address of node $1 (first `addr` after [client_listener]).
client_addr() {
    awk '/^\[client_listener\]/ { f = 1 } f && /^addr *=/ { gsub(/"/, "", $3); print $3; exit }' "$CONF/node$1.toml"
}

# Whether pid $2 is still node $1 of this size (a recycled pid is never signalled).
is_ours() {
    [[ -r "/proc/$2/cmdline" ]] && tr '\0' ' ' <"/proc/$2/cmdline" | grep -qF -- "--config $CONF/node$1.toml"
}

# Lines "K PID" of the pid file whose process is still running.
running() {
    [[ -f "$PIDFILE" ]] || return 0
    local k pid
    while read -r k pid; do
        if is_ours "$k" "$pid"; then echo "$k $pid"; fi
    done <"$PIDFILE"
}

status_cmd() {
    echo "$BIN cluster status --url https://$(client_addr "$1") --cacert $GEN/ca.pem --token \"\$(cat $GEN/admin-token)\""
}

stop() {
    local k pid list
    list=$(running)
    [[ -n "$list" ]] || { rm -f "$PIDFILE"; echo "$SIZE: no node of ours is running"; return 0; }
    while read -r k pid; do kill -TERM "$pid" 2>/dev/null || true; done <<<"$list"
    while read -r k pid; do
        local deadline=$((SECONDS + 30))
        while is_ours "$k" "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
        if is_ours "$k" "$pid"; then
            echo "node $k (pid $pid) ignored SIGTERM for 30 s: SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "stopped node $k (pid $pid)"
    done <<<"$list"
    rm -f "$PIDFILE"
}

up() {
    if [[ -n "$(running)" ]]; then
        echo "$SIZE is already up (pids in $PIDFILE); '$0 down $SIZE' first" >&2
        exit 1
    fi
    cargo build --release --quiet
    [[ -e "$GEN/node$N-cert.pem" ]] || scripts/gen-cluster-secrets.sh
    mkdir -p "$RUN"
    : >"$PIDFILE"
    local k
    for k in $(seq 1 "$N"); do "$BIN" config check "$CONF/node$k.toml" >/dev/null; done
    # Every node first: none finishes starting before a quorum of them runs.
    for k in $(seq 1 "$N"); do
        # stdout (the "listening" lines) is this start's only; the log keeps earlier starts.
        echo "---- scripts/cluster.sh up $SIZE: $(date -u '+%Y-%m-%dT%H:%M:%SZ')" >>"$RUN/node$k.log"
        NO_COLOR=1 SEALKM_LOG_FORMAT=text "$BIN" serve --config "$CONF/node$k.toml" \
            </dev/null >"$RUN/node$k.out" 2>>"$RUN/node$k.log" &
        echo "$k $!" >>"$PIDFILE"
    done
    # Wait for each node's "listening" line on its stdout (polled, bounded by WAIT_S).
    local deadline=$((SECONDS + WAIT_S)) pid line
    while read -r k pid; do
        until line=$(grep -m1 '^sealkm: KM-UU listening on ' "$RUN/node$k.out"); do
            if ! kill -0 "$pid" 2>/dev/null; then
                echo "node $k exited before listening; last lines of $RUN/node$k.log:" >&2
                tail -n 20 "$RUN/node$k.log" >&2
                stop
                exit 1
            fi
            if ((SECONDS > deadline)); then
                echo "node $k did not listen within $WAIT_S s (see $RUN/node$k.log)" >&2
                stop
                exit 1
            fi
            sleep 0.1
        done
        echo "node $k (pid $pid): ${line#sealkm: }"
    done <"$PIDFILE"
    echo
    echo "$SIZE is up; pids in $PIDFILE, logs in $RUN/. Status:"
    echo
    echo "  $(status_cmd 1)"
    echo
    show_status
}

show_status() {
    local list k pid
    list=$(running)
    if [[ -z "$list" ]]; then echo "$SIZE: no node of ours is running" >&2; return 1; fi
    while read -r k pid; do
        local url="https://$(client_addr "$k")"
        if "$BIN" cluster status --url "$url" --cacert "$GEN/ca.pem" --token "$(cat "$GEN/admin-token")"; then
            return 0
        fi
        echo "(node $k at $url did not answer; trying the next one)" >&2
    done <<<"$list"
    return 1
}

case "$CMD" in
    up) up ;;
    down) stop ;;
    status) show_status ;;
    *) usage ;;
esac

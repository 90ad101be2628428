#!/usr/bin/env bash
# A chaos run: a local 3-node cluster (`sealkm dev --nodes 3` in a folder of its own), the
# recorded workload (`sealkm chaos workload`) against every node, faults injected on a seeded
# schedule, every fault healed, then `sealkm chaos check` (history + every node's state).
#
#   scripts/chaos/run.sh [--target local] [--faults kill,kill-leader,pause,kill-all,restart]
#                        [--duration S] [--seed N] [--dir D] [--keep]
#
# Faults (taken in a seeded rotation so that each listed kind comes up in turn):
#   kill         kill -9 of one node (seeded choice), restarted after a few seconds
#   kill-leader  kill -9 of the leader; the time until another node leads is recorded
#   kill-all     kill -9 of every node, then all restarted
#   pause        SIGSTOP of the leader, SIGCONT after a few seconds (time to a new leader)
#   restart      rolling restart: each node in turn SIGTERM, restarted, back in the cluster
# (Network partitions are not implemented yet.)
#
# The run's folder holds the node logs, history.jsonl, faults.jsonl, report.json and
# summary.txt. It is removed after a passing run unless --keep; kept (and named) on failure.
# Every process this script started is stopped on exit, also on Ctrl-C.
#
# Needs jq and curl. Environment: SEALKM_BIN (a built sealkm; default: `cargo build --release`
# and its binary),
# PORT (node 1's client port; nodes use PORT..PORT+2, peers PORT+1000.., services PORT+2000..;
# fixed so a restarted node comes back where cluster.json says; default from the seed and pid).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

TARGET=local
FAULTS=kill,kill-leader,pause
DURATION=60
SEED=1
DIR=
KEEP=0
usage() { sed -n '2,9p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --target) TARGET=$2; shift 2 ;;
    --faults) FAULTS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) usage ;;
  esac
done
[ "$TARGET" = local ] || { echo "chaos: only --target local is implemented" >&2; exit 2; }
IFS=, read -r -a KINDS <<< "$FAULTS"
for k in "${KINDS[@]}"; do
  case "$k" in kill|kill-leader|kill-all|pause|restart) ;; *) echo "chaos: unknown fault $k" >&2; exit 2 ;; esac
done
for tool in jq curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "chaos: $tool is required" >&2; exit 2; }
done
[ "$DURATION" -ge 20 ] || { echo "chaos: --duration must be at least 20" >&2; exit 2; }

if [ -n "${SEALKM_BIN:-}" ]; then
  B=$SEALKM_BIN
else
  (cd "$ROOT" && cargo build --release --quiet)
  B=${CARGO_TARGET_DIR:-$ROOT/target}/release/sealkm
fi
if [ -z "$DIR" ]; then
  DIR=$(mktemp -d "${TMPDIR:-/tmp}/sealkm-chaos.XXXXXX")
else
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
fi
PORT=${PORT:-$((21000 + ((SEED * 7 + $$) % 2000) * 3))}
PIDS=()      # processes this shell started
DEV=
WORKLOAD=

now_ms() { date +%s%3N; }
log() { echo "chaos: $*" >&2; }
alive() { [ -e "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
pid_of() { jq -r --argjson id "$1" '.nodes[] | select(.id == $id) | .pid' "$DIR/cluster.json"; }
url_of() { jq -r --argjson id "$1" '.nodes[] | select(.id == $id) | .km_uu' "$DIR/cluster.json"; }
node_ids() { jq -r '.nodes[].id' "$DIR/cluster.json"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local all=("${PIDS[@]}")
  if [ -f "$DIR/cluster.json" ]; then
    for id in $(node_ids); do all+=("$(pid_of "$id")"); done
  fi
  [ -n "$WORKLOAD" ] && all+=("$WORKLOAD")
  [ -n "$DEV" ] && all+=("$DEV")
  for p in "${all[@]}"; do
    if alive "$p"; then kill -CONT "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true; fi
  done
  for _ in $(seq 50); do
    local left=0
    for p in "${all[@]}"; do alive "$p" && left=1; done
    [ $left = 0 ] && break
    sleep 0.1
  done
  for p in "${all[@]}"; do alive "$p" && kill -9 "$p" 2>/dev/null || true; done
  if [ "$rc" -eq 0 ] && [ "$KEEP" = 0 ]; then
    rm -rf "$DIR"
  else
    [ "$rc" -eq 0 ] || log "FAILED (exit $rc); logs, history, faults and report kept in $DIR"
    [ "$rc" -ne 0 ] || log "folder kept: $DIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

status_of() { # status_of ID: that node's cluster status (its own view), or nothing
  curl -s --max-time 5 --cacert "$DIR/ca.pem" -H "Authorization: Bearer $TOKEN" \
    "$(url_of "$1")/admin/v1/cluster/status" 2>/dev/null || true
}
leader_seen_by() { # the leader among the reports node ID gathers (highest term), or 0
  status_of "$1" | jq -r '[.nodes[]? | select(.role == "leader")] | max_by(.term) | .id // 0' 2>/dev/null || echo 0
}
leader() { # leader [EXCEPT]: a leader other than EXCEPT, asked of every node but EXCEPT
  local id l
  for id in $(node_ids); do
    [ "$id" = "${1:-}" ] && continue
    l=$(leader_seen_by "$id")
    if [ -n "$l" ] && [ "$l" != 0 ] && [ "$l" != null ] && [ "$l" != "${1:-}" ]; then echo "$l"; return; fi
  done
  echo 0
}
in_cluster() { # node ID answers and is follower or leader
  local role
  role=$(status_of "$1" | jq -r '.nodes[0].role // empty' 2>/dev/null || true)
  [ "$role" = follower ] || [ "$role" = leader ]
}
wait_until() { # wait_until SECONDS WHAT COMMAND...
  local limit=$1 what=$2; shift 2
  local end=$((SECONDS + limit))
  until "$@"; do
    [ $SECONDS -lt $end ] || { log "timed out waiting for $what"; exit 1; }
    sleep 0.1
  done
}
has_leader() { [ "$(leader)" != 0 ]; }
has_leader_except() { [ "$(leader "$1")" != 0 ]; }

start_node() { # start_node ID: its restart command from cluster.json; records the new pid
  local id=$1 argv
  mapfile -t argv < <(jq -r --argjson id "$id" '.nodes[] | select(.id == $id) | .restart[]' "$DIR/cluster.json")
  SEALKM_LOG_FORMAT=text "${argv[@]}" >> "$DIR/node$id.out" 2>> "$DIR/node$id.log" &
  local pid=$!
  disown "$pid"  # its kill -9 is ours: no job-control notice
  PIDS+=("$pid")
  jq --argjson id "$id" --argjson pid "$pid" '(.nodes[] | select(.id == $id) | .pid) = $pid' \
    "$DIR/cluster.json" > "$DIR/cluster.json.tmp"
  mv "$DIR/cluster.json.tmp" "$DIR/cluster.json"
}
kill9() { local p; p=$(pid_of "$1"); kill -9 "$p" 2>/dev/null || true; wait_until 10 "node $1 to die" dead "$p"; }
dead() { ! alive "$1"; }
stop_node() { # SIGTERM, then wait for the exit
  local p; p=$(pid_of "$1")
  kill -TERM "$p" 2>/dev/null || true
  local end=$((SECONDS + 30))
  while alive "$p" && [ $SECONDS -lt $end ]; do sleep 0.1; done
  alive "$p" && kill -9 "$p" 2>/dev/null || true
  wait_until 10 "node $1 to stop" dead "$p"
}
record() { # record FAULT NODES START_MS HEALED_MS NEW_LEADER_MS
  local nl=${5:-null}
  printf '{"fault":"%s","nodes":[%s],"start_unix_ms":%s,"healed_unix_ms":%s,"new_leader_ms":%s}\n' \
    "$1" "$2" "$3" "$4" "$nl" >> "$DIR/faults.jsonl"
}
time_to_leader() { # time_to_leader VICTIM START_MS: ms until another node leads
  wait_until 60 "a leader other than node $1" has_leader_except "$1"
  echo $(( $(now_ms) - $2 ))
}

fault() { # fault KIND HOLD_S
  local kind=$1 hold=$2 t0 victim nl=null id
  t0=$(now_ms)
  case "$kind" in
    kill)
      victim=$(( RANDOM % 3 + 1 ))
      kill9 "$victim"; sleep "$hold"; start_node "$victim"
      wait_until 60 "node $victim to rejoin" in_cluster "$victim"
      record kill "$victim" "$t0" "$(now_ms)" ;;
    kill-leader)
      victim=$(leader); [ "$victim" != 0 ] || victim=1
      kill9 "$victim"; nl=$(time_to_leader "$victim" "$t0"); sleep "$hold"; start_node "$victim"
      wait_until 60 "node $victim to rejoin" in_cluster "$victim"
      record kill-leader "$victim" "$t0" "$(now_ms)" "$nl" ;;
    kill-all)
      for id in $(node_ids); do kill9 "$id"; done
      sleep "$hold"
      for id in $(node_ids); do start_node "$id"; done
      for id in $(node_ids); do wait_until 60 "node $id to rejoin" in_cluster "$id"; done
      wait_until 60 "a leader" has_leader
      record kill-all "1,2,3" "$t0" "$(now_ms)" ;;
    pause)
      victim=$(leader); [ "$victim" != 0 ] || victim=1
      kill -STOP "$(pid_of "$victim")"
      nl=$(time_to_leader "$victim" "$t0"); sleep "$hold"
      kill -CONT "$(pid_of "$victim")"
      wait_until 60 "node $victim to rejoin" in_cluster "$victim"
      record pause "$victim" "$t0" "$(now_ms)" "$nl" ;;
    restart)
      for id in $(node_ids); do
        stop_node "$id"; start_node "$id"
        wait_until 60 "node $id to rejoin" in_cluster "$id"
        wait_until 60 "a leader" has_leader
      done
      record restart "1,2,3" "$t0" "$(now_ms)" ;;
  esac
  log "$kind done ($(( $(now_ms) - t0 )) ms)"
}

log "cluster in $DIR (ports $PORT..), faults $FAULTS, ${DURATION} s, seed $SEED"
"$B" dev --dir "$DIR" --nodes 3 --addr "127.0.0.1:$PORT" > "$DIR/dev.out" 2>&1 &
DEV=$!
until grep -q '^files in ' "$DIR/dev.out" 2>/dev/null; do
  alive "$DEV" || { cat "$DIR/dev.out" >&2; exit 1; }
  sleep 0.2
done
TOKEN=$(cat "$DIR/admin-token")
: > "$DIR/faults.jsonl"
wait_until 60 "a leader" has_leader

"$B" chaos workload --dir "$DIR" --duration "$DURATION" --seed "$SEED" \
  --history "$DIR/history.jsonl" > "$DIR/workload.out" 2>&1 &
WORKLOAD=$!
RANDOM=$SEED
START=$SECONDS
round=$(( RANDOM % ${#KINDS[@]} ))
# Faults stop early enough for the last one to heal before the load ends.
while [ $((SECONDS - START)) -lt $((DURATION - 12)) ]; do
  sleep $(( 2 + RANDOM % 3 ))
  alive "$WORKLOAD" || break
  fault "${KINDS[$((round % ${#KINDS[@]}))]}" $(( 2 + RANDOM % 3 ))
  round=$((round + 1))
done
wait "$WORKLOAD" || { log "the workload failed:"; cat "$DIR/workload.out" >&2; exit 1; }
WORKLOAD=
for id in $(node_ids); do wait_until 60 "node $id to answer" in_cluster "$id"; done

set +e
"$B" chaos check --history "$DIR/history.jsonl" --dir "$DIR" --faults "$DIR/faults.jsonl" \
  --report "$DIR/report.json" > "$DIR/summary.txt" 2>&1
rc=$?
set -e
cat "$DIR/summary.txt"
[ $rc -eq 0 ] || exit $rc
log "OK: seed $SEED, faults $FAULTS, ${DURATION} s"

#!/usr/bin/env bash
# A chaos run: a 3-node cluster (local: `sealkm dev --nodes 3` in a folder of its own;
# compose: deploy/compose/cluster under a project name of its own), the recorded workload
# (`sealkm chaos workload`) against every node, faults injected on a seeded schedule, every fault
# healed, then `sealkm chaos check` (history + every node's state).
#
#   scripts/chaos/run.sh [--target local|compose] [--faults kill,kill-leader,pause,...]
#                        [--duration S] [--seed N] [--dir D] [--keep] [--domains 1|2]
#
# --domains 2 (compose only; scripts/chaos/federation.sh): the two federated domains of
# deploy/compose/federation; the workload, the faults and the checker hit domain A
# (kms.sealkm.test) while domain B's GMS keeps making and revoking versions of a group it shares
# with A over KM-E; at the end every node of A must show exactly B's versions and revocations.
#
# Faults (taken in a seeded rotation so that each listed kind comes up in turn):
#   kill         kill -9 of one node (seeded choice), restarted after a few seconds
#   kill-leader  kill -9 of the leader; the time until another node leads is recorded
#   kill-all     kill -9 of every node, then all restarted
#   pause        SIGSTOP of the leader, SIGCONT after a few seconds (time to a new leader)
#   restart      rolling restart: each node in turn SIGTERM, restarted, back in the cluster
#   clock-skew   a node restarted with its clock minutes off, then with the right time
#                (scripts/chaos/clock.sh; needs a binary built with the test-clock feature)
#   membership   a spare node joins, serves, leaves (scripts/chaos/members.sh; on compose a
#                container of its own on the cluster's network)
# Partitions are iptables DROP rules in a node's network namespace (compose: the container's,
# entered from the host with nsenter; local: one the script makes for each node,
# scripts/chaos/netns.sh); every rule is deleted at heal and on exit:
#   partition-leader  the leader cut from both peers (time to a new leader recorded)
#   partition-split   a seeded node cut from the other two (minority 1, majority 2)
#   partition-oneway  the leader hears nothing from its peers; what it sends still goes out
#   partition-bridge  two seeded nodes cut from each other; the third sees both
#   disk-full         node 3's own small filesystem filled, then emptied (scripts/chaos/disk.sh)
# Local with a partition or disk-full fault (root): the script makes the configs with `sealkm
# config generate` and starts the nodes itself instead of `sealkm dev`; with a partition fault
# each node (spares too) runs in a network namespace of its own on a bridge, and the host's
# 127.0.0.1 ports of cluster.json are DNAT'd to them (scripts/chaos/netns.sh); namespaces,
# bridge, veths, hosts files, rules and the disk image are removed on exit, also on Ctrl-C.
# With --domains 2 only (scripts/chaos/federation.sh):
#   link-cut          the km-e link network cut between the two domains, then healed
#   kill-src          kill -9 of a node of the producing domain B, restarted after a few seconds
# On compose, kill is `docker kill -s KILL` then `docker start`, pause `docker pause`, restart
# `docker stop` then `docker start`. The image (SEALKM_IMAGE, default sealkm:dev) is built by
# scripts/image.sh from the binary if missing; secrets are generated into the run's folder.
#
# The run's folder holds the node logs, history.jsonl, faults.jsonl, report.json,
# summary.txt and timeline.png. It is removed after a passing run unless --keep; kept (and named) on failure.
# Every process this script started is stopped on exit, also on Ctrl-C.
#
# Needs jq and curl. Environment: SEALKM_BIN (a built sealkm; default: `cargo build --release`
# and its binary),
# PORT (node 1's client port; nodes use PORT..PORT+2, peers PORT+1000.., services PORT+2000..;
# fixed so a restarted node comes back where cluster.json says; default from the seed and pid).
# Compose needs docker, docker-compose (or compose v2), nsenter and iptables, and root; local
# partitions need root, ip and iptables; disk-full needs root, mkfs.ext4, fallocate and mount.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=scripts/chaos/clock.sh
. "$ROOT/scripts/chaos/clock.sh"
# shellcheck source=scripts/chaos/disk.sh
. "$ROOT/scripts/chaos/disk.sh"
# shellcheck source=scripts/chaos/members.sh
. "$ROOT/scripts/chaos/members.sh"
# shellcheck source=scripts/chaos/netns.sh
. "$ROOT/scripts/chaos/netns.sh"
# shellcheck source=scripts/chaos/federation.sh
. "$ROOT/scripts/chaos/federation.sh"

TARGET=local
FAULTS=kill,kill-leader,pause
DURATION=60
SEED=1
DIR=
KEEP=0
usage() { sed -n '2,8p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --target) TARGET=$2; shift 2 ;;
    --faults) FAULTS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --domains) DOMAINS=$2; shift 2 ;;
    *) usage ;;
  esac
done
case "$TARGET" in local|compose) ;; *) echo "chaos: --target is local or compose" >&2; exit 2 ;; esac
case "$DOMAINS,$TARGET" in 1,*|2,compose) ;; *) echo "chaos: --domains 2 needs --target compose" >&2; exit 2 ;; esac
IFS=, read -r -a KINDS <<< "$FAULTS"
for k in "${KINDS[@]}"; do
  case "$k" in
    kill|kill-leader|kill-all|pause|restart|clock-skew) ;;
    membership) ;;
    partition-leader|partition-split|partition-oneway|partition-bridge)
      [ "$TARGET" = compose ] || { NS_ON=1; OWN_START=1; } ;;
    disk-full)
      [ "$TARGET" = compose ] || OWN_START=1 ;;
    link-cut|kill-src)
      [ "$DOMAINS" = 2 ] || { echo "chaos: $k needs --domains 2" >&2; exit 2; } ;;
    *) echo "chaos: unknown fault $k" >&2; exit 2 ;;
  esac
done
TOOLS=(jq curl)
[ "$TARGET" = local ] || TOOLS+=(docker nsenter iptables)
[ "$NS_ON" = 0 ] || TOOLS+=(ip iptables)
[ "$DOMAINS" = 1 ] || TOOLS+=(openssl)
[[ ",$FAULTS," != *,disk-full,* ]] || TOOLS+=(mkfs.ext4 fallocate mount)
for tool in "${TOOLS[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "chaos: $tool is required" >&2; exit 2; }
done
[ "$DURATION" -ge 20 ] || { echo "chaos: --duration must be at least 20" >&2; exit 2; }
if [[ ",$FAULTS," = *,disk-full,* || "$NS_ON" = 1 ]] && [ "$(id -u)" != 0 ]; then
  echo "chaos: partitions and disk-full need root" >&2; exit 2
fi

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
# The folder with cluster.json, ca.pem, admin-token and the parties' credentials (the workload's
# and the checker's --dir): the run's folder (local) or its secrets (compose).
CDIR=$DIR
[ "$TARGET" = local ] || CDIR=$DIR/secrets
[ "$DOMAINS" = 1 ] || CDIR=$DIR/secrets/a
PROJECT=sealkm-chaos-$$   # compose project
UP=0                      # compose: `up` was run
CTR=()                    # compose: container of node ID
RULES=()                  # compose: iptables rules in force, "ID CHAIN MATCH IP"

now_ms() { date +%s%3N; }
log() { echo "chaos: $*" >&2; }
alive() { [ -e "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
pid_of() { jq -r --argjson id "$1" '.nodes[] | select(.id == $id) | .pid' "$CDIR/cluster.json"; }
url_of() { jq -r --argjson id "$1" '.nodes[] | select(.id == $id) | .km_uu' "$CDIR/cluster.json"; }
node_ids() { jq -r '.nodes[].id' "$CDIR/cluster.json"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$TARGET" = compose ]; then compose_down; disk_remove; fi
  local all=("${PIDS[@]}")
  if [ "$TARGET" = local ] && [ -f "$CDIR/cluster.json" ]; then
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
  if [ "$TARGET" = local ]; then netns_down; disk_remove; fi
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
  curl -s --max-time 5 --cacert "$CDIR/ca.pem" -H "Authorization: Bearer $TOKEN" \
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
  if [ "$TARGET" = compose ]; then docker start "${CTR[$id]}" > /dev/null; return; fi
  mapfile -t argv < <(jq -r --argjson id "$id" '.nodes[] | select(.id == $id) | .restart[]' "$CDIR/cluster.json")
  SEALKM_LOG_FORMAT=text "${argv[@]}" >> "$DIR/node$id.out" 2>> "$DIR/node$id.log" &
  local pid=$!
  disown "$pid"  # its kill -9 is ours: no job-control notice
  PIDS+=("$pid")
  jq --argjson id "$id" --argjson pid "$pid" '(.nodes[] | select(.id == $id) | .pid) = $pid' \
    "$CDIR/cluster.json" > "$CDIR/cluster.json.tmp"
  mv "$CDIR/cluster.json.tmp" "$CDIR/cluster.json"
}
kill9() {
  if [ "$TARGET" = compose ]; then
    docker kill -s KILL "${CTR[$1]}" > /dev/null 2>&1 || true
    wait_until 10 "node $1 to die" ctr_stopped "$1"; return
  fi
  local p; p=$(pid_of "$1"); kill -9 "$p" 2>/dev/null || true; wait_until 10 "node $1 to die" dead "$p"
}
dead() { ! alive "$1"; }
ctr_stopped() { [ "$(docker inspect -f '{{.State.Running}}' "${CTR[$1]}" 2>/dev/null)" = false ]; }
pause_node() {
  if [ "$TARGET" = compose ]; then docker pause "${CTR[$1]}" > /dev/null; else kill -STOP "$(pid_of "$1")"; fi
}
resume_node() {
  if [ "$TARGET" = compose ]; then docker unpause "${CTR[$1]}" > /dev/null; else kill -CONT "$(pid_of "$1")"; fi
}
stop_node() { # SIGTERM, then wait for the exit
  if [ "$TARGET" = compose ]; then
    docker stop -t 30 "${CTR[$1]}" > /dev/null; wait_until 10 "node $1 to stop" ctr_stopped "$1"; return
  fi
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

# Compose: the cluster under project $PROJECT, and partitions by iptables in the containers'
# network namespaces (the image has no iptables; the host's runs inside the namespace).
compose() {
  local f=(-p "$PROJECT" -f "$ROOT/deploy/compose/cluster/docker-compose.yml" -f "$DIR/chaos.yml"
    --project-directory "$DIR")
  # shellcheck disable=SC2207
  [ "$DOMAINS" = 1 ] || f=($(fed_files) --project-directory "$DIR")
  if command -v docker-compose > /dev/null; then docker-compose "${f[@]}" "$@"; else docker compose "${f[@]}" "$@"; fi
}
in_ns() { # in_ns ID COMMAND...: COMMAND in node ID's network namespace
  [ "$TARGET" = compose ] || { ns_exec "$@"; return; }
  local pid; pid=$(docker inspect -f '{{.State.Pid}}' "${CTR[$1]}")
  [ "$pid" -gt 0 ] || return 1
  shift
  nsenter --net="/proc/$pid/ns/net" "$@"
}
ip_of() { # local: the node's namespace address; compose: on CLUSTER_NET when set (a node on
  # more than one network), else its only network
  [ "$TARGET" = compose ] || { ns_ip "$1"; return; }
  docker inspect -f '{{range $n, $v := .NetworkSettings.Networks}}{{$n}} {{$v.IPAddress}}{{"\n"}}{{end}}' \
    "${CTR[$1]}" | awk -v net="${CLUSTER_NET:-}" 'net == "" || $1 == net { print $2; exit }'
}
drop() { # drop ID CHAIN MATCH IP: node ID drops what comes from (-s) / goes to (-d) IP
  in_ns "$1" iptables -w -I "$2" "$3" "$4" -j DROP
  RULES+=("$*")
}
cut() { # cut A B: nothing between nodes A and B, either way (rules in A's namespace)
  local ipb; ipb=$(ip_of "$2")
  drop "$1" INPUT -s "$ipb"; drop "$1" OUTPUT -d "$ipb"
}
heal() { # deletes every rule this run added (a restarted container has a fresh namespace)
  local r
  for r in "${RULES[@]}"; do
    # shellcheck disable=SC2086
    set -- $r
    in_ns "$1" iptables -w -D "$2" "$3" "$4" -j DROP 2>/dev/null || true
  done
  RULES=()
}
compose_up() {
  local id
  if [ "$DOMAINS" = 2 ]; then fed_chaos_up; return; fi
  mkdir -p "$CDIR"
  "$B" config generate --dir "$CDIR" --nodes 3 --addr 127.0.0.1:8443 > /dev/null
  for id in 1 2 3 4 5; do "$ROOT/scripts/compose.sh" containerise "$CDIR/node$id.toml"; done
  "$B" config check "$CDIR/node1.toml" > /dev/null
  chown -R 10001:10001 "$CDIR" 2>/dev/null || true
  [[ ",$FAULTS," != *,disk-full,* ]] || disk_make
  # Published ports for the host's workload: KM-UU/admin and the service listener of each node;
  # no restart policy (this script restarts what it kills).
  {
    echo 'version: "2.4"'
    echo 'services:'
    for id in 1 2 3; do
      echo "  node$id:"
      echo '    restart: "no"'
      echo "    ports: [\"127.0.0.1:$((PORT + 2000 + id - 1)):10443\"]"
      if [ -n "$DISK_MNT" ] && [ "$id" = "$DISK_NODE" ]; then disk_override; fi
    done
  } > "$DIR/chaos.yml"
  jq -n --argjson p "$PORT" '{nodes: [range(0; 3) | {id: (. + 1),
      km_uu: "https://127.0.0.1:\($p + .)", service: "https://127.0.0.1:\($p + 2000 + .)"}]}' \
    > "$CDIR/cluster.json"
  if ! docker image inspect "${SEALKM_IMAGE:-sealkm:dev}" > /dev/null 2>&1; then
    TAG=${SEALKM_IMAGE:-sealkm:dev} BIN=$B "$ROOT/scripts/image.sh" >&2
  fi
  UP=1
  SEALKM_UID=10001 SEALKM_GID=10001 SEALKM_PORT_1=$PORT SEALKM_PORT_2=$((PORT + 1)) \
    SEALKM_PORT_3=$((PORT + 2)) compose up -d > "$DIR/compose.out" 2>&1 \
    || { cat "$DIR/compose.out" >&2; exit 1; }
  for id in 1 2 3; do CTR[$id]=$(compose ps -q "node$id"); done
}
grant_gms() {
  curl -sf --max-time 5 --cacert "$CDIR/ca.pem" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -X POST "$(url_of "$(leader)")/admin/v1/acl" \
    -d '{"principal": "gms.sealkm.test", "role": "gms", "groups": ["*"]}' > /dev/null 2>&1
}
compose_down() {
  [ "$UP" = 1 ] || return 0
  local id
  heal
  for id in 1 2 3; do
    [ -n "${CTR[$id]:-}" ] || continue
    docker unpause "${CTR[$id]}" > /dev/null 2>&1 || true
    docker logs "${CTR[$id]}" > "$DIR/node$id.log" 2>&1 || true
  done
  [ "$DOMAINS" = 1 ] || fed_chaos_logs
  spares_remove
  compose down -v --remove-orphans > "$DIR/compose-down.out" 2>&1 || log "compose down failed"
  UP=0
  disk_remove
}

partition() { # partition KIND HOLD_S T0: cuts, waits, heals; prints the fault's record fields
  local kind=$1 hold=$2 t0=$3 victim nl=null a b c
  case "$kind" in
    partition-leader)
      victim=$(leader); [ "$victim" != 0 ] || victim=1
      for a in $(node_ids); do [ "$a" = "$victim" ] || cut "$victim" "$a"; done
      nl=$(time_to_leader "$victim" "$t0"); sleep "$hold"; nodes=$victim ;;
    partition-split)
      victim=$(( RANDOM % 3 + 1 ))
      local was; was=$(leader)
      for a in $(node_ids); do [ "$a" = "$victim" ] || cut "$victim" "$a"; done
      if [ "$was" = "$victim" ]; then nl=$(time_to_leader "$victim" "$t0"); fi
      sleep "$hold"; nodes=$victim ;;
    partition-oneway)
      victim=$(leader); [ "$victim" != 0 ] || victim=1
      for a in $(node_ids); do [ "$a" = "$victim" ] || drop "$victim" INPUT -s "$(ip_of "$a")"; done
      sleep "$hold"; nodes=$victim ;;
    partition-bridge)
      b=$(( RANDOM % 3 + 1 )); a=$(( b % 3 + 1 )); c=$(( a % 3 + 1 ))
      cut "$a" "$c"; sleep "$hold"; nodes="$a,$c" ;;
  esac
  heal
  for a in $(node_ids); do wait_until 60 "node $a to rejoin" in_cluster "$a"; done
  wait_until 60 "a leader" has_leader
  record "$kind" "$nodes" "$t0" "$(now_ms)" "$nl"
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
      pause_node "$victim"
      nl=$(time_to_leader "$victim" "$t0"); sleep "$hold"
      resume_node "$victim"
      wait_until 60 "node $victim to rejoin" in_cluster "$victim"
      record pause "$victim" "$t0" "$(now_ms)" "$nl" ;;
    restart)
      for id in $(node_ids); do
        stop_node "$id"; start_node "$id"
        wait_until 60 "node $id to rejoin" in_cluster "$id"
        wait_until 60 "a leader" has_leader
      done
      record restart "1,2,3" "$t0" "$(now_ms)" ;;
    partition-*)
      local nodes; partition "$kind" "$hold" "$t0" ;;
    clock-skew)
      clock_skew "$hold" "$t0" ;;
    disk-full)
      disk_full "$hold" "$t0" ;;
    membership)
      membership "$hold" "$t0" ;;
    link-cut|kill-src)
      fed_fault "$kind" "$hold" "$t0" ;;
  esac
  log "$kind done ($(( $(now_ms) - t0 )) ms)"
}

log "cluster in $DIR (ports $PORT..), faults $FAULTS, ${DURATION} s, seed $SEED"
if [ "$TARGET" = compose ]; then
  compose_up
elif [ "$OWN_START" = 1 ]; then
  local_up
else
  "$B" dev --dir "$DIR" --nodes 3 --addr "127.0.0.1:$PORT" > "$DIR/dev.out" 2>&1 &
  DEV=$!
  until grep -q '^files in ' "$DIR/dev.out" 2>/dev/null; do
    alive "$DEV" || { cat "$DIR/dev.out" >&2; exit 1; }
    sleep 0.2
  done
fi
TOKEN=$(cat "$CDIR/admin-token")
: > "$DIR/faults.jsonl"
wait_until 60 "a leader" has_leader
if [ "$TARGET" = compose ] || [ "$OWN_START" = 1 ]; then
  # What `sealkm dev` does for its parties: the GMS may manage every group (replicated).
  wait_until 60 "the GMS's ACL entry" grant_gms
fi

"$B" chaos workload --dir "$CDIR" --duration "$DURATION" --seed "$SEED" \
  --history "$DIR/history.jsonl" > "$DIR/workload.out" 2>&1 &
WORKLOAD=$!
[ "$DOMAINS" = 1 ] || fed_producer_start
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
"$B" chaos check --history "$DIR/history.jsonl" --dir "$CDIR" --faults "$DIR/faults.jsonl" \
  --report "$DIR/report.json" --timeline "$DIR/timeline.png" > "$DIR/summary.txt" 2>&1
rc=$?
set -e
cat "$DIR/summary.txt"
[ $rc -eq 0 ] || exit $rc
[ "$DOMAINS" = 1 ] || fed_chaos_check
log "OK: seed $SEED, faults $FAULTS, ${DURATION} s"

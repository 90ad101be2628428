#!/usr/bin/env bash
# Chaos on a local 3-node cluster: while a write load runs, kill -9 a node (every other round
# the leader), wait for the cluster to go on without it, restart it with its `restart` command
# from cluster.json, and repeat. The load records every acknowledged write (an identity
# revocation answered 200). At the end every node must report the same state digest, every
# acknowledged revocation must be present on every node (asked through each node's
# `revocations/query`), and the cluster must still commit. Kills only the PIDs it started.
# On failure the run's folder (node logs, load reports, the acknowledged list) is kept and named.
#
# Environment: ROUNDS (default 6), LOAD_S (seconds of write load per round, default 4), PORT
# (node 1's client port, default 38443; nodes use PORT..PORT+2 and peers PORT+1000..PORT+1002,
# fixed so that a restarted node comes back at the address cluster.json lists), SEALKM_BIN (a
# built `sealkm` to use; default: `cargo build --release` and target/release/sealkm).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-6}
LOAD_S=${LOAD_S:-4}
PORT=${PORT:-38443}

if [ -n "${SEALKM_BIN:-}" ]; then
  B=$SEALKM_BIN
else
  cargo build --release --quiet
  B=$PWD/target/release/sealkm
fi
DIR=$(mktemp -d)
PIDS=()
cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -f "$DIR/cluster.json" ]; then
    for p in $(python3 -c 'import json,sys; print(" ".join(str(n["pid"]) for n in json.load(open(sys.argv[1]))["nodes"]))' "$DIR/cluster.json"); do
      kill "$p" 2>/dev/null || true
    done
  fi
  if [ "$rc" -eq 0 ]; then
    rm -rf "$DIR"
  else
    echo "chaos: FAILED (exit $rc); logs, load reports and acked.txt kept in $DIR" >&2
  fi
}
trap cleanup EXIT

"$B" dev --dir "$DIR" --addr "127.0.0.1:$PORT" > "$DIR/dev.out" 2>&1 &
PIDS+=($!)
until grep -q '^files in ' "$DIR/dev.out" 2>/dev/null; do
  kill -0 "${PIDS[0]}" 2>/dev/null || { cat "$DIR/dev.out"; exit 1; }
  sleep 0.2
done

status_json() { "$B" cluster --dir "$DIR" status --json 2>>"$DIR/status.err" || echo '{"nodes":[]}'; }
field() { python3 -c "import json,sys; $1" "$DIR/cluster.json" "$2" "${3:-}"; }
pid_of() { field 'print(next(n["pid"] for n in json.load(open(sys.argv[1]))["nodes"] if n["id"]==int(sys.argv[2])))' "$1"; }
url_of() { field 'print(next(n["km_uu"] for n in json.load(open(sys.argv[1]))["nodes"] if n["id"]==int(sys.argv[2])))' "$1"; }
leader() { status_json | python3 -c 'import json,sys; v=json.load(sys.stdin); print(next((n["leader_id"] for n in v["nodes"] if n.get("leader_id")), 0))'; }
wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  local end=$((SECONDS + limit))
  until "$@"; do
    [ $SECONDS -lt $end ] || { echo "chaos: timed out waiting for $what"; status_json; tail -3 "$DIR/status.err"; exit 1; }
    sleep 0.2
  done
}
has_leader_except() { local l; l=$(leader); [ "$l" != 0 ] && [ "$l" != "$1" ]; }
node_follows() {
  status_json | python3 -c 'import json,sys; v=json.load(sys.stdin); sys.exit(0 if any(n["id"]==int(sys.argv[1]) and n["role"] in ("follower","leader") for n in v["nodes"]) else 1)' "$1"
}
converged() {
  status_json | python3 -c 'import json,sys; v=json.load(sys.stdin)["nodes"]; d={(n.get("digest"),n.get("applied")) for n in v}; sys.exit(0 if len(v)==3 and len(d)==1 and None not in {x[0] for x in d} else 1)'
}

echo "chaos: cluster up in $DIR; $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then victim=$(leader); else victim=$(( (round % 3) + 1 )); fi
  [ "$victim" != 0 ] || victim=1
  survivor=$(( (victim % 3) + 1 ))
  "$B" bench write --dir "$DIR" --url "$(url_of "$survivor")" --concurrency 8 --duration "$LOAD_S" --json \
    --record "$DIR/acked.txt" > "$DIR/load-$round.json" 2>"$DIR/load-$round.err" &
  load=$!
  sleep 1
  kill -9 "$(pid_of "$victim")"
  wait_until 30 "a new leader without node $victim" has_leader_except "$victim"
  wait "$load" || true
  # Restart the victim with its own command and record its new pid.
  mapfile -t argv < <(field 'print("\n".join(next(n["restart"] for n in json.load(open(sys.argv[1]))["nodes"] if n["id"]==int(sys.argv[2]))))' "$victim")
  "${argv[@]}" > "$DIR/restart-$victim.out" 2>&1 &
  newpid=$!
  PIDS+=("$newpid")
  python3 - "$DIR/cluster.json" "$victim" "$newpid" <<'EOF'
import json, sys
path, vid, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = json.load(open(path))
for n in c["nodes"]:
    if n["id"] == vid:
        n["pid"] = pid
json.dump(c, open(path, "w"), indent=2)
EOF
  wait_until 60 "node $victim to rejoin" node_follows "$victim"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("chaos: round %s: killed node %s; load %d ok, %.0f/s, refused %s, transport errors %s" % (sys.argv[2], sys.argv[3], r["ok"], r["writes_per_s"], r["non_200"], r["transport_errors"]))' \
    "$DIR/load-$round.json" "$round" "$victim" || echo "chaos: round $round: killed node $victim"
done

wait_until 60 "every node to reach the same state digest" converged
# The history check: every acknowledged revocation is on every node.
python3 - "$DIR" <<'EOF'
import json, ssl, sys, urllib.error, urllib.parse, urllib.request
d = sys.argv[1]
acked = [l for l in open(f"{d}/acked.txt").read().split("\n") if l]
if not acked:
    sys.exit("chaos: no write was acknowledged; the load never ran")
token = open(f"{d}/admin-token").read().strip()
ctx = ssl.create_default_context(cafile=f"{d}/ca.pem")
community = urllib.parse.quote("kms.sealkm.test", safe="")
for node in json.load(open(f"{d}/cluster.json"))["nodes"]:
    missing = []
    for i in range(0, len(acked), 1000):
        req = urllib.request.Request(
            f"{node['km_uu']}/admin/v1/communities/{community}/revocations/query",
            data=json.dumps({"identities": acked[i:i + 1000]}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            missing += json.load(urllib.request.urlopen(req, context=ctx, timeout=30))["not_revoked"]
        except urllib.error.HTTPError as e:
            sys.exit(f"chaos: node {node['id']}: revocation query answered {e.code}: {e.read()[:300]!r}")
    if missing:
        sys.exit(f"chaos: node {node['id']} lost {len(missing)} of {len(acked)} acknowledged writes, e.g. {missing[:3]}")
    print(f"chaos: node {node['id']}: all {len(acked)} acknowledged writes present")
EOF
"$B" bench write --dir "$DIR" --url "$(url_of 1)" --concurrency 1 --duration 1 --json > "$DIR/final.json"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["ok"]>0 else 1)' "$DIR/final.json"
"$B" cluster --dir "$DIR" status
echo "chaos: OK — $ROUNDS nodes killed and restarted under load; every acknowledged write on every node; all nodes at the same digest; the cluster still commits"

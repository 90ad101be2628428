# Sourced by scripts/chaos/run.sh (uses its B, DIR, CDIR, PORT, PROJECT, FAULTS, DURATION,
# CTR, RULES, UP, compose, drop, heal, disk_make, record, log, wait_until, now_ms, alive and
# PIDS): `--target compose --domains 2`, chaos in one of two federated domains while the other
# keeps sending it group keys over KM-E. The two domains are deploy/compose/federation's
# (secrets by scripts/compose-federation.sh, in the run's folder: secrets/a, secrets/b).
#
# Roles: the checked domain (the recorded workload, the faults, `sealkm chaos check`; the run's
# cluster.json) is kms.sealkm.test (services a1..a3), because the workload's key space is in that
# community; the producing domain is kms.partner.test (b1..b3). For the run the generated KM-E
# direction is swapped: B shares the group fed-group, A accepts it.
#
# The producer: while the workload runs, B's GMS makes a version of fed-group about every
# second and revokes an earlier one every third round (through any of B's nodes that answers;
# each acknowledged (201/200) or unknown outcome is written to fed-history.jsonl). KM-E must
# deliver every version and every revocation to A.
#
# Faults of the link (only with --domains 2):
#   link-cut  the km-e network cut between the domains (iptables in A's nodes' namespaces: every
#             B node's km-e address dropped both ways), healed after the hold
#   kill-src  kill -9 of a node of the producing domain (seeded), restarted after the hold
#
# The check, after the workload's checker passed: B's own view of fed-group (its GMS, after a
# read barrier) holds every acknowledged version and revocation; then, within FED_WAIT seconds
# (default 120), every node of A (its VAL server over each node's own service listener) shows
# exactly B's versions with the same revoked flags. The figures go to federation.txt.

DOMAINS=${DOMAINS:-1}
FED_PRODUCER=
# shellcheck source=scripts/compose-federation.sh
. "$ROOT/scripts/compose-federation.sh"

fed_files() { echo -p "$PROJECT" -f "$ROOT/deploy/compose/federation/docker-compose.yml" -f "$DIR/chaos.yml"; }

# The ports: A (checked) at PORT.. (client) and PORT+2000.. (service), as cluster.json says;
# B at PORT+500.. and PORT+2500...
fed_env() {
  local i
  for i in 1 2 3; do
    export "SEALKM_A_PORT_$i=$((PORT + i - 1))" "SEALKM_A_SERVICE_$i=$((PORT + 2000 + i - 1))"
    export "SEALKM_B_PORT_$i=$((PORT + 500 + i - 1))" "SEALKM_B_SERVICE_$i=$((PORT + 2500 + i - 1))"
  done
  export SEALKM_UID=10001 SEALKM_GID=10001 SEALKM_RESTART=no
  FED_URLS_A=("https://127.0.0.1:$PORT" "https://127.0.0.1:$((PORT + 1))" "https://127.0.0.1:$((PORT + 2))")
  FED_URLS_B=("https://127.0.0.1:$((PORT + 500))" "https://127.0.0.1:$((PORT + 501))" "https://127.0.0.1:$((PORT + 502))")
  FED_SVC_B=("https://127.0.0.1:$((PORT + 2500))" "https://127.0.0.1:$((PORT + 2501))" "https://127.0.0.1:$((PORT + 2502))")
}

fed_chaos_up() {
  local id
  FED_DIR=$DIR/secrets FED_BIN=$B FED_SRC=b FED_DST=a
  mkdir -p "$FED_DIR"
  fed_secrets "$B" "$FED_DIR"
  for id in 1 2 3 4 5; do # B shares fed-group, A accepts it
    sed -i 's/^share_groups = \["fed-group"\]/accept_groups = ["fed-group"]/' "$FED_DIR/a/node$id.toml"
    sed -i 's/^accept_groups = \["fed-group"\]/share_groups = ["fed-group"]/' "$FED_DIR/b/node$id.toml"
  done
  chown -R 10001:10001 "$FED_DIR"
  [[ ",$FAULTS," != *,disk-full,* ]] || disk_make
  {
    echo 'version: "2.4"'
    echo 'services:'
    if [ -n "$DISK_MNT" ]; then
      echo "  a$DISK_NODE:"
      echo "    volumes: [\"./secrets/a:/etc/sealkm:ro\", \"$DISK_MNT:/data\"]"
    fi
  } > "$DIR/chaos.yml"
  [ -n "$DISK_MNT" ] || echo '  a1: {}' >> "$DIR/chaos.yml"
  jq -n --argjson p "$PORT" '{nodes: [range(0; 3) | {id: (. + 1),
      km_uu: "https://127.0.0.1:\($p + .)", service: "https://127.0.0.1:\($p + 2000 + .)"}]}' \
    > "$CDIR/cluster.json"
  if ! docker image inspect "${SEALKM_IMAGE:-sealkm:dev}" > /dev/null 2>&1; then
    TAG=${SEALKM_IMAGE:-sealkm:dev} BIN=$B "$ROOT/scripts/image.sh" >&2
  fi
  fed_env
  UP=1
  compose up -d > "$DIR/compose.out" 2>&1 || { cat "$DIR/compose.out" >&2; exit 1; }
  for id in 1 2 3; do
    CTR[$id]=$(compose ps -q "a$id")
    FED_CTR_B[$id]=$(compose ps -q "b$id")
  done
  CLUSTER_NET=${PROJECT}_a
  fed_federate > "$DIR/federate.out" 2>&1 || { cat "$DIR/federate.out" >&2; exit 1; }
  log "two domains federated over KM-E (B shares $FED_GROUP with A)"
}

fed_chaos_logs() { # before `down`: the producing domain's node logs
  local id
  for id in 1 2 3; do
    [ -n "${FED_CTR_B[$id]:-}" ] || continue
    docker logs "${FED_CTR_B[$id]}" > "$DIR/b-node$id.log" 2>&1 || true
  done
}

# The producer (a background subshell until the file producer.stop exists).
fed_produce() {
  local token n=0 r code v i url out=$DIR/producer.body made=()
  token=$("$B" token --dir "$FED_DIR/b" --user "$FED_GMS" --ttl $((DURATION + 3600)))
  fed_call() { # fed_call METHOD PATH: through B's nodes in turn; sets code, the body in $out
    local k
    for k in 0 1 2; do
      url=${FED_SVC_B[$(( (n + k) % 3 ))]}
      code=$(curl -s -o "$out" -w '%{http_code}' --max-time 5 --cacert "$FED_DIR/b/ca.pem" \
        --cert "$FED_DIR/b/gms-cert.pem" --key "$FED_DIR/b/gms-key.pem" \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -X "$1" "$url$2" -d '{}') || code=000
      [ "$code" = 000 ] || return 0  # an answer: no second try (it may have been applied)
    done
  }
  while [ ! -e "$DIR/producer.stop" ]; do
    n=$((n + 1))
    fed_call POST "/seal-x1/v1/groups/$FED_GROUP/keys"
    if [ "$code" = 201 ]; then
      v=$(jq -r .version "$out")
      made+=("$v")
      echo "{\"op\":\"create\",\"version\":$v,\"ok\":true}"
    else
      echo "{\"op\":\"create\",\"ok\":false,\"status\":$code}"
    fi
    if [ $((n % 3)) = 0 ] && [ ${#made[@]} -gt 1 ]; then
      i=$(( RANDOM % (${#made[@]} - 1) ))
      v=${made[$i]}
      fed_call POST "/seal-x1/v1/groups/$FED_GROUP/keys/$v/revoke"
      if [ "$code" = 200 ]; then
        echo "{\"op\":\"revoke\",\"version\":$v,\"ok\":true}"
      else
        echo "{\"op\":\"revoke\",\"version\":$v,\"ok\":false,\"status\":$code}"
      fi
    fi
    sleep 1
  done
}
fed_producer_start() {
  rm -f "$DIR/producer.stop"
  fed_produce > "$DIR/fed-history.jsonl" 2> "$DIR/producer.log" &
  FED_PRODUCER=$!
  PIDS+=("$FED_PRODUCER")
}
fed_producer_stop() {
  [ -n "$FED_PRODUCER" ] || return 0
  touch "$DIR/producer.stop"
  wait "$FED_PRODUCER" || true
  FED_PRODUCER=
}

# Faults of the link.
fed_km_e_ip() { # fed_km_e_ip CONTAINER: its address on the km-e network
  docker inspect -f "{{with index .NetworkSettings.Networks \"${PROJECT}_km-e\"}}{{.IPAddress}}{{end}}" "$1"
}
fed_in_src() { # fed_in_src ID: B's node ID answers and is follower or leader
  local role
  role=$(fed_curl b GET "${FED_URLS_B[$(($1 - 1))]}/admin/v1/cluster/status" 2>/dev/null |
    jq -r '.nodes[0].role // empty' 2>/dev/null || true)
  [ "$role" = follower ] || [ "$role" = leader ]
}
fed_fault() { # fed_fault KIND HOLD_S T0
  local kind=$1 hold=$2 t0=$3 id ip victim
  case "$kind" in
    link-cut)
      for victim in 1 2 3; do
        ip=$(fed_km_e_ip "${FED_CTR_B[$victim]}")
        for id in 1 2 3; do drop "$id" INPUT -s "$ip"; drop "$id" OUTPUT -d "$ip"; done
      done
      sleep "$hold"
      heal
      record link-cut "1,2,3" "$t0" "$(now_ms)" ;;
    kill-src)
      victim=$(( RANDOM % 3 + 1 ))
      docker kill -s KILL "${FED_CTR_B[$victim]}" > /dev/null 2>&1 || true
      sleep "$hold"
      docker start "${FED_CTR_B[$victim]}" > /dev/null
      wait_until 60 "B's node $victim to rejoin" fed_in_src "$victim"
      record kill-src "$victim" "$t0" "$(now_ms)" ;;
  esac
}

# The check (after the workload's checker passed).
fed_state_src() { # B's versions of fed-group ("N revoked" lines), asked of its GMS
  local r k
  for k in 0 1 2; do
    r=$(fed_party b gms "$FED_GMS" GET "${FED_SVC_B[$k]}/seal-x1/v1/groups/$FED_GROUP/keys")
    if [ "${r%% *}" = 200 ]; then
      echo "${r#* }" | jq -r '.versions[] | "\(.version) \(.revoked)"' | sort -n
      return 0
    fi
  done
  return 1
}
fed_same_in() { # fed_same_in ID: node ID of A shows B's versions (in $DIR/fed-src.txt)
  fed_versions_in "$(jq -r --argjson id "$1" '.nodes[] | select(.id == $id) | .service' "$CDIR/cluster.json")" \
    2>/dev/null | sort -n > "$DIR/fed-node$1.txt" || return 1
  cmp -s "$DIR/fed-src.txt" "$DIR/fed-node$1.txt"
}
fed_chaos_check() {
  local made revoked failed created unknown v t0 id
  fed_producer_stop
  wait_until 60 "B's view of $FED_GROUP" fed_state_src_to "$DIR/fed-src.txt"
  made=$(jq -r 'select(.op == "create" and .ok) | .version' "$DIR/fed-history.jsonl" | sort -n)
  revoked=$(jq -r 'select(.op == "revoke" and .ok) | .version' "$DIR/fed-history.jsonl" | sort -n)
  failed=0
  for v in $made; do
    grep -q "^$v " "$DIR/fed-src.txt" || { log "federation: version $v acknowledged by B, missing in B"; failed=1; }
  done
  for v in $revoked; do
    grep -q "^$v true$" "$DIR/fed-src.txt" || { log "federation: revocation of $v acknowledged by B, not in B"; failed=1; }
  done
  t0=$(now_ms)
  for id in 1 2 3; do
    if ! FED_QUIET=1 wait_until_soft "${FED_WAIT:-120}" fed_same_in "$id"; then
      log "federation: node $id of A differs from B after ${FED_WAIT:-120} s:"
      diff "$DIR/fed-src.txt" "$DIR/fed-node$id.txt" >&2 || true
      failed=1
    fi
  done
  created=$(echo "$made" | grep -c . || true)
  unknown=$(jq -r 'select(.ok | not) | .op' "$DIR/fed-history.jsonl" | grep -c . || true)
  {
    echo "federation: B made $created versions of $FED_GROUP and revoked $(echo "$revoked" | grep -c . || true) (acknowledged; $unknown calls refused or unanswered)"
    echo "federation: B's final state: $(grep -c . "$DIR/fed-src.txt") versions, $(grep -c ' true$' "$DIR/fed-src.txt") revoked"
    echo "federation: every node of A equal to it within $(( $(now_ms) - t0 )) ms after the check began: $([ $failed = 0 ] && echo yes || echo NO)"
    echo "federation: faults of the link: $(grep -c '"fault":"link-cut"' "$DIR/faults.jsonl" || true) link-cut, $(grep -c '"fault":"kill-src"' "$DIR/faults.jsonl" || true) kill-src"
  } | tee "$DIR/federation.txt" >&2
  [ $failed = 0 ]
}
fed_state_src_to() { fed_state_src > "$1.tmp" && mv "$1.tmp" "$1"; }
wait_until_soft() { # wait_until_soft SECONDS COMMAND...: like wait_until, false on timeout
  local end=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -lt $end ] || return 1
    sleep 1
  done
}

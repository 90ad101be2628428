# Sourced by scripts/chaos/run.sh (uses its B, CDIR, DIR, TOKEN, PIDS, TARGET, PROJECT,
# leader, wait_until, log, record and RANDOM): the membership fault, local and compose.
#
#   membership  a spare node of `sealkm dev` / `sealkm config generate` (node 4, the next time
#               node 5; locally in its own network namespace when the nodes have one) is started
#               and joins through the leader's admin API (learner, then voter by joint
#               consensus), serves for a while, then leaves through the leader and is stopped.
#               Each spare joins at most once per run (a removed id is not reused); a third
#               membership fault is skipped. The spares are not in cluster.json, so the checker
#               reads the three original nodes.
#               On compose the spare is a container of its own (`docker run`, the run's image
#               and secrets, its config rewritten like the others) on the cluster's network
#               (CLUSTER_NET, else the project's `sealkm` network) as node<ID>.sealkm.test, the
#               name in its peer certificate; it is removed (with its volume) once stopped, and
#               on exit (spares_remove).

MEMBERSHIPS=0
SPARES=()   # compose: spare containers started

admin_post() { # admin_post ID PATH BODY: POST to node ID's admin API; prints the HTTP status
  # The answers are appended to members.out (the reason of a 409 or 503).
  curl -s -o "$DIR/members.body" -w '%{http_code}' --max-time 20 --cacert "$CDIR/ca.pem" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -X POST "$(url_of "$1")$2" -d "$3" 2>/dev/null || true
  { echo "$(date -u +%T) node $1 $2 $3:"; cat "$DIR/members.body" 2>/dev/null; echo; } >> "$DIR/members.out"
}
member_change() { # member_change PATH BODY: through the current leader; true once it is 200
  local l; l=$(leader)
  [ "$l" != 0 ] && [ "$(admin_post "$l" "$1" "$2")" = 200 ]
}
voters_have() { # voters_have ID: the leader reports ID among its voters
  local l; l=$(leader)
  [ "$l" != 0 ] && status_of "$l" | jq -e --argjson id "$1" '[.nodes[]? | select(.role == "leader") | .voters[]?] | index($id) != null' > /dev/null 2>&1
}
membership() { # membership HOLD_S T0
  local id=$((4 + MEMBERSHIPS)) conf peer pid
  if [ "$MEMBERSHIPS" -ge 2 ]; then log "membership: both spares used, skipped"; return; fi
  MEMBERSHIPS=$((MEMBERSHIPS + 1))
  conf="$CDIR/node$id.toml"
  if [ "$TARGET" = compose ]; then
    spare_start "$id"
    pid=$SPARE_CTR
    peer=node$id.sealkm.test:9443
  else
    # Its peer address: [raft] advertise if set (in a namespace of its own), else the listener's.
    peer=$(awk '/^\[/ { s = $0 } /^(addr|advertise) = / { gsub(/"/, "", $3) }
      s == "[raft]" && /^advertise = / { a = $3 } s == "[raft.peer_listener]" && /^addr = / { l = $3 }
      END { print (a != "" ? a : l) }' "$conf")
    SEALKM_LOG_FORMAT=text node_cmd "$id" "$B" serve --config "$conf" >> "$DIR/node$id.out" 2>> "$DIR/node$id.log" &
    pid=$!
    disown "$pid"
    PIDS+=("$pid")
  fi
  wait_until 60 "node $id to join" member_change /admin/v1/cluster/join "{\"id\": $id, \"peer\": \"$peer\"}"
  wait_until 60 "node $id to be a voter" voters_have "$id"
  sleep "$1"
  # A leader cannot remove itself: a spare that leads is stopped first (the three others are
  # a majority of both configurations), then removed.
  if [ "$(leader)" = "$id" ]; then spare_stop "$pid"; fi
  wait_until 60 "node $id to leave" member_change /admin/v1/cluster/leave "{\"id\": $id}"
  spare_stop "$pid"
  [ "$TARGET" != compose ] || spare_remove "$pid" "$id"
  record membership "$id" "$2" "$(now_ms)"
}
spare_stop() { # spare_stop PID|CONTAINER: SIGTERM, then wait for the exit
  if [ "$TARGET" = compose ]; then
    docker stop -t 30 "$1" > /dev/null 2>&1 || true
    wait_until 30 "the spare to stop" spare_stopped "$1"
    return
  fi
  kill -TERM "$1" 2>/dev/null || true
  wait_until 30 "the spare to stop" dead "$1"
}
spare_stopped() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" != true ]; }
spare_start() { # compose: spare_start ID; sets SPARE_CTR
  local id=$1 net=${CLUSTER_NET:-${PROJECT}_sealkm}
  SPARE_CTR=$PROJECT-spare$id
  SPARES+=("$SPARE_CTR")
  docker run -d --name "$SPARE_CTR" --network "$net" --network-alias "node$id.sealkm.test" \
    --hostname "node$id.sealkm.test" --user 10001:10001 --read-only --tmpfs /tmp \
    -v "$CDIR:/etc/sealkm:ro" "${SEALKM_IMAGE:-sealkm:dev}" \
    serve --config "/etc/sealkm/node$id.toml" > /dev/null
}
spare_remove() { # spare_remove CONTAINER ID: its log kept, the container and its volume removed
  docker logs "$1" > "$DIR/node$2.log" 2>&1 || true
  docker rm -fv "$1" > /dev/null 2>&1 || true
}
spares_remove() { # on exit
  local c
  for c in "${SPARES[@]}"; do
    docker inspect "$c" > /dev/null 2>&1 || continue
    spare_remove "$c" "${c##*-spare}"
  done
  SPARES=()
}

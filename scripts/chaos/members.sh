# Sourced by scripts/chaos/run.sh (uses its B, CDIR, DIR, TOKEN, PIDS, leader, wait_until, log,
# record, alive and RANDOM): the membership fault, local only.
#
#   membership  a spare node of `sealkm dev` or `sealkm config generate` (node 4, the next
#               time node 5; in its own network namespace when the nodes have one) is started and
#               joins through the leader's admin API (learner, then voter by joint consensus),
#               serves for a while, then leaves through the leader and is stopped. Each spare
#               joins at most once per run (a removed id is not reused); a third membership
#               fault is skipped. The spares are not in cluster.json, so the checker reads the
#               three original nodes.

MEMBERSHIPS=0

admin_post() { # admin_post ID PATH BODY: POST to node ID's admin API; prints the HTTP status
  curl -s -o /dev/null -w '%{http_code}' --max-time 20 --cacert "$CDIR/ca.pem" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -X POST "$(url_of "$1")$2" -d "$3" 2>/dev/null || true
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
  # Its peer address: [raft] advertise if set (in a namespace of its own), else the listener's.
  peer=$(awk '/^\[/ { s = $0 } /^(addr|advertise) = / { gsub(/"/, "", $3) }
    s == "[raft]" && /^advertise = / { a = $3 } s == "[raft.peer_listener]" && /^addr = / { l = $3 }
    END { print (a != "" ? a : l) }' "$conf")
  SEALKM_LOG_FORMAT=text node_cmd "$id" "$B" serve --config "$conf" >> "$DIR/node$id.out" 2>> "$DIR/node$id.log" &
  pid=$!
  disown "$pid"
  PIDS+=("$pid")
  wait_until 60 "node $id to join" member_change /admin/v1/cluster/join "{\"id\": $id, \"peer\": \"$peer\"}"
  wait_until 60 "node $id to be a voter" voters_have "$id"
  sleep "$1"
  # A leader cannot remove itself: a spare that leads is stopped first (the three others are
  # a majority of both configurations), then removed.
  if [ "$(leader)" = "$id" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_until 30 "node $id to stop" dead "$pid"
  fi
  wait_until 60 "node $id to leave" member_change /admin/v1/cluster/leave "{\"id\": $id}"
  kill -TERM "$pid" 2>/dev/null || true
  wait_until 30 "node $id to stop" dead "$pid"
  record membership "$id" "$2" "$(now_ms)"
}

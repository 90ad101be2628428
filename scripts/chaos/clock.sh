# Sourced by scripts/chaos/run.sh (uses its stop_node, start_node, wait_until, in_cluster,
# record, log and RANDOM): the clock-skew fault.
#
#   clock-skew  a seeded node restarted with its clock CLOCK_SKEW_S seconds ahead (default
#               300; every other time as far behind), through the test-only
#               `test_clock_offset_s` setting, held, then restarted with the right time. The
#               node needs a binary built with the `test-clock` feature (the test profile's,
#               as `cargo test` builds it; a release build refuses the setting and the node does
#               not start, which fails the run). By the clock-skew rule (docs/CHAOS.md) the
#               nodes whose clock is beyond the bound from the leader's refuse KM-UU key sets
#               (503) meanwhile; the number of such refusals in the node logs is reported.

SKEWS=0   # clock-skew faults so far (alternates ahead / behind)

config_of() { # config_of ID: node ID's config file on the host
  if [ "$TARGET" = compose ]; then echo "$CDIR/node$1.toml"; return; fi
  jq -r --argjson id "$1" '.nodes[] | select(.id == $id) | .restart as $a
    | [range(0; $a | length) | select($a[.] == "--config") | $a[. + 1]][0]' "$CDIR/cluster.json"
}
set_offset() { # set_offset ID SECONDS: writes (0: removes) test_clock_offset_s in place
  local f; f=$(config_of "$1")
  local text; text=$(grep -v '^test_clock_offset_s = ' "$f")
  if [ "$2" != 0 ]; then
    text=$(printf '%s\n' "$text" | sed "s/^node_id = \"node$1\"\$/&\ntest_clock_offset_s = $2/")
  fi
  # Rewrites the same file (its owner and mode stay: a container reads it as another user).
  printf '%s\n' "$text" > "$f"
}
skew_refusals() { # refusals for clock skew in every node's log so far
  local id n=0 c
  for id in $(node_ids); do
    if [ "$TARGET" = compose ]; then
      c=$(docker logs "${CTR[$id]}" 2>&1 | grep -c 'clock skew' || true)
    else
      c=$(grep -c 'clock skew' "$DIR/node$id.log" 2>/dev/null || true)
    fi
    n=$((n + ${c:-0}))
  done
  echo "$n"
}
clock_skew() { # clock_skew HOLD_S T0
  local victim=$(( RANDOM % 3 + 1 )) s=${CLOCK_SKEW_S:-300} before
  [ $((SKEWS % 2)) = 0 ] || s=$(( -s ))
  SKEWS=$((SKEWS + 1))
  before=$(skew_refusals)
  stop_node "$victim"; set_offset "$victim" "$s"; start_node "$victim"
  wait_until 60 "node $victim to rejoin with its clock off by $s s" in_cluster "$victim"
  sleep "$1"
  stop_node "$victim"; set_offset "$victim" 0; start_node "$victim"
  wait_until 60 "node $victim to rejoin" in_cluster "$victim"
  wait_until 60 "a leader" has_leader
  log "clock-skew of node $victim by $s s: $(( $(skew_refusals) - before )) key set requests refused for clock skew"
  record clock-skew "$victim" "$2" "$(now_ms)"
}

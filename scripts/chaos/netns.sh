# Sourced by scripts/chaos/run.sh (uses its B, DIR, CDIR, PORT, FAULTS, log, start_node and
# node_ids): local nodes started by the script itself, each in a network namespace of its own
# when a partition fault is asked for, so that the partition faults (iptables rules in a node's
# namespace: run.sh's drop, cut and heal) and disk-full run on --target local too.
#
# Without a partition or disk-full fault, --target local is `sealkm dev --nodes 3` as before
# (no root needed). With one of them the script makes the secrets and configs with `sealkm
# config generate` (what `sealkm dev` writes, without starting anything), writes cluster.json
# itself and starts each node with start_node (its `restart` command, so restarted nodes come
# back the same way); disk-full first mounts node 3's data folder (scripts/chaos/disk.sh).
#
# With a partition fault (root, ip and iptables): a bridge on the host with an address
# (10.213.N.254/24, N the first free third octet from the pid), and for each node 1..5 (the
# spares too, for membership) a namespace `sealkm-chaos-PID-ID` holding one end of a veth pair
# (the other on the bridge) with address 10.213.N.ID, its loopback up and `/etc/netns/<ns>/hosts`
# naming every node `nodeID.sealkm.test` (what the peer certificates name; `ip netns exec`
# bind-mounts it over /etc/hosts). The configs are rewritten: listeners on 0.0.0.0 (same
# ports), peers reached as `nodeID.sealkm.test:PORT`, `advertise` set to the node's own name
# (a spare joins with it). Each `restart` command is `ip netns exec <ns> sealkm serve …`.
# The workload, the checker and this script stay in the host's namespace and keep using the
# addresses of cluster.json (https://127.0.0.1:PORT…, which the certificates name): the host's
# nat OUTPUT chain DNATs each node's KM-UU/admin and service port on 127.0.0.1 to its namespace,
# POSTROUTING masquerades 127.0.0.1 to the bridge's address, and the bridge has route_localnet
# (as Docker does for published ports without its proxy). Bridged traffic passes the host's
# FORWARD chain (br_netfilter; Docker's policy is DROP), so one ACCEPT rule lets the bridge's
# traffic through. The rules live in chains of their own; namespaces, veths, bridge, hosts files
# and rules are all removed on exit (netns_down, from run.sh's cleanup), also on Ctrl-C/SIGTERM.

NS_ON=0        # 1: the nodes run in namespaces of their own
OWN_START=0    # 1: the nodes are started by this script, not by `sealkm dev`
NS_UP=0        # 1: netns_up has begun (something may have to be removed)
NS_BR=skcbr$$
NS_NAT=SKC-NAT-$$
NS_FWD=SKC-FWD-$$
NS_NET=        # 10.213.N
NS_ETC=0       # 1: /etc/netns was made by this run (removed again when empty)

ns_name() { echo "sealkm-chaos-$$-$1"; }
ns_ip() { echo "$NS_NET.$1"; }

netns_pick() { # a /24 in 10.213.0.0/16 no route uses yet
  local n i
  for i in $(seq 0 255); do
    n=$(( ($$ + i) % 256 ))
    ip -4 route show | grep -q "^10\.213\.$n\." || { NS_NET=10.213.$n; return 0; }
  done
  log "no free 10.213.N.0/24 for the node namespaces"; return 1
}

netns_up() { # the bridge, one namespace per node (1..5), the host's rules
  local id ns p
  netns_pick
  NS_UP=1
  [ -d /etc/netns ] || NS_ETC=1
  ip link add "$NS_BR" type bridge
  ip addr add "$NS_NET.254/24" dev "$NS_BR"
  ip link set "$NS_BR" up
  sysctl -q -w "net.ipv4.conf.$NS_BR.route_localnet=1"
  for id in 1 2 3 4 5; do
    ns=$(ns_name "$id")
    ip netns add "$ns"
    ip link add "skc$$h$id" type veth peer name "skc$$n$id"
    ip link set "skc$$h$id" master "$NS_BR" up
    ip link set "skc$$n$id" netns "$ns"
    ip -n "$ns" link set "skc$$n$id" name eth0
    ip -n "$ns" addr add "$(ns_ip "$id")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    mkdir -p "/etc/netns/$ns"
    {
      echo "127.0.0.1 localhost"
      for p in 1 2 3 4 5; do echo "$(ns_ip "$p") node$p.sealkm.test"; done
    } > "/etc/netns/$ns/hosts"
  done
  iptables -w -N "$NS_FWD"
  iptables -w -A "$NS_FWD" -i "$NS_BR" -j ACCEPT
  iptables -w -A "$NS_FWD" -o "$NS_BR" -j ACCEPT
  iptables -w -I FORWARD 1 -j "$NS_FWD"
  iptables -w -t nat -N "$NS_NAT"
  for id in 1 2 3 4 5; do
    for p in $((PORT + id - 1)) $((PORT + 2000 + id - 1)); do
      iptables -w -t nat -A "$NS_NAT" -d 127.0.0.1/32 -p tcp --dport "$p" \
        -j DNAT --to-destination "$(ns_ip "$id"):$p"
    done
  done
  iptables -w -t nat -I OUTPUT 1 -d 127.0.0.1/32 -p tcp -j "$NS_NAT"
  iptables -w -t nat -I POSTROUTING 1 -s 127.0.0.0/8 -o "$NS_BR" -j MASQUERADE
}

netns_down() { # everything netns_up made; each step may fail (it may not have been made)
  [ "$NS_UP" = 1 ] || return 0
  local id ns
  iptables -w -t nat -D POSTROUTING -s 127.0.0.0/8 -o "$NS_BR" -j MASQUERADE 2>/dev/null || true
  iptables -w -t nat -D OUTPUT -d 127.0.0.1/32 -p tcp -j "$NS_NAT" 2>/dev/null || true
  iptables -w -t nat -F "$NS_NAT" 2>/dev/null || true
  iptables -w -t nat -X "$NS_NAT" 2>/dev/null || true
  iptables -w -D FORWARD -j "$NS_FWD" 2>/dev/null || true
  iptables -w -F "$NS_FWD" 2>/dev/null || true
  iptables -w -X "$NS_FWD" 2>/dev/null || true
  for id in 1 2 3 4 5; do
    ns=$(ns_name "$id")
    ip netns del "$ns" 2>/dev/null || true
    ip link del "skc$$h$id" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  ip link del "$NS_BR" 2>/dev/null || true
  [ "$NS_ETC" = 0 ] || rmdir /etc/netns 2>/dev/null || true
  NS_UP=0
}

ns_exec() { # ns_exec ID COMMAND...: COMMAND in node ID's namespace (run.sh's in_ns, local)
  local id=$1; shift
  ip netns exec "$(ns_name "$id")" "$@"
}

ns_config() { # ns_config FILE: a generated node config rewritten for its namespace, in place
  awk '
    /^\[/ { section = $0 }
    /^addr = / && (section == "[client_listener]" || section == "[service_listener]" \
        || section == "[raft.peer_listener]") {
      split($3, a, ":"); sub(/"$/, "", a[2]); print "addr = \"0.0.0.0:" a[2] "\""
      if (section == "[raft.peer_listener]") own = a[2]
      next
    }
    /^id = / && section == "[[raft.peer]]" { peer = $3 }
    /^addr = / && section == "[[raft.peer]]" {
      split($3, a, ":"); sub(/"$/, "", a[2]); print "addr = \"node" peer ".sealkm.test:" a[2] "\""
      next
    }
    { print }
  ' "$1" > "$1.tmp"
  # The node advertises its name (a spare joins with it); [raft] holds peer_name_domain.
  local id port
  id=$(awk '/^\[/ { s = $0 } s == "[raft]" && /^id = / { print $3; exit }' "$1.tmp")
  port=$(awk '/^\[/ { s = $0 } s == "[raft.peer_listener]" && /^addr = / { gsub(/"/, "", $3); split($3, a, ":"); print a[2]; exit }' "$1.tmp")
  sed -i "s/^peer_name_domain = .*/&\nadvertise = \"node$id.sealkm.test:$port\"/" "$1.tmp"
  mv "$1.tmp" "$1"
}

local_up() { # the secrets, configs and cluster.json, then nodes 1..3 started
  local id pre=()
  "$B" config generate --dir "$CDIR" --nodes 3 --addr "127.0.0.1:$PORT" > /dev/null
  if [ "$NS_ON" = 1 ]; then
    netns_up
    for id in 1 2 3 4 5; do ns_config "$CDIR/node$id.toml"; done
  fi
  "$B" config check "$CDIR/node1.toml" > /dev/null
  [[ ",$FAULTS," != *,disk-full,* ]] || disk_make
  for id in 1 2 3; do
    pre=()
    [ "$NS_ON" = 0 ] || pre=(ip netns exec "$(ns_name "$id")")
    jq -n --arg b "$B" --arg c "$CDIR/node$id.toml" --arg d "$CDIR/node$id-data" \
      --argjson id "$id" --argjson p "$PORT" '$ARGS.positional as $pre | {id: $id,
        km_uu: "https://127.0.0.1:\($p + $id - 1)", service: "https://127.0.0.1:\($p + 2000 + $id - 1)",
        config: $c, data_dir: $d, pid: null, restart: ($pre + [$b, "serve", "--config", $c])}' \
      --args "${pre[@]}"
  done | jq -s '{nodes: .}' > "$CDIR/cluster.json"
  for id in 1 2 3; do start_node "$id"; done
}

node_cmd() { # node_cmd ID COMMAND...: runs COMMAND (exec) in node ID's namespace if any
  local id=$1; shift
  if [ "$NS_ON" = 1 ]; then exec ip netns exec "$(ns_name "$id")" "$@"; else exec "$@"; fi
}

#!/usr/bin/env bash
# The 3-node cluster of deploy/compose/cluster in containers.
#   scripts/compose.sh up       build the image (scripts/image.sh) and the secrets if missing, start
#   scripts/compose.sh status   `sealkm cluster status` against node 1 (every member, from inside)
#   scripts/compose.sh down     stop and remove the containers, network and volumes
#   scripts/compose.sh --federation up|status|down
#                               the two federated domains of deploy/compose/federation
#                               (scripts/compose-federation.sh)
# Works with docker-compose 1.29 and with compose v2 (`docker compose`), whichever is here.
#
# Secrets: `sealkm config generate --nodes 3` into deploy/compose/cluster/secrets (git-ignored),
# then each node's config is rewritten for its container: listeners on 0.0.0.0 (8443 KM-UU and
# admin, 10443 service, 9443 peers), peers at node<N>.sealkm.test:9443 (the names in the peer
# certificates), data and audit under /data (the node's volume). The containers run as the
# owner of the secrets, or as user 10001 (secrets given to it) when that owner is root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == --federation ]]; then
    shift
    exec scripts/compose-federation.sh "$@"
fi
DIR=deploy/compose/cluster
SECRETS=$DIR/secrets
PORT=${SEALKM_PORT_1:-18443}

compose() {
    if command -v docker-compose >/dev/null; then
        docker-compose -p sealkm -f "$DIR/docker-compose.yml" "$@"
    else
        docker compose -p sealkm -f "$DIR/docker-compose.yml" "$@"
    fi
}

bin() {
    [[ -x target/release/sealkm ]] || cargo build --release --quiet
    echo target/release/sealkm
}

# Rewrites one generated node config (section-aware: listener vs peer addresses).
containerise() {
    awk '
        /^\[/ { section = $0 }
        /^data_dir = /   { print "data_dir = \"/data/state-dir\""; next }
        /^audit_file = / { print "audit_file = \"/data/audit.jsonl\""; next }
        /^addr = / {
            if (section == "[client_listener]")          { print "addr = \"0.0.0.0:8443\""; next }
            if (section == "[service_listener]")         { print "addr = \"0.0.0.0:10443\""; next }
            if (section == "[raft.peer_listener]")       { print "addr = \"0.0.0.0:9443\""; next }
        }
        /^id = / && section == "[[raft.peer]]" { peer = $3 }
        /^addr = / && section == "[[raft.peer]]" { print "addr = \"node" peer ".sealkm.test:9443\""; next }
        { print }
    ' "$1" >"$1.tmp" && mv "$1.tmp" "$1"
}

# The user the containers run as: the owner of the secrets folder DIR, or 10001 (DIR given to
# it) when that owner is root. Prints "UID GID".
owner() {
    if [[ $(stat -c %u "$1") == 0 ]]; then
        chown -R 10001:10001 "$1"
        echo "10001 10001"
    else
        stat -c '%u %g' "$1"
    fi
}

secrets() {
    [[ -f $SECRETS/node3.toml ]] && return 0
    "$(bin)" config generate --dir "$SECRETS" --nodes 3 --addr 127.0.0.1:8443 >/dev/null
    for n in 1 2 3; do containerise "$SECRETS/node$n.toml"; done
    "$(bin)" config check "$SECRETS/node1.toml" >/dev/null
}

case "${1:-}" in
up)
    docker image inspect "${SEALKM_IMAGE:-sealkm:dev}" >/dev/null 2>&1 || scripts/image.sh
    secrets
    read -r SEALKM_UID SEALKM_GID < <(owner "$SECRETS")
    export SEALKM_UID SEALKM_GID
    compose up -d
    # Ready when node 1 answers its health URL and the cluster has a leader.
    for _ in $(seq 1 120); do
        if "$(bin)" cluster status --url "https://localhost:$PORT" --cacert "$SECRETS/ca.pem" \
            --token "$(cat "$SECRETS/admin-token")" --json 2>/dev/null | grep -q '"leader"'; then
            echo "cluster up: KM-UU and admin at https://localhost:$PORT (CA $SECRETS/ca.pem)"
            exit 0
        fi
        sleep 1
    done
    compose ps
    compose logs --tail 20
    echo "the cluster did not elect a leader" >&2
    exit 1
    ;;
status)
    "$(bin)" cluster status --url "https://localhost:$PORT" --cacert "$SECRETS/ca.pem" \
        --token "$(cat "$SECRETS/admin-token")"
    ;;
down)
    compose down -v
    ;;
containerise) # one generated node config, rewritten in place (also used by scripts/chaos/run.sh)
    containerise "$2"
    ;;
owner) # the containers' "UID GID" for a secrets folder (also used by scripts/compose-federation.sh)
    owner "$2"
    ;;
*)
    echo "usage: $0 up|status|down" >&2
    exit 2
    ;;
esac

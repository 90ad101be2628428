#!/usr/bin/env bash
# Two federated domains of deploy/compose/federation in containers (`scripts/compose.sh
# --federation up|status|down` runs this; scripts/chaos/federation.sh sources it for its
# functions).
#   up       build the image (scripts/image.sh) and the secrets if missing, start both domains,
#            federate them over KM-E, and show a group key of A, then its revocation, reaching
#            B through KM-E
#   status   `sealkm cluster status` and `sealkm federation status` against each domain
#   down     stop and remove the containers, networks and volumes
# Works with docker-compose 1.29 (tried) and should with compose v2 (`docker compose`, not tried).
#
# Secrets: `sealkm config generate --domains 2 --nodes 3` into deploy/compose/federation/secrets
# (a/ and b/, git-ignored); each node config is rewritten for its container as
# `scripts/compose.sh containerise` does, plus: the KM-E listener on 0.0.0.0:11443, the partner's
# URL https://km-e.<partner domain>:11443 (its nodes' name on the km-e network), a KM-E refresh
# every 5 s, and the partner's JWKS (visiting users) copied in as partner-jwks.json. The
# generated KM-E certificates name the generating host, not a container, so each domain's KM-E
# credentials are made again here with openssl (a KM-E CA of its own; listener and client
# certificate named km-e.sealkm.test for A, km-e.partner.test for B; the CA key is deleted).
#
# Federating (what `sealkm dev --domains 2` sets up, done here over KM-E): each domain fetches
# the other's KMS certificate over KM-E and the operator approves it (admin API
# federation/pending/approve); A's GMS may manage every group; B's VAL server may read the
# group A shares over KM-E (fed-group).
set -euo pipefail

FED_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FED_GROUP=fed-group
FED_A_KMS=kms.sealkm.test
FED_B_KMS=kms.partner.test
FED_GMS=gms.sealkm.test
FED_VAL=val.sealkm.test
# The domain whose GMS makes the shared group's versions, and the one that receives them over
# KM-E (`up`: A shares with B, as generated; the chaos run swaps them, see
# scripts/chaos/federation.sh).
FED_SRC=${FED_SRC:-a}
FED_DST=${FED_DST:-b}

# --- secrets -----------------------------------------------------------------------------

# fed_kme_pki DIR NAME: a KM-E CA of DIR's own, listener and client certificates named NAME.
fed_kme_pki() {
    local dir=$1 name=$2 tmp stem
    tmp=$(mktemp -d)
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
        -keyout "$tmp/ca-key.pem" -out "$dir/kme-ca.pem" -subj "/CN=sealkm compose KM-E CA $name" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        2>/dev/null
    printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n' \
        "$name" >"$tmp/ext"
    for stem in kme-listener kme-client; do
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$dir/$stem-key.pem" -out "$tmp/$stem.csr" -subj "/CN=$name" 2>/dev/null
        openssl x509 -req -in "$tmp/$stem.csr" -CA "$dir/kme-ca.pem" -CAkey "$tmp/ca-key.pem" \
            -set_serial "0x$(openssl rand -hex 8)" -days 825 -extfile "$tmp/ext" \
            -out "$dir/$stem-cert.pem" 2>/dev/null
        chmod 600 "$dir/$stem-key.pem"
    done
    rm -rf "$tmp"
}

# fed_containerise CONF PARTNER_NAME: one node config of a domain, rewritten in place.
fed_containerise() {
    "$FED_ROOT/scripts/compose.sh" containerise "$1"
    awk -v partner="$2" '
        /^\[/ { section = $0 }
        /^addr = / && section == "[federation.listener]" { print "addr = \"0.0.0.0:11443\""; next }
        /^url = / && section == "[[federation.partner]]" { print "url = \"https://" partner ":11443\""; next }
        /^refresh_s = / && section == "[federation]" { print "refresh_s = 5"; next }
        /^jwks_file = / && section == "[[auth.visiting]]" { print "jwks_file = \"partner-jwks.json\""; next }
        { print }
    ' "$1" >"$1.tmp" && mv "$1.tmp" "$1"
}

# fed_secrets BIN DIR: both domains' secrets and container configs in DIR/a and DIR/b (once).
fed_secrets() {
    local bin=$1 dir=$2 n
    [[ -f $dir/b/node3.toml ]] && return 0
    "$bin" config generate --dir "$dir" --domains 2 --nodes 3 --addr 127.0.0.1:8443 >/dev/null
    fed_kme_pki "$dir/a" km-e.sealkm.test
    fed_kme_pki "$dir/b" km-e.partner.test
    cp "$dir/b/kme-ca.pem" "$dir/a/kme-partner-ca.pem"
    cp "$dir/a/kme-ca.pem" "$dir/b/kme-partner-ca.pem"
    cp "$dir/b/jwks.json" "$dir/a/partner-jwks.json"
    cp "$dir/a/jwks.json" "$dir/b/partner-jwks.json"
    for n in 1 2 3 4 5; do
        fed_containerise "$dir/a/node$n.toml" km-e.partner.test
        fed_containerise "$dir/b/node$n.toml" km-e.sealkm.test
    done
    "$bin" config check "$dir/a/node1.toml" >/dev/null
    "$bin" config check "$dir/b/node1.toml" >/dev/null
}

# --- admin API of a domain (FED_URLS_<D>: its nodes' client URLs; secrets in FED_DIR/<d>) ----

fed_urls() { # fed_urls a|b: the domain's node URLs
    if [[ $1 == a ]]; then echo "${FED_URLS_A[@]}"; else echo "${FED_URLS_B[@]}"; fi
}
fed_curl() { # fed_curl D METHOD URL [BODY]: admin call with D's credential; prints the body
    local d=$1 m=$2 url=$3
    curl -s --max-time 10 --cacert "$FED_DIR/$d/ca.pem" \
        -H "Authorization: Bearer $(cat "$FED_DIR/$d/admin-token")" \
        -H 'Content-Type: application/json' -X "$m" "$url" ${4:+-d "$4"}
}
fed_leader() { # fed_leader D: the client URL of D's leader, or nothing
    local u id
    for u in $(fed_urls "$1"); do
        id=$(fed_curl "$1" GET "$u/admin/v1/cluster/status" 2>/dev/null |
            jq -r '[.nodes[]? | select(.role == "leader")] | max_by(.term) | .id // empty' 2>/dev/null) || true
        if [[ -n $id ]]; then
            fed_urls "$1" | tr ' ' '\n' | sed -n "${id}p"
            return 0
        fi
    done
    return 1
}
fed_post() { # fed_post D PATH BODY: POST to D's leader; true when it answers 2xx
    local l code
    l=$(fed_leader "$1") || return 1
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 15 --cacert "$FED_DIR/$1/ca.pem" \
        -H "Authorization: Bearer $(cat "$FED_DIR/$1/admin-token")" \
        -H 'Content-Type: application/json' -X POST "$l/admin/v1/$2" -d "$3") || return 1
    [[ $code == 2* ]]
}
fed_retry() { # fed_retry SECONDS WHAT COMMAND...
    local end=$((SECONDS + $1)) what=$2
    shift 2
    until "$@"; do
        if ((SECONDS >= end)); then
            echo "federation: timed out waiting for $what" >&2
            return 1
        fi
        sleep 1
    done
}
fed_has_leader() { fed_leader "$1" >/dev/null; }
fed_pending_has() { # fed_pending_has D ID: D staged or already took partner certificate ID
    local l
    l=$(fed_leader "$1") || return 1
    fed_curl "$1" POST "$l/admin/v1/federation/refresh" '{}' >/dev/null || true
    fed_curl "$1" GET "$l/admin/v1/federation/certificates" |
        jq -e --arg id "$2" '[.. | objects | select(.id? == $id)] | length > 0' >/dev/null 2>&1
}
fed_approve() { # fed_approve D ID: approve staged ID (true if already approved)
    local l
    l=$(fed_leader "$1") || return 1
    if fed_curl "$1" GET "$l/admin/v1/federation/certificates" |
        jq -e --arg id "$2" '[.pending[]? | select(.id == $id)] | length == 0' >/dev/null 2>&1; then
        return 0
    fi
    fed_post "$1" federation/pending/approve "{\"id\": \"$2\"}"
}

# fed_federate: both domains up; grants, and each approves the other's certificate over KM-E.
fed_federate() {
    fed_retry 120 "a leader in A" fed_has_leader a
    fed_retry 120 "a leader in B" fed_has_leader b
    fed_retry 60 "the GMS's ACL entry in ${FED_SRC^^}" fed_post "$FED_SRC" acl \
        "{\"principal\": \"$FED_GMS\", \"role\": \"gms\", \"groups\": [\"*\"]}"
    fed_retry 60 "the VAL server's ACL entry in ${FED_DST^^}" fed_post "$FED_DST" acl \
        "{\"principal\": \"$FED_VAL\", \"role\": \"val-server\", \"groups\": [\"$FED_GROUP\"]}"
    fed_retry 60 "A to stage B's certificate (KM-E)" fed_pending_has a "$FED_B_KMS/cert/1"
    fed_retry 60 "A to approve B's certificate" fed_approve a "$FED_B_KMS/cert/1"
    fed_retry 60 "B to stage A's certificate (KM-E)" fed_pending_has b "$FED_A_KMS/cert/1"
    fed_retry 60 "B to approve A's certificate" fed_approve b "$FED_A_KMS/cert/1"
}

# --- parties (service listener: mutual TLS and a party token of the domain) ----------------

fed_party() { # fed_party D STEM PRINCIPAL METHOD URL [BODY]: prints "HTTP-CODE BODY"
    local d=$1 stem=$2 who=$3 m=$4 url=$5 out code
    out=$(mktemp)
    code=$(curl -s -o "$out" -w '%{http_code}' --max-time 15 --cacert "$FED_DIR/$d/ca.pem" \
        --cert "$FED_DIR/$d/$stem-cert.pem" --key "$FED_DIR/$d/$stem-key.pem" \
        -H "Authorization: Bearer $("$FED_BIN" token --dir "$FED_DIR/$d" --user "$who")" \
        -H 'Content-Type: application/json' -X "$m" "$url" ${6:+-d "$6"}) || code=000
    echo "$code $(tr -d '\n' <"$out")"
    rm -f "$out"
}
fed_versions_in() { # fed_versions_in SERVICE_URL: FED_DST's versions of the group, "N revoked" lines
    local r
    r=$(fed_party "$FED_DST" val "$FED_VAL" GET "$1/km-s/v1/groups/$FED_GROUP/keys")
    [[ ${r%% *} == 200 ]] || return 1
    echo "${r#* }" | jq -r '.versions[] | "\(.version) \(.revoked)"'
}

# --- the command ---------------------------------------------------------------------------

fed_main() {
    local dir=$FED_ROOT/deploy/compose/federation
    FED_DIR=$dir/secrets
    FED_BIN=${SEALKM_BIN:-}
    if [[ -z $FED_BIN && ${1:-} != down ]]; then
        [[ -x $FED_ROOT/target/release/sealkm ]] || (cd "$FED_ROOT" && cargo build --release --quiet)
        FED_BIN=$FED_ROOT/target/release/sealkm
    fi
    local pa=${SEALKM_A_PORT_1:-18453} pb=${SEALKM_B_PORT_1:-18463}
    FED_URLS_A=("https://localhost:$pa" "https://localhost:${SEALKM_A_PORT_2:-$((pa + 1))}"
        "https://localhost:${SEALKM_A_PORT_3:-$((pa + 2))}")
    FED_URLS_B=("https://localhost:$pb" "https://localhost:${SEALKM_B_PORT_2:-$((pb + 1))}"
        "https://localhost:${SEALKM_B_PORT_3:-$((pb + 2))}")
    local svc_a=https://localhost:${SEALKM_A_SERVICE_1:-18456}
    local svc_b=https://localhost:${SEALKM_B_SERVICE_1:-18466}
    compose() {
        if command -v docker-compose >/dev/null; then
            docker-compose -p sealkm-fed -f "$dir/docker-compose.yml" "$@"
        else
            docker compose -p sealkm-fed -f "$dir/docker-compose.yml" "$@"
        fi
    }
    case "${1:-}" in
    up)
        docker image inspect "${SEALKM_IMAGE:-sealkm:dev}" >/dev/null 2>&1 ||
            BIN=$FED_BIN "$FED_ROOT/scripts/image.sh"
        fed_secrets "$FED_BIN" "$FED_DIR"
        read -r SEALKM_UID SEALKM_GID < <("$FED_ROOT/scripts/compose.sh" owner "$FED_DIR")
        export SEALKM_UID SEALKM_GID
        compose up -d
        if ! fed_federate; then
            compose ps
            compose logs --tail 20
            exit 1
        fi
        # The link at work: A's GMS makes a version of the shared group; B's VAL server reads it.
        local r v
        r=$(fed_party a gms "$FED_GMS" POST "$svc_a/seal-x1/v1/groups/$FED_GROUP/keys" '{}')
        [[ ${r%% *} == 201 ]] || { echo "A's GMS could not make a version: $r" >&2; exit 1; }
        v=$(echo "${r#* }" | jq -r .version)
        echo "A: version $v of $FED_GROUP made by A's GMS"
        if ! fed_retry 60 "version $v in B" fed_in_b "$svc_b" "$v"; then exit 1; fi
        echo "B: version $v of $FED_GROUP readable by B's VAL server (delivered over KM-E)"
        r=$(fed_party a gms "$FED_GMS" POST "$svc_a/seal-x1/v1/groups/$FED_GROUP/keys/$v/revoke" '{}')
        [[ ${r%% *} == 200 ]] || { echo "A's GMS could not revoke version $v: $r" >&2; exit 1; }
        echo "A: version $v revoked by A's GMS"
        if ! fed_retry 60 "the revocation of version $v in B" fed_revoked_in_b "$svc_b" "$v"; then exit 1; fi
        echo "B: version $v shown revoked to B's VAL server (delivered over KM-E)"
        echo "domain A (kms.sealkm.test) at ${FED_URLS_A[0]}, domain B (kms.partner.test) at" \
            "${FED_URLS_B[0]} (CAs and admin tokens in $dir/secrets/a and b)"
        ;;
    status)
        local d url
        for d in a b; do
            url=$(fed_urls "$d" | cut -d' ' -f1)
            echo "== domain ${d^^}: cluster"
            "$FED_BIN" cluster status --url "$url" --cacert "$FED_DIR/$d/ca.pem" \
                --token "$(cat "$FED_DIR/$d/admin-token")"
            echo "== domain ${d^^}: KM-E (its leader's Federator)"
            url=$(fed_leader "$d") || true
            "$FED_BIN" federation --dir "$FED_DIR/$d" --url "${url:-$(fed_urls "$d" | cut -d' ' -f1)}" \
                --cacert "$FED_DIR/$d/ca.pem" --token "$(cat "$FED_DIR/$d/admin-token")" status
        done
        echo "== domain B: versions of $FED_GROUP (shared by A over KM-E) read by B's VAL server"
        fed_versions_in "$svc_b" | sed 's/^/version /; s/ true$/ revoked/; s/ false$//'
        ;;
    down)
        compose down -v
        ;;
    *)
        echo "usage: scripts/compose.sh --federation up|status|down" >&2
        exit 2
        ;;
    esac
}
fed_in_b() { fed_versions_in "$1" | grep -q "^$2 "; }
fed_revoked_in_b() { fed_versions_in "$1" | grep -q "^$2 true$"; }

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    fed_main "$@"
fi

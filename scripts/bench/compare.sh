#!/usr/bin/env bash
# Same-window comparison of this checkout against earlier commits: the machine's speed drifts
# by tens of percent between runs, so figures are comparable only when measured alternating,
# in one window, with each commit's own bench scripts.
#
#   scripts/bench/compare.sh REV [REV ...]
#
# Builds each REV's release binary in a git worktree under a temp dir (its own target dir, so
# the first run of a REV takes a full build), then runs ROUNDS rounds; in each round every
# tree (this checkout first in odd rounds, last in even ones) runs its own
# `scripts/bench/keyprov.sh` (JSON lines) and `scripts/bench/write.sh` (its table). Prints the
# figures of every run and, per figure, the median over the rounds. Logs stay in OUT.
#
# Environment: ROUNDS (default 3), DURATION (s per measurement, default 5), BENCHES (default
# "keyprov write"), OUT (default: a new temp dir), TREES (default: a temp dir, removed at the
# end; name one to keep the REVs' worktrees and builds between invocations).
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=$PWD
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
BENCHES=${BENCHES:-"keyprov write"}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
OWN_TREES=0
if [[ -z "${TREES:-}" ]]; then TREES=$(mktemp -d); OWN_TREES=1; fi
command -v jq >/dev/null || apt-get install -y jq >/dev/null
[[ $# -ge 1 ]] || { echo "usage: $0 REV [REV ...]" >&2; exit 2; }

labels=(new)
dirs=("$HERE")
for rev in "$@"; do
    sha=$(git rev-parse --short "$rev^{commit}")
    tree="$TREES/$sha"
    if [[ ! -d "$tree" ]]; then
        git worktree add --detach "$tree" "$sha" >/dev/null
    fi
    labels+=("$sha")
    dirs+=("$tree")
done
cleanup() {
    # Worktrees this run made a folder for are removed; a TREES given by the caller is kept.
    if [[ $OWN_TREES == 1 ]]; then
        for d in "${dirs[@]:1}"; do git worktree remove --force "$d" 2>/dev/null || true; done
        rm -rf "$TREES"
    fi
}
trap cleanup EXIT

for i in "${!dirs[@]}"; do
    echo "building ${labels[$i]}"
    (cd "${dirs[$i]}" && cargo build --release --quiet)
done

for r in $(seq 1 "$ROUNDS"); do
    order=("${!dirs[@]}")
    if ((r % 2 == 0)); then
        order=($(printf '%s\n' "${order[@]}" | tac))
    fi
    for i in "${order[@]}"; do
        for b in $BENCHES; do
            log="$OUT/r$r-${labels[$i]}-$b.log"
            echo "round $r: ${labels[$i]} $b"
            (cd "${dirs[$i]}" && DURATION=$DURATION JSON=1 "./scripts/bench/$b.sh") >"$log" 2>&1 ||
                echo "  failed (see $log)"
        done
    done
done

# One line per (tree, figure, round): keyprov JSON lines give requests/s per mode and
# concurrency; the write table gives sealkm's writes/s and its ratio to etcd's.
figures() {
    local label=$1 r=$2 f
    f="$OUT/r$r-$label-keyprov.log"
    [[ -f $f ]] && grep '^{' "$f" | jq -r --arg l "$label" \
        '"\($l) keyprov-\(.mode) c=\(.concurrency) req/s \(.requests_per_s | floor)"' 2>/dev/null
    f="$OUT/r$r-$label-write.log"
    [[ -f $f ]] && grep -E '^\| (1|64) \|' "$f" | awk -F'|' -v l="$label" \
        '{gsub(/ |ms/,""); printf "%s writes c=%s writes/s %s\n%s writes c=%s ratio-to-etcd %s\n%s writes c=%s p50-ms %s\n", l, $2, $3, l, $2, $5, l, $2, $6}'
    return 0
}
ALL="$OUT/figures.txt"
: >"$ALL"
for r in $(seq 1 "$ROUNDS"); do
    for l in "${labels[@]}"; do figures "$l" "$r" >>"$ALL"; done
done
echo
echo "All runs ($OUT):"
sort -k1,1 -k2,4 -s "$ALL" | awk '{k=$1" "$2" "$3" "$4; v[k]=v[k]" "$5} END {for (k in v) print k ":" v[k]}' | sort
echo
echo "Medians over $ROUNDS rounds:"
sort -k1,1 -k2,4 -s "$ALL" | awk '{k=$2" "$3" "$4" "$1; v[k]=v[k]" "$5} END {for (k in v) print k, v[k]}' |
    while read -r bench what unit label vals; do
        med=$(printf '%s\n' $vals | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
        echo "$bench $what $unit $label $med"
    done | sort

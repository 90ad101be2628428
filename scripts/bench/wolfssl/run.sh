#!/usr/bin/env bash
# Same-window comparison of sealkm's ECCSI/SAKKE against wolfSSL's tuned x86-64 build
# (wolfSSL 5.9.x from the wolfssl-sys 5.3.0 crate, --enable-intelasm --enable-sp
# --enable-sp-asm; see build.sh). The machine's speed drifts between runs, so the two are
# compared only when measured alternating, in one window, each as per-call medians.
#
#   scripts/bench/wolfssl/run.sh                 # build, then the wolfSSL harness once
#   ROUNDS=3 scripts/bench/wolfssl/run.sh        # and 3 alternating rounds with sealkm
#
# Runs build.sh, then, with ROUNDS unset or 0, target/wolfssl/harness once. With ROUNDS=k,
# k rounds of: the wolfSSL harness, sealkm's `ECCSI_MEDIANS=1 cargo bench --bench eccsi --
# medians`, sealkm's `SAKKE_MEDIANS=1 cargo bench --bench sakke -- medians`. Prints every
# figure, then per line the median over the rounds and, for the sealkm lines that have a
# wolfSSL counterpart, the ratio sealkm/wolfSSL (below 1: sealkm is faster).
#
# Environment: ROUNDS (default 0), N (calls per ECCSI line, default 3000; the wolfSSL SAKKE
# lines take max(N/10, 200)), SAKKE_MEDIANS_N (calls per sealkm SAKKE line, default
# max(N/10, 200), as wolfSSL's), OUT (directory for the log, default: a new temp dir).
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROUNDS=${ROUNDS:-0}
N=${N:-3000}
NS=$((N / 10 < 200 ? 200 : N / 10))
export SAKKE_MEDIANS_N=${SAKKE_MEDIANS_N:-$NS}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
LOG=$OUT/medians.log
: >"$LOG"

scripts/bench/wolfssl/build.sh
if ((ROUNDS == 0)); then
    target/wolfssl/harness "$N"
    exit 0
fi
cargo bench --bench eccsi --bench sakke --no-run --quiet

# Runs one part of a round: prints its median lines and appends them, tagged with the round,
# to the log the summary reads ("<round> median <line>: <us> µs").
part() {
    local f=$OUT/part.txt
    if ! "$@" >"$f" 2>>"$OUT/stderr.log"; then
        tail -n 30 "$OUT/stderr.log" >&2
        echo "failed: $*" >&2
        exit 1
    fi
    grep -E '^(median|#)' "$f" || true
    grep -E '^median' "$f" | sed "s/^/$r /" >>"$LOG" || true
}
for ((r = 1; r <= ROUNDS; r++)); do
    echo "== round $r/$ROUNDS: wolfSSL"
    part target/wolfssl/harness "$N"
    echo "== round $r/$ROUNDS: sealkm eccsi"
    part env ECCSI_MEDIANS=1 cargo bench --quiet --bench eccsi -- medians
    echo "== round $r/$ROUNDS: sealkm sakke"
    part env SAKKE_MEDIANS=1 cargo bench --quiet --bench sakke -- medians
done

python3 - "$LOG" "$ROUNDS" <<'PY'
import re, statistics, sys
log, rounds = sys.argv[1], int(sys.argv[2])
# sealkm line -> the wolfSSL lines it is compared with
PAIRS = {
    "eccsi/issue": ["eccsi/issue"],
    "eccsi/validate": ["eccsi/validate"],
    "eccsi/sign": ["eccsi/sign"],
    "eccsi/verify": ["eccsi/verify_hs_each_call"],
    "eccsi/verify_cached": ["eccsi/verify"],
    "sakke/rsk_issue": ["sakke/rsk_issue"],
    "sakke/rsk_validate": ["sakke/rsk_validate"],
    "sakke/encapsulate": ["sakke/encapsulate", "sakke/encapsulate_itable"],
    "sakke/decapsulate_cached": ["sakke/decapsulate_rsk_table", "sakke/decapsulate_both_tables"],
    "sakke/decapsulate_first_use": ["sakke/decapsulate"],
}
vals, order = {}, []
pat = re.compile(r"^\d+ median (\S+?)(?: \((\S+)\))?: ([0-9.]+) µs$")
for line in open(log, encoding="utf-8"):
    m = pat.match(line.rstrip("\n"))
    if not m:
        continue
    op, backend, us = m.group(1), m.group(2), float(m.group(3))
    key = (op, backend)
    if key not in vals:
        vals[key] = []
        order.append(key)
    vals[key].append(us)
med = {k: statistics.median(v) for k, v in vals.items()}
print()
print(f"Per-line medians over {rounds} round(s), µs; ratio = sealkm / wolfSSL")
print(f"{'line':<44} {'median':>10}   {'wolfSSL line':<36} {'wolfSSL':>10} {'ratio':>7}")
for op, backend in order:
    if op.startswith("wolfssl/"):
        continue
    name = f"{op} ({backend})" if backend else op
    peers = [p for p in PAIRS.get(op, []) if ("wolfssl/" + p, None) in med]
    if not peers:
        print(f"{name:<44} {med[(op, backend)]:>10.2f}")
        continue
    for p in peers:
        w = med[("wolfssl/" + p, None)]
        print(f"{name:<44} {med[(op, backend)]:>10.2f}   {p:<36} {w:>10.2f} {med[(op, backend)] / w:>7.2f}")
print()
for op, backend in order:
    if op.startswith("wolfssl/"):
        print(f"{op:<44} {med[(op, backend)]:>10.2f}")
PY
echo "log: $LOG"

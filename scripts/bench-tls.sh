#!/usr/bin/env bash
# What TLS costs: 64-client write throughput of a 3-node `ppdb local` with plain TCP against one
# started with `--tls` (TLS on the client and peer ports, client certificates required), in the
# same run. Both clusters run side by side (an idle cluster costs only heartbeats); the load
# generator (`ppdb bench`, `--tls` for the second) alternates between them for ROUNDS rounds,
# and the table shows each figure's median over the rounds and TLS's share of plain.
#
# Usage: scripts/bench-tls.sh
# Environment (all optional):
#   DURATION_SECS=10 WARMUP_SECS=2 ROUNDS=3 CLIENTS=64 VALUE_BYTES=100 KEYS=100000
#   BENCH_DIR=/tmp   parent of the temporary data directories (must be a real disk)
#   KEEP_DIR=1       keep the data directories and logs afterwards
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION_SECS=${DURATION_SECS:-10}
WARMUP_SECS=${WARMUP_SECS:-2}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-64}
VALUE_BYTES=${VALUE_BYTES:-100}
KEYS=${KEYS:-100000}

log() { echo "[bench] $*" >&2; }

log "building ppdb (release)"
cargo build --release -p ppdb --bin ppdb >&2
PPDB="$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)/ppdb"

WORK=$(mktemp -d -p "${BENCH_DIR:-${TMPDIR:-/tmp}}" ppdb-bench-tls.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "${KEEP_DIR:-0}" = 1 ]; then log "data and logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { # a free TCP port at or above $1 whose nodes' ports (+1..3, +101..103, +201..203, +4211..4213) are free
    local base=$1 used offset ok
    used=$(ss -Htan | awk '{print $4}' | sed 's/.*://' | sort -un)
    while [ "$base" -lt 55000 ]; do
        ok=1
        for offset in 1 2 3 101 102 103 201 202 203 4211 4212 4213; do
            if grep -qx "$((base + offset))" <<<"$used"; then ok=0; break; fi
        done
        if [ "$ok" = 1 ]; then echo "$base"; return; fi
        base=$((base + 1000))
    done
    log "no free ports"; exit 1
}

PLAIN_BASE=$(free_port 31000)
"$PPDB" local --base-port "$PLAIN_BASE" --dir "$WORK/plain" >"$WORK/plain.log" 2>&1 &
PIDS+=($!)
TLS_BASE=$(free_port $((PLAIN_BASE + 1000)))
"$PPDB" local --tls --base-port "$TLS_BASE" --dir "$WORK/tls" >"$WORK/tls.log" 2>&1 &
PIDS+=($!)
target() { local t="" i; for i in 1 2 3; do t+="${t:+,}resp://127.0.0.1:$(($1 + i))"; done; echo "$t"; }
PLAIN_TARGET=$(target "$PLAIN_BASE")
TLS_TARGET=$(target "$TLS_BASE")
TLS_FLAGS=(--tls "$WORK/tls/tls")

wait_ready() { # wait_ready NAME TARGET [FLAGS...]
    local name=$1 target=$2 deadline=$((SECONDS + 60)) out
    shift 2
    while [ "$SECONDS" -lt "$deadline" ]; do
        out=$(timeout 10 "$PPDB" bench --target "$target" "$@" --clients 3 --requests 30 --warmup-secs 0 \
            --write-percent 100 --request-timeout-ms 2000 --json 2>/dev/null || true)
        if grep -q '"errors":0,' <<<"$out" && grep -q '"ops":30,' <<<"$out"; then log "$name is ready"; return; fi
        sleep 0.5
    done
    log "$name did not become ready; logs in $WORK"; KEEP_DIR=1; exit 1
}
wait_ready plain "$PLAIN_TARGET"
wait_ready tls "$TLS_TARGET" "${TLS_FLAGS[@]}"

RESULTS="$WORK/results.jsonl"
for round in $(seq "$ROUNDS"); do
    for system in plain tls; do
        if [ "$system" = plain ]; then target=$PLAIN_TARGET; flags=(); else target=$TLS_TARGET; flags=("${TLS_FLAGS[@]}"); fi
        log "round $round/$ROUNDS, $system ($CLIENTS clients, 100% writes, ${DURATION_SECS}s + ${WARMUP_SECS}s warm-up)"
        "$PPDB" bench --target "$target" "${flags[@]}" --clients "$CLIENTS" --write-percent 100 \
            --duration-secs "$DURATION_SECS" --warmup-secs "$WARMUP_SECS" --value-bytes "$VALUE_BYTES" \
            --keys "$KEYS" --json | sed "s/^{/{\"wire\":\"$system\",/" >>"$RESULTS"
    done
done

echo
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "workload: SET, 100% writes, $CLIENTS clients over 3 nodes, ${VALUE_BYTES}-byte values, $KEYS keys, ${DURATION_SECS}s after ${WARMUP_SECS}s warm-up, median of $ROUNDS rounds"
echo
python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
by = {}
for r in rows:
    by.setdefault(r["wire"], []).append(r)
med = {s: {f: statistics.median(r[f] for r in rs) for f in ("ops_per_sec", "latency_us_p50", "latency_us_p99")}
       for s, rs in by.items()}
errors = {s: sum(r["errors"] for r in rs) for s, rs in by.items()}
for s in ("plain", "tls"):
    runs = ", ".join("%.0f" % r["ops_per_sec"] for r in by[s])
    print("%-5s  %8.0f ops/s (runs: %s)  p50 %.2f ms  p99 %.2f ms  errors %d" % (
        s, med[s]["ops_per_sec"], runs, med[s]["latency_us_p50"] / 1000, med[s]["latency_us_p99"] / 1000, errors[s]))
print("tls/plain: %.1f%%" % (100 * med["tls"]["ops_per_sec"] / med["plain"]["ops_per_sec"]))
PY

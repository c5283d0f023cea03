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

WORK_NAME=ppdb-bench-tls
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

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

#!/usr/bin/env bash
# A small script's write throughput against SET's, on one 3-node PPDB (`ppdb local`) on
# loopback, measured by the same load generator: `ppdb bench --command set` and `--command eval`
# (EVAL "redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], 100)" 1 key), 100% writes,
# clients spread over the three nodes. The two alternate for ROUNDS rounds; the table shows each
# figure's median over the rounds and EVAL's share of SET.
#
# Usage: scripts/bench-eval.sh
# Environment (all optional):
#   DURATION_SECS=10 WARMUP_SECS=2 ROUNDS=3 CLIENTS=64 KEYS=100000
#   BENCH_DIR=/tmp   parent of the temporary data directory (must be a real disk)
#   KEEP_DIR=1       keep the data directory and logs afterwards
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION_SECS=${DURATION_SECS:-10}
WARMUP_SECS=${WARMUP_SECS:-2}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-64}
KEYS=${KEYS:-100000}

WORK_NAME=ppdb-bench-eval
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

PPDB_BASE=$(free_port 18000)
"$PPDB" local --base-port "$PPDB_BASE" --dir "$WORK/ppdb" >"$WORK/ppdb-local.log" 2>&1 &
PIDS+=($!)
TARGET=""
for i in 1 2 3; do TARGET+="${TARGET:+,}resp://127.0.0.1:$((PPDB_BASE + i))"; done
wait_ready ppdb "$TARGET"

RESULTS="$WORK/results.jsonl"
for round in $(seq "$ROUNDS"); do
    for command in set eval; do
        log "round $round/$ROUNDS: $command ($CLIENTS clients, ${DURATION_SECS}s + ${WARMUP_SECS}s warm-up)"
        "$PPDB" bench --target "$TARGET" --command "$command" --clients "$CLIENTS" --write-percent 100 \
            --duration-secs "$DURATION_SECS" --warmup-secs "$WARMUP_SECS" --keys "$KEYS" --json >>"$RESULTS"
    done
done

echo
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "workloads: 100% writes, $CLIENTS clients over 3 nodes, $KEYS keys, ${DURATION_SECS}s measured after ${WARMUP_SECS}s warm-up, median of $ROUNDS rounds"
echo
python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
runs = {}
for r in rows:
    runs.setdefault(r["command"], []).append(r)
by = {c: {f: (sum(r[f] for r in rs) if f == "errors" else statistics.median(r[f] for r in rs))
          for f in ("ops_per_sec", "latency_us_p50", "latency_us_p99", "errors")}
      for c, rs in runs.items()}
head = ["command", "ops/s", "p50 ms", "p99 ms", "of SET", "errors", "each round ops/s"]
table = [head]
for command in ["set", "eval"]:
    f = by[command]
    table.append([command, "%.0f" % f["ops_per_sec"], "%.2f" % (f["latency_us_p50"] / 1000),
                  "%.2f" % (f["latency_us_p99"] / 1000),
                  "%.0f%%" % (100 * f["ops_per_sec"] / by["set"]["ops_per_sec"]), "%d" % f["errors"],
                  " ".join("%.0f" % r["ops_per_sec"] for r in runs[command])])
widths = [max(len(row[i]) for row in table) for i in range(len(head))]
for row in table:
    print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))
PY

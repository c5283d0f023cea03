#!/usr/bin/env bash
# The data types' write throughput, side by side: a 3-node PPDB (`ppdb local`) and one Redis with
# `appendonly yes` and `appendfsync always` (every write fsynced before its reply, PPDB's own
# durability) on loopback, measured by the same load generator (`ppdb bench --command ...`):
# SET, HSET, LPUSH, SADD and ZADD, 100% writes, clients spread over the three PPDB nodes.
# Prints ops/s and p50/p99 latency per command, and each type's share of PPDB's own SET. The
# commands run in ROUNDS rounds (each round every command on both systems, in turn); the table
# shows each figure's median over the rounds, so a passing drift in machine load moves one round
# and not the result.
#
# Usage: scripts/bench-types.sh
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
COMMANDS=(set hset lpush sadd zadd)

WORK_NAME=ppdb-bench-types
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
command -v redis-server >/dev/null || { apt-get update >&2 && apt-get install -y redis-server >&2; }

REDIS_PORT=$(free_port 26000)
mkdir -p "$WORK/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --save '' \
    --appendonly yes --appendfsync always >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
PPDB_BASE=$(free_port 18000)
"$PPDB" local --base-port "$PPDB_BASE" --dir "$WORK/ppdb" >"$WORK/ppdb-local.log" 2>&1 &
PIDS+=($!)
PPDB_TARGET=""
for i in 1 2 3; do PPDB_TARGET+="${PPDB_TARGET:+,}resp://127.0.0.1:$((PPDB_BASE + i))"; done
REDIS_TARGET="resp://127.0.0.1:$REDIS_PORT"

wait_ready redis "$REDIS_TARGET"
wait_ready ppdb "$PPDB_TARGET"

RESULTS="$WORK/results.jsonl"
for round in $(seq "$ROUNDS"); do
    for command in "${COMMANDS[@]}"; do
        # Alternate systems per command so a drift in machine load affects both alike.
        for system in ppdb redis; do
            if [ "$system" = ppdb ]; then target=$PPDB_TARGET; else target=$REDIS_TARGET; fi
            log "round $round/$ROUNDS, $system: $command ($CLIENTS clients, ${DURATION_SECS}s + ${WARMUP_SECS}s warm-up)"
            "$PPDB" bench --target "$target" --command "$command" --clients "$CLIENTS" --write-percent 100 \
                --duration-secs "$DURATION_SECS" --warmup-secs "$WARMUP_SECS" --value-bytes "$VALUE_BYTES" \
                --keys "$KEYS" --json | sed "s/^{/{\"server\":\"$system\",/" >>"$RESULTS"
        done
    done
done

echo
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); $(redis-server --version | awk '{print $3}')"
echo "workloads: 100% writes, $CLIENTS clients, ${VALUE_BYTES}-byte values, $KEYS keys, ${DURATION_SECS}s measured after ${WARMUP_SECS}s warm-up, median of $ROUNDS rounds"
echo "redis: one process, appendonly yes, appendfsync always; ppdb: ppdb local (3 nodes), clients over all three"
echo
python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
runs = {}
for r in rows:
    runs.setdefault((r["server"], r["command"]), []).append(r)
# The median of each figure over the rounds; errors are summed.
by = {key: {field: (sum(r[field] for r in rs) if field == "errors" else statistics.median(r[field] for r in rs))
            for field in ("ops_per_sec", "latency_us_p50", "latency_us_p99", "errors")}
      for key, rs in runs.items()}
ppdb_set = by[("ppdb", "set")]["ops_per_sec"]
head = ["command", "ppdb ops/s", "p50 ms", "p99 ms", "of ppdb SET", "redis ops/s", "p50 ms", "p99 ms", "ppdb/redis", "errors"]
table = [head]
for command in ["set", "hset", "lpush", "sadd", "zadd"]:
    p, r = by[("ppdb", command)], by[("redis", command)]
    table.append([command, "%.0f" % p["ops_per_sec"], "%.2f" % (p["latency_us_p50"] / 1000),
                  "%.2f" % (p["latency_us_p99"] / 1000), "%.0f%%" % (100 * p["ops_per_sec"] / ppdb_set),
                  "%.0f" % r["ops_per_sec"], "%.2f" % (r["latency_us_p50"] / 1000),
                  "%.2f" % (r["latency_us_p99"] / 1000), "x%.2f" % (p["ops_per_sec"] / max(r["ops_per_sec"], 1)),
                  "%d/%d" % (p["errors"], r["errors"])])
widths = [max(len(row[i]) for row in table) for i in range(len(head))]
for row in table:
    print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))
PY

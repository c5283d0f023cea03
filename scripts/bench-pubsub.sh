#!/usr/bin/env bash
# Pub/sub publish-to-delivery latency on one 3-node PPDB (`ppdb local`) on loopback, with a
# local redis-server as the reference, measured in the same run by the same client:
# `ppdb bench-pubsub` subscribes through every endpoint, publishes through the first at a fixed
# rate with the send time in each message, and reports p50/p99/max delivery latency for the
# subscribers on the publisher's node and on the other nodes. PPDB: publisher on node 1,
# subscribers on nodes 1 (same node), 2 and 3 (across nodes). Redis: one server, one subscriber.
# The two alternate for ROUNDS rounds; the table shows each figure's median over the rounds.
#
# Usage: scripts/bench-pubsub.sh
# Environment (all optional):
#   DURATION_SECS=10 WARMUP_SECS=2 ROUNDS=3 RATE=1000 PAYLOAD_BYTES=100
#   REDIS_SERVER=redis-server   the reference server's binary (skipped if absent)
#   BENCH_DIR=/tmp   parent of the temporary data directory (must be a real disk)
#   KEEP_DIR=1       keep the data directory and logs afterwards
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION_SECS=${DURATION_SECS:-10}
WARMUP_SECS=${WARMUP_SECS:-2}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-1000}
PAYLOAD_BYTES=${PAYLOAD_BYTES:-100}
REDIS_SERVER=${REDIS_SERVER:-redis-server}

WORK_NAME=ppdb-bench-pubsub
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

PPDB_BASE=$(free_port 18000)
"$PPDB" local --base-port "$PPDB_BASE" --dir "$WORK/ppdb" >"$WORK/ppdb-local.log" 2>&1 &
PIDS+=($!)
PPDB_TARGET=""
for i in 1 2 3; do PPDB_TARGET+="${PPDB_TARGET:+,}resp://127.0.0.1:$((PPDB_BASE + i))"; done
wait_ready ppdb "$PPDB_TARGET"

TARGETS=(ppdb)
if command -v "$REDIS_SERVER" >/dev/null; then
    REDIS_PORT=$(free_port $((PPDB_BASE + 1000)))
    "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$WORK" >"$WORK/redis.log" 2>&1 &
    PIDS+=($!)
    REDIS_TARGET="resp://127.0.0.1:$REDIS_PORT"
    wait_ready redis "$REDIS_TARGET"
    TARGETS+=(redis)
else
    log "$REDIS_SERVER not found: no reference figures"
fi

RESULTS="$WORK/results.jsonl"
for round in $(seq "$ROUNDS"); do
    for system in "${TARGETS[@]}"; do
        if [ "$system" = ppdb ]; then target=$PPDB_TARGET; else target=$REDIS_TARGET; fi
        log "round $round/$ROUNDS: $system ($RATE messages/s, ${DURATION_SECS}s + ${WARMUP_SECS}s warm-up)"
        "$PPDB" bench-pubsub --target "$target" --rate "$RATE" --payload-bytes "$PAYLOAD_BYTES" \
            --duration-secs "$DURATION_SECS" --warmup-secs "$WARMUP_SECS" --json |
            sed "s/^{/{\"system\":\"$system\",/" >>"$RESULTS"
    done
done

echo
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "workload: $RATE messages/s of $PAYLOAD_BYTES bytes, ${DURATION_SECS}s measured after ${WARMUP_SECS}s warm-up, median of $ROUNDS rounds"
echo
python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
head = ["system", "subscribers", "received", "p50 ms", "p99 ms", "max ms", "each round p99 ms"]
table = [head]
for system in ["ppdb", "redis"]:
    runs = [r for r in rows if r["system"] == system]
    for group, label in [("same_node", "same node"), ("other_nodes", "other nodes")]:
        groups = [r[group] for r in runs if group in r]
        if not groups:
            continue
        med = lambda f: statistics.median(g[f] for g in groups) / 1000
        table.append([system, label,
                      "%d/%d" % (sum(g["received"] for g in groups), sum(g["expected"] for g in groups)),
                      "%.3f" % med("latency_us_p50"), "%.3f" % med("latency_us_p99"),
                      "%.3f" % med("latency_us_max"),
                      " ".join("%.3f" % (g["latency_us_p99"] / 1000) for g in groups)])
widths = [max(len(row[i]) for row in table) for i in range(len(head))]
for row in table:
    print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))
PY

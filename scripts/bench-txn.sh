#!/usr/bin/env bash
# Cross-shard transactions against single-shard ones, same machine, same run: two 3-node PPDB
# clusters (`ppdb local`), one with 8 shards (a 2-key MSET or MULTI/EXEC then spans two shards
# 7 times in 8 and runs two-phase commit) and one with 1 shard (every transaction is one Raft
# entry), measured by `ppdb bench`, clients spread over the three nodes:
#   - 1 client: SET and 2-key MSET on the 8-shard cluster, p50 latency (goal: MSET <= 2x SET);
#   - CLIENTS clients: 2-key MULTI/INCR/INCR/EXEC on both clusters, ops/s (goal: cross-shard
#     >= 50% of single-shard), and SET on both for reference.
# Each figure is the median of ROUNDS rounds; each ratio the median of the rounds' ratios.
#
# Usage: scripts/bench-txn.sh
# Environment (all optional): DURATION_SECS=10 WARMUP_SECS=2 ROUNDS=3 CLIENTS=64 KEYS=100000
#   BENCH_DIR=/tmp KEEP_DIR=1
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION_SECS=${DURATION_SECS:-10}
WARMUP_SECS=${WARMUP_SECS:-2}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-64}
KEYS=${KEYS:-100000}

WORK_NAME=ppdb-bench-txn
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

# Not in a command substitution: its subshell would keep the pid from the exit trap.
start_cluster() { # start_cluster NAME SHARDS BASE -> sets TARGET to the node list
    "$PPDB" local --base-port "$3" --shards "$2" --dir "$WORK/$1" >"$WORK/$1.log" 2>&1 &
    PIDS+=($!)
    local i
    TARGET=""
    for i in 1 2 3; do TARGET+="${TARGET:+,}resp://127.0.0.1:$(($3 + i))"; done
}
start_cluster sharded 8 "$(free_port 18000)"
SHARDED=$TARGET
sleep 1
start_cluster single 1 "$(free_port 21000)"
SINGLE=$TARGET
wait_ready "8 shards" "$SHARDED"
wait_ready "1 shard" "$SINGLE"

RESULTS="$WORK/results.jsonl"
measure() { # measure LABEL TARGET COMMAND CLIENTS
    log "round $round/$ROUNDS: $1 ($4 clients, ${DURATION_SECS}s + ${WARMUP_SECS}s warm-up)"
    "$PPDB" bench --target "$2" --command "$3" --clients "$4" --write-percent 100 \
        --duration-secs "$DURATION_SECS" --warmup-secs "$WARMUP_SECS" --keys "$KEYS" --json |
        sed "s/^{/{\"label\":\"$1\",/" >>"$RESULTS"
}
for round in $(seq "$ROUNDS"); do
    measure set-1c "$SHARDED" set 1
    measure mset2-1c "$SHARDED" mset2 1
    measure multi2-cross "$SHARDED" multi2 "$CLIENTS"
    measure multi2-single "$SINGLE" multi2 "$CLIENTS"
    measure set-8shards "$SHARDED" set "$CLIENTS"
    measure set-1shard "$SINGLE" set "$CLIENTS"
done

echo
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "100% writes, $KEYS keys, ${DURATION_SECS}s measured after ${WARMUP_SECS}s warm-up, median of $ROUNDS rounds"
echo
python3 - "$RESULTS" "$CLIENTS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
runs = {}
for r in rows:
    runs.setdefault(r["label"], []).append(r)
by = {label: {field: (sum(r[field] for r in rs) if field == "errors" else statistics.median(r[field] for r in rs))
              for field in ("ops_per_sec", "latency_us_p50", "latency_us_p99", "errors")}
      for label, rs in runs.items()}
for label in ["set-1c", "mset2-1c", "multi2-cross", "multi2-single", "set-8shards", "set-1shard"]:
    f = by[label]
    print("%-14s %9.0f ops/s  p50 %6.2f ms  p99 %6.2f ms  errors %d" % (
        label, f["ops_per_sec"], f["latency_us_p50"] / 1000, f["latency_us_p99"] / 1000, f["errors"]))
# Ratios are taken round by round (each round measures its pair minutes apart at most, while
# the machine's disk and load drift over a run), then their median.
def ratio(numerator, denominator, field):
    pairs = zip(runs[numerator], runs[denominator])
    return statistics.median(a[field] / b[field] for a, b in pairs)
print()
print("2-key MSET across shards, 1 client: p50 x%.2f of SET's (goal <= 2)" % (
    ratio("mset2-1c", "set-1c", "latency_us_p50")))
print("2-key transactions at %s clients: cross-shard %.0f%% of single-shard (goal >= 50%%)" % (
    sys.argv[2], 100 * ratio("multi2-cross", "multi2-single", "ops_per_sec")))
PY

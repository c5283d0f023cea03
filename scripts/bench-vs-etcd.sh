#!/usr/bin/env bash
# Side-by-side benchmark: a 3-node PPDB (`ppdb local`) and a 3-node etcd (Debian's etcd-server,
# default durability: every write fsynced on a majority) on loopback, measured by the same load
# generator (`ppdb bench`) with the same workloads. Prints a table of ops/s and p50/p99 latency,
# the PPDB/etcd ratios, and where the servers' time went (CPU seconds, fsyncs).
#
# Usage: scripts/bench-vs-etcd.sh
# Environment (all optional):
#   DURATION_SECS=10 WARMUP_SECS=2 CLIENTS=64 VALUE_BYTES=100 KEYS=100000
#   BENCH_DIR=/tmp        parent of the temporary data directories (must be a real disk)
#   KEEP_DIR=1            keep the data directories and logs afterwards
#   CARGO_TARGET_DIR      where cargo builds (default ./target)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION_SECS=${DURATION_SECS:-10}
WARMUP_SECS=${WARMUP_SECS:-2}
CLIENTS=${CLIENTS:-64}
VALUE_BYTES=${VALUE_BYTES:-100}
KEYS=${KEYS:-100000}

WORK_NAME=ppdb-bench
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

# --- install etcd -------------------------------------------------------------------------------
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    log "installing etcd (Debian's etcd-server, etcd-client)"
    apt-get install -y etcd-server etcd-client >&2 || { apt-get update >&2 && apt-get install -y etcd-server etcd-client >&2; }
fi
for tool in curl ss; do
    command -v "$tool" >/dev/null || { log "missing $tool"; exit 1; }
done

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

FS_TYPE=$(stat -f -c %T "$WORK")
if [ "$FS_TYPE" = tmpfs ]; then
    log "WARNING: $WORK is on tmpfs: fsync is free there; set BENCH_DIR to a directory on a disk"
fi

# --- start etcd ---------------------------------------------------------------------------------
ETCD_BASE=$(free_port 22000)
ETCD_CLUSTER=""
for i in 1 2 3; do ETCD_CLUSTER+="${ETCD_CLUSTER:+,}e$i=http://127.0.0.1:$((ETCD_BASE + 100 + i))"; done
ETCD_ENDPOINTS=""
for i in 1 2 3; do
    client=$((ETCD_BASE + i))
    peer=$((ETCD_BASE + 100 + i))
    ETCD_ENDPOINTS+="${ETCD_ENDPOINTS:+,}127.0.0.1:$client"
    # Defaults otherwise (100 ms heartbeat, 1 s election timeout, fsync on every write batch),
    # like PPDB's defaults.
    etcd --name "e$i" --data-dir "$WORK/etcd-$i" \
        --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "$ETCD_CLUSTER" --initial-cluster-token ppdb-bench --initial-cluster-state new \
        >"$WORK/etcd-$i.log" 2>&1 &
    PIDS+=($!)
done
ETCD_PIDS=("${PIDS[@]}")

# --- start PPDB ---------------------------------------------------------------------------------
PPDB_BASE=$(free_port 17000)
"$PPDB" local --base-port "$PPDB_BASE" --dir "$WORK/ppdb" >"$WORK/ppdb-local.log" 2>&1 &
PPDB_LOCAL_PID=$!
PIDS+=("$PPDB_LOCAL_PID")
PPDB_ENDPOINTS=""
for i in 1 2 3; do PPDB_ENDPOINTS+="${PPDB_ENDPOINTS:+,}127.0.0.1:$((PPDB_BASE + i))"; done

# --- wait until both answer writes through every endpoint ---------------------------------------
target() { # target SCHEME ENDPOINTS -> SCHEME://a,SCHEME://b,...
    sed "s|\([^,]*\)|$1://\1|g" <<<"$2"
}
ETCD_TARGET=$(target etcd "$ETCD_ENDPOINTS")
PPDB_TARGET=$(target resp "$PPDB_ENDPOINTS")
wait_ready etcd "$ETCD_TARGET"
wait_ready ppdb "$PPDB_TARGET"
sleep 1
PPDB_PIDS=($(pgrep -P "$PPDB_LOCAL_PID" | tr '\n' ' '))

# --- measurement helpers ------------------------------------------------------------------------
cpu_ticks() { # total utime+stime of the given pids, in clock ticks
    local total=0 pid
    for pid in "$@"; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
TICKS=$(getconf CLK_TCK)
metric_sum() { # metric_sum NAME URL... : sum of a counter over several /metrics pages
    local name=$1 url total=0 value
    shift
    for url in "$@"; do
        value=$(curl -s --max-time 5 "$url" | awk -v n="$name" '$1 == n || index($1, n "{") == 1 {s += $2} END {printf "%.0f", s}')
        total=$((total + ${value:-0}))
    done
    echo "$total"
}
ppdb_syncs() {
    metric_sum ppdb_wal_syncs_total "http://127.0.0.1:$((PPDB_BASE + 201))/metrics" \
        "http://127.0.0.1:$((PPDB_BASE + 202))/metrics" "http://127.0.0.1:$((PPDB_BASE + 203))/metrics"
}
etcd_syncs() {
    metric_sum etcd_disk_wal_fsync_duration_seconds_count "http://127.0.0.1:$((ETCD_BASE + 1))/metrics" \
        "http://127.0.0.1:$((ETCD_BASE + 2))/metrics" "http://127.0.0.1:$((ETCD_BASE + 3))/metrics"
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
# run_one SYSTEM WORKLOAD CLIENTS WRITE_PERCENT ENDPOINTS (all: clients spread over the three
# nodes; one: every client on node 1, as an application with one address)
run_one() {
    local system=$1 workload=$2 clients=$3 writes=$4 endpoints=$5 tgt syncs0 syncs1 cpu0 cpu1 json pids
    if [ "$system" = ppdb ]; then tgt=$PPDB_TARGET; pids=("${PPDB_PIDS[@]}"); else tgt=$ETCD_TARGET; pids=("${ETCD_PIDS[@]}"); fi
    if [ "$endpoints" = one ]; then tgt=${tgt%%,*}; fi
    syncs0=$("${system}_syncs"); cpu0=$(cpu_ticks "${pids[@]}")
    log "$system: $workload ($clients clients, $writes% writes, ${DURATION_SECS}s + ${WARMUP_SECS}s warm-up)"
    json=$("$PPDB" bench --target "$tgt" --clients "$clients" --write-percent "$writes" \
        --duration-secs "$DURATION_SECS" --warmup-secs "$WARMUP_SECS" --value-bytes "$VALUE_BYTES" \
        --keys "$KEYS" --json)
    syncs1=$("${system}_syncs"); cpu1=$(cpu_ticks "${pids[@]}")
    echo "$json" >>"$WORK/results.jsonl"
    # Server CPU and fsyncs cover warm-up + measurement; normalise by that wall time.
    python3 - "$system" "$workload" "$json" "$((cpu1 - cpu0))" "$TICKS" "$((syncs1 - syncs0))" \
        "$((DURATION_SECS + WARMUP_SECS))" >>"$RESULTS" <<'EOF'
import json, sys
system, workload, raw, ticks, hz, syncs, wall = sys.argv[1:]
r = json.loads(raw)
cpu = int(ticks) / int(hz)
print("\t".join([system, workload, "%.0f" % r["ops_per_sec"], "%.2f" % (r["latency_us_p50"] / 1000),
                 "%.2f" % (r["latency_us_p99"] / 1000), "%.2f" % (r["latency_us_p999"] / 1000),
                 str(r["errors"]), "%.0f%%" % (100 * cpu / int(wall)),
                 "%.0f%%" % (100 * r["client_cpu_secs"] / int(wall)), "%.0f" % (int(syncs) / int(wall))]))
EOF
}

WORKLOADS=("64c-50w:$CLIENTS:50:all" "64c-100w:$CLIENTS:100:all" "64c-100w-1ep:$CLIENTS:100:one" "1c-100w:1:100:all")
for spec in "${WORKLOADS[@]}"; do
    IFS=: read -r name clients writes endpoints <<<"$spec"
    # Alternate systems per workload so a drift in machine load affects both alike.
    run_one ppdb "$name" "$clients" "$writes" "$endpoints"
    run_one etcd "$name" "$clients" "$writes" "$endpoints"
done

# --- report -------------------------------------------------------------------------------------
echo
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); data on $FS_TYPE; load average: $LOAD_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo "workloads: ${VALUE_BYTES}-byte values, ${KEYS} keys, ${DURATION_SECS}s measured after ${WARMUP_SECS}s warm-up; etcd $(etcd --version | awk '/etcd Version/ {print $3}')"
echo
python3 - "$RESULTS" <<'EOF'
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
head = ["system", "workload", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "server CPU", "bench CPU", "fsyncs/s"]
table = [head] + rows
widths = [max(len(r[i]) for r in table) for i in range(len(head))]
for r in table:
    print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
print()
print("ratios PPDB/etcd (throughput: higher is better; latency: lower is better)")
by = {(r[0], r[1]): r for r in rows}
for workload in dict.fromkeys(r[1] for r in rows):
    p, e = by.get(("ppdb", workload)), by.get(("etcd", workload))
    if not p or not e:
        continue
    ratio = lambda i: float(p[i]) / float(e[i]) if float(e[i]) else float("inf")
    print("  %-12s ops/s x%.2f   p50 x%.2f   p99 x%.2f" % (workload, ratio(2), ratio(3), ratio(4)))
EOF
echo
echo "(server CPU: all 3 nodes' CPU time / wall time, 100% = one core; fsyncs/s: summed over the"
echo " 3 nodes; both over warm-up + measurement. Raw JSON lines: results.jsonl in the work directory.)"

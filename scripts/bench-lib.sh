# Shared by the benchmark scripts (sourced, not run): logging, the release build, a work
# directory removed on exit (KEEP_DIR=1 keeps it), free loopback ports, and waiting until a
# target takes writes. The sourcing script sets WORK_NAME first.
log() { echo "[bench] $*" >&2; }

log "building ppdb (release)"
cargo build --release -p ppdb --bin ppdb >&2
PPDB="$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)/ppdb"

WORK=$(mktemp -d -p "${BENCH_DIR:-${TMPDIR:-/tmp}}" "$WORK_NAME".XXXXXX)
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
        for offset in 0 1 2 3 101 102 103 201 202 203 4211 4212 4213; do
            if grep -qx "$((base + offset))" <<<"$used"; then ok=0; break; fi
        done
        if [ "$ok" = 1 ]; then echo "$base"; return; fi
        base=$((base + 1000))
    done
    log "no free ports"; exit 1
}

wait_ready() { # wait_ready NAME TARGET [BENCH FLAGS...]
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

#!/usr/bin/env bash
# Runs many more differential sequences than `cargo test` does: the same random command
# sequences sent to a throwaway redis-server 7 and to a 3-node PPDB cluster, every reply
# compared (crates/ppdb/tests/it/differential/). Needs redis-server (Debian: redis-server).
#
# Usage: scripts/differential.sh [SEQUENCES] [FIRST_SEED]
#   scripts/differential.sh                5000 sequences from seed 1
#   scripts/differential.sh 20000          20000 sequences
#   scripts/differential.sh 5000 1000000   5000 sequences from seed 1000000 (fresh ones)
# Environment (all optional):
#   PPDB_DIFF_GROUPS=strings,keyspace      only these generator groups
#   PPDB_DIFF_KEEP_GOING=0                 stop at the first difference (default: report all)
#
# A difference prints its seed; replay it alone with
# `PPDB_SEED=<seed> cargo test -p ppdb --test it differential`.
set -euo pipefail
cd "$(dirname "$0")/.."

export PPDB_DIFF_SEQUENCES=${1:-5000}
export PPDB_DIFF_FIRST_SEED=${2:-1}
export PPDB_DIFF_KEEP_GOING=${PPDB_DIFF_KEEP_GOING:-1}
unset PPDB_SEED

exec cargo test -p ppdb --test it differential -- --nocapture

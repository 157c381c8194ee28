#!/usr/bin/env bash
# How HumanPing's cost grows with the open tasks and workers: the same figures (feed p50/p99,
# 200 claimers racing, lifecycle throughput) on databases holding 1×, 10× and 100× a base of
# 1,000 open tasks and 200 workers, on SQLite and on a throwaway PostgreSQL (fsync off).
#
#     scripts/bench-scale.sh                  # scales 1 10 100, both backends
#     SCALES="1 10" BACKENDS=sqlite scripts/bench-scale.sh
#
# Builds the release benchmark first (HUMANPING_BENCH_NO_BUILD=1 skips that). Each run's own
# output goes to stderr; the table of figures goes to stdout. Prints figures, never passes or
# fails on them.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SCALES=${SCALES:-1 10 100}
BACKENDS=${BACKENDS:-sqlite postgres}
BASE_TASKS=${BASE_TASKS:-1000}
BASE_WORKERS=${BASE_WORKERS:-200}
CLAIMS=${CLAIMS:-500}
LIFECYCLES=${LIFECYCLES:-2000}

# shellcheck source=scripts/pg-throwaway.sh
source "$ROOT/scripts/pg-throwaway.sh"

if [[ ${HUMANPING_BENCH_NO_BUILD:-0} != 1 ]]; then
    printf 'bench-scale: building the release benchmark\n' >&2
    cargo build --release --bin humanping-bench-scale >&2
fi
BENCH=$TARGET_DIR/release/humanping-bench-scale

trap pg_throwaway_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
unset HUMANPING_TEST_POSTGRES_URL
if [[ " $BACKENDS " == *" postgres "* ]]; then
    pg_throwaway_start
    PSQL=$PG_THROWAWAY_BINDIR/psql
    [[ -x $PSQL ]] || PSQL=$(command -v psql)
fi

echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), \
$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
echo "each run: 200 feeds timed; min(200, workers) claimers win $CLAIMS claims; 8 clients run \
$LIFECYCLES lifecycles"
printf '| backend | scale | open tasks | workers | feed p50 ms | feed p99 ms | claims/s | claim p50 ms | claim p99 ms | lifecycles/s | lifecycle p99 ms |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
for backend in $BACKENDS; do
    for scale in $SCALES; do
        tasks=$((BASE_TASKS * scale))
        workers=$((BASE_WORKERS * scale))
        args=(--tasks "$tasks" --workers "$workers" --claims "$CLAIMS" --lifecycles "$LIFECYCLES")
        if [[ $backend == postgres ]]; then
            db=scale_$scale
            "$PSQL" -q -X "$HUMANPING_TEST_POSTGRES_URL" -c "CREATE DATABASE $db" >&2
            args+=(--database-url "${HUMANPING_TEST_POSTGRES_URL%/postgres}/$db")
        fi
        printf 'bench-scale: %s, %s× (%s tasks, %s workers)\n' "$backend" "$scale" "$tasks" \
            "$workers" >&2
        out=$("$BENCH" "${args[@]}")
        printf '%s\n' "$out" >&2
        field() { sed -n "s/^$1: //p" <<<"$out"; }
        printf '| %s | %s× | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$backend" "$scale" \
            "$(field open_tasks)" "$(field workers)" "$(field feed_p50_ms)" "$(field feed_p99_ms)" \
            "$(field claims_per_s)" "$(field claim_p50_ms)" "$(field claim_p99_ms)" \
            "$(field lifecycles_per_s)" "$(field lifecycle_p99_ms)"
    done
done

#!/usr/bin/env bash
# HumanPing on PostgreSQL next to the machine's own limit, on one throwaway cluster:
#
#   1. lifecycle throughput (create → claim → submit → approve, four transactions) with
#      `humanping-bench`, and `pgbench -b tpcb-like` (five statements in one transaction) with
#      the same client count, with both rates and their ratio;
#   2. each lifecycle step on its own, with the statements it sends counted by
#      pg_stat_statements (sqlx sends each statement, BEGIN and COMMIT included, as one round
#      trip, so statements per step are round trips per step);
#   3. claim throughput with 200 workers reading their feed and claiming at once.
#
#     scripts/bench-pg.sh                      # 8 clients, 4000 lifecycles, pgbench for 20 s
#     CLIENTS=16 TASKS=8000 PGBENCH_SECONDS=30 CLAIMERS=200 CLAIM_TASKS=2000 scripts/bench-pg.sh
#
# Builds the release benchmarks first (HUMANPING_BENCH_NO_BUILD=1 skips that). Figures go to
# stdout, progress to stderr. The cluster runs with fsync off, as the test cluster does.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CLIENTS=${CLIENTS:-8}
TASKS=${TASKS:-4000}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-20}
STEP_TASKS=${STEP_TASKS:-200}
CLAIMERS=${CLAIMERS:-200}
CLAIM_TASKS=${CLAIM_TASKS:-2000}

# shellcheck source=scripts/pg-throwaway.sh
source "$ROOT/scripts/pg-throwaway.sh"

say() {
    printf 'bench-pg: %s\n' "$*" >&2
}

if [[ ${HUMANPING_BENCH_NO_BUILD:-0} != 1 ]]; then
    say "building the release benchmarks"
    cargo build --release --bin humanping-bench --bin humanping-bench-claim >&2
fi
PROFILE=${BENCH_PROFILE:-release}
BENCH=$TARGET_DIR/$PROFILE/humanping-bench
BENCH_CLAIM=$TARGET_DIR/$PROFILE/humanping-bench-claim

trap pg_throwaway_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
unset HUMANPING_TEST_POSTGRES_URL
pg_throwaway_start
ADMIN_URL=$HUMANPING_TEST_POSTGRES_URL
BASE_URL=${ADMIN_URL%/postgres}
PGBENCH=$PG_THROWAWAY_BINDIR/pgbench
PSQL=$PG_THROWAWAY_BINDIR/psql
[[ -x $PSQL ]] || PSQL=$(command -v psql)

say "loading pg_stat_statements (a restart of the cluster)"
"$PSQL" -q -X "$ADMIN_URL" -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" >&2
pg_throwaway_as_owner "$PG_THROWAWAY_BINDIR/pg_ctl" -D "$PG_THROWAWAY_DIR/data" -w -t 60 \
    restart >/dev/null
for db in lifecycle steps claims pgbench; do
    "$PSQL" -q -X "$ADMIN_URL" -c "CREATE DATABASE $db" >&2
done
"$PSQL" -q -X "$BASE_URL/steps" -c "CREATE EXTENSION pg_stat_statements" >&2

echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), \
$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
echo "postgresql: $("$PG_THROWAWAY_BINDIR/postgres" --version | sed 's/.*) //') (fsync off)"

say "lifecycles: $CLIENTS clients, $TASKS lifecycles"
echo "== humanping-bench --clients $CLIENTS --tasks $TASKS"
LIFE=$("$BENCH" --database-url "$BASE_URL/lifecycle" --clients "$CLIENTS" --tasks "$TASKS")
echo "$LIFE"
lifecycles_per_s=$(sed -n 's/^lifecycles_per_s: //p' <<<"$LIFE")

say "pgbench -b tpcb-like: $CLIENTS clients, ${PGBENCH_SECONDS}s"
"$PGBENCH" -q -i -s 10 "$BASE_URL/pgbench" >/dev/null 2>&1
echo "== pgbench -b tpcb-like -c $CLIENTS -j $(nproc) -T $PGBENCH_SECONDS (scale 10)"
PGB=$("$PGBENCH" -n -b tpcb-like -c "$CLIENTS" -j "$(nproc)" -T "$PGBENCH_SECONDS" \
    "$BASE_URL/pgbench" 2>/dev/null)
pgbench_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$PGB" | head -1)
grep -E '^(latency average|tps)' <<<"$PGB"

echo "== lifecycle next to pgbench, $CLIENTS clients"
awk -v l="$lifecycles_per_s" -v p="$pgbench_tps" 'BEGIN {
    printf "humanping lifecycles/s: %.1f (%.1f transactions/s at 4 per lifecycle)\n", l, 4 * l
    printf "pgbench tpcb-like tps: %.1f\n", p
    printf "ratio, lifecycle transactions to pgbench transactions: %.3f\n", 4 * l / p
    printf "ratio, lifecycles to pgbench transactions: %.3f\n", l / p
}'

say "steps: one client, $STEP_TASKS tasks, statements counted"
echo "== humanping-bench --steps --clients 1 --tasks $STEP_TASKS (statements per call, then each statement's calls per call)"
"$BENCH" --database-url "$BASE_URL/steps" --clients 1 --tasks "$STEP_TASKS" --steps

say "claims: $CLAIMERS claimers, $CLAIM_TASKS tasks"
echo "== humanping-bench-claim --claimers $CLAIMERS --tasks $CLAIM_TASKS"
"$BENCH_CLAIM" --database-url "$BASE_URL/claims" --claimers "$CLAIMERS" --tasks "$CLAIM_TASKS"

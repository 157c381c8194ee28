#!/usr/bin/env bash
# Builds HumanPing and runs it on the embedded SQLite database, ready for a first task:
#
#     scripts/run.sh
#
# On the first run it creates a demo agent funded with $50.00 of test money and a demo worker,
# and keeps their keys in demo-keys.env beside the database (readable by you only). Every run
# prints the Claude Desktop config for the agent, then serves the REST API for workers and
# agents on http://127.0.0.1:8787 until you press Ctrl-C.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo >/dev/null 2>&1 || { echo "run.sh: cargo is not installed (https://rustup.rs)" >&2; exit 1; }

cargo build --release --locked --bin humanping >&2
BIN=$PWD/target/release/humanping

if [[ -n ${DATABASE_URL:-} ]]; then
    STATE_DIR=${HUMANPING_STATE_DIR:-$PWD/target/demo}
else
    STATE_DIR=${XDG_DATA_HOME:-$HOME/.local/share}/humanping
    [[ $(uname -s) == Darwin ]] && STATE_DIR="$HOME/Library/Application Support/io.HumanPing.humanping"
fi
mkdir -p "$STATE_DIR"
KEYS=$STATE_DIR/demo-keys.env

if [[ ! -s $KEYS ]]; then
    umask 077
    agent=$("$BIN" agent create --name "demo agent" 2>/dev/null)
    worker=$("$BIN" worker create --name "demo worker" --lat 45.5088 --lng -73.5540 \
        --capabilities voice,field --languages en,fr 2>/dev/null)
    agent_id=$(sed -n 's/^agent_id: //p' <<<"$agent")
    "$BIN" credit --agent "$agent_id" --amount 50.00 >/dev/null 2>&1
    {
        echo "AGENT_ID=$agent_id"
        echo "AGENT_KEY=$(sed -n 's/^api_key: //p' <<<"$agent")"
        echo "WORKER_ID=$(sed -n 's/^worker_id: //p' <<<"$worker")"
        echo "WORKER_KEY=$(sed -n 's/^api_key: //p' <<<"$worker")"
    } >"$KEYS"
    echo "Created a demo agent with \$50.00 of test money and a demo worker." >&2
fi
# shellcheck disable=SC1090
source "$KEYS"

cat >&2 <<EOT

Claude Desktop (claude_desktop_config.json) or Cursor (mcp.json):
{
  "mcpServers": {
    "humanping": {
      "command": "$BIN",
      "args": ["mcp"],
      "env": { "HUMANPING_API_KEY": "$AGENT_KEY" }
    }
  }
}

The demo worker acts through the REST API with its key, e.g.:
  curl -H "Authorization: Bearer $WORKER_KEY" http://127.0.0.1:8787/v1/worker/tasks

Keys are kept in $KEYS.
Serving on http://127.0.0.1:8787 — Ctrl-C to stop.
EOT
exec "$BIN" serve

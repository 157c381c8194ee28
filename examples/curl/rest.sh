#!/usr/bin/env bash
# A whole task round trip through HumanPing's REST API with curl:
#
#     HUMANPING_API_KEY=hp_test_... examples/curl/rest.sh
#
# Against `humanping serve --sandbox` a simulated worker answers within seconds; against a real
# server, a human does (the script then waits up to two minutes, and you can pick the task up
# later with GET /v1/tasks/{id}?wait=120). HUMANPING_API_URL says where the server listens
# (default http://127.0.0.1:8787).
set -euo pipefail

: "${HUMANPING_API_KEY:?set HUMANPING_API_KEY to an agent key (humanping serve --sandbox prints one)}"
API=${HUMANPING_API_URL:-http://127.0.0.1:8787}
AUTH="Authorization: Bearer $HUMANPING_API_KEY"

echo "# balance"
curl -sS --fail-with-body -H "$AUTH" "$API/v1/balance"
echo

echo "# create a verification task, waiting up to 30 s for the answer"
task=$(curl -sS --fail-with-body -H "$AUTH" -H 'Content-Type: application/json' \
    -H "Idempotency-Key: curl-example-$(date +%s)-$$" \
    -d '{"kind": "verify", "question": "Is this restaurant still open?",
         "location": "245 Rue St-Paul, Montréal", "budget": 5.00, "wait_seconds": 30}' \
    "$API/v1/tasks")
echo "$task"
task_id=$(sed -n 's/^{"task_id":"\([^"]*\)".*/\1/p' <<<"$task")
[[ -n $task_id ]] || { echo "no task_id in the answer" >&2; exit 1; }

echo "# the task, once its result is in"
curl -sS --fail-with-body -H "$AUTH" "$API/v1/tasks/$task_id?wait=120"
echo

echo "# approve: the worker is paid, the platform takes its fee"
curl -sS --fail-with-body -X POST -H "$AUTH" "$API/v1/tasks/$task_id/approve"
echo

echo "# the latest tasks"
curl -sS --fail-with-body -H "$AUTH" "$API/v1/tasks?limit=5"
echo

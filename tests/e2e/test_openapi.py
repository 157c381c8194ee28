"""The REST API against its own OpenAPI document, with schemathesis.

A `humanping serve` on 127.0.0.1 gets generated requests for every operation in
`/openapi.json` (valid ones, and invalid ones), as an agent with test money and then as a
worker; no answer may be a server error. Bad input must come back as a 4xx that says what
was wrong. The runs are bounded in examples per operation and in time.

Schemathesis is pinned, with its dependencies, in tests/e2e/requirements-schemathesis.txt.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

# Test cases per operation and phase.
MAX_EXAMPLES = 25
# Time for the whole run as an agent (most operations) and as a worker; schemathesis stops
# generating when it is spent.
AGENT_SECONDS = 75
WORKER_SECONDS = 30
# A run is stopped if it overruns its own budget by this much.
OVERRUN_SECONDS = 120

# Waits for a human's answer may last 120 s, and no human answers here: generated waits are
# cut to a second so the time goes to many requests rather than to a few long polls.
HOOKS = textwrap.dedent(
    '''
    import schemathesis

    LONGEST_WAIT = 1


    def _short(value):
        if isinstance(value, int) and not isinstance(value, bool) and value > LONGEST_WAIT:
            return LONGEST_WAIT
        if isinstance(value, str) and value.strip().isdigit() and int(value) > LONGEST_WAIT:
            return str(LONGEST_WAIT)
        return value


    @schemathesis.hook
    def before_call(context, case, **kwargs):
        if isinstance(case.body, dict) and "wait_seconds" in case.body:
            case.body["wait_seconds"] = _short(case.body["wait_seconds"])
        if isinstance(case.query, dict) and "wait" in case.query:
            case.query["wait"] = _short(case.query["wait"])
    '''
)


def _schemathesis() -> str:
    """The `st` command of this virtual environment."""
    beside_python = Path(sys.executable).with_name("st")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("st")
    if found is None:
        pytest.fail(
            "schemathesis is not installed; install tests/e2e/requirements-schemathesis.txt "
            "(scripts/test.sh does)",
            pytrace=False,
        )
    return found


def _run_schemathesis(
    server, key: str, tmp_path: Path, name: str, seconds: int, extra: list[str]
) -> subprocess.CompletedProcess[str]:
    hooks = tmp_path / "humanping_schemathesis_hooks.py"
    hooks.write_text(HOOKS)
    report = tmp_path / f"{name}-junit.xml"
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(
        SCHEMATHESIS_HOOKS="humanping_schemathesis_hooks",
        PYTHONPATH=str(tmp_path),
        NO_COLOR="1",
        NO_PROXY="127.0.0.1,localhost",
    )
    command = [
        _schemathesis(),
        "run",
        f"{server.base_url}/openapi.json",
        "--url",
        server.base_url,
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(seconds),
        "--workers",
        "1",
        "--request-timeout",
        "15",
        "--seed",
        "20261204",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        *extra,
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=seconds + OVERRUN_SECONDS,
        stdin=subprocess.DEVNULL,
    )


def _assert_no_server_error(done: subprocess.CompletedProcess[str], server, who: str) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 0, (
        f"schemathesis as {who} exited with {done.returncode}:\n{output[-20_000:]}\n"
        f"--- server log (tail)\n{server.log()[-10_000:]}"
    )


@pytest.fixture
def openapi_server(start_server, create_agent, create_worker):
    server = start_server()
    agent = create_agent(name="schemathesis-agent", dollars="5000")
    worker = create_worker(name="schemathesis-worker")
    return server, agent, worker


def test_document_is_served_and_names_every_route(openapi_server):
    server, _, _ = openapi_server
    with httpx.Client(trust_env=False, timeout=10) as client:
        response = client.get(f"{server.base_url}/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    for path in ("/v1/tasks", "/v1/tasks/{id}", "/v1/worker/tasks", "/healthz", "/readyz"):
        assert path in document["paths"], path
    json.dumps(document)  # round-trips


def test_schemathesis_finds_no_server_error(openapi_server, humanping, tmp_path: Path):
    server, agent, worker = openapi_server

    # Some tasks to find, claim and settle, so generated requests reach more than 404s.
    with server.http(agent["api_key"]) as client:
        for question in ("Is the shop open?", "Is the bridge closed?"):
            created = client.post("/v1/tasks", json={"kind": "verify", "question": question})
            assert created.status_code == 201, created.text

    as_agent = _run_schemathesis(
        server, agent["api_key"], tmp_path, "agent", AGENT_SECONDS, ["--exclude-tag", "worker"]
    )
    _assert_no_server_error(as_agent, server, "an agent")

    as_worker = _run_schemathesis(
        server, worker["api_key"], tmp_path, "worker", WORKER_SECONDS, ["--include-tag", "worker"]
    )
    _assert_no_server_error(as_worker, server, "a worker")

    # The server is still ready, and the books still balance.
    with httpx.Client(trust_env=False, timeout=10) as client:
        assert client.get(f"{server.base_url}/readyz").status_code == 200
    humanping("ledger", "verify")

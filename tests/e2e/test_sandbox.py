"""The sandbox: simulated workers answer every task through the real service paths.

`humanping mcp` with no key and no database configured runs the sandbox in its own database in
the data folder; `humanping serve --sandbox` does the same over HTTP. Every simulated result says
plainly that no person made it, and the books still balance afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

SIMULATED = "SIMULATED:"


def kept_key(keys_file: Path) -> str:
    """The sandbox agent's key from its keys file."""
    for line in keys_file.read_text().splitlines():
        if line.startswith("HUMANPING_API_KEY="):
            return line.split("=", 1)[1].strip()
    raise AssertionError(f"no HUMANPING_API_KEY in {keys_file}:\n{keys_file.read_text()}")


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, f"tool error: {result.content}"
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


@pytest.mark.anyio
async def test_mcp_with_nothing_configured_runs_the_sandbox(
    humanping_bin: Path, hp_env: dict[str, str], tmp_path: Path
) -> None:
    data = Path(hp_env["XDG_DATA_HOME"]) / "humanping"
    params = StdioServerParameters(
        command=str(humanping_bin),
        args=["mcp"],
        env=hp_env | {"HUMANPING_SANDBOX_DELAY": "1"},
        cwd=str(tmp_path),
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        balance = structured(await session.call_tool("balance", {}))
        assert balance["available_cents"] == 10_000, balance

        task = structured(
            await session.call_tool(
                "verify",
                {
                    "question": "Is this restaurant still open?",
                    "location": "245 Rue St-Paul, Montréal",
                    "budget": 5.00,
                    "response": "yes_no",
                    "wait_seconds": 30,
                },
            )
        )
        assert task["status"] == "completed", task
        assert task["answer"] == "yes", task
        (result,) = task["results"]
        assert result["notes"].startswith(SIMULATED), result
        assert "simulated" in result["proof"]["text"].lower(), result

        approved = structured(await session.call_tool("approve", {"task_id": task["task_id"]}))
        assert approved["status"] == "approved", approved
        balance = structured(await session.call_tool("balance", {}))
        assert balance["available_cents"] == 9_500 and balance["held_cents"] == 0, balance

    # Its own database in the data folder, never the user's real one.
    assert (data / "sandbox.db").is_file()
    assert not (data / "humanping.db").exists()
    assert (data / "sandbox.keys.env").stat().st_mode & 0o077 == 0

    # The same agent comes back at the next start, and the books balance.
    verify = subprocess.run(
        [str(humanping_bin), "--sandbox", "ledger", "verify"],
        capture_output=True,
        text=True,
        env=hp_env,
        cwd=tmp_path,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "the books balance" in verify.stdout


def test_serve_sandbox_answers_every_kind_and_format(start_server, tmp_path: Path) -> None:
    database = tmp_path / "play.db"
    server = start_server(
        extra_args=["--sandbox", "--sandbox-delay", "200ms"],
        database_url=f"sqlite://{database}",
    )
    key = kept_key(tmp_path / "play.keys.env")
    assert key in server.log(), "serve --sandbox prints the sandbox agent's key"
    agent = server.http(key, timeout=60)

    requests = [
        {
            "kind": "verify",
            "question": "Still open?",
            "response": {"type": "choice", "options": ["Open", "Closed"]},
        },
        {"kind": "call", "phone": "+1 514 555 0100", "goal": "Book a table", "response": "text"},
        {"kind": "gut_check", "question": "Cringe?"},
        {
            "kind": "field",
            "mission": "Count the queue",
            "response": {"type": "number", "unit": "people"},
            "location": {
                "address": "Tokyo Tower",
                "lat": 35.6586,
                "lng": 139.7454,
                "radius_m": 200,
            },
            "language": "ja",
        },
        {"kind": "escalate", "situation": "An angry customer", "contact": "+1 514 555 0199"},
        {
            "kind": "vibe",
            "content": "We need to talk.",
            "response": {"type": "rating", "min": 1, "max": 10},
        },
        {"kind": "reality_check", "work": "2 + 2 = 4", "budget": "30.00"},
    ]
    for body in requests:
        created = agent.post("/v1/tasks", json=body | {"wait_seconds": 30})
        assert created.status_code == 201, created.text
        task = created.json()
        assert task["status"] == "completed", (body, task)
        (result,) = task["results"]
        assert result["notes"].startswith(SIMULATED), result
        if task["response_format"]["type"] == "text":
            assert "simulated" in task["answer"].lower(), task
        approved = agent.post(f"/v1/tasks/{task['task_id']}/approve")
        assert (
            approved.status_code == 200 and approved.json()["status"] == "approved"
        ), approved.text

    # The field mission far away, in Japanese, got a simulated worker of its own, at the place.
    field = agent.get("/v1/tasks", params={"limit": "100"}).json()["tasks"]
    located = next(t for t in field if t["kind"] == "field_mission")
    proof = located["results"][0]["proof"]
    assert proof["distance_m"] == 0 and proof["photo_urls"], proof

    balance = agent.get("/v1/balance").json()
    spent = sum(t["budget_cents"] for t in field)
    assert balance["spent_cents"] == spent, (balance, spent)
    assert balance["held_cents"] == 0, balance

    # Several humans: enough simulated workers step in for a consensus task.
    created = agent.post(
        "/v1/tasks",
        json={"kind": "gut_check", "question": "Agree?", "workers": 3, "wait_seconds": 60},
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["status"] == "completed", task
    assert task["consensus"]["answered"] >= 2, task["consensus"]
    assert len({r["worker_id"] for r in task["results"]}) == len(task["results"]), task


def test_a_bad_delay_is_refused_with_the_reason(humanping) -> None:
    done = humanping("--sandbox", "--sandbox-delay", "soon", "mcp", check=False)
    assert done.returncode != 0
    assert "500ms" in done.stderr and "soon" in done.stderr, done.stderr


def test_a_configured_key_or_database_is_not_the_sandbox(
    humanping_bin: Path, hp_env: dict[str, str], tmp_path: Path, database_url: str
) -> None:
    """With a database given, `humanping mcp` keeps its old manners: no key, no sandbox."""
    import anyio

    async def tools_say_how_to_get_a_key() -> str:
        params = StdioServerParameters(
            command=str(humanping_bin),
            args=["--database-url", database_url, "mcp"],
            env=hp_env,
            cwd=str(tmp_path),
        )
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("balance", {})
            assert result.is_error
            return json.dumps([c.model_dump() for c in result.content])

    message = anyio.run(tools_say_how_to_get_a_key)
    assert "HUMANPING_API_KEY" in message, message
    data = Path(hp_env["XDG_DATA_HOME"]) / "humanping"
    assert not (data / "sandbox.db").exists()
    assert os.path.exists(database_url.removeprefix("sqlite://"))

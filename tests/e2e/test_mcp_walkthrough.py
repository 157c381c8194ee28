"""End to end: an agent hires a human through the real `humanping mcp` stdio server.

The walkthrough drives the built binary the way users do: the operator CLI creates an agent, a
worker and test funds; `humanping serve` runs the REST API the worker uses; the official Python
MCP client starts `humanping mcp` over stdio as the agent. Processes, databases and ports come
from the fixtures in conftest.py: everything on loopback, in a temporary folder, stopped by PID.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from mcp import ClientSession
from mcp.client.stdio import stdio_client

from humanping_tools import TOOLS
# Debug logs on, so that any log line that strayed onto stdout would show up there.
DEBUG_LOGS = {"RUST_LOG": "humanping=debug,rmcp=debug"}


def fields(output: str) -> dict[str, str]:
    """The `name: value` lines the operator commands print."""
    return dict(re.findall(r"^(\w+): (\S+)$", output, flags=re.MULTILINE))


@dataclass
class Walkthrough:
    agent_id: str
    agent_key: str
    worker_key: str
    worker: httpx.Client


@pytest.fixture
def walkthrough(humanping, server) -> Walkthrough:
    """An agent with $50.00, a worker in Montréal, and `humanping serve` answering the worker."""
    agent = fields(humanping("agent", "create", "--name", "demo").stdout)
    assert agent["agent_id"].startswith("agt_") and agent["api_key"].startswith("hp_test_"), agent
    worker = fields(
        humanping("worker", "create", "--name", "ana", "--lat", "45.5", "--lng", "-73.55").stdout
    )
    assert worker["worker_id"].startswith("wkr_") and worker["api_key"].startswith("hp_"), worker
    credited = fields(humanping("credit", "--agent", agent["agent_id"], "--amount", "50.00").stdout)
    assert credited["available"] == "50.00", credited

    http = server.http(worker["api_key"])
    deadline = time.monotonic() + 30
    while http.get("/v1/worker/me").status_code != 200:
        assert time.monotonic() < deadline, f"GET /v1/worker/me never answered:\n{server.log()}"
        time.sleep(0.1)
    return Walkthrough(agent["agent_id"], agent["api_key"], worker["api_key"], http)


class ClientWarnings(logging.Handler):
    """Collects the warnings the MCP client logs about the server. A stdout line that is not
    JSON-RPC does not fail the session: the client logs it as a parse failure, caught here."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def client_warnings() -> Iterator[ClientWarnings]:
    handler = ClientWarnings()
    # The transport logs under "mcp.client.stdio", the session under "client".
    loggers = [logging.getLogger("mcp"), logging.getLogger("client")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "text", None))


def structured(result: Any) -> dict[str, Any]:
    """The structured content of a successful tool result."""
    assert not result.is_error, f"tool failed: {text_of(result)}"
    assert isinstance(result.structured_content, dict), result
    # The text block carries the same JSON, for clients that read only text.
    assert json.loads(text_of(result)) == result.structured_content
    return result.structured_content


def failure(result: Any) -> str:
    """The text of a tool result that must be an error."""
    assert result.is_error, f"expected a tool error, got {result.structured_content}"
    return text_of(result)


async def expect_balance(session: ClientSession, *, available: int, held: int) -> None:
    balance = structured(await session.call_tool("balance", {}))
    assert (balance["available_cents"], balance["held_cents"]) == (available, held), balance


@pytest.mark.anyio
async def test_an_agent_hires_a_human_through_mcp(
    walkthrough: Walkthrough, stdio_params, humanping, tmp_path, client_warnings
) -> None:
    params = stdio_params(api_key=walkthrough.agent_key)
    params.env.update(DEBUG_LOGS)
    with open(tmp_path / "mcp-stderr.log", "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await hire_a_human(session, walkthrough)
    assert client_warnings.messages == [], "the MCP client complained about the server"

    books = humanping("ledger", "verify", check=False)
    assert books.returncode == 0, books.stdout + books.stderr


async def hire_a_human(session: ClientSession, world: Walkthrough) -> None:
    init = await session.initialize()
    assert init.server_info.name == "humanping"
    assert "get_task" in (init.instructions or "")

    listed = await session.list_tools()
    assert len(listed.tools) == len(TOOLS)
    assert {tool.name for tool in listed.tools} == TOOLS

    # The agent asks; the money is held in escrow.
    task = structured(
        await session.call_tool(
            "verify",
            {
                "question": "Is this restaurant still open?",
                "location": "245 Rue St-Paul, Montréal",
                "budget": 5.00,
                "wait_seconds": 0,
            },
        )
    )
    task_id = task["task_id"]
    assert task_id.startswith("task_")
    assert task["status"] == "open"
    assert task["held_cents"] == 500
    await expect_balance(session, available=4500, held=500)

    # A human takes it through the REST API and answers.
    feed = world.worker.get("/v1/worker/tasks")
    assert feed.status_code == 200, feed.text
    offers = {offer["task_id"]: offer for offer in feed.json()["tasks"]}
    assert task_id in offers, feed.text
    assert offers[task_id]["pay_cents"] == 450

    claim = world.worker.post(f"/v1/worker/tasks/{task_id}/claim")
    assert claim.status_code in (200, 201), claim.text
    assignment_id = claim.json()["assignment_id"]

    submit = world.worker.post(
        f"/v1/worker/assignments/{assignment_id}/submit",
        json={"answer": "Yes, open until 22:00", "notes": "Called them"},
    )
    assert submit.status_code == 200, submit.text

    # The agent picks the result up and approves it; the human is paid, less the 10% fee.
    done = structured(await session.call_tool("get_task", {"task_id": task_id, "wait_seconds": 5}))
    assert done["status"] == "completed"
    assert done["answer"] == "Yes, open until 22:00"

    approved = structured(await session.call_tool("approve", {"task_id": task_id}))
    assert approved["status"] == "approved"
    assert approved["held_cents"] == 0
    await expect_balance(session, available=4500, held=0)
    me = world.worker.get("/v1/worker/me")
    assert me.status_code == 200, me.text
    assert me.json()["earned_cents"] == 450

    # A second task, cancelled before anyone takes it, costs nothing.
    second = structured(
        await session.call_tool(
            "verify",
            {"question": "Is the bakery on Rue Notre-Dame open?", "budget": "5.00", "wait_seconds": 0},
        )
    )
    assert second["held_cents"] == 500
    await expect_balance(session, available=4000, held=500)
    cancelled = structured(await session.call_tool("cancel_task", {"task_id": second["task_id"]}))
    assert cancelled["status"] == "cancelled"
    assert cancelled["held_cents"] == 0
    await expect_balance(session, available=4500, held=0)

    page = structured(await session.call_tool("list_tasks", {"limit": 10}))
    assert [t["task_id"] for t in page["tasks"]] == [second["task_id"], task_id]

    # Bad input comes back as a tool error the agent can read, and moves no money.
    bad_budget = failure(await session.call_tool("verify", {"question": "Open?", "budget": "abc"}))
    assert '"abc" is not a number' in bad_budget
    too_precise = failure(await session.call_tool("verify", {"question": "Open?", "budget": 5.001}))
    assert "more than two decimal places" in too_precise
    empty = failure(await session.call_tool("verify", {"question": "", "wait_seconds": 0}))
    assert "empty" in empty and "(code: invalid_input)" in empty
    unknown = failure(await session.call_tool("get_task", {"task_id": "task_doesnotexist"}))
    assert "task_doesnotexist" in unknown and "(code: not_found)" in unknown
    twice = failure(await session.call_tool("approve", {"task_id": task_id}))
    assert "already approved" in twice and "(code: conflict)" in twice
    await expect_balance(session, available=4500, held=0)


def test_stdout_carries_only_json_rpc_and_the_server_exits_when_stdin_closes(
    humanping_bin, database_url, hp_env, create_agent, tmp_path
) -> None:
    """Speaks to `humanping mcp` by hand, with debug logging on, and reads every byte of its
    stdout: each line must be a JSON-RPC message, and closing stdin must end the process."""
    agent = create_agent(name="raw", dollars="10.00")
    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw-e2e", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "balance", "arguments": {}}},
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "verify", "arguments": {"question": "Open?", "budget": "abc"}},
        },
    ]
    # Logs go to a file: a stderr pipe nobody reads would fill up and stall the server.
    log_path = tmp_path / "mcp-stderr.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(humanping_bin), "--database-url", database_url, "mcp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=hp_env | DEBUG_LOGS | {"HUMANPING_API_KEY": agent["api_key"]},
            cwd=tmp_path,
        )
    responses: dict[int, dict[str, Any]] = {}
    try:
        assert process.stdin is not None and process.stdout is not None
        for request in requests:
            process.stdin.write(json.dumps(request).encode() + b"\n")
            process.stdin.flush()
            # Wait for each answer before sending the next request.
            while "id" in request and request["id"] not in responses:
                line = process.stdout.readline()
                assert line, "the server closed stdout early"
                message = json.loads(line)
                assert message.get("jsonrpc") == "2.0", line
                if "id" in message:
                    responses[message["id"]] = message
        # communicate() closes stdin, which must end the server.
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)

    for line in rest.decode().splitlines():
        assert json.loads(line).get("jsonrpc") == "2.0", line
    logs = log_path.read_text(errors="replace")
    assert process.returncode == 0, logs
    assert "serving MCP on stdio" in logs

    assert responses[1]["result"]["serverInfo"]["name"] == "humanping"
    assert len(responses[2]["result"]["tools"]) == len(TOOLS)
    assert responses[3]["result"]["isError"] is False
    assert responses[3]["result"]["structuredContent"]["agent_id"] == agent["agent_id"]
    assert responses[3]["result"]["structuredContent"]["available_cents"] == 1000
    assert responses[4]["result"]["isError"] is True
    assert "not a number" in responses[4]["result"]["content"][0]["text"]


@pytest.mark.anyio
async def test_without_a_key_every_tool_explains_how_to_get_one(stdio_params, tmp_path) -> None:
    with open(tmp_path / "mcp-stderr.log", "w") as errlog:
        async with stdio_client(stdio_params(api_key=None), errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                message = failure(await session.call_tool("balance", {}))
                assert "HUMANPING_API_KEY is not set" in message
                assert "humanping agent create" in message
                message = failure(await session.call_tool("verify", {"question": "Open?"}))
                assert "(code: unauthorized)" in message

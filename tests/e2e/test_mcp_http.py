"""End to end: the official Python MCP client over the network transports of `humanping serve`.

Streamable HTTP at /mcp and the legacy HTTP+SSE transport at /sse, each authenticated with the
agent's key as a bearer token: both list the thirteen tools, send a `verify` task, read it back
with `get_task` and see the money held with `balance`. The server runs on 127.0.0.1 from the
conftest.py fixtures and is stopped by its process id.
"""

from __future__ import annotations

import re
from typing import Any

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from humanping_tools import TOOLS

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


@pytest.fixture
def agent_key(humanping) -> str:
    """The key of an agent with $50.00 of test funds."""
    created = humanping("agent", "create", "--name", "http-agent").stdout
    fields = dict(re.findall(r"^(\w+): (\S+)$", created, flags=re.MULTILINE))
    humanping("credit", "--agent", fields["agent_id"], "--amount", "50.00")
    return fields["api_key"]


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


async def use_the_tools(session: ClientSession) -> None:
    """Lists the tools, sends a task, reads it back and checks the money it holds."""
    await session.initialize()
    listed = await session.list_tools()
    assert {tool.name for tool in listed.tools} == TOOLS

    task = structured(
        await session.call_tool(
            "verify",
            {"question": "Is the bakery on Rue St-Paul open?", "budget": 5, "wait_seconds": 0},
        )
    )
    assert task["status"] == "open"
    again = structured(await session.call_tool("get_task", {"task_id": task["task_id"]}))
    assert again["task_id"] == task["task_id"]

    balance = structured(await session.call_tool("balance", {}))
    assert balance["available_cents"] == 4_500
    assert balance["held_cents"] == 500


async def test_streamable_http_client_uses_the_tools(server, agent_key):
    headers = {"Authorization": f"Bearer {agent_key}"}
    async with httpx2.AsyncClient(headers=headers, trust_env=False, timeout=20.0) as http:
        async with streamable_http_client(server.mcp_url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await use_the_tools(session)


async def test_sse_client_uses_the_tools(server, agent_key):
    def no_proxy_client(headers=None, timeout=None, auth=None) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, trust_env=False)

    headers = {"Authorization": f"Bearer {agent_key}"}
    async with sse_client(
        server.sse_url, headers=headers, httpx_client_factory=no_proxy_client
    ) as (read, write):
        async with ClientSession(read, write) as session:
            await use_the_tools(session)


async def test_a_missing_key_is_refused_with_a_message(server):
    async with httpx2.AsyncClient(trust_env=False, timeout=10.0) as http:
        response = await http.post(server.mcp_url, json={})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert "Bearer" in response.json()["error"]["message"]

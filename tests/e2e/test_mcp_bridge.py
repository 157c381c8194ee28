"""`humanping mcp --server URL`: the stdio server relays to a remote HumanPing over Streamable HTTP.

The official Python MCP client starts the bridge over stdio, as Claude Desktop would with a hosted
instance; the bridge has no database of its own, and every tool call is answered by the
`humanping serve` this test starts on 127.0.0.1.
"""

from __future__ import annotations

import anyio
import httpx
import pytest

from humanping_tools import TOOLS
from mcp import ClientSession
from mcp.client.stdio import stdio_client


@pytest.mark.anyio
async def test_the_bridge_relays_a_whole_task_to_the_remote_server(
    server, create_agent, create_worker, stdio_params
):
    agent = create_agent(name="remote-agent", dollars="20.00")
    worker = create_worker(name="remote-worker")
    params = stdio_params(api_key=agent["api_key"], extra_args=["--server", server.mcp_url])

    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = await session.list_tools()
        assert {tool.name for tool in tools.tools} == TOOLS

        created = await session.call_tool(
            "verify", {"question": "Is the bakery open? 🥐 مخبز", "budget": 5.00, "wait_seconds": 0}
        )
        assert not created.is_error, created.content
        task = created.structured_content
        assert task["held_cents"] == 500
        assert task["instruction"] == "Is the bakery open? 🥐 مخبز"

        headers = {"Authorization": f"Bearer {worker['api_key']}"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, trust_env=False) as http:
            claim = await http.post(f"/v1/worker/tasks/{task['task_id']}/claim")
            assert claim.status_code == 201, claim.text
            submit = await http.post(
                f"/v1/worker/assignments/{claim.json()['assignment_id']}/submit",
                json={"answer": "Yes"},
            )
            assert submit.status_code == 200, submit.text

        done = await session.call_tool("get_task", {"task_id": task["task_id"], "wait_seconds": 5})
        assert done.structured_content["status"] == "completed"
        approved = await session.call_tool("approve", {"task_id": task["task_id"]})
        assert approved.structured_content["status"] == "approved"
        balance = await session.call_tool("balance", {})
        assert balance.structured_content["available_cents"] == 1500


@pytest.mark.anyio
async def test_a_refused_key_ends_the_bridge_with_an_error(server, stdio_params):
    params = stdio_params(api_key="hp_test_notarealkey", extra_args=["--server", server.mcp_url])
    with pytest.raises(Exception):
        with anyio.fail_after(30):
            async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
                await session.initialize()

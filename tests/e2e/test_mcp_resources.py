"""End to end: tasks as MCP resources, with the official Python client over stdio and over
Streamable HTTP. The agent subscribes to its task; a worker claims it through the REST API of
`humanping serve`, a separate process, and the subscribed session hears
`notifications/resources/updated`. Everything on loopback, in a temporary folder.
"""

from __future__ import annotations

import json
import re
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


def fields(output: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+): (\S+)$", output, flags=re.MULTILINE))


@pytest.fixture
def people(humanping) -> dict[str, str]:
    """An agent with $50.00 and a worker: their keys."""
    agent = fields(humanping("agent", "create", "--name", "resources-agent").stdout)
    humanping("credit", "--agent", agent["agent_id"], "--amount", "50.00")
    worker = fields(humanping("worker", "create", "--name", "ana").stdout)
    return {"agent": agent["api_key"], "worker": worker["api_key"]}


@asynccontextmanager
async def session_over(transport: str, server, stdio_params, key: str, handler):
    if transport == "stdio":
        async with stdio_client(stdio_params(api_key=key)) as (read, write):
            async with ClientSession(read, write, message_handler=handler) as session:
                yield session
    else:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx2.AsyncClient(headers=headers, trust_env=False, timeout=30.0) as http:
            async with streamable_http_client(server.mcp_url, http_client=http) as (read, write):
                async with ClientSession(read, write, message_handler=handler) as session:
                    yield session


@pytest.mark.parametrize("transport", ["stdio", "streamable_http"])
async def test_a_subscribed_task_resource_announces_the_claim(
    transport, server, stdio_params, people
) -> None:
    updates: list[str] = []

    async def handler(message: Any) -> None:
        if getattr(message, "method", None) == "notifications/resources/updated":
            updates.append(str(message.params.uri))

    async with session_over(transport, server, stdio_params, people["agent"], handler) as session:
        init = await session.initialize()
        assert init.capabilities.resources and init.capabilities.resources.subscribe

        result = await session.call_tool("verify", {"question": "Open? 🍞", "wait_seconds": 0})
        task = result.structured_content
        uri = f"humanping://tasks/{task['task_id']}"
        links = [block for block in result.content if getattr(block, "type", "") == "resource_link"]
        assert [str(link.uri) for link in links] == [uri]

        templates = await session.list_resource_templates()
        assert sorted(t.uri_template for t in templates.resource_templates) == [
            "humanping://tasks/{task_id}",
            "humanping://tasks/{task_id}/proofs/{sha256}",
        ]
        listed = await session.list_resources()
        assert [str(r.uri) for r in listed.resources] == [uri]
        read = await session.read_resource(uri)
        assert json.loads(read.contents[0].text)["instruction"] == "Open? 🍞"

        await session.subscribe_resource(uri)
        claimed = server.http(people["worker"]).post(f"/v1/worker/tasks/{task['task_id']}/claim")
        assert claimed.status_code in (200, 201), claimed.text
        with anyio.fail_after(20):
            while uri not in updates:
                await anyio.sleep(0.05)
        read = await session.read_resource(uri)
        assert json.loads(read.contents[0].text)["status"] == "in_progress"
        await session.unsubscribe_resource(uri)


@pytest.mark.parametrize("transport", ["stdio", "streamable_http"])
async def test_listen_streams_task_updates_on_the_2026_revision(
    transport, server, stdio_params, people
) -> None:
    from mcp.client import Client

    if transport == "stdio":
        target: Any = stdio_params(api_key=people["agent"])
        async with Client(target) as client:
            await listen_for_a_claim(client, server, people)
    else:
        headers = {"Authorization": f"Bearer {people['agent']}"}
        async with httpx2.AsyncClient(headers=headers, trust_env=False, timeout=30.0) as http:
            transport = streamable_http_client(server.mcp_url, http_client=http)
            async with Client(transport) as client:
                await listen_for_a_claim(client, server, people)


async def listen_for_a_claim(client, server, people) -> None:
    result = await client.call_tool("verify", {"question": "Open?", "wait_seconds": 0})
    task_id = result.structured_content["task_id"]
    uri = f"humanping://tasks/{task_id}"
    async with client.listen(resource_subscriptions=[uri, "file:///etc/passwd"]) as sub:
        assert list(sub.honored.resource_subscriptions or []) == [uri], sub.honored
        claimed = server.http(people["worker"]).post(f"/v1/worker/tasks/{task_id}/claim")
        assert claimed.status_code in (200, 201), claimed.text
        with anyio.fail_after(20):
            async for event in sub:
                if uri in repr(event):
                    break

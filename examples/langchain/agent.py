"""A LangChain / LangGraph agent that hires humans through HumanPing's MCP tools.

    pip install -r examples/langchain/requirements.txt
    python examples/langchain/agent.py --no-llm        # load the tools, call `verify` directly
    pip install langgraph langchain-anthropic          # for the agent itself
    ANTHROPIC_API_KEY=... python examples/langchain/agent.py "Is Joe's Pizza on 7th still open?"

The tools come from `langchain-mcp-adapters`, which starts HumanPing's MCP server over stdio
(`npx -y humanping-mcp`, or HUMANPING_MCP_COMMAND, e.g. "humanping mcp"), or connects to a
running server when HUMANPING_MCP_URL is set (e.g. http://127.0.0.1:8787/mcp, with
HUMANPING_API_KEY sent as the bearer token). With no key, the stdio server runs its sandbox:
simulated workers answer within seconds, and say so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
from typing import Any

from langchain_core.tools import BaseTool
from langchain_mcp_adapters.client import MultiServerMCPClient


def connection() -> dict[str, Any]:
    """How to reach HumanPing: a URL (Streamable HTTP), else a stdio command."""
    url = os.environ.get("HUMANPING_MCP_URL")
    if url:
        headers = {}
        if os.environ.get("HUMANPING_API_KEY"):
            headers["Authorization"] = f"Bearer {os.environ['HUMANPING_API_KEY']}"
        return {"transport": "http", "url": url, "headers": headers}
    command = shlex.split(os.environ.get("HUMANPING_MCP_COMMAND", "npx -y humanping-mcp"))
    return {
        "transport": "stdio",
        "command": command[0],
        "args": command[1:],
        "env": dict(os.environ),
    }


async def load_humanping_tools() -> list[BaseTool]:
    """HumanPing's MCP tools as LangChain tools."""
    client = MultiServerMCPClient({"humanping": connection()})
    return await client.get_tools()


def text_of(content: Any) -> str:
    """The text of a tool's result, whichever shape the adapter returned it in."""
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content if isinstance(block, dict))


async def without_llm() -> dict[str, Any]:
    """Loads the tools and calls `verify` directly: no model needed."""
    tools = {tool.name: tool for tool in await load_humanping_tools()}
    print("tools:", ", ".join(sorted(tools)))
    content = await tools["verify"].ainvoke(
        {
            "question": "Is this restaurant still open?",
            "location": "245 Rue St-Paul, Montréal",
            "budget": 5.00,
            "wait_seconds": 60,
        }
    )
    task = json.loads(text_of(content))
    print("status:", task["status"])
    print("answer:", task.get("answer"))
    return task


async def with_llm(question: str) -> None:
    """A LangGraph ReAct agent with Claude, deciding by itself when to ask a human."""
    from langchain_anthropic import ChatAnthropic  # type: ignore[import-not-found]
    from langgraph.prebuilt import create_react_agent  # type: ignore[import-not-found]

    tools = await load_humanping_tools()
    agent = create_react_agent(ChatAnthropic(model="claude-sonnet-4-5"), tools)
    state = await agent.ainvoke({"messages": [("user", question)]})
    print(state["messages"][-1].content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "question",
        nargs="?",
        default="Is the bakery at 245 Rue St-Paul, " "Montréal still open? Ask a human to check.",
    )
    parser.add_argument(
        "--no-llm", action="store_true", help="only load the tools and call verify, without a model"
    )
    args = parser.parse_args()
    if args.no_llm:
        asyncio.run(without_llm())
    else:
        asyncio.run(with_llm(args.question))


if __name__ == "__main__":
    main()

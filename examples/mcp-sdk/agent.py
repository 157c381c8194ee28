"""An agent that hires a human through HumanPing's MCP server, with the official `mcp` SDK.

    python examples/mcp-sdk/agent.py

It starts the server the way Claude Desktop does (`npx -y humanping-mcp`; set
HUMANPING_MCP_COMMAND to run another command, e.g. "humanping mcp"), lists the tools, sends a
verification task and waits for the answer, then approves it. With no HUMANPING_API_KEY the
server runs its sandbox, where simulated workers answer within seconds and say so.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def server_parameters() -> StdioServerParameters:
    command = shlex.split(os.environ.get("HUMANPING_MCP_COMMAND", "npx -y humanping-mcp"))
    return StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))


def structured(result: Any) -> dict[str, Any]:
    """The tool's structured result, or an error with the server's message."""
    if result.is_error:
        text = " ".join(getattr(block, "text", "") for block in result.content)
        raise SystemExit(f"HumanPing refused the call: {text}")
    return result.structured_content


async def main() -> None:
    async with stdio_client(server_parameters()) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            print("tools:", ", ".join(sorted(tool.name for tool in tools.tools)))

            task = structured(
                await session.call_tool(
                    "verify",
                    {
                        "question": "Is this restaurant still open?",
                        "location": "245 Rue St-Paul, Montréal",
                        "budget": 5.00,
                        "wait_seconds": 60,
                    },
                )
            )
            while task["status"] in ("open", "in_progress"):
                # Not answered yet: wait again (a person may take a while).
                task = structured(
                    await session.call_tool(
                        "get_task", {"task_id": task["task_id"], "wait_seconds": 120}
                    )
                )
            print("status:", task["status"])
            print("answer:", task.get("answer"))
            for result in task["results"]:
                if result.get("notes"):
                    print("notes:", result["notes"])

            if task["status"] == "completed":
                approved = structured(
                    await session.call_tool("approve", {"task_id": task["task_id"]})
                )
                print("approved:", approved["status"])
            balance = structured(await session.call_tool("balance", {}))
            print("balance: available", balance["available"], "held", balance["held"])


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)

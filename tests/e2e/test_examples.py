"""Every example in examples/ runs against HumanPing's sandbox, as a user would run it.

The MCP configs are read and their servers started as the config says (the `npx` command is
swapped for the built binary, whose npm packaging tests/e2e/test_npm_wrapper.py covers); the
scripts run as subprocesses. The LangChain example needs mcp 1.x, so it runs in a virtualenv of
its own (HUMANPING_LANGCHAIN_PYTHON, else target/langchain-venv, made by scripts/test.sh).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from conftest import ROOT
from humanping_tools import TOOLS

EXAMPLES = ROOT / "examples"


def sandbox_key(keys_file: Path) -> str:
    for line in keys_file.read_text().splitlines():
        if line.startswith("HUMANPING_API_KEY="):
            return line.split("=", 1)[1].strip()
    raise AssertionError(f"no key in {keys_file}")


@pytest.fixture
def sandbox(start_server, tmp_path: Path):
    """`humanping serve --sandbox` on this test's own database, and its agent's key."""
    server = start_server(
        extra_args=["--sandbox", "--sandbox-delay", "300ms"],
        database_url=f"sqlite://{tmp_path / 'sandbox.db'}",
    )
    return server, sandbox_key(tmp_path / "sandbox.keys.env")


def run_example(command: list[str], env: dict[str, str], cwd: Path, timeout: float = 180):
    done = subprocess.run(
        command,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def config_server(path: Path) -> dict[str, Any]:
    config = json.loads(path.read_text())
    (server,) = config["mcpServers"].values()
    return server


@pytest.mark.anyio
@pytest.mark.parametrize(
    "config",
    [
        "claude-desktop/claude_desktop_config.json",
        "claude-desktop/claude_desktop_config.sandbox.json",
        "cursor/mcp.json",
    ],
)
async def test_stdio_configs_start_the_server(
    config: str, humanping_bin: Path, hp_env: dict[str, str], tmp_path: Path
) -> None:
    server = config_server(EXAMPLES / config)
    assert server["command"] == "npx" and server["args"] == ["-y", "humanping-mcp"], server
    env = dict(hp_env)
    for name, value in server.get("env", {}).items():
        assert name.startswith("HUMANPING_"), name
        # A placeholder key is left out: the server then runs the sandbox.
        if not value.endswith("..."):
            env[name] = value
    params = StdioServerParameters(
        command=str(humanping_bin), args=["mcp"], env=env, cwd=str(tmp_path)
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = await session.list_tools()
        assert sorted(t.name for t in tools.tools) == sorted(TOOLS)
        balance = await session.call_tool("balance", {})
        assert not balance.is_error, balance.content


@pytest.mark.anyio
async def test_the_cursor_url_config_reaches_streamable_http(sandbox) -> None:
    server, key = sandbox
    config = config_server(EXAMPLES / "cursor" / "mcp.url.json")
    assert config["url"] == "http://127.0.0.1:8787/mcp"
    url = config["url"].replace("http://127.0.0.1:8787", server.base_url)
    headers = {k: v.replace("hp_test_...", key) for k, v in config["headers"].items()}
    async with httpx.AsyncClient(headers=headers, trust_env=False, timeout=60) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, *_):
            async with ClientSession(read, write) as session:
                await session.initialize()
                task = await session.call_tool(
                    "gut_check", {"question": "Does this sound rude?", "wait_seconds": 30}
                )
                assert task.structured_content["answer"] == "yes", task.structured_content
                assert task.structured_content["results"][0]["notes"].startswith("SIMULATED:")


def test_the_python_sdk_agent(humanping_bin: Path, hp_env: dict[str, str], tmp_path: Path) -> None:
    env = hp_env | {
        "HUMANPING_MCP_COMMAND": f"'{humanping_bin}' mcp",
        "HUMANPING_SANDBOX_DELAY": "300ms",
    }
    out = run_example([sys.executable, str(EXAMPLES / "mcp-sdk" / "agent.py")], env, tmp_path)
    assert "tools: " in out and "status: completed" in out, out
    assert "answer: [Simulated worker]" in out and "notes: SIMULATED:" in out, out
    assert "approved: approved" in out and "available 95.00" in out, out


def test_the_python_client_quickstart(sandbox, hp_env: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip("humanping", reason="pip install --no-build-isolation ./examples/python")
    server, key = sandbox
    env = hp_env | {"HUMANPING_API_KEY": key, "HUMANPING_API_URL": server.base_url}
    out = run_example([sys.executable, str(EXAMPLES / "python" / "quickstart.py")], env, tmp_path)
    assert out.startswith("[Simulated worker]"), out


def test_the_curl_calls(sandbox, hp_env: dict[str, str], tmp_path: Path) -> None:
    server, key = sandbox
    env = hp_env | {"HUMANPING_API_KEY": key, "HUMANPING_API_URL": server.base_url}
    out = run_example(["bash", str(EXAMPLES / "curl" / "rest.sh")], env, tmp_path)
    assert '"status":"completed"' in out and '"status":"approved"' in out, out
    assert "SIMULATED:" in out, out


def langchain_python() -> Path:
    path = Path(
        os.environ.get("HUMANPING_LANGCHAIN_PYTHON")
        or ROOT / "target" / "langchain-venv" / "bin" / "python"
    )
    if not path.exists():
        pytest.fail(
            f"no LangChain virtualenv at {path}; scripts/test.sh makes it (python3 -m venv "
            "target/langchain-venv && target/langchain-venv/bin/pip install -r "
            "examples/langchain/requirements.txt)",
            pytrace=False,
        )
    return path


def test_the_langchain_agent_over_stdio(
    humanping_bin: Path, hp_env: dict[str, str], tmp_path: Path
) -> None:
    env = hp_env | {
        "HUMANPING_MCP_COMMAND": f"'{humanping_bin}' mcp",
        "HUMANPING_SANDBOX_DELAY": "300ms",
    }
    out = run_example(
        [str(langchain_python()), str(EXAMPLES / "langchain" / "agent.py"), "--no-llm"],
        env,
        tmp_path,
    )
    tools = out.split("tools: ", 1)[1].splitlines()[0].split(", ")
    assert sorted(tools) == sorted(TOOLS), out
    assert "status: completed" in out and "answer: [Simulated worker]" in out, out


def test_the_langchain_agent_over_http(sandbox, hp_env: dict[str, str], tmp_path: Path) -> None:
    server, key = sandbox
    env = hp_env | {"HUMANPING_MCP_URL": server.mcp_url, "HUMANPING_API_KEY": key}
    out = run_example(
        [str(langchain_python()), str(EXAMPLES / "langchain" / "agent.py"), "--no-llm"],
        env,
        tmp_path,
    )
    assert "status: completed" in out and "answer: [Simulated worker]" in out, out

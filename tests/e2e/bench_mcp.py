"""MCP round-trip benchmark: one client, raw JSON-RPC, several servers in one run.

Driven by scripts/bench-mcp.sh, which starts every server on 127.0.0.1 and passes their
commands and URLs. Prints figures; never fails on a number. The client is the same for every
server (newline-delimited JSON-RPC over a child's stdio, or POSTs to a Streamable HTTP
endpoint with one session and a kept-alive connection), so the differences are the servers'.

    python bench_mcp.py stdio NAME TOOL ARGS_JSON -- COMMAND...
    python bench_mcp.py http NAME TOOL ARGS_JSON URL [BEARER_KEY]
    python bench_mcp.py sessions URL KEY COUNT        (opens COUNT sessions, keeps them)
    python bench_mcp.py rss PID                       (prints VmRSS in MiB)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

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


def open_sessions(url: str, key: str, count: int) -> None:
    with httpx.Client(timeout=30, trust_env=False) as client:
        for _ in range(count):
            HttpSession(client, url, key)


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
    elif mode == "sessions":
        open_sessions(argv[1], argv[2], int(argv[3]))
    elif mode == "rss":
        print(f"{rss_mib(int(argv[1])):.1f}")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

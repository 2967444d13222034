"""What Citadel's MCP face costs: a trivial tool over streamable HTTP through Citadel against a bare
`mcp` SDK server with the same tool, in the same run.

- citadel: a real `citadel serve` (child process, embedded defaults), `/mcp` inside the full app,
  through its request pipeline (auth, rate limit, input limits, metrics, audit record; CORS only
  with an Origin) as every call is.
- endpoint: Citadel's MCP endpoint (`citadel.mcp_server.http.MCPEndpoint`, the same server and tools) in a
  plain Starlette app: the MCP face alone, without the app's request pipeline.
- bare: `MCPServer.streamable_http_app()` of the `mcp` SDK, serving a `list_embedding_models` tool
  that returns the same result as Citadel's from a constant: the target's baseline.
- bare-json: the same server in the SDK's JSON-response mode (`json_response=True`), as Citadel
  answers such a call (`mcp_server/http.py`, "answered at once"): a reference, printed beside.
All run under the same uvicorn in child processes. The tool does no I/O: what is measured is
the protocol, the transport and the server.

Each is first checked with the SDK's own client (same tool, same result). The load is then
2026-07-28 `tools/call` requests exactly as the SDK client sends them (one POST a call, no session),
from httpx clients in this process, at 1 and 16 concurrent clients, in rounds that alternate the
order of the servers. Printed: calls/s, p50/p95 latency, the ratios to bare (target: citadel >=
0.95x) and calls per CPU-second each server process used ("calls/s per core", target >= 300): the load
generator shares the machine's cores, so that is the steadier measure of a server.

`--before DIR` adds a fourth server, `before`: `citadel serve` running the code of another checkout
(e.g. a worktree of main), so that a change is measured against the code before it in the same run.

    python -m benchmarks.mcp_roundtrip [--rounds 3] [--seconds 4] [--before ../main]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
from mcp import Client

from benchmarks._server import Server, citadel_serve, cpu_seconds, free_port
from citadel.mcp_server.tools import EmbeddingModelInfo, EmbeddingModels
from citadel.tools.embedding_models import EMBEDDING_MODELS

TOOL = "list_embedding_models"
PROTOCOL = "2026-07-28"
HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": PROTOCOL,
    "mcp-method": "tools/call",
    "mcp-name": TOOL,
}
META = {
    "io.modelcontextprotocol/protocolVersion": PROTOCOL,
    "io.modelcontextprotocol/clientInfo": {"name": "mcp-roundtrip", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
CONCURRENCY = (1, 16)


# --- the bare server (run in a child process by this same module) -------------------------------
def same_result() -> EmbeddingModels:
    """What Citadel's `list_embedding_models` answers on its embedded defaults."""
    model = EMBEDDING_MODELS["all-minilm"]
    info = EmbeddingModelInfo(
        name=model.name,
        dims=model.dims,
        max_tokens=model.max_tokens,
        description=model.description,
        default=True,
        providers=["embedded:all-minilm (closed)"],
    )
    return EmbeddingModels(models=[info])


async def bare_list_embedding_models() -> EmbeddingModels:
    """The same result as Citadel's tool of this name, from a constant."""
    return RESULT


RESULT = same_result()


def serve_bare(port: int, *, json_response: bool = False) -> None:
    import uvicorn
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("bare", log_level="WARNING")
    server.add_tool(bare_list_embedding_models, name=TOOL)
    app = server.streamable_http_app(json_response=json_response)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def serve_endpoint(port: int) -> None:
    """Citadel's MCP endpoint in a plain Starlette app: the MCP face without the app's middleware."""
    import tempfile

    import uvicorn
    from starlette.applications import Starlette

    from citadel.mcp_server.http import MCPEndpoint
    from citadel.memory.database import create_engine, migrate
    from citadel.runtime.core import open_core
    from citadel.settings import Settings

    with tempfile.TemporaryDirectory(prefix="citadel-bench-") as data_dir:
        settings = Settings(_env_file=None, data_dir=Path(data_dir), log_level="warning")  # type: ignore[call-arg]

        async def migrated() -> None:
            engine = create_engine(settings)
            try:
                await migrate(engine)
            finally:
                await engine.dispose()

        asyncio.run(migrated())
        endpoint = MCPEndpoint(settings)

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            async with open_core(settings) as state, endpoint.serve(state):
                yield

        app = Starlette(routes=[endpoint.route()], lifespan=lifespan)
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


@contextlib.contextmanager
def child_serve(kind: str) -> Iterator[Server]:
    """`python -m benchmarks.mcp_roundtrip --serve KIND PORT` in a child process, until it answers."""
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.mcp_roundtrip", "--serve", kind, str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                detail = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"{' '.join(command)} exited: {detail[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"{url}/mcp", timeout=1)  # any answer means it listens
                break
            time.sleep(0.1)  # polling a child process: there is no event to wait on
        else:
            raise RuntimeError(f"{' '.join(command)} did not answer within 120 s")
        yield Server(url=url, pid=process.pid, command=" ".join(command))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


# --- measuring ----------------------------------------------------------------------------------
@dataclass
class Sample:
    calls: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def add(self, other: Sample) -> None:
        self.calls += other.calls
        self.seconds += other.seconds
        self.cpu += other.cpu
        self.latencies += other.latencies

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    @property
    def per_core(self) -> float:
        return self.calls / self.cpu if self.cpu else float("nan")

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def check(server: Server) -> dict[str, object]:
    """The tool's result through the SDK's own client (and that the server speaks 2026-07-28)."""
    async with Client(f"{server.url}/mcp") as client:
        assert client.protocol_version == PROTOCOL, client.protocol_version
        result = await client.call_tool(TOOL, {})
    assert not result.is_error, result
    return result.structured_content or {}


async def load(server: Server, concurrency: int, seconds: float) -> Sample:
    """`concurrency` clients calling the tool back to back for `seconds`."""
    serial = iter(range(1, 1 << 62))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, limits=limits, timeout=30) as http:

        async def one() -> float:
            body = {"jsonrpc": "2.0", "id": next(serial), "method": "tools/call",
                    "params": {"name": TOOL, "arguments": {}, "_meta": META}}  # fmt: skip
            started = time.perf_counter()
            response = await http.post("/mcp", content=json.dumps(body))
            answer = response.json()
            if response.status_code != 200 or "result" not in answer or answer["result"].get("isError"):
                raise RuntimeError(f"{server.command}: {response.status_code} {response.text[:300]}")
            return time.perf_counter() - started

        sample = Sample()

        async def client(until: float) -> None:
            while time.perf_counter() < until:
                sample.latencies.append(await one())
                sample.calls += 1

        await asyncio.gather(*(one() for _ in range(concurrency)))  # open the connections
        cpu_before = cpu_seconds(server.pid)
        started = time.perf_counter()
        await asyncio.gather(*(client(started + seconds) for _ in range(concurrency)))
        sample.seconds = time.perf_counter() - started
        sample.cpu = cpu_seconds(server.pid) - cpu_before
    return sample


LABELS = {
    "before": "Citadel: /mcp in the full app, the code of --before",
    "citadel": "Citadel: /mcp in the full app (citadel serve)",
    "endpoint": "Citadel's MCP endpoint alone, without the app's request pipeline",
    "bare-json": "bare mcp SDK server in JSON-response mode (a reference)",
    "bare": "bare mcp SDK server, same tool (the baseline)",
}


async def measure(servers: dict[str, Server], rounds: int, seconds: float) -> None:
    contenders = list(servers)
    results = {(name, c): Sample() for name in contenders for c in CONCURRENCY}
    for round_ in range(rounds):
        for concurrency in CONCURRENCY:
            order = contenders if round_ % 2 == 0 else contenders[::-1]
            for name in order:
                results[(name, concurrency)].add(await load(servers[name], concurrency, seconds))
    print(f"\n== {TOOL} over streamable HTTP ({PROTOCOL}), {rounds} rounds x {seconds:g} s each ==")
    for name in contenders:
        print(f"  {name:<10} {LABELS[name]}")
    print(f"{'server':<10}{'clients':>7}{'calls/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'calls/cpu-s':>13}")
    for concurrency in CONCURRENCY:
        for name in contenders:
            s = results[(name, concurrency)]
            print(
                f"{name:<10}{concurrency:>7}{s.rate:>10.0f}{s.percentile(0.5):>9.2f}{s.percentile(0.95):>9.2f}"
                f"{s.per_core:>13.0f}"
            )
    print("\nratios to bare (target: citadel >= 0.95x); calls/s per core = calls per CPU-second of the server")
    for concurrency in CONCURRENCY:
        bare = results[("bare", concurrency)]
        for name in contenders[:-1]:
            ours = results[(name, concurrency)]
            print(
                f"  {concurrency:>2} client(s), {name:<9}: calls/s {ours.rate / bare.rate:.2f}x, "
                f"per core {ours.per_core / bare.per_core:.2f}x ({ours.per_core:.0f} calls/s per core; target >= 300)"
            )
    against = {"bare-json": "the SDK answering in JSON, as Citadel answers this call", "before": "the --before code"}
    for other, what in against.items():
        if other in contenders:
            print(f"citadel against {other} ({what}), same run:")
            for concurrency in CONCURRENCY:
                ours, theirs = results[("citadel", concurrency)], results[(other, concurrency)]
                print(
                    f"  {concurrency:>2} client(s): calls/s {ours.rate / theirs.rate:.2f}x, "
                    f"per core {ours.per_core / theirs.per_core:.2f}x"
                )


async def run(rounds: int, seconds: float, before: Path | None) -> None:
    print(f"command: python -m benchmarks.mcp_roundtrip --rounds {rounds} --seconds {seconds:g}", end="")
    print(f" --before {before}" if before else "")
    print(f"machine: {os.cpu_count()} cores; servers and load generator share them")
    env = {"CITADEL_RATE_LIMIT_MCP": "1000000/second"}
    with contextlib.ExitStack() as stack:
        servers: dict[str, Server] = {}
        if before is not None:  # its `src/citadel` comes first on the path: its code, this environment
            servers["before"] = stack.enter_context(citadel_serve({**env, "PYTHONPATH": str(before / "src")}))
        servers["citadel"] = stack.enter_context(citadel_serve(env))
        servers["endpoint"] = stack.enter_context(child_serve("endpoint"))
        servers["bare-json"] = stack.enter_context(child_serve("bare-json"))
        servers["bare"] = stack.enter_context(child_serve("bare"))
        answers = {name: await check(server) for name, server in servers.items()}
        assert all(answer == answers["bare"] for answer in answers.values()), f"the tools differ: {answers}"
        print(f"same result from all {len(servers)} (checked with the SDK client): {json.dumps(answers['bare'])[:90]}…")
        await measure(servers, rounds, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--before", type=Path, help="another checkout whose code to serve as `before` too")
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        kind, port = args.serve
        serve = {"bare": serve_bare, "bare-json": partial(serve_bare, json_response=True), "endpoint": serve_endpoint}
        serve[kind](int(port))
        return
    before = args.before.resolve() if args.before else None
    asyncio.run(run(args.rounds, args.seconds, before))


if __name__ == "__main__":
    main()

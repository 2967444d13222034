"""Citadel against the servers a `langgraph.json` project also runs on, side by side in one run: the
same trivial graph (`examples/echo`: it answers each message with its own text, so the server is
what is measured) and the same client workload, through the official `langgraph-sdk`.

- Citadel on its embedded default (SQLite) and on PostgreSQL;
- `langgraph dev` (PyPI `langgraph-cli[inmem]`, `--n-jobs-per-worker 10`: without it, one run at a time);
- Aegra (PyPI `aegra-cli`, Python >= 3.12 provided by uv, on the local PostgreSQL).
The peers are installed by this script into throwaway environments under ~/.cache/citadel/peers (uv's
cache makes later runs quick); their code is never part of Citadel.

Rows: three workloads, each with 1, 8 and 32 concurrent clients (runs/s, p50 / p95 latency of a
run; `--runs` runs, and at least 20 a client): a stateless `runs.wait`; a stateless `runs.stream`
read to its end; a background run on a new thread (`threads.create`, `runs.create`, `runs.join`).
Then the time to the first event of `runs.stream` (one client), the server's CPU time per run (its
process tree, user + system, over each row) and the peak RSS of the server's process tree over the
whole workload.

    python -m benchmarks.peers [--runs 64] [--only citadel-sqlite,langgraph-dev]
    (PostgreSQL: CITADEL_TEST_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from langgraph_sdk import get_client

from benchmarks._server import citadel_serve, free_port
from tests.live_server import fresh_database

ROOT = Path(__file__).resolve().parents[1]
ECHO = ROOT / "examples" / "echo" / "langgraph.json"
PEERS = Path("~/.cache/citadel/peers").expanduser()
UV = os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")  # `uv run` sets UV
POSTGRES = os.environ.get("CITADEL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
INPUT = {"messages": [{"role": "user", "content": "ping"}]}
CLIENTS = (1, 8, 32)
RUNS_PER_CLIENT = 20


WORKLOADS = ("wait", "stream", "create + join")


@dataclass
class Row:
    name: str
    levels: dict[tuple[str, int], tuple[float, float, float]] = field(default_factory=dict)
    """(workload, clients) → (runs/s, p50 ms, p95 ms)"""
    cpu_ms: dict[tuple[str, int], float] = field(default_factory=dict)
    """(workload, clients) → the server's CPU time (its process tree, user + system) per run, ms"""
    first_event_ms: float = 0.0
    """runs.stream, one client: the median time to the first event"""
    peak_rss_mb: float = 0.0


def interpreter(version: str) -> str:
    """A Python of this version already on the machine (pyenv's, say), else the version for uv to provide."""
    for found in sorted(Path("~/.pyenv/versions").expanduser().glob(f"{version}.*/bin/python{version}")):
        return str(found)
    return version


def venv(name: str, python: str, packages: list[str]) -> Path:
    """A throwaway environment with `packages` (created once; uv's cache makes it quick)."""
    folder = PEERS / name
    marker = folder / ".installed"
    if not marker.exists():
        subprocess.run([UV, "venv", "-q", "--python", interpreter(python), str(folder)], check=True)
        subprocess.run([UV, "pip", "install", "-q", "--python", str(folder / "bin" / "python"), *packages], check=True)
        marker.touch()
    return folder / "bin"


def wait_healthy(url: str, process: subprocess.Popen[bytes], path: str, deadline: float = 300.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer {path} in {deadline} s")


@contextlib.contextmanager
def process_server(command: list[str], env: dict[str, str], cwd: Path, port: int, health: str) -> Iterator[str]:
    """A peer server in its own process group, stopped with it (children too) on exit."""
    log = (PEERS / f"{Path(command[0]).name}-{port}.log").open("wb")
    process = subprocess.Popen(
        command, env={**os.environ, **env}, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, health)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()


@contextlib.contextmanager
def citadel(postgres: bool) -> Iterator[tuple[str, int]]:
    env = {"CITADEL_CONFIG": str(ECHO), "CITADEL_BUILTIN_GRAPHS": "false"}
    with contextlib.ExitStack() as stack:
        if postgres:
            env["CITADEL_DATABASE_URL"] = stack.enter_context(fresh_database(POSTGRES))
        server = stack.enter_context(citadel_serve(env))
        yield server.url, server.pid


@contextlib.contextmanager
def langgraph_dev() -> Iterator[tuple[str, int]]:
    bin_dir = venv("langgraph-dev", "3.11", ["langgraph-cli[inmem]>=0.4"])
    port = free_port()
    command = [str(bin_dir / "langgraph"), "dev", "--config", str(ECHO), "--port", str(port), "--host", "127.0.0.1"]
    command += ["--no-browser", "--no-reload", "--n-jobs-per-worker", "10"]
    env = {"LANGSMITH_TRACING": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    with process_server(command, env, ECHO.parent, port, "/ok") as url:
        yield url, _pid_on(port)


@contextlib.contextmanager
def aegra() -> Iterator[tuple[str, int]]:
    bin_dir = venv("aegra", "3.12", ["aegra-cli"])
    port = free_port()
    with fresh_database(POSTGRES) as database:
        env = {"DATABASE_URL": database, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        command = [str(bin_dir / "aegra"), "serve", "--host", "127.0.0.1", "--port", str(port), "-c", str(ECHO)]
        with process_server(command, env, ECHO.parent, port, "/health") as url:
            yield url, _pid_on(port)


def _pid_on(port: int) -> int:
    for connection in psutil.net_connections("tcp"):
        if connection.laddr and connection.laddr.port == port and connection.status == psutil.CONN_LISTEN:
            assert connection.pid is not None
            return connection.pid
    raise RuntimeError(f"no process listens on {port}")


SERVERS: dict[str, Callable[[], contextlib.AbstractContextManager[tuple[str, int]]]] = {
    "citadel-sqlite": lambda: citadel(False),
    "citadel-postgres": lambda: citadel(True),
    "langgraph-dev": langgraph_dev,
    "aegra": aegra,
}


# --- workload -----------------------------------------------------------------------------------------
class PeakRSS:
    """The largest resident set of a process and its children, sampled every 50 ms; and their CPU time."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        # Up to uvicorn's reloader or a launcher of the same program, never to this benchmark's own
        # process (a Python too, like Citadel's server: its RSS, the load generator's, is not the server's).
        while (
            (parent := self.root.parent()) is not None
            and parent.pid != os.getpid()
            and parent.name() == self.root.name()
        ):
            self.root = parent
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            with contextlib.suppress(psutil.Error):
                processes = [self.root, *self.root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in processes))

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process tree so far (children that exited are in the root's
        `children_*` times once reaped)."""
        total = 0.0
        for process in [self.root, *self.root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        return total

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_wait(client: Any) -> None:
    answer: Any = await client.runs.wait(None, "echo", input=INPUT)
    assert answer["messages"][-1]["content"] == "echo: ping", answer


async def one_stream(client: Any, firsts: list[float] | None = None) -> None:
    """A stateless run streamed to its end; `firsts` collects the time to its first event."""
    started = time.perf_counter()
    parts = []
    async for part in client.runs.stream(None, "echo", input=INPUT, stream_mode="values"):
        if firsts is not None and not parts:
            firsts.append(time.perf_counter() - started)
        parts.append(part)
    values = [p.data for p in parts if p.event == "values"]
    assert values, parts
    assert values[-1]["messages"][-1]["content"] == "echo: ping", parts


async def one_create_join(client: Any) -> None:
    """A background run on a new thread, created, then joined."""
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "echo", input=INPUT)
    joined: Any = await client.runs.join(thread["thread_id"], run["run_id"])
    assert joined["messages"][-1]["content"] == "echo: ping", joined


ONE_RUN = {"wait": one_wait, "stream": one_stream, "create + join": one_create_join}


async def level(client: Any, workload: str, clients: int, total: int) -> tuple[float, float, float]:
    """`total` runs of `workload`, `clients` at a time: runs/s, p50 and p95 latency (ms)."""
    latencies: list[float] = []
    left = iter(range(total))
    one_run = ONE_RUN[workload]

    async def one_client() -> None:
        for _ in left:
            started = time.perf_counter()
            await one_run(client)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return total / elapsed, percentile(latencies, 0.5) * 1000, percentile(latencies, 0.95) * 1000


async def measure(name: str, url: str, runs: int, cpu_seconds: Callable[[], float]) -> Row:
    row = Row(name)
    async with get_client(url=url, timeout=120) as client:
        for one_run in ONE_RUN.values():  # warm up
            await one_run(client)
        for workload in WORKLOADS:
            for clients in CLIENTS:
                # At least 20 runs a client: with 32 clients, 96 runs were three waves, and their
                # ramps moved a server's CPU a run by a third from one pass to the next.
                total = max(runs, clients * RUNS_PER_CLIENT)
                cpu_before = cpu_seconds()
                row.levels[workload, clients] = await level(client, workload, clients, total)
                row.cpu_ms[workload, clients] = (cpu_seconds() - cpu_before) / total * 1000
        firsts: list[float] = []
        for _ in range(max(5, runs // 8)):
            await one_stream(client, firsts)
        row.first_event_ms = statistics.median(firsts) * 1000
    return row


def run_one(name: str, runs: int) -> Row | str:
    try:
        with SERVERS[name]() as (url, pid), PeakRSS(pid) as rss:
            row = asyncio.run(measure(name, url, runs, rss.cpu_seconds))
        row.peak_rss_mb = rss.peak / 2**20
        return row
    except Exception as error:  # a peer that does not install or start is reported, not fatal
        return f"{name}: {type(error).__name__}: {error}"


def table(rows: list[Row]) -> str:
    header = ["row", *(row.name for row in rows)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for workload in WORKLOADS:
        for clients in CLIENTS:
            cells = (f"{r.levels[workload, clients][0]:.1f} ({r.levels[workload, clients][1]:.0f} / "
                     f"{r.levels[workload, clients][2]:.0f})" for r in rows)  # fmt: skip
            label = f"runs.{workload}" if workload != "create + join" else "runs.create + runs.join (new thread)"
            lines.append(f"| {label}, {clients} client{'s' if clients > 1 else ''}: runs/s (p50 / p95 ms) | "
                         + " | ".join(cells) + " |")  # fmt: skip
    for workload in WORKLOADS:
        cells = (" / ".join(f"{r.cpu_ms[workload, c]:.1f}" for c in CLIENTS) for r in rows)
        lines.append(f"| server CPU per run, ms, {workload} (1 / 8 / 32 clients) | " + " | ".join(cells) + " |")
    lines.append(
        "| runs.stream: first event, ms (median, 1 client) | "
        + " | ".join(f"{r.first_event_ms:.0f}" for r in rows)
        + " |"
    )
    lines.append("| peak RSS, MB | " + " | ".join(f"{r.peak_rss_mb:.0f}" for r in rows) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", type=int, default=64, help="runs per workload and concurrency level (fewer = quicker)"
    )
    parser.add_argument("--only", default=",".join(SERVERS), help="comma-separated: " + ", ".join(SERVERS))
    args = parser.parse_args()
    PEERS.mkdir(parents=True, exist_ok=True)
    results = [run_one(name, args.runs) for name in args.only.split(",")]
    rows = [r for r in results if isinstance(r, Row)]
    for problem in (r for r in results if isinstance(r, str)):
        print(f"skipped {problem}")
    print(
        f"\n{args.runs} runs per workload and concurrency level, graph examples/echo, run id {uuid.uuid4().hex[:8]}\n"
    )
    print(table(rows))
    citadel_rows = [r for r in rows if r.name.startswith("citadel")]
    for peer in (r for r in rows if not r.name.startswith("citadel")):
        for mine in citadel_rows:
            for workload in WORKLOADS:
                ratios = ", ".join(
                    f"{c}: {mine.levels[workload, c][0] / peer.levels[workload, c][0]:.2f}x "
                    f"(p95 {mine.levels[workload, c][2] / peer.levels[workload, c][2]:.2f}x)"
                    for c in CLIENTS
                )
                print(f"{mine.name} / {peer.name} {workload} runs/s by clients: {ratios}")
            most = CLIENTS[-1]
            cpu = ", ".join(f"{w}: {mine.cpu_ms[w, most] / peer.cpu_ms[w, most]:.2f}x" for w in WORKLOADS)
            print(f"{mine.name} / {peer.name} server CPU per run at {most} clients (target <= 1): {cpu}")


if __name__ == "__main__":
    main()

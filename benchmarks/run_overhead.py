"""What the server costs around a graph: start-up time and idle memory, and server CPU per trivial run.

- start: `citadel serve` (embedded defaults, SQLite) from launch to its first `/health` answer, then
  its resident memory (VmRSS) after it has answered and sat idle a moment, no model used;
- CPU per run: RUNS runs of the `workflow` graph with one `embedding` step of one fixed text (a cache
  hit after the first run, so the run machinery is what is measured), CLIENTS in flight, each a
  `POST /threads/{id}/runs/wait` on a thread of its own (langgraph-sdk's `runs.wait`), on SQLite and
  on PostgreSQL. The server's CPU time (user + system, all threads, from /proc) over the runs,
  divided by the runs; the load generator runs in this process, so its CPU is not counted.
  Baseline, measured in the same run: the same graph invoked in this process through the Core the
  server opens (same checkpointer, same embedding cache), CPU per run.

    python -m benchmarks.run_overhead      (PostgreSQL: CITADEL_TEST_DATABASE_URL)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

from benchmarks._server import citadel_serve, cpu_seconds, free_port
from tests.live_server import fresh_database

DATABASE_URL = os.environ.get("CITADEL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
RUNS = int(os.environ.get("BENCH_RUNS", "300"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
WARMUP = 20
STEPS = {"steps": [{"type": "embedding", "text": "tides follow the moon"}]}
START_TARGET_S = 3.0
RSS_TARGET_MB = 250.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def measure_start() -> tuple[float, float]:
    """(seconds to the first /health answer, idle RSS in MB) of a fresh `citadel serve`."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="citadel-bench-") as data_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CITADEL_")}
        env.update(CITADEL_DATA_DIR=data_dir, CITADEL_HOST="127.0.0.1", CITADEL_PORT=str(port))
        env.update(CITADEL_LOG_LEVEL="warning")
        subprocess.run([sys.executable, "-m", "citadel.runtime.cli", "migrate"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        log = Path(data_dir) / "serve.log"
        started = time.perf_counter()
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "citadel.runtime.cli", "serve"], env=env,
                                       stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            with httpx.Client(timeout=2.0) as client:
                deadline = started + 180
                while time.perf_counter() < deadline:
                    if process.poll() is not None:
                        raise RuntimeError(f"citadel serve exited:\n{log.read_text()[-3000:]}")
                    with contextlib.suppress(httpx.TransportError):
                        if client.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                            break
                    time.sleep(0.02)  # polling a child process: no event to wait on
                else:
                    raise RuntimeError("citadel serve did not answer /health")
                seconds = time.perf_counter() - started
                time.sleep(3.0)  # idle: let start-up work (and any background loading) settle
                return seconds, rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(30)


async def _one_run(client: httpx.AsyncClient) -> float:
    thread = (await client.post("/threads", json={})).json()["thread_id"]
    started = time.perf_counter()
    response = await client.post(f"/threads/{thread}/runs/wait", json={"assistant_id": "workflow", "input": STEPS})
    response.raise_for_status()
    assert response.json()["status"] == "done", response.text
    return time.perf_counter() - started


async def _load(url: str, pid: int, runs: int) -> tuple[float, float, float]:
    """(server CPU ms per run, runs/s, p50 ms) for `runs` runs, CLIENTS at a time."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=120.0, limits=limits) as client:
        for _ in range(WARMUP):
            await _one_run(client)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(runs):
            queue.put_nowait(index)
        latencies: list[float] = []

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                latencies.append(await _one_run(client))

        cpu_before, started = cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu_before
    # The thread creation before each run is part of the measured CPU: subtract it, measured alone.
    return cpu * 1000 / runs, runs / elapsed, statistics.median(latencies) * 1000


async def _thread_cost(url: str, pid: int, count: int = 200) -> float:
    """Server CPU ms per `POST /threads` (the per-run thread the load makes), to subtract."""
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
        before = cpu_seconds(pid)
        for _ in range(count):
            (await client.post("/threads", json={})).raise_for_status()
        return (cpu_seconds(pid) - before) * 1000 / count


@contextlib.asynccontextmanager
async def _core(env: dict[str, str]) -> AsyncIterator[Any]:
    from citadel.runtime.core import open_core
    from citadel.settings import Settings

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        settings = Settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    async with open_core(settings, executes=False) as core:
        yield core


async def _raw(env: dict[str, str], runs: int) -> float:
    """CPU ms per run of the graph invoked in this process (same checkpointer, same cache)."""
    async with _core(env) as core:
        graph = core.registry.get("workflow").graph

        async def invoke() -> None:
            config = {"configurable": {"thread_id": str(uuid.uuid4()), "user_id": "anonymous"}}
            result = await graph.ainvoke(STEPS, config)
            assert result["status"] == "done"

        for _ in range(WARMUP):
            await invoke()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(runs):
            queue.put_nowait(index)

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                await invoke()

        before = time.process_time()
        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
        return (time.process_time() - before) * 1000 / runs


@contextlib.contextmanager
def backend(kind: str) -> Iterator[dict[str, str]]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="citadel-bench-raw-") as data_dir:
            yield {"CITADEL_DATA_DIR": data_dir}
        return
    with fresh_database(DATABASE_URL) as database_url:
        yield {"CITADEL_DATABASE_URL": database_url}


def run_cpu(kind: str) -> dict[str, float]:
    with backend(kind) as env, citadel_serve(env) as server:
        thread_ms = asyncio.run(_thread_cost(server.url, server.pid))
        per_run, rate, p50 = asyncio.run(_load(server.url, server.pid, RUNS))
    with backend(kind) as env:
        raw = asyncio.run(_raw(env, RUNS))
    return {"served": per_run - thread_ms, "thread": thread_ms, "rate": rate, "p50": p50, "raw": raw}


def main() -> None:
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    seconds, rss = measure_start()
    print(f"start-up: {seconds:.2f} s to the first /health answer (target <= {START_TARGET_S:g} s)")
    print(f"idle RSS: {rss:.0f} MB, no model used (target <= {RSS_TARGET_MB:g} MB)")
    for kind in ("sqlite", "postgres"):
        figures = run_cpu(kind)
        print(
            f"{kind}: server CPU per trivial run {figures['served']:.1f} ms (+{figures['thread']:.1f} ms per thread "
            f"created), graph in-process {figures['raw']:.1f} ms: {figures['served'] / figures['raw']:.2f}x; "
            f"{figures['rate']:.1f} runs/s with {CLIENTS} clients, p50 {figures['p50']:.1f} ms"
        )


if __name__ == "__main__":
    main()

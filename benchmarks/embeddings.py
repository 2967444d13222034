"""Embedding throughput: the model alone, then `/v1/embeddings` of a real `citadel serve` under load.

(a) baseline: `MiniLM.encode` in this process on batches of short texts, shaped as the ones wrk sends;
(b) `/v1/embeddings` with 32 concurrent clients, one distinct short text per request (the server's
    micro-batcher has to gather them into model batches); ratio (b)/(a), target >= 0.9;
(b') the same with 16 texts per request;
(c) the same with texts the server has already embedded (cache hits: the HTTP path alone);
(d) latency percentiles at half of (b)'s rate, open loop (requests sent on a fixed schedule).

(a), (b) and (c) alternate over a few rounds and the medians are compared, so a noisy neighbour
hurts them alike. The load generator of (b), (b') and (c) is Debian's `wrk` (installed with apt when
missing), one thread, with `embeddings.lua` building the request bodies: a C program, it takes about
0.1-0.3 ms of CPU a request from the cores the server uses (httpx in this process took 0.46 ms).
(d) needs requests on a schedule, which wrk does not send: httpx in this process. The server runs in
a child process; the CPU time each side used per text is printed too: it is steadier than
throughput on a busy machine. (c) is also given per server CPU-second (hits a core can serve).

    python -m benchmarks.embeddings [--rounds 3] [--seconds 4] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from benchmarks._server import Server, citadel_serve, cpu_seconds
from citadel.tools.minilm import MiniLM

MODEL = "all-minilm"
_VOCABULARY = """
system network model vector search query index server client request latency cache memory thread
process graph agent tool router backend batch token embedding document collection cluster replica
failover circuit breaker timeout retry budget signal metric trace log event stream channel voice
room message answer question river mountain forest garden kitchen window morning evening winter
summer quick slow bright quiet heavy light warm cold early late simple careful gentle rapid steady
"""
_WORDS = tuple(_VOCABULARY.split())


class Texts:
    """Distinct short sentences, never repeated within a run, shaped as `embeddings.lua` makes the
    server's: 8-12 words, then `{tag}-{serial}` (about 20 tokens in all). The model's cost grows with
    the tokens, so the baseline embeds texts of the same length as the server does: with a bare
    serial (about 15 tokens) it had a third fewer tokens a text than wrk's, and the ratio (b)/(a)
    came out about a fifth low."""

    def __init__(self, seed: int = 7, tag: str = "round9-1") -> None:
        self._random = random.Random(seed)
        self._serial = itertools.count()
        self._tag = tag  # as wrk's: its run's tag, then its thread's number

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        words = self._random.choices(_WORDS, k=self._random.randint(8, 12))
        return f"{' '.join(words)} {self._tag}-{next(self._serial)}"

    def take(self, n: int) -> list[str]:
        return [next(self) for _ in range(n)]


# --- (a) the model alone ------------------------------------------------------------------------
@dataclass
class Raw:
    texts_per_second: float
    cpu_ms_per_text: float


def model_throughput(model: MiniLM, texts: Texts, batch: int, seconds: float) -> Raw:
    """`MiniLM.encode` (tokenising included) on batches of `batch` short texts."""
    model.encode(texts.take(batch))  # warm-up
    done = 0
    cpu = time.process_time()
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.encode(texts.take(batch))
        done += batch
    elapsed = time.perf_counter() - started
    return Raw(done / elapsed, (time.process_time() - cpu) / done * 1000)


# --- (b), (c): closed-loop load from wrk ------------------------------------------------------
WRK_SCRIPT = Path(__file__).with_name("embeddings.lua")


def wrk_binary() -> str:
    """Debian's wrk, installed with apt when missing (as the Makefile's `chromium` target does)."""
    found = shutil.which("wrk")
    if found is None:
        subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "wrk"],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed and apt could not install it")
    return found


@dataclass
class Load:
    texts_per_second: float
    p50_ms: float
    p95_ms: float
    server_cpu_ms: float
    """Server CPU time per text (all its threads: HTTP and model)."""
    client_cpu_ms: float
    """wrk's CPU time per text."""
    mean_batch: float | None


def _batch_stats(server: Server) -> tuple[float, float]:
    """(sum, count) of the server's model-batch-size histogram."""
    text = httpx.get(f"{server.url}/metrics").text
    pattern = r'^citadel_embedding_batch_size_(sum|count)\{provider="embedded:all-minilm"\} (\S+)$'
    found = dict(re.findall(pattern, text, re.M))
    return float(found.get("sum", 0)), float(found.get("count", 0))


def closed_loop(
    server: Server, tag: str, concurrency: int, seconds: float, per_request: int = 1, distinct: int = 0
) -> Load:
    """wrk, one thread, `concurrency` keep-alive connections, each sending its next request (one
    text, or a list of `per_request`) as soon as the last one is answered. Texts are new to the
    server unless `distinct` > 0: then the same `distinct` texts come round again and again."""
    command = [
        wrk_binary(), "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
        "-s", str(WRK_SCRIPT), server.url, "--", tag, str(per_request), str(distinct),
    ]  # fmt: skip
    batch_before = _batch_stats(server)
    server_cpu = cpu_seconds(server.pid)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)  # wrk's own CPU time, from the kernel
    process.returncode = os.waitstatus_to_exitcode(status)
    server_cpu = cpu_seconds(server.pid) - server_cpu
    batch_after = _batch_stats(server)
    found = re.search(r"^WRK_RESULT (\d+) (\d+) (\d+) (\d+) (\d+)$", output, re.M)
    if process.returncode or found is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output}")
    requests, duration_us, errors, p50_us, p95_us = map(int, found.groups())
    if errors or not requests:
        raise RuntimeError(f"wrk saw {errors} failed requests of {requests}:\n{output}")
    done = requests * per_request
    calls = batch_after[1] - batch_before[1]
    client_cpu = usage.ru_utime + usage.ru_stime
    return Load(
        texts_per_second=done / (duration_us / 1e6),
        p50_ms=p50_us / 1000,
        p95_ms=p95_us / 1000,
        server_cpu_ms=server_cpu / done * 1000,
        client_cpu_ms=client_cpu / done * 1000,
        mean_batch=(batch_after[0] - batch_before[0]) / calls if calls else None,
    )


# --- (d): open-loop latency ---------------------------------------------------------------------
@asynccontextmanager
async def clients(server: Server, count: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One client with one keep-alive connection per simulated user."""
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(httpx.AsyncClient(base_url=server.url, timeout=30)) for _ in range(count)
        ]


async def _post(client: httpx.AsyncClient, text: str) -> float:
    started = time.perf_counter()
    response = await client.post("/v1/embeddings", json={"input": text, "model": MODEL})
    response.raise_for_status()
    return time.perf_counter() - started


async def open_loop(server: Server, texts: Texts, rate: float, seconds: float) -> tuple[list[float], float]:
    """Requests sent at `rate`/s on a fixed schedule, whatever the answers do; latency is counted
    from each request's scheduled time, so a server falling behind cannot hide it. Returns
    (latencies, achieved rate)."""
    async with clients(server, 64) as users:
        await asyncio.gather(*(_post(user, next(texts)) for user in users))  # warm-up: connect
        loop = asyncio.get_running_loop()
        latencies: list[float] = []

        async def one(user: httpx.AsyncClient, scheduled: float, text: str) -> None:
            response = await user.post("/v1/embeddings", json={"input": text, "model": MODEL})
            response.raise_for_status()
            latencies.append(loop.time() - scheduled)

        count = max(int(rate * seconds), 1)
        start = loop.time() + 0.05
        tasks = []
        for i in range(count):
            scheduled = start + i / rate
            await asyncio.sleep(max(0.0, scheduled - loop.time()))  # the schedule, not a wait for state
            tasks.append(asyncio.create_task(one(users[i % len(users)], scheduled, next(texts))))
        await asyncio.gather(*tasks)
        achieved = count / (loop.time() - start)
    return latencies, achieved


# --- the run ------------------------------------------------------------------------------------
@dataclass
class Figures:
    raw: dict[int, list[Raw]]
    loads: list[Load]
    lists: Load
    hits: list[Load]
    latencies: list[float]
    rate: float
    achieved: float
    tokens: float
    """Mean tokens a text of the baseline ([CLS] and [SEP] included)."""


def run(server: Server, args: argparse.Namespace) -> Figures:
    model = MiniLM()
    texts = Texts(seed=3)
    sample = Texts(seed=4).take(1000)
    tokens = sum(model.count_tokens(sample)) / len(sample)
    raw: dict[int, list[Raw]] = {32: [], 64: []}
    loads = []
    hits = []
    httpx.post(f"{server.url}/v1/embeddings", json={"input": "warm up", "model": MODEL}, timeout=60)  # loads the model
    closed_loop(server, "prime", args.concurrency, 3, distinct=64)  # the 64 texts of (c) are cached from here on
    for round_ in range(args.rounds):  # alternate, so noise from the neighbours falls on both
        for batch, results in raw.items():
            results.append(model_throughput(model, texts, batch, args.seconds / 2))
        loads.append(closed_loop(server, f"round{round_}", args.concurrency, args.seconds))
        hits.append(closed_loop(server, "prime", args.concurrency, args.seconds, distinct=64))
    del model
    lists = closed_loop(server, "lists", args.concurrency, args.seconds, per_request=16)
    rate = statistics.median(load.texts_per_second for load in loads) / 2
    latencies, achieved = asyncio.run(open_loop(server, texts, rate, args.seconds))
    return Figures(raw, loads, lists, hits, latencies, rate, achieved, tokens)


def _load_average() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _ms(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q) * 1000:.1f} ms"


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):6.0f} [{min(values):.0f}-{max(values):.0f}]"


def report(figures: Figures, args: argparse.Namespace, load_before: str) -> None:
    best = max(figures.raw, key=lambda b: statistics.median(r.texts_per_second for r in figures.raw[b]))
    baseline = statistics.median(r.texts_per_second for r in figures.raw[best])
    baseline_cpu = statistics.median(r.cpu_ms_per_text for r in figures.raw[best])
    loads, hits = figures.loads, figures.hits
    served = statistics.median(load.texts_per_second for load in loads)
    batches = [load.mean_batch for load in loads if load.mean_batch]
    hit_cpu = statistics.median(hit.server_cpu_ms for hit in hits)
    hit_client_cpu = statistics.median(hit.client_cpu_ms for hit in hits)
    print(
        f"Embeddings throughput: {MODEL} (embedded int8 ONNX), short texts of 8-12 words, "
        f"{figures.tokens:.1f} tokens a text in (a) and (b) alike, "
        f"{os.cpu_count()} cores; medians [range] of {args.rounds} alternating rounds; "
        f"load generator for (b), (b'), (c): wrk ({WRK_SCRIPT.name}), 1 thread; for (d): httpx in this process"
    )
    rows = [
        *[
            (f"(a) MiniLM.encode in-process, batch {b}", f"{_median([r.texts_per_second for r in rs])} texts/s")
            for b, rs in figures.raw.items()
        ],
        (
            f"(b) /v1/embeddings, {args.concurrency} clients, 1 text/request",
            f"{_median([load.texts_per_second for load in loads])} texts/s",
        ),
        (f"    ratio (b)/(a) [baseline: batch {best}]", f"{served / baseline:6.2f}   (target >= 0.9)"),
        ("    CPU ms per text: model alone (a)", f"{baseline_cpu:6.2f}"),
        (
            "    CPU ms per text: server / load generator (b)",
            f"{statistics.median(load.server_cpu_ms for load in loads):6.2f} / "
            f"{statistics.median(load.client_cpu_ms for load in loads):.2f}",
        ),
        ("    mean model batch in the server", f"{statistics.median(batches):6.1f}" if batches else "   n/a"),
        (
            "    latency p50 / p95 at full load",
            f"{statistics.median(load.p50_ms for load in loads):.1f} ms / "
            f"{statistics.median(load.p95_ms for load in loads):.1f} ms",
        ),
        (
            f"(b') /v1/embeddings, {args.concurrency} clients, 16 texts/request",
            f"{figures.lists.texts_per_second:6.0f} texts/s, ratio {figures.lists.texts_per_second / baseline:.2f}",
        ),
        (
            f"(c) /v1/embeddings, cache hits, {args.concurrency} clients",
            f"{_median([hit.texts_per_second for hit in hits])} texts/s",
        ),
        ("    CPU ms per text: server / load generator (c)", f"{hit_cpu:6.2f} / {hit_client_cpu:.2f}"),
        ("    cache hits per server CPU-second (per core)", f"{1000 / hit_cpu:6.0f}   (target >= 3000)"),
        (
            f"(d) open loop at {figures.rate:.0f} req/s (50% of b)",
            f"p50 {_ms(figures.latencies, 50)}, p95 {_ms(figures.latencies, 95)} ({figures.achieved:.0f} req/s sent)",
        ),
    ]
    for name, value in rows:
        print(f"  {name:<50} {value}")
    ceiling = baseline_cpu / (baseline_cpu + hit_cpu + hit_client_cpu)
    print(
        f"note: server and load generator share these cores. A request's HTTP path costs {hit_cpu:.2f} ms "
        f"(server) + {hit_client_cpu:.2f} ms (wrk) of CPU (c), beside the model's {baseline_cpu:.2f} ms "
        f"a text (a): CPU-bound, one-text requests can reach about {ceiling:.2f} of (a) "
        "here; (b') spreads that cost over 16 texts a request."
    )
    print(f"load average (1 min) before / after: {load_before} / {_load_average()}")
    print("command: python -m benchmarks.embeddings " + " ".join(sys.argv[1:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.embeddings", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds of (a) and (b).")
    parser.add_argument("--seconds", type=float, default=4.0, help="Seconds per measured phase.")
    parser.add_argument("--concurrency", type=int, default=32, help="Concurrent clients in (b) and (c).")
    args = parser.parse_args(argv)
    load_before = _load_average()
    with citadel_serve() as server:
        figures = run(server, args)
    report(figures, args, load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())

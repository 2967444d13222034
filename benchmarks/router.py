"""What Citadel's LLM router costs: a chat completion through it against the backend called directly.

Three paths to the same embedded model (SmolLM2 via llama.cpp), same messages shape, same
parameters (temperature 0, a few tokens):
- baseline: `EmbeddedLLM.stream` directly;
- `LLMRouter.stream`, with `model=auto` (semantic routing: one embedding of the user message) and
  with the model named (no classification);
- HTTP `POST /v1/chat/completions` (stream) to a real `citadel serve` in a child process.
Each call asks about a different topic, so no path profits from llama.cpp's prompt-prefix reuse
more than another; paths are interleaved, in rotating order, to spread the machine's noise.
Both processes run llama.cpp with the same thread count (1 by default: with the default of all
cores for prompt evaluation, one descheduled thread on a busy 2-core machine stalls the first token
by up to seconds, which would drown the figure measured here).

    python -m benchmarks.router [--repeats 16] [--max-tokens 16] [--llm-threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from benchmarks._server import Server, citadel_serve
from citadel.runtime.services import default_routes_file, open_services
from citadel.settings import Settings
from citadel.tools.embedded_chat import MODEL_NAME, EmbeddedLLM
from citadel.tools.llm_backends import EmbeddedBackend, GenerationParams
from citadel.tools.llm_router import AUTO, LLMRouter
from citadel.tools.semantic_router import SemanticRouter, load_routes

SYSTEM = "You are a helpful assistant. Answer in full sentences."
_TOPIC_TEXT = """
volcanoes glaciers tides comets bridges lighthouses bees owls coral deserts rivers canals windmills
libraries orchestras chess bicycles trains satellites telescopes compasses maps clocks bread cheese
tea coffee silk paper glass copper salt maple bamboo penguins whales wolves foxes otters falcons
spiders ants moss ferns tulips rainbows thunder snowflakes caves islands harbours markets castles
"""
TOPICS = tuple(_TOPIC_TEXT.split())
HTTP_PATH = "HTTP /v1/chat/completions (stream)"
TARGET_MS = 10.0
"""Streaming first token through HTTP at most this much after the router's own, in-process."""


def messages_for(index: int) -> list[BaseMessage]:
    topic = TOPICS[index % len(TOPICS)]
    return [SystemMessage(SYSTEM), HumanMessage(f"Tell me a long story about {topic}.")]


@dataclass
class Timing:
    first: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)


async def measure(chunks: AsyncIterator[str], timing: Timing, started: float) -> None:
    first: float | None = None
    count = 0
    async for text in chunks:
        if text and first is None:
            first = time.perf_counter() - started
        count += 1 if text else 0
    timing.first.append(first if first is not None else time.perf_counter() - started)
    timing.total.append(time.perf_counter() - started)
    timing.tokens.append(count)


Caller = Callable[[list[BaseMessage], Timing], Awaitable[None]]


def direct_path(llm: EmbeddedLLM, params: GenerationParams) -> Caller:
    async def run(messages: list[BaseMessage], timing: Timing) -> None:
        started = time.perf_counter()

        async def texts() -> AsyncIterator[str]:
            async for chunk in llm.stream(
                messages,
                max_tokens=params.max_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                stop=params.stop,
            ):
                yield chunk.text

        await measure(texts(), timing, started)

    return run


def router_path(router: LLMRouter, params: GenerationParams, model: str) -> Caller:
    async def run(messages: list[BaseMessage], timing: Timing) -> None:
        started = time.perf_counter()
        stream = await router.stream(messages, model=model, params=params)

        async def texts() -> AsyncIterator[str]:
            try:
                async for chunk in stream:
                    yield chunk.text
            finally:
                await stream.aclose()

        await measure(texts(), timing, started)

    return run


def http_path(client: httpx.AsyncClient, params: GenerationParams) -> Caller:
    async def run(messages: list[BaseMessage], timing: Timing) -> None:
        body = {
            "model": AUTO,
            "stream": True,
            "messages": [{"role": "system" if m.type == "system" else "user", "content": m.text} for m in messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        started = time.perf_counter()

        async def texts() -> AsyncIterator[str]:
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if line.startswith("data:") and line[5:].strip() != "[DONE]":
                        choices = json.loads(line[5:]).get("choices") or [{}]
                        yield choices[0].get("delta", {}).get("content") or ""

        await measure(texts(), timing, started)

    return run


async def run_all(server: Server, args: argparse.Namespace) -> dict[str, Timing]:
    params = GenerationParams(max_tokens=args.max_tokens, temperature=0.0, top_p=1.0)
    with tempfile.TemporaryDirectory(prefix="citadel-bench-") as data_dir:
        settings = Settings(
            data_dir=Path(data_dir),
            qdrant_url=None,
            redis_url=None,
            database_url=None,
            llm_servers=[],
            local_llm=True,
            local_llm_threads=args.llm_threads,
        )
        llm = EmbeddedLLM(
            settings.local_llm_path, context=settings.local_llm_context, threads=settings.local_llm_threads
        )
        try:
            async with (
                open_services(settings, llm=False) as services,
                httpx.AsyncClient(base_url=server.url, timeout=120) as client,
            ):
                # The router as `open_services` builds it, but around this process's model instance,
                # so the direct calls and the routed ones use the very same llama.cpp context.
                semantic = SemanticRouter(
                    load_routes(settings.llm_routes_file or default_routes_file()),
                    services.embeddings,
                    threshold=settings.llm_route_threshold,
                )
                await semantic.start()
                router = LLMRouter(settings, [EmbeddedBackend(llm)], semantic)
                await router.start()
                try:
                    paths: dict[str, Caller] = {
                        "direct (EmbeddedLLM.stream)": direct_path(llm, params),
                        "router, model=auto": router_path(router, params, AUTO),
                        f"router, model={MODEL_NAME}": router_path(router, params, MODEL_NAME),
                        HTTP_PATH: http_path(client, params),
                    }
                    return await _interleave(paths, args.repeats)
                finally:
                    await router.aclose()
        finally:
            llm.close()


async def _interleave(paths: dict[str, Caller], repeats: int) -> dict[str, Timing]:
    timings = {name: Timing() for name in paths}
    names = list(paths)
    call = 0
    for name in names:  # warm-up: one call each, not counted
        await paths[name](messages_for(call), Timing())
        call += 1
    for repeat in range(repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            await paths[name](messages_for(call), timings[name])
            call += 1
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.router", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=16, help="Measured calls per path.")
    parser.add_argument("--max-tokens", type=int, default=16, help="Tokens per answer (kept small).")
    parser.add_argument("--llm-threads", type=int, default=1, help="llama.cpp threads, both processes (0 = default).")
    args = parser.parse_args(argv)

    with citadel_serve(env={"CITADEL_LOCAL_LLM_THREADS": str(args.llm_threads)}) as server:
        timings = asyncio.run(run_all(server, args))

    base_name = next(iter(timings))
    base = timings[base_name]
    base_first, base_total = statistics.median(base.first), statistics.median(base.total)
    print(
        f"LLM router overhead: {MODEL_NAME} (embedded, llama.cpp threads={args.llm_threads}), "
        f"max_tokens={args.max_tokens}, temperature 0, "
        f"{args.repeats} calls per path (medians)"
    )
    header = ("path", "first token", "total", "tokens", "ratio 1st/total", "overhead 1st/total")
    print(f"  {header[0]:<36} {header[1]:>12} {header[2]:>10} {header[3]:>6} {header[4]:>15} {header[5]:>20}")
    for name, timing in timings.items():
        first, total = statistics.median(timing.first), statistics.median(timing.total)
        print(
            f"  {name:<36} {first * 1000:9.1f} ms {total * 1000:7.1f} ms {statistics.mean(timing.tokens):6.1f} "
            f"{first / base_first:7.2f} / {total / base_total:5.2f} "
            f"{(first - base_first) * 1000:+8.1f} / {(total - base_total) * 1000:+6.1f} ms"
        )
    print(f"  ratios and overheads are against the first row ({base_name})")
    routed = statistics.median(timings["router, model=auto"].first)
    served = statistics.median(timings[HTTP_PATH].first)
    verdict = "met" if served - routed <= TARGET_MS / 1000 else "MISSED"
    print(
        f"  HTTP first token vs the router in-process (model=auto): {(served - routed) * 1000:+.1f} ms"
        f" — target ≤ +{TARGET_MS:.0f} ms: {verdict}"
    )
    print("command: python -m benchmarks.router " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

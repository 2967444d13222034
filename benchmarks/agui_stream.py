"""AG-UI stream overhead (`python -m benchmarks.agui_stream`).

The app runs under uvicorn in this process (embedded defaults, a temporary data directory, a small
`docs` collection); in the same event loop and on the same graph objects, each trial runs one
question twice, alternating which goes first:
- baseline: the compiled graph's own `astream` (stream modes `updates` + `messages`, on the same
  checkpointer, a fresh thread), timed to its first item and to its first answer token;
- AG-UI: `POST /agui/{graph}` over real HTTP (a fresh thread), timed to its first event and to its
  first TEXT_MESSAGE_CONTENT, and its bytes on the wire (every SSE byte) against its payload (the
  text deltas, the tool calls' arguments and results, and the state sent).
For comparison, the thread/run API's `runs/stream` (messages-tuple) on the same question: both
faces accept a run the same way (its row committed before it starts), which is most of the gap.
Targets: the first delta ≤ the graph's first token + 10 ms (medians); wire bytes ≤ 3× the payload,
with text deltas sent one per token and batched (`CITADEL_AGUI_TEXT_BATCH_MS`); for contrast, the
same stream with ag-ui-langgraph's RAW events on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from langchain_core.messages import AIMessageChunk

from citadel.agents.tags import INTERNAL
from citadel.runtime.app import create_app
from citadel.settings import Settings
from tests.graphs.run_inputs import DOCS
from tests.live_server import migrate_database

QUESTION = "What do our documents say about solar panel efficiency?"
FIRST_DELTA_SLACK_MS = 10.0
MAX_AMPLIFICATION = 3.0


@dataclass
class Trial:
    first_event_ms: float = 0.0
    first_delta_ms: float = 0.0
    wire_bytes: int = 0
    payload_bytes: int = 0
    events: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


def payload_bytes(event: dict[str, Any]) -> int:
    """The bytes an AG-UI client needs of an event: text, tool arguments and results, state."""
    kind = event["type"]
    if kind == "TEXT_MESSAGE_CONTENT":
        return len(event["delta"].encode())
    if kind == "TOOL_CALL_ARGS":
        return len(event["delta"].encode())
    if kind == "TOOL_CALL_RESULT":
        return len(event["content"].encode())
    if kind == "STATE_SNAPSHOT":
        return len(json.dumps(event["snapshot"], separators=(",", ":")).encode())
    if kind == "STATE_DELTA":
        return len(json.dumps(event["delta"], separators=(",", ":")).encode())
    return 0


async def agui_trial(client: httpx.AsyncClient, graph: str, props: dict[str, Any] | None = None) -> Trial:
    body = {
        "threadId": str(uuid.uuid4()),
        "runId": str(uuid.uuid4()),
        "messages": [{"id": str(uuid.uuid4()), "role": "user", "content": QUESTION}],
        "state": {},
        "tools": [],
        "context": [],
        "forwardedProps": props or {},
    }
    trial = Trial()
    started = time.perf_counter()
    buffer = b""
    async with client.stream("POST", f"/agui/{graph}", json=body) as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            trial.wire_bytes += len(chunk)
            buffer += chunk
            *frames, buffer = buffer.split(b"\n\n")
            for frame in frames:
                if not frame.startswith(b"data: "):
                    continue
                event = json.loads(frame[6:])
                now = (time.perf_counter() - started) * 1000
                trial.events += 1
                trial.kinds[event["type"]] = trial.kinds.get(event["type"], 0) + 1
                if trial.events == 1:
                    trial.first_event_ms = now
                if event["type"] == "TEXT_MESSAGE_CONTENT" and not trial.first_delta_ms:
                    trial.first_delta_ms = now
                trial.payload_bytes += payload_bytes(event)
    return trial


async def rest_trial(client: httpx.AsyncClient, graph: str) -> Trial:
    """The thread/run API's stream on the same RunManager path, for comparison (thread made first)."""
    thread = (await client.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": graph, "input": {"messages": [{"role": "user", "content": QUESTION}]}}
    body["stream_mode"] = "messages-tuple"
    trial = Trial()
    started = time.perf_counter()
    async with client.stream("POST", f"/threads/{thread}/runs/stream", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            now = (time.perf_counter() - started) * 1000
            trial.events += 1
            if trial.events == 1:
                trial.first_event_ms = now
            data = json.loads(line[6:])
            if (
                not trial.first_delta_ms
                and isinstance(data, list)
                and data[0].get("type") == "AIMessageChunk"
                and data[0].get("content")
                and INTERNAL not in data[1].get("tags", [])
            ):
                trial.first_delta_ms = now
    return trial


async def baseline_trial(graph: Any, graph_name: str) -> Trial:
    config = {"configurable": {"thread_id": f"bench-{uuid.uuid4()}", "user_id": "anonymous"}}
    inputs = {"messages": [{"role": "user", "content": QUESTION}]}
    trial = Trial()
    started = time.perf_counter()
    async for mode, chunk in graph.astream(inputs, config, stream_mode=["updates", "messages"]):
        now = (time.perf_counter() - started) * 1000
        trial.events += 1
        if trial.events == 1:
            trial.first_event_ms = now
        if mode == "messages" and not trial.first_delta_ms:
            message, metadata = chunk
            if isinstance(message, AIMessageChunk) and message.text and INTERNAL not in metadata.get("tags", []):
                trial.first_delta_ms = now
    return trial


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def measure(trials: int, graph_name: str) -> int:
    with tempfile.TemporaryDirectory(prefix="citadel-bench-agui-") as data:
        settings = Settings(_env_file=None, data_dir=Path(data) / "data", llm_max_tokens=48, log_level="warning")  # type: ignore[call-arg]
        await migrate_database(settings)
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        deadline = time.monotonic() + 120
        while not server.started:
            if serving.done() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            await asyncio.sleep(0.05)
        try:
            port = server.servers[0].sockets[0].getsockname()[1]
            state = server.lifespan.state  # what the app's lifespan yielded: the same graphs
            graph = state["registry"].get(graph_name).graph
            app_settings: Settings = state["services"].settings
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
                await client.post("/v1/collections", json={"name": "docs", "model": "all-minilm"})
                documents = [{"id": d.id, "text": d.text, "metadata": d.metadata} for d in DOCS]
                await client.post("/v1/collections/docs/points", json={"documents": documents})
                await baseline_trial(graph, graph_name)  # warm up: models, caches, connections
                await agui_trial(client, graph_name)
                base: list[Trial] = []
                agui: list[Trial] = []
                for index in range(trials):
                    if index % 2:
                        agui.append(await agui_trial(client, graph_name))
                        base.append(await baseline_trial(graph, graph_name))
                    else:
                        base.append(await baseline_trial(graph, graph_name))
                        agui.append(await agui_trial(client, graph_name))
                rest = [await rest_trial(client, graph_name) for _ in range(trials)]
                batched: dict[float, Trial] = {}
                for batch_ms in (50.0, 100.0):
                    app_settings.agui_text_batch_ms = batch_ms
                    batched[batch_ms] = await agui_trial(client, graph_name)
                app_settings.agui_text_batch_ms = 0.0
                raw = await agui_trial(client, graph_name, {"emitRawEvents": True})
        finally:
            server.should_exit = True
            await serving
    return report(graph_name, trials, base, agui, rest, batched, raw)


def report(
    graph_name: str,
    trials: int,
    base: list[Trial],
    agui: list[Trial],
    rest: list[Trial],
    batched: dict[float, Trial],
    raw: Trial,
) -> int:
    base_event, base_delta = median([t.first_event_ms for t in base]), median([t.first_delta_ms for t in base])
    agui_event, agui_delta = median([t.first_event_ms for t in agui]), median([t.first_delta_ms for t in agui])
    wire, load = sum(t.wire_bytes for t in agui), sum(t.payload_bytes for t in agui)
    print(f"AG-UI stream vs the graph's own astream — graph {graph_name!r}, {trials} trials each (medians)")
    print(f"  first event:  astream {base_event:8.1f} ms   /agui {agui_event:8.1f} ms")
    print(
        f"  first delta:  astream {base_delta:8.1f} ms   /agui {agui_delta:8.1f} ms"
        f"   difference {agui_delta - base_delta:+.1f} ms (target ≤ +{FIRST_DELTA_SLACK_MS:.0f} ms)"
    )
    rest_delta = median([t.first_delta_ms for t in rest])
    print(
        f"  for comparison, the thread/run API's stream (same RunManager acceptance): first token "
        f"{rest_delta:.1f} ms ({rest_delta - base_delta:+.1f} ms)"
    )
    print(f"  events per AG-UI run: {median([t.events for t in agui]):.0f}  ({agui[-1].kinds})")
    print("  bytes on the wire vs payload (text + tool arguments/results + state), per run:")
    print(f"    one delta per token:  {wire / len(agui):8.0f} / {load / len(agui):6.0f} B = {wire / load:5.2f}×")
    ratios = {}
    for batch_ms, trial in batched.items():
        ratios[batch_ms] = trial.wire_bytes / trial.payload_bytes
        print(
            f"    deltas batched {batch_ms:3.0f} ms: {trial.wire_bytes:8d} / {trial.payload_bytes:6d} B = "
            f"{ratios[batch_ms]:5.2f}×  ({trial.kinds.get('TEXT_MESSAGE_CONTENT', 0)} text events)"
        )
    print(
        f"    with RAW events:      {raw.wire_bytes:8d} / {raw.payload_bytes:6d} B = "
        f"{raw.wire_bytes / raw.payload_bytes:5.2f}×"
    )
    delta_ok = agui_delta <= base_delta + FIRST_DELTA_SLACK_MS
    bytes_ok = min([wire / load, *ratios.values()]) <= MAX_AMPLIFICATION
    print(
        f"  first delta target: {'met' if delta_ok else 'MISSED'}; bytes target (≤ {MAX_AMPLIFICATION:.0f}×): "
        f"{'met' if bytes_ok else 'MISSED'}"
    )
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--graph", default="rag", choices=["rag", "assistant"])
    args = parser.parse_args()
    raise SystemExit(asyncio.run(measure(args.trials, args.graph)))


if __name__ == "__main__":
    main()

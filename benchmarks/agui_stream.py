"""AG-UI stream overhead (`python -m benchmarks.agui_stream`).

The app runs under uvicorn in this process (embedded defaults, a temporary data directory, a small
`docs` collection); in the same event loop and on the same graph objects, each trial runs one
question twice, alternating which goes first:
- baseline: the compiled graph's own `astream` (stream modes `updates` + `messages`, on the same
  checkpointer, a fresh thread), timed to its first item and to its first answer token;
- AG-UI: `POST /agui/{graph}` over real HTTP (a fresh thread, the default settings, httpx's default
  `Accept-Encoding`), timed to its first event and to its first TEXT_MESSAGE_CONTENT, and its bytes
  on the wire (as received, before decompression) against its payload (the text deltas, the tool
  calls' arguments and results, and the state sent).
The question is one the `assistant` graph's generalist answers by streaming it token by token (the
`rag` graph's answer is checked before it is sent, whole: `--graph rag`).
For comparison, the thread/run API's `runs/stream` (messages-tuple) on the same question, and the
same AG-UI run's bytes as they were before the stream was made lean (one TEXT_MESSAGE_CONTENT per
token, uncompressed), with each lever alone (the text window `CITADEL_AGUI_TEXT_BATCH_MS`,
compression), and with ag-ui-langgraph's RAW events on.
Targets: the first delta ≤ the graph's first token + 10 ms (medians); wire bytes ≤ 3× the payload
by default.
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
from langchain_core.messages import AIMessage, AIMessageChunk

from citadel.agents.tags import INTERNAL
from citadel.runtime.app import create_app
from citadel.settings import Settings
from tests.graphs.run_inputs import DOCS
from tests.live_server import migrate_database

QUESTIONS = {
    "assistant": "Hello! How are you today?",
    "rag": "What do our documents say about solar panel efficiency?",
}
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


async def agui_trial(
    client: httpx.AsyncClient, graph: str, props: dict[str, Any] | None = None, *, compressed: bool = True
) -> Trial:
    body = {
        "threadId": str(uuid.uuid4()),
        "runId": str(uuid.uuid4()),
        "messages": [{"id": str(uuid.uuid4()), "role": "user", "content": QUESTIONS[graph]}],
        "state": {},
        "tools": [],
        "context": [],
        "forwardedProps": props or {},
    }
    trial = Trial()
    started = time.perf_counter()
    buffer = b""
    headers = {} if compressed else {"accept-encoding": "identity"}
    async with client.stream("POST", f"/agui/{graph}", json=body, headers=headers) as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
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
        trial.wire_bytes = response.num_bytes_downloaded  # as received, before decompression
    return trial


async def rest_trial(client: httpx.AsyncClient, graph: str) -> Trial:
    """The thread/run API's stream on the same RunManager path, for comparison (thread made first)."""
    thread = (await client.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": graph, "input": {"messages": [{"role": "user", "content": QUESTIONS[graph]}]}}
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
                and data[0].get("type") in ("AIMessageChunk", "ai")  # a token, or an answer sent whole
                and data[0].get("content")
                and INTERNAL not in data[1].get("tags", [])
            ):
                trial.first_delta_ms = now
    return trial


async def baseline_trial(graph: Any, graph_name: str) -> Trial:
    config = {"configurable": {"thread_id": f"bench-{uuid.uuid4()}", "user_id": "anonymous"}}
    inputs = {"messages": [{"role": "user", "content": QUESTIONS[graph_name]}]}
    trial = Trial()
    started = time.perf_counter()
    async for mode, chunk in graph.astream(inputs, config, stream_mode=["updates", "messages"]):
        now = (time.perf_counter() - started) * 1000
        trial.events += 1
        if trial.events == 1:
            trial.first_event_ms = now
        if trial.first_delta_ms:
            continue
        if mode == "messages":
            message, metadata = chunk
            if isinstance(message, AIMessageChunk) and message.text and INTERNAL not in metadata.get("tags", []):
                trial.first_delta_ms = now
        elif any(_answers(update) for update in chunk.values()):  # an answer a node returns whole
            trial.first_delta_ms = now
    return trial


def _answers(update: Any) -> bool:
    messages = update.get("messages") if isinstance(update, dict) else None
    return any(isinstance(m, AIMessage) and m.text for m in messages or [])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def measure(trials: int, graph_name: str) -> int:
    with tempfile.TemporaryDirectory(prefix="citadel-bench-agui-") as data:
        # Runs are rate-limited per user (60 a minute by default), and a pass makes about five a
        # trial: the limit is raised so that more than a dozen trials are not refused (429). It is
        # still checked on every request.
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=Path(data) / "data",
            llm_max_tokens=48,
            log_level="warning",
            rate_limit_chat="100000/minute",
        )
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
                window_ms = app_settings.agui_text_batch_ms
                variants: dict[str, list[Trial]] = {}
                for name, window, compressed in (
                    ("before: one delta per token, uncompressed", 0.0, False),
                    (f"text window {window_ms:.0f} ms alone", window_ms, False),
                    ("compression alone", 0.0, True),
                ):
                    app_settings.agui_text_batch_ms = window
                    runs = [await agui_trial(client, graph_name, compressed=compressed) for _ in range(trials)]
                    variants[name] = runs
                app_settings.agui_text_batch_ms = window_ms
                variants["with RAW events"] = [await agui_trial(client, graph_name, {"emitRawEvents": True})]
        finally:
            server.should_exit = True
            await serving
    return report(graph_name, trials, window_ms, base, agui, rest, variants)


def amplification(trials: list[Trial]) -> str:
    wire, load = sum(t.wire_bytes for t in trials), sum(t.payload_bytes for t in trials)
    texts = median([t.kinds.get("TEXT_MESSAGE_CONTENT", 0) for t in trials])
    return f"{wire / len(trials):8.0f} / {load / len(trials):6.0f} B = {wire / load:5.2f}×  ({texts:.0f} text events)"


def report(
    graph_name: str,
    trials: int,
    window_ms: float,
    base: list[Trial],
    agui: list[Trial],
    rest: list[Trial],
    variants: dict[str, list[Trial]],
) -> int:
    base_event, base_delta = median([t.first_event_ms for t in base]), median([t.first_delta_ms for t in base])
    agui_event, agui_delta = median([t.first_event_ms for t in agui]), median([t.first_delta_ms for t in agui])
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
    print(f"    default (text window {window_ms:.0f} ms, compressed):  {amplification(agui)}")
    for name, runs in variants.items():
        print(f"    {name + ':':46s}{amplification(runs)}")
    wire, load = sum(t.wire_bytes for t in agui), sum(t.payload_bytes for t in agui)
    delta_ok = agui_delta <= base_delta + FIRST_DELTA_SLACK_MS
    bytes_ok = wire / load <= MAX_AMPLIFICATION
    print(
        f"  first delta target: {'met' if delta_ok else 'MISSED'}; "
        f"bytes target by default (≤ {MAX_AMPLIFICATION:.0f}×): {'met' if bytes_ok else 'MISSED'}"
    )
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=20, help="Runs of each kind (medians of a few ms need a score).")
    parser.add_argument("--graph", default="assistant", choices=sorted(QUESTIONS))
    args = parser.parse_args()
    raise SystemExit(asyncio.run(measure(args.trials, args.graph)))


if __name__ == "__main__":
    main()

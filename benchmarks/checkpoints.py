"""Checkpoint cost and storage growth (`python -m benchmarks.checkpoints`).

1. The same 20-super-step graph on the in-memory saver (baseline), SQLite and PostgreSQL: per-step
   latency p50/p95 and the ratio to the baseline. Target: PostgreSQL p50 ≤ 5 ms per super-step.
   SQLite twice: LangGraph's `AsyncSqliteSaver` (aiosqlite) and Citadel's embedded checkpointer
   (`memory/sqlite_checkpoints.py`: LangGraph's `SqliteSaver` on a thread of its own).
2. Storage: bytes of PostgreSQL checkpoint tables after 10, 100 and 500 turns of one conversation
   thread shaped like Citadel's graphs (messages accumulate); growth must be linear, ≤ 10 MB at 500.

PostgreSQL comes from CITADEL_BENCH_DATABASE_URL (default: this machine's test server); the
benchmark makes its own database and drops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from citadel.agents.state import Messages
from citadel.memory.sqlite_checkpoints import ThreadedSqliteSaver

STEPS = 20
TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")


class Counter(TypedDict):
    count: int
    note: str


def counting_graph() -> StateGraph[Any, Any, Any, Any]:
    graph = StateGraph(Counter)

    def step(state: Counter) -> dict[str, Any]:
        return {"count": state["count"] + 1, "note": f"step {state['count'] + 1}"}

    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", lambda s: END if s["count"] >= STEPS else "step")
    return graph


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


class DeltaChat(TypedDict):
    messages: Messages  # what Citadel's graphs use


def chat_graph(state: type[Any]) -> StateGraph[Any, Any, Any, Any]:
    graph = StateGraph(state)

    def reply(chat: Any) -> dict[str, Any]:
        asked = chat["messages"][-1].content
        return {"messages": [AIMessage(f"You said: {asked}. " + "A reply of ordinary length. " * 6)]}

    graph.add_node("reply", reply)
    graph.add_edge(START, "reply")
    graph.add_edge("reply", END)
    return graph


@asynccontextmanager
async def fresh_postgres(server_url: str) -> AsyncIterator[str]:
    name = f"citadel_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        admin = await asyncpg.connect(server_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def step_latencies(saver: BaseCheckpointSaver[Any], runs: int, durability: str) -> Steps:
    graph = counting_graph().compile(checkpointer=saver)
    latencies: list[float] = []
    cpu_before = time.process_time()
    for _ in range(runs):
        config = {"configurable": {"thread_id": str(uuid.uuid4())}}
        last = time.perf_counter()
        async for _update in graph.astream(
            {"count": 0, "note": ""}, config, stream_mode="updates", durability=durability
        ):  # type: ignore[call-overload]
            now = time.perf_counter()
            latencies.append(now - last)
            last = now
    return Steps(latencies, (time.process_time() - cpu_before) / len(latencies))


@dataclass
class Steps:
    latencies: list[float]
    cpu_seconds: float
    """This process's CPU time (all threads) a super-step."""


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def bench_steps(pg_url: str, runs: int) -> None:
    print(f"\n== per-super-step latency, {STEPS}-step graph, {runs} runs each ==")
    print(f"{'saver':<12}{'durability':<12}{'p50 ms':>9}{'p95 ms':>9}{'× memory':>10}{'CPU ms':>9}")
    with tempfile.TemporaryDirectory() as folder:
        for durability in ("async", "sync"):
            baseline = await step_latencies(InMemorySaver(), runs, durability)
            base_p50 = statistics.median(baseline.latencies)
            rows: list[tuple[str, Steps]] = [("memory", baseline)]
            async with AsyncSqliteSaver.from_conn_string(str(Path(folder) / f"{durability}.sqlite")) as sqlite:
                await sqlite.setup()
                rows.append(("aiosqlite", await step_latencies(sqlite, runs, durability)))
            async with ThreadedSqliteSaver.open(str(Path(folder) / f"{durability}-threaded.sqlite")) as threaded:
                rows.append(("sqlite", await step_latencies(threaded, runs, durability)))
            async with AsyncPostgresSaver.from_conn_string(pg_url) as postgres:
                await postgres.setup()
                rows.append(("postgresql", await step_latencies(postgres, runs, durability)))
            for name, steps in rows:
                p50, p95 = statistics.median(steps.latencies), percentile(steps.latencies, 95)
                print(
                    f"{name:<12}{durability:<12}{p50 * 1000:>9.2f}{p95 * 1000:>9.2f}{p50 / base_p50:>10.2f}"
                    f"{steps.cpu_seconds * 1000:>9.2f}"
                )


async def table_bytes(pg_url: str) -> tuple[int, int]:
    connection = await asyncpg.connect(pg_url)
    try:
        on_disk = await connection.fetchval(
            "select sum(pg_total_relation_size(quote_ident(t))) from unnest($1::text[]) as t", list(TABLES)
        )
        logical = await connection.fetchval(
            "select coalesce((select sum(pg_column_size(c.*)) from checkpoints c), 0)"
            " + coalesce((select sum(pg_column_size(b.*)) from checkpoint_blobs b), 0)"
            " + coalesce((select sum(pg_column_size(w.*)) from checkpoint_writes w), 0)"
        )
    finally:
        await connection.close()
    return int(on_disk), int(logical)


async def bench_growth(server_url: str, marks: tuple[int, ...]) -> None:
    print("\n== PostgreSQL bytes for one thread, by turns (one human + one AI message a turn) ==")
    print(f"{'messages channel':<26}{'turns':>6}{'on disk':>12}{'row bytes':>12}{'bytes/turn':>12}")
    for label, state in (("add_messages (LangGraph)", Chat), ("delta (Citadel graphs)", DeltaChat)):
        async with fresh_postgres(server_url) as pg_url, AsyncPostgresSaver.from_conn_string(pg_url) as saver:
            await saver.setup()
            graph = chat_graph(state).compile(checkpointer=saver)
            config = {"configurable": {"thread_id": "growth"}}
            baseline = (await table_bytes(pg_url))[1]
            turn = 0
            for mark in marks:
                while turn < mark:
                    turn += 1
                    await graph.ainvoke(
                        {"messages": [HumanMessage(f"Question number {turn} about the weather?")]}, config
                    )
                on_disk, logical = await table_bytes(pg_url)
                per_turn = (logical - baseline) / mark
                print(f"{label:<26}{mark:>6}{on_disk / 1e6:>10.2f}MB{logical / 1e6:>10.2f}MB{per_turn:>12.0f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    print("command: python -m benchmarks.checkpoints")
    async with fresh_postgres(args.database_url) as pg_url:
        await bench_steps(pg_url, args.runs)
    await bench_growth(args.database_url, (10, 100, 500))


if __name__ == "__main__":
    asyncio.run(main())

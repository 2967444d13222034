"""Creating a thread and claiming one for a run (`AppStore.create_thread`, `accept_run`), on both
backends: each refusal says why (someone else's thread is answered like a missing one, or refused
like one's own duplicate), nothing is written on refusal, and the usual case costs one statement:
the thread inserted if new, or claimed if the owner's and free (a read first, and on PostgreSQL a
BEGIN and a COMMIT around a lone INSERT, were round trips more)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from citadel.errors import Conflict, NotFound
from citadel.memory.app_store import AppStore, Run


@pytest.fixture
async def store(app_engine: AsyncEngine) -> AsyncIterator[AppStore]:
    async with AppStore(app_engine) as store:
        yield store


def _run(owner: str, thread_id: str, graph: str = "echo") -> Run:
    payload: dict[str, Any] = {"input": {"messages": []}}
    return Run(str(uuid.uuid4()), thread_id, graph, owner, "pending", payload, metadata={})


async def _accept(
    store: AppStore,
    owner: str,
    thread_id: str,
    thread: Literal["new", "if_missing", "existing"],
    title: str = "first words",
    **kw: Any,
) -> Run:
    run = _run(owner, thread_id, **kw)
    await store.accept_run(run, thread=thread, title=title)
    return run


async def _finish(store: AppStore, run: Run) -> None:
    claimed = await store.claim_run(run.run_id, "executor", 60)
    assert claimed is not None
    assert await store.finish_run(run.run_id, "executor", "success", thread_id=run.thread_id, thread_after="idle")


async def test_create_thread_new_duplicate_and_someone_elses(store: AppStore, statements: list[str]) -> None:
    made = await store.create_thread("ada", graph="echo", metadata={"k": 1})
    assert statements == ["INSERT"]
    assert (made.owner, made.graph, made.status, made.metadata) == ("ada", "echo", "idle", {"k": 1})
    assert await store.get_thread(made.thread_id, "ada") == made

    with pytest.raises(Conflict, match=f"thread {made.thread_id} already exists") as refused:
        await store.create_thread("ada", thread_id=made.thread_id)
    assert refused.value.param == "thread_id"
    same = await store.create_thread("ada", thread_id=made.thread_id, metadata={"k": 2}, if_exists="do_nothing")
    assert same == made  # the thread as it was: nothing written
    with pytest.raises(Conflict, match="already exists"):  # someone else's: refused all the same
        await store.create_thread("bob", thread_id=made.thread_id, if_exists="do_nothing")
    assert await store.get_thread(made.thread_id, "ada") == made


async def test_a_run_claims_the_owners_free_thread_in_one_statement(store: AppStore, statements: list[str]) -> None:
    thread = await store.create_thread("ada")
    statements.clear()
    first = await _accept(store, "ada", thread.thread_id, "existing")
    # The claim and the run's row: on PostgreSQL one statement (a data-modifying CTE, in autocommit),
    # on SQLite two in one transaction (one hop to its thread).
    assert statements == (["WITH"] if on_postgres(store) else ["UPDATE", "INSERT"])
    claimed = await store.get_thread(thread.thread_id, "ada")
    assert (claimed.status, claimed.graph, claimed.title) == ("busy", "echo", "first words")

    with pytest.raises(Conflict, match="already has a run in progress") as refused:
        await _accept(store, "ada", thread.thread_id, "existing")
    assert refused.value.param == "thread_id"
    await _finish(store, first)
    second = await _accept(store, "ada", thread.thread_id, "existing", title="other words")
    kept = await store.get_thread(thread.thread_id, "ada")
    assert (kept.status, kept.title) == ("busy", "first words")  # a title once given stays
    await _finish(store, second)

    with pytest.raises(Conflict, match="belongs to graph 'echo', not 'other'") as refused:
        await _accept(store, "ada", thread.thread_id, "existing", graph="other")
    assert refused.value.param == "assistant_id"
    with pytest.raises(NotFound, match=f"thread {thread.thread_id} not found"):  # someone else's: missing to bob
        await _accept(store, "bob", thread.thread_id, "existing")
    with pytest.raises(Conflict, match="already exists"):  # and refused like a duplicate when he would make it
        await _accept(store, "bob", thread.thread_id, "if_missing")
    with pytest.raises(NotFound, match="thread nowhere not found"):
        await _accept(store, "ada", "nowhere", "existing")

    assert (await store.get_thread(thread.thread_id, "ada")).status == "idle"  # refusals wrote nothing
    runs = await store.list_runs(thread.thread_id)
    assert {run.run_id for run in runs} == {first.run_id, second.run_id}


async def test_a_runs_end_releases_its_thread_in_one_statement_if_the_run_is_still_its_holders(
    store: AppStore, statements: list[str]
) -> None:
    thread = await store.create_thread("ada")
    run = await _accept(store, "ada", thread.thread_id, "existing")
    assert await store.claim_run(run.run_id, "executor", 60) is not None
    statements.clear()
    assert not await store.finish_run(run.run_id, "another", "success", thread_id=thread.thread_id, thread_after="idle")
    assert (await store.get_thread(thread.thread_id, "ada")).status == "busy"  # not the holder: nothing written
    assert (await store.get_run(run.run_id)).status == "running"
    statements.clear()
    assert await store.finish_run(
        run.run_id, "executor", "error", "boom", thread_id=thread.thread_id, thread_after="error"
    )
    assert statements == (["WITH"] if on_postgres(store) else ["UPDATE", "UPDATE"])
    ended = await store.get_run(run.run_id)
    assert (ended.status, ended.error, ended.lease_owner) == ("error", "boom", None)
    assert (await store.get_thread(thread.thread_id, "ada")).status == "error"
    assert not await store.finish_run(
        run.run_id, "executor", "success", thread_id=thread.thread_id, thread_after="idle"
    )
    assert (await store.get_thread(thread.thread_id, "ada")).status == "error"  # ended once


def on_postgres(store: AppStore) -> bool:
    return store.engine.dialect.name == "postgresql"


async def test_if_missing_makes_the_thread_or_claims_the_owners(store: AppStore) -> None:
    thread_id = str(uuid.uuid4())
    first = await _accept(store, "ada", thread_id, "if_missing")
    made = await store.get_thread(thread_id, "ada")
    assert (made.status, made.graph, made.title) == ("busy", "echo", "first words")
    await _finish(store, first)
    again = await _accept(store, "ada", thread_id, "if_missing")
    assert (await store.get_run(again.run_id)).thread_id == thread_id
    assert (await store.get_thread(thread_id, "ada")).status == "busy"

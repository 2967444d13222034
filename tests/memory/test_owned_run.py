"""`AppStore.get_owned_run`: the run endpoints' one read of a thread's run, on both backends, with the
same answers as reading the thread, then the run (the thread's NotFound first), from one statement."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from citadel.errors import NotFound
from citadel.memory.app_store import AppStore, Run


@pytest.fixture
async def store(app_engine: AsyncEngine) -> AsyncIterator[AppStore]:
    async with AppStore(app_engine) as store:
        yield store


async def _accepted(store: AppStore, owner: str) -> Run:
    run = Run(
        run_id=str(uuid.uuid4()),
        thread_id=str(uuid.uuid4()),
        graph="echo",
        owner=owner,
        status="pending",
        payload={"input": {"messages": []}},
        metadata={},
    )
    await store.accept_run(run, thread="new")
    return run


async def test_the_owners_run_of_the_thread(store: AppStore, statements: list[str]) -> None:
    ada = await _accepted(store, "ada")
    bob = await _accepted(store, "bob")
    assert ada.thread_id is not None
    assert bob.thread_id is not None

    statements.clear()
    found = await store.get_owned_run(ada.run_id, ada.thread_id, "ada")
    assert statements == ["SELECT"]
    assert (found.run_id, found.thread_id, found.owner) == (ada.run_id, ada.thread_id, "ada")
    assert (await store.get_owned_run(bob.run_id, bob.thread_id, None)).run_id == bob.run_id  # no owner filter

    with pytest.raises(NotFound, match=f"thread {bob.thread_id} not found") as refused:
        await store.get_owned_run(bob.run_id, bob.thread_id, "ada")  # someone else's thread
    assert refused.value.param == "thread_id"
    with pytest.raises(NotFound, match="thread nowhere not found"):
        await store.get_owned_run(ada.run_id, "nowhere", "ada")
    with pytest.raises(NotFound, match="run missing not found") as refused:
        await store.get_owned_run("missing", ada.thread_id, "ada")
    assert refused.value.param == "run_id"
    with pytest.raises(NotFound, match=f"run {bob.run_id} not found"):  # a run of another thread
        await store.get_owned_run(bob.run_id, ada.thread_id, None)

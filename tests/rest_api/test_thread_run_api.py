"""The official `langgraph-sdk` client, unchanged, against Citadel's thread/run API over real HTTP,
on SQLite (embedded default) and on the real PostgreSQL of this machine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from tests.live_server import LiveServer

HELLO = {"messages": [{"role": "user", "content": "Hello! How are you today?"}]}
SLOW_STEPS = [{"type": "llm_query", "prompt": f"Name one colour. ({i})", "max_tokens": 24} for i in range(4)]


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, make_settings: Any) -> Iterator[LiveServer]:
    overrides: dict[str, Any] = {"llm_max_tokens": 24}
    if request.param == "postgres":
        overrides["database_url"] = request.getfixturevalue("database_url")
    with LiveServer.start(make_settings(**overrides)) as live:
        yield live


@pytest.fixture
async def client(server: LiveServer) -> AsyncIterator[LangGraphClient]:
    client = get_client(url=server.url)
    try:
        yield client
    finally:
        await client.http.client.aclose()


async def test_assistants_are_the_graph_registry(client: LangGraphClient) -> None:
    found = await client.assistants.search()
    assert {a["assistant_id"] for a in found} >= {"assistant", "rag", "workflow"}
    assistant = await client.assistants.get("workflow")
    assert assistant["graph_id"] == "workflow"
    schemas = await client.assistants.get_schemas("workflow")
    assert "steps" in schemas["input_schema"]["properties"]
    with pytest.raises(NotFoundError):
        await client.assistants.get("nope")


async def test_thread_crud_and_search(client: LangGraphClient) -> None:
    thread = await client.threads.create(metadata={"topic": "colours", "n": 1})
    assert thread["status"] == "idle"
    fetched = await client.threads.get(thread["thread_id"])
    assert fetched["metadata"] == {"topic": "colours", "n": 1}
    await client.threads.update(thread["thread_id"], metadata={"n": 2})
    other = await client.threads.create(metadata={"topic": "shapes"})
    found = await client.threads.search(metadata={"topic": "colours"})
    assert [t["thread_id"] for t in found] == [thread["thread_id"]]
    assert (await client.threads.search(metadata={"n": 2}))[0]["thread_id"] == thread["thread_id"]
    await client.threads.delete(other["thread_id"])
    with pytest.raises(NotFoundError):
        await client.threads.get(other["thread_id"])
    with pytest.raises(ConflictError):
        await client.threads.create(thread_id=thread["thread_id"])


async def test_wait_then_state_and_history(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    values = await client.runs.wait(thread["thread_id"], "assistant", input=HELLO)
    assert isinstance(values, dict)
    messages = values["messages"]
    assert [m["type"] for m in messages] == ["human", "ai"]
    assert messages[1]["content"].strip()
    assert values["specialist"] == "generalist"

    state = await client.threads.get_state(thread["thread_id"])
    assert state["next"] == []
    assert len(state["values"]["messages"]) == 2
    history = await client.threads.get_history(thread["thread_id"])
    assert len(history) >= 3
    assert history[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    assert (await client.threads.get(thread["thread_id"]))["metadata"]["graph_id"] == "assistant"

    second = await client.runs.wait(
        thread["thread_id"], "assistant", input={"messages": [{"role": "user", "content": "Thanks!"}]}
    )
    assert [m["type"] for m in second["messages"]] == ["human", "ai", "human", "ai"]


async def test_durability_exit_writes_only_the_final_checkpoint(client: LangGraphClient, server: LiveServer) -> None:
    by_default = await client.threads.create()
    await client.runs.wait(by_default["thread_id"], "assistant", input=HELLO)
    written = len(await client.threads.get_history(by_default["thread_id"]))
    assert written >= 3  # `async`: the input's checkpoint and one per step

    at_exit = await client.threads.create()
    values = await client.runs.wait(at_exit["thread_id"], "assistant", input=HELLO, durability="exit")
    assert [m["type"] for m in values["messages"]] == ["human", "ai"]
    history = await client.threads.get_history(at_exit["thread_id"])
    assert len(history) < written  # the input and the end only, not each step
    assert history[0]["values"]["messages"][1]["content"] == values["messages"][1]["content"]

    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            f"/threads/{at_exit['thread_id']}/runs/wait",
            json={"assistant_id": "assistant", "input": HELLO, "durability": "never"},
        )
    assert response.status_code == 422
    assert "durability" in response.json()["error"]["message"]


@pytest.mark.parametrize("mode", ["values", "updates", "messages-tuple", "messages", "events"])
async def test_stream_modes(client: LangGraphClient, mode: str) -> None:
    thread = await client.threads.create()
    parts = [p async for p in client.runs.stream(thread["thread_id"], "assistant", input=HELLO, stream_mode=mode)]
    events = [p.event for p in parts]
    assert events[0] == "metadata"
    assert "error" not in events
    if mode == "values":
        assert parts[-1].data["messages"][-1]["type"] == "ai"
    elif mode == "updates":
        assert any("supervisor" in p.data for p in parts if p.event == "updates")
        assert any("generalist" in p.data for p in parts if p.event == "updates")
    elif mode == "messages-tuple":
        tokens = [
            p.data[0]["content"]
            for p in parts
            if p.event == "messages" and p.data[1].get("langgraph_node") == "generalist"
        ]
        assert len(tokens) > 2, "tokens stream one by one"
    elif mode == "messages":
        assert "messages/metadata" in events
        assert events.count("messages/partial") > 2
        assert "messages/complete" in events
    else:
        kinds = {p.data["event"] for p in parts if p.event == "events"}
        assert {"on_chain_start", "on_chat_model_stream", "on_chain_end"} <= kinds


async def test_background_run_join_and_busy_thread(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "workflow", input={"steps": SLOW_STEPS[:2]})
    assert run["status"] in ("pending", "running")
    with pytest.raises(ConflictError):
        await client.runs.create(thread["thread_id"], "workflow", input={"steps": SLOW_STEPS[:1]})
    result = await client.runs.join(thread["thread_id"], run["run_id"])
    assert result["status"] == "done"
    assert result["progress"]["completed"] == 2
    finished = await client.runs.get(thread["thread_id"], run["run_id"])
    assert finished["status"] == "success"
    assert [r["run_id"] for r in await client.runs.list(thread["thread_id"])] == [run["run_id"]]


async def test_interrupt_and_resume(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    steps = [
        {"type": "embedding", "text": "hello"},
        {"type": "llm_query", "prompt": "Say hi.", "max_tokens": 8, "approve": True},
    ]
    paused = await client.runs.wait(thread["thread_id"], "workflow", input={"steps": steps})
    assert paused["__interrupt__"][0]["value"]["type"] == "approval"
    assert (await client.threads.get(thread["thread_id"]))["status"] == "interrupted"
    state = await client.threads.get_state(thread["thread_id"])
    assert state["next"]
    assert state["interrupts"]
    done = await client.runs.wait(thread["thread_id"], "workflow", command={"resume": "approve"})
    assert done["status"] == "done"
    assert "__interrupt__" not in done
    assert (await client.threads.get(thread["thread_id"]))["status"] == "idle"


async def test_cancel_stops_a_background_run(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "workflow", input={"steps": SLOW_STEPS})
    await client.runs.cancel(thread["thread_id"], run["run_id"], wait=True)
    cancelled = await client.runs.get(thread["thread_id"], run["run_id"])
    assert cancelled["status"] == "interrupted"
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"].get("progress", {}).get("completed", 0) < len(SLOW_STEPS)
    assert (await client.threads.get(thread["thread_id"]))["status"] == "idle"
    # The thread is usable again.
    again = await client.runs.wait(thread["thread_id"], "workflow", input={"steps": SLOW_STEPS[:1]})
    assert again["status"] == "done"


async def test_time_travel_forks_from_a_past_checkpoint(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "assistant", input=HELLO)
    await client.runs.wait(
        thread["thread_id"], "assistant", input={"messages": [{"role": "user", "content": "Tell me a joke."}]}
    )
    history = await client.threads.get_history(thread["thread_id"], limit=50)
    after_first_turn = next(h for h in history if len(h["values"].get("messages", [])) == 2 and not h["next"])
    forked = await client.runs.wait(
        thread["thread_id"],
        "assistant",
        input={"messages": [{"role": "user", "content": "What is your name?"}]},
        checkpoint_id=after_first_turn["checkpoint"]["checkpoint_id"],
    )
    contents = [m["content"] for m in forked["messages"]]
    assert len(contents) == 4
    assert "Tell me a joke." not in contents


async def test_update_state(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "assistant", input=HELLO)
    await client.threads.update_state(thread["thread_id"], {"route_reason": "set by hand"})
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"]["route_reason"] == "set by hand"


async def test_stateless_runs(client: LangGraphClient) -> None:
    values = await client.runs.wait(None, "workflow", input={"steps": [{"type": "embedding", "text": "hi"}]})
    assert values["status"] == "done"
    parts = [
        p async for p in client.runs.stream(None, "workflow", input={"steps": [{"type": "embedding", "text": "x"}]})
    ]
    assert parts[-1].data["status"] == "done"
    assert await client.threads.search() == [], "a stateless run leaves no thread behind"


async def test_errors_have_the_right_status(client: LangGraphClient, server: LiveServer) -> None:
    # `runs.wait` reports HTTP errors as httpx's own; the other SDK calls raise typed errors.
    with pytest.raises(httpx.HTTPStatusError, match="thread 00000000-0000-0000-0000-000000000000 not found") as caught:
        await client.runs.wait("00000000-0000-0000-0000-000000000000", "assistant", input=HELLO)
    assert caught.value.response.status_code == 404
    thread = await client.threads.create()
    with pytest.raises(NotFoundError, match="unknown graph 'nope'"):
        await client.runs.create(thread["thread_id"], "nope", input=HELLO)
    with pytest.raises(UnprocessableEntityError):
        await client.runs.create(thread["thread_id"], "workflow", input={"steps": [{"type": "teleport"}]})
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            f"/threads/{thread['thread_id']}/runs/wait", json={"assistant_id": "workflow", "input": {"steps": []}}
        )
        assert response.status_code == 422
        assert "steps" in response.json()["error"]["message"]


async def test_disconnect_cancels_a_streamed_run(client: LangGraphClient, server: LiveServer) -> None:
    thread = await client.threads.create()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        body = {"assistant_id": "workflow", "input": {"steps": SLOW_STEPS}, "stream_mode": "updates"}
        async with http.stream("POST", f"/threads/{thread['thread_id']}/runs/stream", json=body) as response:
            run_id = response.headers["Content-Location"].rsplit("/", 1)[-1]
            async for line in response.aiter_lines():
                if line.startswith("event: updates"):
                    break  # leave after the first update: the client goes away
    with anyio.fail_after(30):
        await client.runs.join(thread["thread_id"], run_id)
    assert (await client.runs.get(thread["thread_id"], run_id))["status"] == "interrupted"


async def test_workflow_api(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        created = await http.post("/api/v1/workflows", json={"steps": SLOW_STEPS[:2]})
        assert created.status_code == 202, created.text
        workflow = created.json()
        assert workflow["status"] in ("pending", "running")
        join = await http.get(f"/threads/{workflow['thread_id']}/runs/{workflow['workflow_id']}/join")
        assert join.status_code == 200
        done = (await http.get(f"/api/v1/workflows/{workflow['workflow_id']}")).json()
        assert done["status"] == "completed"
        assert done["progress"]["completed"] == 2
        assert len(done["results"]) == 2
        bad = await http.post("/api/v1/workflows", json={"steps": [{"type": "teleport"}]})
        assert bad.status_code == 422
        missing = await http.get("/api/v1/workflows/nope")
        assert missing.status_code == 404

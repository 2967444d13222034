"""The AG-UI endpoints over real HTTP, the stream parsed with ag-ui-protocol's types: the order and
balance of events, state deltas that apply as JSON Patch, tool-call cards, interrupt → resume,
the thread shared with the REST API, 404/409/422 before streaming, RUN_ERROR mid-stream with the
thread still usable, a disconnect cancelling the run, and history restored after a restart on
PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from ag_ui.core import EventType
from langchain_core.messages import AIMessage

from citadel.agents.deps import AgentDeps
from citadel.agents.supervisor import Supervisor
from citadel.core.services import Services
from citadel.memory.app_store import AppStore
from citadel.memory.database import create_engine
from citadel.settings import Settings
from tests.agents.scripted_model import ScriptedChatModel, tool_call
from tests.graphs.run_inputs import DOCS
from tests.live_server import LiveServer
from tests.ui_bridge.agui_client import Stream, post_run, run_input, user

QUESTION = "What do our documents say about solar panel efficiency?"
HELLO = "Hello! How are you today?"
SLOW_STEPS = [{"type": "llm_query", "prompt": f"Name one colour. ({i})", "max_tokens": 24} for i in range(6)]
DEADLINE = 60.0


def ingest(url: str) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        client.post("/v1/collections", json={"name": "docs", "model": "all-minilm"}).raise_for_status()
        documents = [{"id": d.id, "text": d.text, "metadata": d.metadata} for d in DOCS]
        client.post("/v1/collections/docs/points", json={"documents": documents}).raise_for_status()


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("agui") / "data"
    # Generative answers: the researcher's LLM call (its prompt holds the passages) outlasts the
    # 0.3-s ping interval, and its checked answer is what the faces get.
    return Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=data, llm_max_tokens=16, agui_ping_seconds=0.3, answer_mode="generative"
    )


@pytest.fixture(scope="module")
def server(module_settings: Settings) -> Iterator[LiveServer]:
    with LiveServer.start(module_settings) as live:
        ingest(live.url)
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        yield http


def wait_for(check: Any, what: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def assert_well_formed(stream: Stream) -> None:
    """RUN_STARTED first, one terminal event last; steps, text messages and tool calls balanced."""
    assert stream.status == 200, stream.body
    assert stream.types[0] == EventType.RUN_STARTED
    assert stream.types[-1] in (EventType.RUN_FINISHED, EventType.RUN_ERROR)
    assert sum(t in (EventType.RUN_FINISHED, EventType.RUN_ERROR) for t in stream.types) == 1
    step: str | None = None
    open_texts: set[str] = set()
    calls: dict[str, str] = {}
    for event in stream.events:
        kind = event.type
        if kind == EventType.STEP_STARTED:
            assert step is None, f"step {event.step_name} started inside {step}"  # type: ignore[attr-defined]
            step = event.step_name  # type: ignore[attr-defined]
        elif kind == EventType.STEP_FINISHED:
            assert event.step_name == step  # type: ignore[attr-defined]
            step = None
        elif kind == EventType.TEXT_MESSAGE_START:
            open_texts.add(event.message_id)  # type: ignore[attr-defined]
        elif kind == EventType.TEXT_MESSAGE_CONTENT:
            assert event.message_id in open_texts  # type: ignore[attr-defined]
        elif kind == EventType.TEXT_MESSAGE_END:
            open_texts.remove(event.message_id)  # type: ignore[attr-defined]
        elif kind == EventType.TOOL_CALL_START:
            calls[event.tool_call_id] = "started"  # type: ignore[attr-defined]
        elif kind == EventType.TOOL_CALL_ARGS:
            assert calls[event.tool_call_id] == "started"  # type: ignore[attr-defined]
        elif kind == EventType.TOOL_CALL_END:
            assert calls[event.tool_call_id] == "started"  # type: ignore[attr-defined]
            calls[event.tool_call_id] = "ended"  # type: ignore[attr-defined]
        elif kind == EventType.TOOL_CALL_RESULT:
            assert calls[event.tool_call_id] == "ended"  # type: ignore[attr-defined]
    if stream.types[-1] == EventType.RUN_FINISHED:
        assert step is None
        assert not open_texts
        assert all(v == "ended" for v in calls.values())


def test_the_agents_are_described(client: httpx.Client) -> None:
    listed = client.get("/agui").json()["agents"]
    assert {a["name"] for a in listed} >= {"assistant", "rag", "workflow"}
    assistant = client.get("/agui/assistant").json()
    assert assistant["url"].endswith("/agui/assistant")
    assert {"specialist", "route_reason", "sources", "sections", "progress"} <= set(assistant["state_keys"])
    assert "messages" in assistant["input_schema"]["properties"]
    assert client.get("/agui/nope").status_code == 404


def test_a_researched_answer_streams_with_its_search_card_and_state_deltas(client: httpx.Client) -> None:
    thread = str(uuid.uuid4())
    stream = post_run(client, "assistant", run_input(thread, [user(QUESTION)]))
    assert_well_formed(stream)
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["x-accel-buffering"] == "no"
    assert "no-cache" in stream.headers["cache-control"]
    assert stream.headers["content-encoding"] == "gzip", "httpx accepts gzip: the events are compressed"
    assert stream.comments, "keep-alive pings"
    assert all(c.startswith(": ping") for c in stream.comments)

    steps = [e.step_name for e in stream.of(EventType.STEP_STARTED)]
    assert steps == ["supervisor", "researcher_retrieve", "researcher_answer"]
    names = [e.tool_call_name for e in stream.of(EventType.TOOL_CALL_START)]
    assert names == ["route_to_specialist", "search_documents"]
    search = stream.of(EventType.TOOL_CALL_RESULT)[1]
    assert '"id":"solar-101"' in search.content
    assert EventType.RAW not in stream.types, "no RAW events unless asked"
    assert EventType.MESSAGES_SNAPSHOT not in stream.types, "the client already has every message"
    assert len(stream.of(EventType.STATE_SNAPSHOT)) == 0, "the client sent its state: deltas only"

    (start,) = stream.of(EventType.TEXT_MESSAGE_START)
    # The researcher's answer is sent whole once its citations are checked (only ids it retrieved).
    assert len(stream.of(EventType.TEXT_MESSAGE_CONTENT)) == 1, "the checked answer, whole"
    values = client.get(f"/threads/{thread}/state").json()["values"]
    answer = values["messages"][-1]
    assert stream.text(start.message_id) == answer["content"], "streamed text = the answer in the thread"
    assert answer["id"] == start.message_id

    state = stream.state({})  # the deltas apply cleanly to the (empty) state the client sent
    assert state["specialist"] == values["specialist"] == "researcher"
    assert state["sources"] == values["sources"]
    assert state["sources"][0]["id"] == "solar-101"
    assert "passages" not in state
    assert "messages" not in state


def test_a_second_turn_on_the_thread_and_the_thread_over_rest(client: httpx.Client) -> None:
    thread = str(uuid.uuid4())
    first_message = user(HELLO)
    first = post_run(client, "assistant", run_input(thread, [first_message]))
    assert_well_formed(first)
    (answer,) = first.of(EventType.TEXT_MESSAGE_START)
    # With the default text window (CITADEL_AGUI_TEXT_BATCH_MS) the first delta goes at once and
    # the following ones as they come, joined when they come within the window: the answer still
    # streams, it is not sent whole.
    assert len(first.of(EventType.TEXT_MESSAGE_CONTENT)) > 1, "the generalist's answer streams"
    history = [first_message, {"id": answer.message_id, "role": "assistant", "content": first.text(answer.message_id)}]
    # Echoed cards (display-only) must not enter the graph's state.
    card = first.of(EventType.TOOL_CALL_START)[0]
    history.insert(1, {"id": card.parent_message_id, "role": "assistant", "toolCalls": []})
    second = post_run(client, "assistant", run_input(thread, [*history, user("Tell me a joke")]))
    assert_well_formed(second)
    assert EventType.MESSAGES_SNAPSHOT not in second.types

    thread_info = client.get(f"/threads/{thread}").json()
    assert thread_info["metadata"]["graph_id"] == "assistant"
    assert thread_info["status"] == "idle"
    assert [m["type"] for m in thread_info["values"]["messages"]] == ["human", "ai", "human", "ai"]
    runs = client.get(f"/threads/{thread}/runs").json()
    assert [r["status"] for r in runs] == ["success", "success"]
    assert all(r["metadata"]["source"] == "ag-ui" for r in runs)

    # Continued over REST, then restored over AG-UI with all six messages.
    client.post(
        f"/threads/{thread}/runs/wait",
        json={"assistant_id": "assistant", "input": {"messages": [{"role": "user", "content": "Thanks!"}]}},
    ).raise_for_status()
    restored = post_run(client, "assistant", run_input(thread))
    assert restored.types == [
        EventType.RUN_STARTED,
        EventType.STATE_SNAPSHOT,
        EventType.MESSAGES_SNAPSHOT,
        EventType.RUN_FINISHED,
    ]
    (snapshot,) = restored.of(EventType.MESSAGES_SNAPSHOT)
    conversation = [m for m in snapshot.messages if not m.id.startswith("citadel-ui-")]
    assert [m.role for m in conversation] == ["user", "assistant"] * 3
    assert conversation[4].content == "Thanks!"


def test_a_client_that_does_not_accept_gzip_gets_the_same_stream_uncompressed(client: httpx.Client) -> None:
    plain = post_run(
        client, "assistant", run_input(str(uuid.uuid4()), [user(HELLO)]), headers={"accept-encoding": "identity"}
    )
    assert_well_formed(plain)
    assert "content-encoding" not in plain.headers
    (answer,) = plain.of(EventType.TEXT_MESSAGE_START)
    assert plain.text(answer.message_id).strip(), "the answer, uncompressed"


def test_raw_events_only_when_asked(client: httpx.Client) -> None:
    steps = [{"type": "embedding", "text": "hello"}]
    lean = post_run(client, "workflow", run_input(str(uuid.uuid4()), state={"steps": steps}))
    raw = post_run(
        client, "workflow", run_input(str(uuid.uuid4()), state={"steps": steps}, forwardedProps={"emitRawEvents": True})
    )
    assert_well_formed(lean)
    assert_well_formed(raw)
    assert EventType.RAW not in lean.types
    assert EventType.RAW in raw.types
    # The step card leaves the embedding vectors out; so does the state.
    (result,) = lean.of(EventType.TOOL_CALL_RESULT)
    assert '"dims":384' in result.content
    assert "vectors" not in result.content
    assert "vectors" not in str(lean.state({"steps": steps}))


def test_an_interrupt_reaches_the_client_and_its_answer_resumes_the_run(client: httpx.Client) -> None:
    thread = str(uuid.uuid4())
    steps = [{"type": "embedding", "text": "hello"}, {"type": "vector_search", "query": "solar", "approve": True}]
    paused = post_run(client, "workflow", run_input(thread, state={"steps": steps}))
    assert_well_formed(paused)
    finished = paused.events[-1]
    assert finished.outcome.type == "interrupt"  # type: ignore[attr-defined]
    (request,) = finished.outcome.interrupts  # type: ignore[attr-defined]
    assert request.metadata["langgraph"]["raw"]["type"] == "approval"
    assert "approval" in request.message
    state = paused.state({"steps": steps})  # the deltas patch the state the client sent
    assert state["progress"]["completed"] == 1
    assert client.get(f"/threads/{thread}").json()["status"] == "interrupted"

    # A reloaded page sees the pending approval again; a new run without an answer runs nothing.
    again = post_run(client, "workflow", run_input(thread, state=state))
    assert again.events[-1].outcome.interrupts[0].id == request.id  # type: ignore[attr-defined]

    answer = [{"interruptId": request.id, "status": "resolved", "payload": "approve"}]
    resumed = post_run(client, "workflow", run_input(thread, state=state, resume=answer))
    assert_well_formed(resumed)
    assert resumed.events[-1].outcome is None or resumed.events[-1].outcome.type == "success"  # type: ignore[attr-defined]
    final = resumed.state(state)
    assert final["status"] == "done"
    assert final["progress"]["completed"] == 2
    assert [e.tool_call_name for e in resumed.of(EventType.TOOL_CALL_START)] == ["workflow_vector_search"]

    rejected_thread = str(uuid.uuid4())
    paused = post_run(client, "workflow", run_input(rejected_thread, state={"steps": steps}))
    (request,) = paused.events[-1].outcome.interrupts  # type: ignore[attr-defined]
    legacy = {"command": {"resume": "reject"}}  # CopilotKit's older channel
    rejected = post_run(client, "workflow", run_input(rejected_thread, forwardedProps=legacy))
    assert rejected.state(paused.state({"steps": steps}))["status"] == "rejected"


def test_requests_are_refused_before_streaming(client: httpx.Client, module_settings: Settings) -> None:
    missing = client.post("/agui/assistant", json={"threadId": "t", "messages": []})
    assert missing.status_code == 422
    assert missing.json()["error"]["param"] == "runId"
    bad_message = client.post("/agui/assistant", json=run_input("t", [{"id": "m", "role": "user"}]))
    assert bad_message.status_code == 422
    assert bad_message.json()["error"]["param"].startswith("messages.0")
    bad_step = post_run(client, "workflow", run_input(str(uuid.uuid4()), state={"steps": [{"type": "bogus"}]}))
    assert bad_step.status == 422
    assert '"param":"steps.0"' in bad_step.body
    assert post_run(client, "nope", run_input("t", [user(HELLO)])).status == 404

    # Someone else's thread answers as if it did not exist.
    other = str(uuid.uuid4())

    async def create_elsewhere() -> None:
        engine = create_engine(module_settings)
        try:
            async with AppStore(engine) as store:
                await store.create_thread("someone-else", thread_id=other, graph="assistant")
        finally:
            await engine.dispose()

    asyncio.run(create_elsewhere())
    refused = post_run(client, "assistant", run_input(other, [user(HELLO)]))
    assert refused.status == 404
    assert f"thread {other} not found" in refused.body

    # A thread of another graph, and a busy thread, are conflicts.
    thread = client.post("/threads", json={"graph_id": "workflow"}).json()["thread_id"]
    assert post_run(client, "assistant", run_input(thread, [user(HELLO)])).status == 409
    run = client.post(f"/threads/{thread}/runs", json={"assistant_id": "workflow", "input": {"steps": SLOW_STEPS}})
    busy = post_run(client, "workflow", run_input(thread, state={"steps": SLOW_STEPS[:1]}))
    assert busy.status == 409
    assert "run in progress" in busy.body
    client.post(f"/threads/{thread}/runs/{run.json()['run_id']}/cancel?wait=true")


def test_a_graph_failure_is_a_run_error_and_the_thread_stays_usable(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: Supervisor, text: str, *, use_llm: bool = True) -> Any:
        raise RuntimeError("the supervisor broke")

    thread = str(uuid.uuid4())
    with monkeypatch.context() as patch:
        patch.setattr(Supervisor, "decide", broken)
        failed = post_run(client, "assistant", run_input(thread, [user(HELLO)]))
    assert_well_formed(failed)
    assert failed.types[-1] == EventType.RUN_ERROR
    assert "the supervisor broke" in failed.events[-1].message  # type: ignore[attr-defined]
    assert [r["status"] for r in client.get(f"/threads/{thread}/runs").json()] == ["error"]

    retried = post_run(client, "assistant", run_input(thread, [user("Tell me a joke")]))
    assert_well_formed(retried)
    assert retried.types[-1] == EventType.RUN_FINISHED
    assert client.get(f"/threads/{thread}").json()["status"] == "idle"


def test_a_disconnect_cancels_the_run(client: httpx.Client) -> None:
    thread = str(uuid.uuid4())
    partial = post_run(
        client, "workflow", run_input(thread, state={"steps": SLOW_STEPS}), stop_after=EventType.STEP_STARTED
    )
    assert partial.types == [EventType.RUN_STARTED, EventType.STEP_STARTED]

    def cancelled() -> bool:
        runs = client.get(f"/threads/{thread}/runs").json()
        return bool(runs) and runs[0]["status"] == "interrupted"

    wait_for(cancelled, "the run to be cancelled")
    values = wait_for(lambda: client.get(f"/threads/{thread}").json(), "the thread")
    assert values["status"] == "idle"
    assert values["values"].get("progress", {}).get("completed", 0) < len(SLOW_STEPS)


def test_a_frontend_tool_call_goes_to_the_page_and_its_result_comes_back(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a tool-calling backend (a scripted model standing in), the page's tools are offered to
    the agent; a call to one ends the run with the call streamed for the page to execute."""
    model = ScriptedChatModel(
        responses=[tool_call("highlight_source", {"id": "solar-101"}, "call-9"), AIMessage("Highlighted it.")]
    )
    original = Services.agent_deps

    def with_tool_model(services: Services) -> AgentDeps:
        return replace(original(services), tool_model=lambda: model)

    monkeypatch.setattr(Services, "agent_deps", with_tool_model)
    tools = [
        {
            "name": "highlight_source",
            "description": "Highlight a source on the page.",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
        }
    ]
    thread = str(uuid.uuid4())
    with LiveServer.start(make_settings(llm_max_tokens=8)) as live, httpx.Client(base_url=live.url, timeout=120) as c:
        first_message = user(HELLO)
        called = post_run(c, "assistant", run_input(thread, [first_message], tools=tools))
        assert_well_formed(called)
        (call,) = [e for e in called.of(EventType.TOOL_CALL_START) if e.tool_call_name == "highlight_source"]
        (args,) = [e for e in called.of(EventType.TOOL_CALL_ARGS) if e.tool_call_id == call.tool_call_id]
        assert args.delta == '{"id":"solar-101"}'
        assert not [e for e in called.of(EventType.TOOL_CALL_RESULT) if e.tool_call_id == call.tool_call_id]

        echoed = [
            first_message,
            {
                "id": call.parent_message_id,
                "role": "assistant",
                "toolCalls": [
                    {
                        "id": "call-9",
                        "type": "function",
                        "function": {"name": "highlight_source", "arguments": args.delta},
                    }
                ],
            },
            {"id": str(uuid.uuid4()), "role": "tool", "toolCallId": "call-9", "content": "highlighted solar-101"},
        ]
        answered = post_run(c, "assistant", run_input(thread, echoed, tools=tools))
        assert_well_formed(answered)
        (start,) = answered.of(EventType.TEXT_MESSAGE_START)
        assert answered.text(start.message_id) == "Highlighted it."
        messages = c.get(f"/threads/{thread}/state").json()["values"]["messages"]
        assert [m["type"] for m in messages] == ["human", "ai", "tool", "ai"]
        assert "highlight_source" in str(model.prompts[0]) or model.prompts, "the model was called with the tools"


def test_history_is_restored_after_a_restart_on_postgres(make_settings: Any, database_url: str) -> None:
    settings = make_settings(database_url=database_url, llm_max_tokens=8)
    thread = str(uuid.uuid4())
    with LiveServer.start(settings) as live, httpx.Client(base_url=live.url, timeout=120) as c:
        ran = post_run(c, "assistant", run_input(thread, [user(HELLO)]))
        assert_well_formed(ran)
        (start,) = ran.of(EventType.TEXT_MESSAGE_START)
        answer = ran.text(start.message_id)

    with LiveServer.start(settings) as live, httpx.Client(base_url=live.url, timeout=120) as c:
        restored = post_run(c, "assistant", run_input(thread))
        assert_well_formed(restored)
        (snapshot,) = restored.of(EventType.MESSAGES_SNAPSHOT)
        conversation = [m for m in snapshot.messages if not m.id.startswith("citadel-ui-")]
        assert [m.role for m in conversation] == ["user", "assistant"]
        assert conversation[0].content == HELLO
        assert conversation[1].content == answer
        assert conversation[1].id == start.message_id
        assert restored.state()["specialist"] == "generalist"
        cards = [m for m in snapshot.messages if m.id.startswith("citadel-ui-") and m.role == "assistant"]
        assert cards[0].tool_calls[0].function.name == "route_to_specialist"

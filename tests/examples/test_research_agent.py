"""The example project (`examples/research_agent`, written for `langgraph dev`) served by
`citadel serve --config`, in a process of its own, through the clients others wrote: the official
`langgraph-sdk` (assistants, threads, runs, streams, interrupts, time travel), LangGraph's
`RemoteGraph`, and the `mcp` SDK's client.

Models: the embedded ones (SmolLM2 cannot call tools, so the agent makes its search call itself)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import Command
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.processes import Server
from tests.ui_bridge.citadel_server import ingest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "research_agent" / "langgraph.json"
QUESTION = {"messages": [{"role": "user", "content": "How efficient are solar panels?"}]}


@pytest.fixture(scope="module")
def citadel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("research-agent")
    env = {
        "CITADEL_DATA_DIR": str(folder / "data"),
        "CITADEL_LLM_MAX_TOKENS": "24",
        "CITADEL_URL": "http://127.0.0.1:9",
    }
    server = Server(env, folder / "server.log")
    server.args += ["--config", str(EXAMPLE)]
    server.start()
    try:
        ingest(server.url)
        yield server
    finally:
        server.stop()


@pytest.fixture
async def client(citadel: Server) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=citadel.url) as client:
        yield client


async def test_assistants_list_the_projects_graphs_with_their_schemas(citadel: Server, client: LangGraphClient) -> None:
    found = {a["graph_id"]: a for a in await client.assistants.search(limit=50)}
    assert {"research_agent", "publish", "assistant", "rag", "workflow"} <= set(found)
    assert "Citadel's search tool" in (found["research_agent"].get("description") or "")
    schemas = await client.assistants.get_schemas("publish")
    assert "messages" in schemas["input_schema"]["properties"]
    assert {"draft", "status"} <= set(schemas["output_schema"]["properties"])
    assert "keys Citadel does not use" in citadel.output()
    assert "python_version" in citadel.output()


async def test_run_stream_and_wait_search_with_citadels_tool(citadel: Server, client: LangGraphClient) -> None:
    thread = await client.threads.create()
    events = [part async for part in client.runs.stream(thread["thread_id"], "research_agent", input=QUESTION)]
    assert events[0].event == "metadata"
    assert any(part.event == "values" for part in events)
    state = await client.threads.get_state(thread["thread_id"])
    messages = state["values"]["messages"]
    tool_results = [m for m in messages if m["type"] == "tool"]
    assert tool_results
    assert "solar-101" in tool_results[0]["content"]
    assert messages[-1]["type"] == "ai"
    assert messages[-1]["content"]

    answer = await client.runs.wait(None, "research_agent", input=QUESTION)
    assert isinstance(answer, dict)
    assert answer["messages"][-1]["type"] == "ai"


async def test_bad_input_is_422_naming_the_field(citadel: Server) -> None:
    async with httpx.AsyncClient(base_url=citadel.url) as http:
        response = await http.post(
            "/runs/wait", json={"assistant_id": "research_agent", "input": {"messages": [{"content": "no role"}]}}
        )
    assert response.status_code == 422
    assert response.json()["error"]["param"].startswith("messages")


async def test_interrupt_resume_and_time_travel(citadel: Server, client: LangGraphClient) -> None:
    thread = await client.threads.create()
    ask = {"messages": [{"role": "user", "content": "Say something about wind power."}]}
    paused = await client.runs.wait(thread["thread_id"], "publish", input=ask)
    assert isinstance(paused, dict)
    state = await client.threads.get_state(thread["thread_id"])
    assert state["next"] == ["review"]
    assert state["interrupts"][0]["value"]["message"] == "Publish this draft?"

    done = await client.runs.wait(thread["thread_id"], "publish", command=Command(resume="approve"))
    assert isinstance(done, dict)
    assert done["status"] == "published"
    assert done["messages"][-1]["content"] == done["draft"]

    history = await client.threads.get_history(thread["thread_id"], limit=20)
    before_draft = next(h for h in history if h["next"] == ["draft"])
    forked = await client.runs.wait(  # time travel: from before the draft, drafted again, paused again
        thread["thread_id"], "publish", input=None, checkpoint_id=before_draft["checkpoint"]["checkpoint_id"]
    )
    assert isinstance(forked, dict)
    assert forked["status"] == "drafted"
    assert (await client.threads.get_state(thread["thread_id"]))["next"] == ["review"]


async def test_remote_graph(citadel: Server, client: LangGraphClient) -> None:
    remote = RemoteGraph("publish", client=client)
    thread = await client.threads.create()
    config: Any = {"configurable": {"thread_id": thread["thread_id"]}}
    await remote.ainvoke({"messages": [{"role": "user", "content": "Hello"}]}, config)
    state = await remote.aget_state(config)
    assert state.next == ("review",)


async def test_mcp_lists_and_calls_the_graph_tool(citadel: Server) -> None:
    async with Client(streamable_http_client(f"{citadel.url}/mcp")) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert "ask_research_agent" in tools
        assert "run_publish" in tools
        schema = tools["ask_research_agent"].input_schema
        assert {"messages", "thread_id"} <= set(schema["properties"])
        result = await session.call_tool("ask_research_agent", QUESTION)
        assert not result.is_error, result.content
        outcome = result.structured_content
        assert outcome is not None
        assert outcome["status"] == "completed"
        assert outcome["answer"]

        paused = await session.call_tool("run_publish", {"messages": [{"role": "user", "content": "Hi"}]})
        assert paused.structured_content is not None
        assert paused.structured_content["status"] == "awaiting_approval"
        graphs = await session.read_resource("citadel://graphs")  # type: ignore[arg-type]
        listed = json.loads(graphs.contents[0].text)  # type: ignore[union-attr]
        assert any(g["name"] == "research_agent" and g["tool"] == "ask_research_agent" for g in listed)

"""The MCP server end to end in memory, with the `mcp` SDK's own client: on the 2026-07-28 revision
(the client's default) and, where the two differ, the handshake-era one (`mode="legacy"`).

One set of real services for the module (embedded models, local Qdrant, SQLite app tables,
the real RunManager); each test connects its own client."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import pytest_asyncio
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from citadel.core.services import Core
from citadel.mcp_server.server import create_server
from citadel.mcp_server.state import shared_state
from citadel.runtime.core import open_core
from citadel.settings import Settings
from tests.graphs.run_inputs import DOCS
from tests.live_server import migrate_database
from tests.mcp_server.client_kit import (
    APPROVAL_STEPS,
    FAST_STEPS,
    LLM_DEADLINE,
    SLOW_STEPS,
    TOOLS,
    Approver,
    Progress,
    ask,
    text_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

READ_ONLY = {"embed_texts", "list_embedding_models", "search", "list_collections", "generate", "get_thread"}
DESTRUCTIVE = {"upsert_documents", "delete_documents"}
IDEMPOTENT = READ_ONLY - {"generate"} | DESTRUCTIVE


@pytest.fixture(scope="module")
def mcp_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir: Path = tmp_path_factory.mktemp("mcp") / "data"
    return Settings(_env_file=None, data_dir=data_dir, llm_max_tokens=24)  # type: ignore[call-arg]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def state(mcp_settings: Settings) -> AsyncIterator[Core]:
    await migrate_database(mcp_settings)
    async with open_core(mcp_settings) as opened:
        await opened.services.vectors.create_collection("docs")
        await opened.services.vectors.upsert("docs", DOCS)
        yield opened


@pytest.fixture(scope="module")
def server(mcp_settings: Settings, state: Core) -> MCPServer[Core]:
    return create_server(mcp_settings, shared_state(state))


async def call(client: Client, tool: str, arguments: dict[str, Any], **options: Any) -> Any:
    with anyio.fail_after(LLM_DEADLINE):
        return await client.call_tool(tool, arguments, **options)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_lists_tools_resources_and_prompts(server: MCPServer[Core], mode: str) -> None:
    async with Client(server, mode=mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert set(tools) == TOOLS
    for name, tool in tools.items():
        assert tool.title, name
        assert len(tool.description or "") > 60, name
        assert (tool.output_schema or {}).get("type") == "object", name
        properties = tool.input_schema.get("properties", {})
        assert all(spec.get("description") for spec in properties.values()), f"{name}: a field lacks a description"
        hints = tool.annotations
        assert hints is not None, name
        assert hints.open_world_hint is False, name
        assert hints.read_only_hint is (name in READ_ONLY), name
        assert hints.idempotent_hint is (name in IDEMPOTENT), name
        if name not in READ_ONLY:
            assert hints.destructive_hint is (name in DESTRUCTIVE), name
    rag = tools["ask_rag"].input_schema
    assert rag["required"] == ["messages"]
    assert {"collection", "thread_id"} <= set(rag["properties"])
    assert tools["run_workflow"].input_schema["required"] == ["steps"]
    assert {"thread_id", "answer", "sources", "status", "approval"} <= set(tools["ask_rag"].output_schema["properties"])
    assert resources == {"citadel://graphs", "citadel://collections"}
    assert templates == {"citadel://collections/{name}", "citadel://threads/{thread_id}"}
    assert set(prompts) == {"research", "review_thread"}
    assert [a.name for a in prompts["research"].arguments or []] == ["question", "collection"]


async def test_embeddings_and_models(server: MCPServer[Core]) -> None:
    async with Client(server) as client:
        models = (await call(client, "list_embedding_models", {})).structured_content["models"]
        embedded = await call(client, "embed_texts", {"texts": ["solar power", "wind power"]})
    assert [(m["name"], m["dims"], m["default"]) for m in models] == [("all-minilm", 384, True)]
    assert models[0]["providers"] == ["embedded:all-minilm (closed)"]
    result = embedded.structured_content
    assert (result["model"], result["dims"], len(result["vectors"])) == ("all-minilm", 384, 2)
    assert math.isclose(sum(x * x for x in result["vectors"][0]), 1.0, rel_tol=1e-3)


async def test_store_search_and_delete_documents(server: MCPServer[Core]) -> None:
    progress = Progress()
    notes = [{"id": f"note-{i}", "text": f"Note {i}: tides rise twice a day.", "metadata": {"n": i}} for i in range(40)]
    async with Client(server) as client:
        created = await call(
            client, "upsert_documents", {"collection": "notes", "documents": notes, "create": True},
            progress_callback=progress,
        )  # fmt: skip
        listed = (await call(client, "list_collections", {})).structured_content["collections"]
        found = await call(client, "search", {"collection": "notes", "query": "tides", "k": 3, "filter": {"n": 7}})
        by_id = await call(client, "delete_documents", {"collection": "notes", "ids": ["note-0", "note-1"]})
        by_filter = await call(client, "delete_documents", {"collection": "notes", "filter": {"n": {"gte": 30}}})
        docs = await call(client, "search", {"collection": "docs", "query": "How do solar panels work?", "k": 2})
        keywords = await call(client, "search", {"collection": "docs", "query": "photovoltaic", "mode": "sparse"})
    assert created.structured_content == {"collection": "notes", "documents": 40, "chunks": 40, "created": True}
    assert [(p, t) for p, t, _ in progress.seen] == [(32, 40), (40, 40)]
    assert {"name": "notes", "model": "all-minilm", "dims": 384, "chunks": 40, "hybrid": True} in listed
    assert [(h["id"], h["metadata"]) for h in found.structured_content["results"]] == [("note-7", {"n": 7})]
    assert by_id.structured_content == {"collection": "notes", "chunks_removed": 2, "chunks_left": 38}
    assert by_filter.structured_content == {"collection": "notes", "chunks_removed": 10, "chunks_left": 28}
    hits = docs.structured_content["results"]
    assert hits[0]["id"] == "solar-101"
    assert hits[0]["score"] > hits[1]["score"]
    assert hits[0]["similarity"] > hits[1]["similarity"]
    assert [h["id"] for h in keywords.structured_content["results"]] == ["solar-101"]


async def test_generate_says_which_backend_answered(server: MCPServer[Core]) -> None:
    progress = Progress()
    async with Client(server) as client:
        answer = await call(
            client, "generate", {"prompt": "Count from one to forty.", "max_tokens": 40}, progress_callback=progress
        )
        chat = await call(
            client,
            "generate",
            {"messages": [{"role": "user", "content": "Hi!"}], "system": "Be brief.", "route": "chat"},
        )
    result = answer.structured_content
    assert result["text"].strip()
    assert (result["backend"], result["model"]) == ("embedded", "smollm2")
    assert progress.seen
    assert all(total == 40 for _, total, _ in progress.seen)
    assert chat.structured_content["route"] == "chat"


async def test_errors_are_results_that_name_the_problem(server: MCPServer[Core]) -> None:
    async with Client(server) as client:
        cases = {
            "unknown collection": await call(client, "search", {"collection": "nope", "query": "x"}),
            "k out of range": await call(client, "search", {"collection": "docs", "query": "x", "k": 0}),
            "no texts": await call(client, "embed_texts", {"texts": []}),
            "no messages": await call(client, "ask_rag", {"collection": "docs"}),
            "bad role": await call(client, "ask_rag", {"messages": [{"role": "boss", "content": "hi"}]}),
            "bad step": await call(client, "run_workflow", {"steps": [{"type": "teleport"}]}),
            "prompt and messages": await call(
                client, "generate", {"prompt": "a", "messages": [{"role": "user", "content": "b"}]}
            ),
            "unknown model": await call(client, "generate", {"prompt": "a", "model": "gpt-9"}),
            "duplicate ids": await call(
                client, "upsert_documents", {"collection": "docs", "documents": [{"id": "a", "text": "x"}] * 2}
            ),
            "ids or filter": await call(client, "delete_documents", {"collection": "docs"}),
            "unknown thread": await call(client, "get_thread", {"thread_id": "no-such-thread"}),
            "continue unknown thread": await call(client, "run_workflow", {"steps": FAST_STEPS, "thread_id": "nope"}),
        }
        healthy = await call(client, "list_collections", {})
    expected = {
        "unknown collection": "not_found: collection 'nope' does not exist",
        "k out of range": "k",
        "no texts": "texts",
        "no messages": "messages",
        "bad role": "unknown role 'boss'",
        "bad step": "steps",
        "prompt and messages": "give either prompt or messages",
        "unknown model": "unknown model 'gpt-9'",
        "duplicate ids": "document ids appear more than once: a",
        "ids or filter": "give either ids or filter",
        "unknown thread": "thread no-such-thread not found",
        "continue unknown thread": "thread nope not found",
    }
    for case, needle in expected.items():
        result = cases[case]
        assert result.is_error, case
        assert needle in text_of(result), (case, text_of(result))
    assert not healthy.is_error


async def test_a_conversation_continues_over_calls_with_its_thread_id(server: MCPServer[Core]) -> None:
    progress = Progress()
    async with Client(server) as client:
        first = await call(client, "ask_rag", ask("How do solar panels work?"), progress_callback=progress)
        thread_id = first.structured_content["thread_id"]
        second = await call(client, "ask_rag", ask("And what about wind turbines?", thread_id=thread_id))
        thread = (await call(client, "get_thread", {"thread_id": thread_id})).structured_content
    answer = first.structured_content
    assert answer["status"] == "completed"
    assert answer["answer"]
    assert answer["sources"][0]["id"] == "solar-101"
    assert second.structured_content["thread_id"] == thread_id
    assert "wind-202" in [s["id"] for s in second.structured_content["sources"]]
    assert [m["role"] for m in thread["messages"]] == ["user", "assistant", "user", "assistant"]
    assert thread["messages"][2]["content"] == "And what about wind turbines?"
    assert thread["graph"] == "rag"
    assert thread["status"] == "idle"
    assert thread["last_run"]["status"] == "success"
    values = [p for p, _, _ in progress.seen]
    assert values == sorted(set(values))
    assert len(values) == 3
    assert progress.messages[1:] == ["researcher_retrieve done", "researcher_answer done"]


async def test_a_busy_thread_is_refused_and_a_cancelled_call_stops_its_run(
    server: MCPServer[Core], state: Core
) -> None:
    progress = Progress()
    async with Client(server) as client, anyio.create_task_group() as calls:
        calls.start_soon(lambda: call(client, "run_workflow", {"steps": SLOW_STEPS}, progress_callback=progress))
        with anyio.fail_after(LLM_DEADLINE):
            await progress.stepped.wait()  # the first step (an LLM call) is running
        run_id, thread_id = progress.run_and_thread()
        second = await call(client, "run_workflow", {"steps": FAST_STEPS, "thread_id": thread_id})
        calls.cancel_scope.cancel()
    assert second.is_error
    assert "already has a run in progress" in text_of(second)
    run = await state.runs.store.get_run(run_id)
    with anyio.fail_after(30):
        await state.runs.wait(run)
    assert (await state.runs.store.get_run(run_id)).status == "interrupted"
    thread = await state.runs.store.get_thread(thread_id, None)
    assert thread.status == "idle"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_approval_is_asked_by_elicitation(server: MCPServer[Core], mode: str) -> None:
    approver = Approver()
    async with Client(server, mode=mode, elicitation_callback=approver) as client:
        approved = await call(client, "run_workflow", {"steps": APPROVAL_STEPS})
        refuser = Approver(action="decline")
        async with Client(server, mode=mode, elicitation_callback=refuser) as other:
            declined = await call(other, "run_workflow", {"steps": APPROVAL_STEPS})
    assert len(approver.asked) == 1
    assert "Step 0 (embedding) asks for approval" in approver.asked[0]
    result = approved.structured_content
    assert result["status"] == "completed"
    assert [r["index"] for r in result["results"]] == [0, 1]
    assert declined.structured_content["status"] == "rejected"
    assert declined.structured_content["results"] == []


async def test_without_elicitation_the_result_says_how_to_resume(server: MCPServer[Core]) -> None:
    async with Client(server) as client:
        paused = (await call(client, "run_workflow", {"steps": APPROVAL_STEPS})).structured_content
        thread_id = paused["thread_id"]
        waiting = (await call(client, "get_thread", {"thread_id": thread_id})).structured_content
        resumed = await call(client, "resume_thread", {"thread_id": thread_id, "decision": "approve"})
        again = await call(client, "resume_thread", {"thread_id": thread_id, "decision": "approve"})
    assert paused["status"] == "awaiting_approval"
    assert paused["answer"] is None
    assert paused["approval"]["kind"] == "workflow_step"
    assert "resume_thread" in paused["approval"]["how_to_resume"]
    assert thread_id in paused["approval"]["how_to_resume"]
    assert waiting["status"] == "interrupted"
    assert waiting["waiting_for"][0]["kind"] == "workflow_step"
    assert resumed.structured_content["status"] == "completed"
    assert len(resumed.structured_content["results"]) == 2
    assert again.is_error
    assert "not waiting for approval" in text_of(again)


async def test_a_dismissed_elicitation_leaves_the_run_waiting(server: MCPServer[Core]) -> None:
    async with Client(server, elicitation_callback=Approver(action="cancel")) as client:
        paused = (await call(client, "run_workflow", {"steps": APPROVAL_STEPS})).structured_content
    assert paused["status"] == "awaiting_approval"


async def test_a_failed_workflow_is_an_error_result_with_what_was_done(server: MCPServer[Core]) -> None:
    steps = [{"type": "embedding", "text": "hello"}, {"type": "vector_search", "collection": "nope", "query": "x"}]
    async with Client(server) as client:
        failed = await call(client, "run_workflow", {"steps": steps})
    assert failed.is_error
    assert "step 1 failed: not_found: collection 'nope' does not exist" in text_of(failed)
    result = failed.structured_content
    assert result["status"] == "failed"
    assert [r["type"] for r in result["results"]] == ["embedding"]


async def test_outputs_are_bounded(mcp_settings: Settings, state: Core) -> None:
    small = mcp_settings.model_copy(update={"mcp_max_output_chars": 1000})
    services = dataclasses.replace(state.services, settings=small)
    server = create_server(small, shared_state(dataclasses.replace(state, services=services)))
    long_text = "Tidal power turns the rise and fall of the sea into electricity. " * 17  # one chunk, 1105 chars
    async with Client(server) as client:
        await call(client, "upsert_documents", {"collection": "tides", "create": True,
                                                "documents": [{"id": "tide", "text": long_text}]})  # fmt: skip
        found = await call(client, "search", {"collection": "tides", "query": "tidal power", "k": 5})
    text = found.structured_content["results"][0]["text"]
    assert text.startswith(long_text[:1000])
    assert text.endswith(f"… [cut: {len(long_text) - 1000} more characters]")


async def test_resources_and_prompts(server: MCPServer[Core]) -> None:
    async with Client(server) as client:
        run = (await call(client, "run_workflow", {"steps": FAST_STEPS})).structured_content
        graphs = (await client.read_resource("citadel://graphs")).contents[0]
        collections = (await client.read_resource("citadel://collections")).contents[0]
        docs = (await client.read_resource("citadel://collections/docs")).contents[0]
        thread = (await client.read_resource(f"citadel://threads/{run['thread_id']}")).contents[0]
        with pytest.raises(MCPError, match="collection 'nope' does not exist"):
            await client.read_resource("citadel://collections/nope")
        research = await client.get_prompt("research", {"question": "What is solar power?", "collection": "docs"})
        review = await client.get_prompt("review_thread", {"thread_id": run["thread_id"]})
    listed = json.loads(graphs.text)  # type: ignore[union-attr]
    assert [(g["name"], g["tool"]) for g in listed] == [
        ("assistant", "ask_assistant"),
        ("rag", "ask_rag"),
        ("workflow", "run_workflow"),
    ]
    assert "steps" in listed[2]["input_schema"]["properties"]
    assert {"name": "docs", "model": "all-minilm", "dims": 384, "chunks": 3} in json.loads(collections.text)  # type: ignore[union-attr]
    assert json.loads(docs.text)["chunks"] == 3  # type: ignore[union-attr]
    assert json.loads(thread.text)["graph"] == "workflow"  # type: ignore[union-attr]
    instruction = research.messages[0].content.text  # type: ignore[union-attr]
    assert "ask_rag" in instruction
    assert "What is solar power?" in instruction
    assert '"collection": "docs"' in instruction
    assert review.messages[0].content.resource.uri == f"citadel://threads/{run['thread_id']}"  # type: ignore[union-attr]
    assert "run_workflow" in review.messages[1].content.text  # type: ignore[union-attr]

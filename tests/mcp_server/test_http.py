"""MCP over streamable HTTP at /mcp in the real Citadel app on uvicorn, with the `mcp` SDK's client:
2026-07-28 requests (`auto`) and handshake-era sessions (`legacy`), then the stateless mode, the
DNS-rebinding check and the bearer-token hook."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.provider import AccessToken

from citadel.mcp_server import http as mcp_http
from citadel.mcp_server.auth import BearerAuth
from citadel.runtime.core import open_core
from citadel.settings import Settings
from tests.live_server import LiveServer
from tests.mcp_server.client_kit import (
    APPROVAL_STEPS,
    DOCUMENTS,
    FAST_STEPS,
    INITIALIZE,
    JSON_AND_SSE,
    LLM_DEADLINE,
    SLOW_STEPS,
    TOOLS,
    Approver,
    Progress,
    ask,
    text_of,
)

MODES = ["auto", "legacy"]


def serve(tmp_path_factory: pytest.TempPathFactory, **overrides: Any) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("mcp-http") / "data"
    settings = Settings(_env_file=None, data_dir=data_dir, llm_max_tokens=24, **overrides)  # type: ignore[call-arg]
    with LiveServer.start(settings) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        http.post("/v1/collections", json={"name": "docs"}).raise_for_status()
        http.post("/v1/collections/docs/points", json={"documents": DOCUMENTS}).raise_for_status()
        yield server


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from serve(tmp_path_factory)


@pytest.fixture(scope="module")
def stateless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from serve(tmp_path_factory, mcp_stateless=True)


async def call(client: Client, tool: str, arguments: dict[str, Any], **options: Any) -> Any:
    with anyio.fail_after(LLM_DEADLINE):
        result = await client.call_tool(tool, arguments, **options)
    assert not result.is_error, f"{tool}: {text_of(result)}"
    return result.structured_content


@pytest.mark.parametrize("mode", MODES)
async def test_lists_tools_resources_and_prompts(live: LiveServer, mode: str) -> None:
    async with Client(f"{live.url}/mcp", mode=mode) as client:
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        tools = (await client.list_tools()).tools
        resources = (await client.list_resources()).resources
        templates = (await client.list_resource_templates()).resource_templates
        prompts = (await client.list_prompts()).prompts
    assert {t.name for t in tools} == TOOLS
    assert all(t.output_schema and t.annotations for t in tools)
    assert len(resources) == 2
    assert len(templates) == 2
    assert {p.name for p in prompts} == {"research", "review_thread"}


async def test_every_tool_over_http(live: LiveServer) -> None:
    note = {"id": "note-1", "text": "The lighthouse keeper logs the tides.", "metadata": {"kind": "log"}}
    async with Client(f"{live.url}/mcp") as client:
        models = await call(client, "list_embedding_models", {})
        vectors = await call(client, "embed_texts", {"texts": ["tides"]})
        stored = await call(client, "upsert_documents", {"collection": "notes", "documents": [note], "create": True})
        found = await call(client, "search", {"collection": "notes", "query": "lighthouse"})
        collections = await call(client, "list_collections", {})
        deleted = await call(client, "delete_documents", {"collection": "notes", "filter": {"kind": "log"}})
        generated = await call(client, "generate", {"prompt": "Name a colour.", "max_tokens": 8})
        assistant = await call(client, "ask_assistant", ask("Hello! How are you today?"))
        rag = await call(client, "ask_rag", ask("How much sunlight do solar panels convert?", collection="docs"))
        paused = await call(client, "run_workflow", {"steps": APPROVAL_STEPS})
        resumed = await call(client, "resume_thread", {"thread_id": paused["thread_id"], "decision": "reject"})
        thread = await call(client, "get_thread", {"thread_id": rag["thread_id"]})
        resource = await client.read_resource(f"citadel://threads/{assistant['thread_id']}")
        prompt = await client.get_prompt("research", {"question": "What is wind power?"})
    assert models["models"][0]["name"] == "all-minilm"
    assert vectors["dims"] == 384
    assert stored["created"] is True
    assert found["results"][0]["id"] == "note-1"
    assert {c["name"] for c in collections["collections"]} >= {"docs", "notes"}
    assert deleted["chunks_removed"] == 1
    assert generated["backend"] == "embedded"
    assert assistant["specialist"] == "generalist"
    assert assistant["answer"]
    assert rag["sources"][0]["id"] == "solar-101"
    assert paused["status"] == "awaiting_approval"
    assert resumed["status"] == "rejected"
    assert len(thread["messages"]) == 2
    assert '"graph": "assistant"' in resource.contents[0].text  # type: ignore[union-attr]
    assert "ask_rag" in prompt.messages[0].content.text  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", MODES)
async def test_a_conversation_over_two_calls(live: LiveServer, mode: str) -> None:
    async with Client(f"{live.url}/mcp", mode=mode) as client:
        first = await call(client, "ask_assistant", ask("Hello! How are you today?"))
        second = await call(client, "ask_assistant", ask("Thanks! Have a nice day.", thread_id=first["thread_id"]))
        thread = await call(client, "get_thread", {"thread_id": first["thread_id"]})
    assert second["thread_id"] == first["thread_id"]
    assert [m["role"] for m in thread["messages"]] == ["user", "assistant", "user", "assistant"]
    assert thread["messages"][2]["content"] == "Thanks! Have a nice day."


@pytest.mark.parametrize("mode", MODES)
async def test_progress_notifications(live: LiveServer, mode: str) -> None:
    progress = Progress()
    async with Client(f"{live.url}/mcp", mode=mode) as client:
        await call(client, "run_workflow", {"steps": FAST_STEPS}, progress_callback=progress)
    assert [p for p, _, _ in progress.seen] == [0, 1, 2, 3]
    assert progress.messages[1:] == [
        "workflow_start done (0/2; next: step 0: embedding)",
        "workflow_step done (1/2; next: step 1: vector_search)",
        "workflow_step done (2/2)",
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_cancelling_a_call_cancels_its_run(live: LiveServer, mode: str) -> None:
    progress = Progress()
    async with Client(f"{live.url}/mcp", mode=mode) as client, anyio.create_task_group() as calls:
        calls.start_soon(
            functools.partial(client.call_tool, "run_workflow", {"steps": SLOW_STEPS}, progress_callback=progress)
        )
        with anyio.fail_after(LLM_DEADLINE):
            await progress.stepped.wait()  # the first LLM step is running
        calls.cancel_scope.cancel()
    run_id, thread_id = progress.run_and_thread()
    async with httpx.AsyncClient(base_url=live.url, timeout=LLM_DEADLINE) as http:
        with anyio.fail_after(LLM_DEADLINE):
            (await http.get(f"/threads/{thread_id}/runs/{run_id}/join")).raise_for_status()
        run = (await http.get(f"/threads/{thread_id}/runs/{run_id}")).json()
        thread = (await http.get(f"/threads/{thread_id}")).json()
    assert run["status"] == "interrupted"
    assert thread["status"] == "idle"


@pytest.mark.parametrize("mode", MODES)
async def test_approval_by_elicitation(live: LiveServer, mode: str) -> None:
    approver = Approver()
    async with Client(f"{live.url}/mcp", mode=mode, elicitation_callback=approver) as client:
        result = await call(client, "run_workflow", {"steps": APPROVAL_STEPS})
    assert len(approver.asked) == 1
    assert result["status"] == "completed"


async def test_errors_leave_the_session_usable(live: LiveServer) -> None:
    async with Client(f"{live.url}/mcp", mode="legacy") as client:
        with anyio.fail_after(60):
            missing = await client.call_tool("search", {"collection": "nope", "query": "x"})
            invalid = await client.call_tool("ask_rag", {"messages": []})
        fine = await call(client, "list_collections", {})
    assert missing.is_error
    assert "collection 'nope' does not exist" in text_of(missing)
    assert invalid.is_error
    assert "messages" in text_of(invalid)
    assert fine["collections"]


MODERN = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "probe", "version": "1"},
}


def modern_call(
    tool: str, arguments: dict[str, Any], *, named: str | None = None, accept: str | None = None
) -> dict[str, Any]:
    """A 2026-07-28 `tools/call` as (headers, body); `named`: what the Mcp-Name header claims instead;
    `accept`: the Accept header instead of JSON and SSE."""
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": ENVELOPE},
    }
    headers = {**JSON_AND_SSE, "mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": named or tool}
    if accept is not None:
        headers["accept"] = accept
    return {"headers": headers, "json": body}


def test_what_is_answered_at_once() -> None:
    answered_at_once = mcp_http.AnsweredAtOnce(frozenset({"list_collections"}))

    def at_once(**headers: str) -> bool:
        return answered_at_once([(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()])

    assert at_once(mcp_protocol_version=MODERN, mcp_method="tools/call", mcp_name="list_collections")
    assert at_once(mcp_protocol_version=MODERN, mcp_method="tools/list")
    assert at_once(mcp_protocol_version=MODERN, mcp_method="resources/read", mcp_name="citadel://graphs")
    assert not at_once(mcp_protocol_version=MODERN, mcp_method="tools/call", mcp_name="ask_rag")
    assert not at_once(mcp_protocol_version=MODERN, mcp_method="tools/call")  # no name: the SDK answers that
    assert not at_once(mcp_protocol_version="2025-11-25", mcp_method="tools/list")  # a session's request
    assert not at_once(mcp_method="tools/list")  # no version header: the handshake-era path
    assert not at_once(mcp_protocol_version=MODERN, mcp_method="subscriptions/listen")  # a stream by nature


async def test_quick_calls_answered_at_once(live: LiveServer) -> None:
    """A 2026-07-28 call of a tool that reads what the server holds gets one JSON response, from the
    JSON-response manager; the Mcp-Name header that picks that path must agree with the body."""
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as http:
        quick = await http.post("/mcp", **modern_call("list_collections", {}))
        # Which manager answered shows in one place: only the JSON one serves a client that accepts
        # JSON alone (the streaming one wants both, and answers 406).
        at_once = await http.post("/mcp", **modern_call("list_collections", {}, accept="application/json"))
        streamed = await http.post("/mcp", **modern_call("generate", {"prompt": "Hi"}, accept="application/json"))
        listed = await http.post(
            "/mcp",
            headers={**JSON_AND_SSE, "mcp-protocol-version": MODERN, "mcp-method": "tools/list"},
            json={"jsonrpc": "2.0", "id": 8, "method": "tools/list", "params": {"_meta": ENVELOPE}},
        )
        unknown = await http.post("/mcp", **modern_call("get_thread", {"thread_id": "no-such-thread"}))
        disguised = await http.post("/mcp", **modern_call("generate", {"prompt": "Hi"}, named="list_collections"))
        invalid = await http.post("/mcp", **modern_call("get_thread", {"thread_id": ""}))
    assert quick.status_code == 200, quick.text
    assert quick.headers["content-type"] == "application/json"
    assert at_once.status_code == 200, at_once.text
    assert streamed.status_code == 406
    assert "docs" in {c["name"] for c in quick.json()["result"]["structuredContent"]["collections"]}
    assert listed.headers["content-type"] == "application/json"
    assert {t["name"] for t in listed.json()["result"]["tools"]} == set(TOOLS)
    assert unknown.json()["result"]["isError"] is True  # a tool's error is a result, as on the stream
    assert "no-such-thread" in unknown.json()["result"]["content"][0]["text"]
    assert disguised.status_code == 400
    assert "mcp-name header does not match" in disguised.json()["error"]["message"].lower()
    assert invalid.json()["result"]["isError"] is True


async def test_dns_rebinding_is_refused_on_loopback(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        evil_host = await http.post("/mcp", json=INITIALIZE, headers={**JSON_AND_SSE, "host": "attacker.example"})
        evil_origin = await http.post(
            "/mcp", json=INITIALIZE, headers={**JSON_AND_SSE, "origin": "http://attacker.example"}
        )
        local_origin = await http.post(
            "/mcp", json=INITIALIZE, headers={**JSON_AND_SSE, "origin": "http://localhost:5173"}
        )
    assert evil_host.status_code == 421
    assert evil_origin.status_code == 403
    assert local_origin.status_code == 200
    assert local_origin.headers.get("mcp-session-id")  # session-based mode


def test_dns_rebinding_check_on_other_binds(make_settings: Any) -> None:
    assert not mcp_http.transport_security(make_settings(host="0.0.0.0")).enable_dns_rebinding_protection
    configured = mcp_http.transport_security(make_settings(host="0.0.0.0", mcp_allowed_hosts=["citadel.example.com"]))
    assert configured.enable_dns_rebinding_protection
    assert configured.allowed_hosts == ["citadel.example.com"]
    loopback = mcp_http.transport_security(make_settings(mcp_allowed_origins=["https://app.example.com"]))
    assert "https://app.example.com" in loopback.allowed_origins
    assert "localhost:*" in loopback.allowed_hosts


async def test_stateless_mode(stateless: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=stateless.url, timeout=30) as http:
        opened = await http.post("/mcp", json=INITIALIZE, headers=JSON_AND_SSE)
    assert opened.status_code == 200
    assert "mcp-session-id" not in opened.headers
    approver = Approver()
    async with Client(f"{stateless.url}/mcp", mode="legacy", elicitation_callback=approver) as client:
        assert len((await client.list_tools()).tools) == len(TOOLS)
        paused = await call(client, "run_workflow", {"steps": APPROVAL_STEPS})  # no channel to ask on
        resumed = await call(client, "resume_thread", {"thread_id": paused["thread_id"], "decision": "approve"})
        answer = await call(client, "ask_rag", ask("How do wind turbines make electricity?"))
    assert approver.asked == []
    assert paused["status"] == "awaiting_approval"
    assert resumed["status"] == "completed"
    assert answer["sources"][0]["id"] == "wind-202"
    async with Client(f"{stateless.url}/mcp", elicitation_callback=approver) as modern:
        asked = await call(modern, "run_workflow", {"steps": APPROVAL_STEPS})
    assert asked["status"] == "completed"
    assert len(approver.asked) == 1


class StaticTokens:
    """A token verifier for two known tokens, standing in for the one the auth issue provides."""

    users: ClassVar[dict[str, str]] = {"token-alice": "alice", "token-bob": "bob"}

    async def verify_token(self, token: str) -> AccessToken | None:
        user = self.users.get(token)
        return AccessToken(token=token, client_id="test-client", scopes=["mcp"], subject=user) if user else None


async def test_a_request_while_the_server_is_built_waits_for_it(make_settings: Any) -> None:
    """The MCP server is built in the background once the app has started: a request that comes
    before it is ready is answered when it is, not refused."""
    settings = make_settings()
    endpoint = mcp_http.MCPEndpoint(settings)
    transport = httpx.ASGITransport(app=endpoint)
    async with (
        open_core(settings) as core,
        endpoint.serve(core),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http,
    ):
        assert endpoint.server is None  # its task has not run yet
        with anyio.fail_after(60):
            response = await http.post("/mcp", json=INITIALIZE, headers=JSON_AND_SSE)
        assert endpoint.server is not None
    assert response.status_code == 200, response.text
    assert '"protocolVersion":"2025-11-25"' in response.text


@contextlib.asynccontextmanager
async def client_as(url: str, token: str) -> AsyncIterator[Client]:
    headers = {"authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60, read=300)) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        yield client


def test_bearer_hook_and_thread_ownership(make_settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    metadata = "http://127.0.0.1/.well-known/oauth-protected-resource"
    auth = BearerAuth(StaticTokens(), required_scopes=["mcp"], resource_metadata_url=metadata)
    monkeypatch.setattr("citadel.runtime.app.MCPEndpoint", functools.partial(mcp_http.MCPEndpoint, auth=auth))
    with LiveServer.start(make_settings()) as live:
        refused = httpx.post(f"{live.url}/mcp", json=INITIALIZE, headers=JSON_AND_SSE, timeout=30)
        wrong = httpx.post(f"{live.url}/mcp", json=INITIALIZE, headers={**JSON_AND_SSE, "authorization": "Bearer x"})

        async def as_alice_then_bob() -> tuple[dict[str, Any], Any, Any, dict[str, Any]]:
            async with client_as(live.url, "token-alice") as alice:
                run = await call(alice, "run_workflow", {"steps": [{"type": "embedding", "text": "mine"}]})
                async with client_as(live.url, "token-bob") as bob:
                    read = await bob.call_tool("get_thread", {"thread_id": run["thread_id"]})
                    continued = await bob.call_tool(
                        "run_workflow", {"steps": FAST_STEPS, "thread_id": run["thread_id"]}
                    )
                mine = await call(alice, "get_thread", {"thread_id": run["thread_id"]})
            return run, read, continued, mine

        run, read, continued, mine = anyio.run(as_alice_then_bob)
    assert refused.status_code == 401
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{metadata}"' in challenge
    assert wrong.status_code == 401
    assert read.is_error
    assert f"thread {run['thread_id']} not found" in text_of(read)
    assert continued.is_error
    assert "not found" in text_of(continued)
    assert mine["thread_id"] == run["thread_id"]

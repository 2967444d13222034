"""The fault suite: `citadel serve` on real PostgreSQL and Redis behind proxies the tests control,
with real Ollama wire servers as its LLMs, under the faults an operator meets.

The figures the issue asks for are printed (run with `-s` to see them); the outage lasts
`CITADEL_FAULT_OUTAGE_SECONDS` (default 6; the closing note's figures are from 20). Latency bounds
are generous on purpose (a loaded 2-core machine); what they guard against took seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from tests.faults.conftest import REDIS_TIMEOUT, Stack
from tests.faults.load import steady_load
from tests.mcp_server.client_kit import INITIALIZE, JSON_AND_SSE, text_of

# The server under test is another process; the sockets in this one are the test's own (its
# clients, the proxies in front of PostgreSQL and Redis, which abort connections mid-stream on
# purpose). When the garbage collector meets one of those aborted client sockets before its loop
# closed it, Python warns "unclosed transport"; that says nothing about Citadel, whose dropped
# connections the load tally counts from the client side, so that one warning is not an error here.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:unclosed transport:ResourceWarning")]

OUTAGE_SECONDS = float(os.environ.get("CITADEL_FAULT_OUTAGE_SECONDS", "6"))
DEADLINE = 30.0
"""Every call is answered within this (the database's own timeout is 3 s here)."""
INTERNALS = ("sqlalchemy", "asyncpg", "psycopg", "traceback", "select ", "insert ", "update ", "sqlstate", "[sql")
BIG = "x" * 5_000_000


def ask(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def agui_input(thread_id: str, text: str) -> dict[str, Any]:
    return {
        "threadId": thread_id,
        "runId": "run-1",
        "state": {},
        "messages": [{"id": "m1", "role": "user", "content": text}],
        "tools": [],
        "context": [],
        "forwardedProps": {},
    }


def assert_clean_refusal(response: httpx.Response, what: str) -> None:
    assert 400 <= response.status_code < 500, f"{what}: {response.status_code} {response.text[:500]}"
    text = response.text.lower()
    leaked = [word for word in INTERNALS if word in text]
    assert not leaked, f"{what}: internals {leaked} in {response.text[:500]}"


async def wait_for(check: Any, what: str, deadline: float = 60.0) -> Any:
    """Poll `check` (another process's state: nothing to await) until it is truthy, within `deadline`."""
    with anyio.fail_after(deadline):
        while True:
            if value := await check():
                return value
            await asyncio.sleep(0.1)


# --- bad input (item 6) --------------------------------------------------------------------------
async def test_bad_input_is_4xx_without_internals(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.citadel.url, timeout=DEADLINE) as http:
        thread = (await http.post("/threads", json={"graph_id": "assistant"})).json()["thread_id"]
        huge = 10**30
        long_id = "t" * 10_000
        cases = {
            "audit offset": await http.get("/admin/audit", params={"offset": huge}),
            "runs offset": await http.get(f"/threads/{thread}/runs", params={"offset": huge}),
            "search offset": await http.post("/threads/search", json={"offset": huge}),
            "search limit": await http.post("/threads/search", json={"limit": huge}),
            "NUL in new thread metadata": await http.post("/threads", json={"metadata": {"k": "a\x00b"}}),
            "NUL in a metadata key": await http.patch(f"/threads/{thread}", json={"metadata": {"a\x00": "b"}}),
            "NUL in a search filter": await http.post("/threads/search", json={"metadata": {"k": "a\x00"}}),
            "NUL in a thread id": await http.get("/threads/a%00b"),
            "NUL in an AG-UI threadId": await http.post("/agui/assistant", json=agui_input("a\x00b", "hi")),
            "long AG-UI threadId": await http.post("/agui/assistant", json=agui_input(long_id, "hi")),
            "long thread id, if_not_exists create": await http.post(
                f"/threads/{long_id}/runs/wait",
                json={"assistant_id": "assistant", "input": ask("hi"), "if_not_exists": "create"},
            ),
            "long thread id created": await http.post("/threads", json={"thread_id": long_id}),
            "NUL in a run's input": await http.post(
                f"/threads/{thread}/runs/wait", json={"assistant_id": "assistant", "input": ask("a\x00b")}
            ),
        }
        for what, response in cases.items():
            assert_clean_refusal(response, what)
        # The thread the bad inputs aimed at is still usable.
        assert (await http.get(f"/threads/{thread}")).status_code == 200
        assert (await http.get("/admin/audit", params={"limit": 5})).status_code == 200


# --- a 5 MB message (item 4) ---------------------------------------------------------------------
async def test_huge_message_is_refused_at_once_while_health_stays_fast(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.citadel.url, timeout=DEADLINE) as http:
        thread = (await http.post("/threads", json={"graph_id": "assistant"})).json()["thread_id"]

        async def health_latencies(stop: asyncio.Event) -> list[float]:
            seen = []
            async with httpx.AsyncClient(base_url=stack.citadel.url, timeout=DEADLINE) as probe:
                while not stop.is_set():
                    started = time.perf_counter()
                    assert (await probe.get("/health")).status_code == 200
                    seen.append(time.perf_counter() - started)
                    await asyncio.sleep(0.01)
            return seen

        idle_stop = asyncio.Event()
        idle = asyncio.create_task(health_latencies(idle_stop))
        await asyncio.sleep(1.0)  # the baseline: /health on the idle server, for one second
        idle_stop.set()
        baseline = await idle

        busy_stop = asyncio.Event()
        busy = asyncio.create_task(health_latencies(busy_stop))
        refusals: dict[str, tuple[int, float, str]] = {}
        requests = {
            "runs/wait": (f"/threads/{thread}/runs/wait", {"assistant_id": "assistant", "input": ask(BIG)}),
            "chat completions": ("/v1/chat/completions", {"messages": [{"role": "user", "content": BIG}]}),
            "AG-UI": ("/agui/assistant", agui_input(thread, BIG)),
        }

        # Encoded beforehand: encoding 5 MB here, in the probe's event loop, would stall the probe.
        encoded = {name: (path, json.dumps(body).encode()) for name, (path, body) in requests.items()}

        async def send(name: str, path: str, body: bytes) -> None:
            started = time.perf_counter()
            response = await http.post(path, content=body, headers={"content-type": "application/json"})
            seconds = time.perf_counter() - started
            if name not in refusals or seconds > refusals[name][1]:  # the slowest of the rounds
                refusals[name] = (response.status_code, seconds, response.text)

        for _ in range(3):  # three rounds of all three at once
            await asyncio.gather(*(send(name, path, body) for name, (path, body) in encoded.items()))
        busy_stop.set()
        during = await busy

    print(
        f"\n[5 MB message] /health idle: median {statistics.median(baseline) * 1000:.1f} ms, worst "
        f"{max(baseline) * 1000:.1f} ms; during the 5 MB requests: median {statistics.median(during) * 1000:.1f} ms, "
        f"worst {max(during) * 1000:.1f} ms ({len(during)} probes)"
    )
    for name, (status, seconds, _) in refusals.items():
        print(f"[5 MB message] {name}: {status}, slowest of 3 in {seconds * 1000:.0f} ms")
    for name, (status, seconds, text) in refusals.items():
        assert status == 413, f"{name}: {status} {text[:300]}"
        assert "CITADEL_MAX_MESSAGE_CHARS" in text, text
        assert "100,000" in text, text
        assert seconds < 5.0, f"{name}: refused after {seconds:.1f} s"  # was accepted, failing 29-47 s later
    assert max(during) < 1.0, f"/health stalled {max(during):.2f} s"  # was 5.7-9.2 s


# --- Redis frozen (item 7) -----------------------------------------------------------------------
async def test_frozen_redis_keeps_latency(stack: Stack) -> None:
    """Embeddings use the Redis cache and every request the Redis rate limiter: frozen, Redis costs
    one timeout, then is skipped until it answers again."""
    async with httpx.AsyncClient(base_url=stack.citadel.url, timeout=DEADLINE) as http:

        async def timed(count: int, tag: str) -> list[float]:
            seconds = []
            for index in range(count):
                started = time.perf_counter()
                response = await http.post("/v1/embeddings", json={"input": f"{tag} text {index}"})
                assert response.status_code == 200, response.text
                seconds.append(time.perf_counter() - started)
            return seconds

        normal = await timed(20, "before")
        stack.redis.freeze()
        try:
            frozen = await timed(40, "frozen")
            ready = (await http.get("/health/ready")).json()
        finally:
            stack.redis.restore()

        async def cache_back() -> bool:
            return bool((await http.get("/health/ready")).json()["checks"]["cache"]["status"] == "ok")

        await wait_for(cache_back, "Redis to be used again")

    slow = [s for s in frozen if s > REDIS_TIMEOUT + max(normal)]  # those that waited out a Redis timeout
    print(
        f"\n[Redis frozen] median {statistics.median(normal) * 1000:.1f} ms before, "
        f"{statistics.median(frozen) * 1000:.1f} ms frozen; {len(slow)} of {len(frozen)} calls waited out a timeout"
    )
    assert ready["checks"]["cache"]["status"] == "down", ready
    assert len(slow) <= 2, f"calls that waited on the frozen Redis: {slow}"  # the cache's and the limiter's first
    assert statistics.median(frozen) < max(3 * statistics.median(normal), 0.25)


# --- MCP sessions (item 7) -----------------------------------------------------------------------
async def test_mcp_session_cap_answers_retry_after_and_idle_sessions_close(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.citadel.url, timeout=DEADLINE) as http:
        opened = [await http.post("/mcp", json=INITIALIZE, headers=JSON_AND_SSE) for _ in range(2)]
        assert all(r.status_code == 200 for r in opened), [r.text for r in opened]
        refused = await http.post("/mcp", json=INITIALIZE, headers=JSON_AND_SSE)
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["retry-after"]) >= 1

        async def admitted() -> bool:  # idle sessions are closed after CITADEL_MCP_SESSION_IDLE_SECONDS (2 s)
            return (await http.post("/mcp", json=INITIALIZE, headers=JSON_AND_SSE)).status_code == 200

        await wait_for(admitted, "an idle session to be closed", deadline=30)
        expired = await http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 2, "method": "ping"},
            headers={**JSON_AND_SSE, "mcp-session-id": opened[0].headers["mcp-session-id"]},
        )
        assert expired.status_code == 404


async def raw_post(url: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
    """A POST written byte for byte (HTTP clients refuse to send a header value with surrounding
    whitespace, which RFC 9110 tells servers to trim): the status and the whole answer."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{name}:{value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    with anyio.fail_after(DEADLINE):
        answer = (await reader.read(-1)).decode(errors="replace")
    writer.close()
    await writer.wait_closed()
    return int(answer.split(" ", 2)[1]), answer


async def test_mcp_name_header_with_whitespace(stack: Stack) -> None:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "list_collections",
            "arguments": {},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
    headers = {
        "Content-Type": " application/json",
        "Accept": " application/json, text/event-stream",
        "MCP-Protocol-Version": " 2026-07-28 ",
        "Mcp-Method": "  tools/call",
        "Mcp-Name": " \tlist_collections \t",
    }
    status, answer = await raw_post(stack.citadel.url, "/mcp", headers, json.dumps(body).encode())
    assert status == 200, answer
    assert "does not match" not in answer, answer
    assert "isError" not in answer or '"isError":false' in answer.replace(" ", ""), answer


# --- PostgreSQL outage under load (item 1) -------------------------------------------------------
async def test_database_outage_gives_503s_never_500s_nor_dropped_connections(stack: Stack) -> None:
    url = stack.citadel.url
    async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as http:
        threads = [(await http.post("/threads", json={"graph_id": "assistant"})).json()["thread_id"] for _ in range(4)]

    def on_thread(call: Any) -> Any:
        return lambda client: call(client, threads[hash(client) % len(threads)])

    calls = {
        "create thread": lambda c: c.post("/threads", json={"metadata": {"load": "yes"}}),
        "read thread": on_thread(lambda c, t: c.get(f"/threads/{t}")),  # app table + checkpointer
        "state": on_thread(lambda c, t: c.get(f"/threads/{t}/state")),
        "history": on_thread(lambda c, t: c.post(f"/threads/{t}/history", json={"limit": 5})),
        "runs": on_thread(lambda c, t: c.get(f"/threads/{t}/runs")),
        "patch": on_thread(lambda c, t: c.patch(f"/threads/{t}", json={"metadata": {"n": 1}})),
        "search": lambda c: c.post("/threads/search", json={"limit": 5}),
        "count": lambda c: c.post("/threads/count", json={}),
        "audit": lambda c: c.get("/admin/audit", params={"limit": 5}),
        "health": lambda c: c.get("/health"),
    }
    stop = asyncio.Event()
    load = asyncio.create_task(steady_load(url, calls, workers=8, stop=stop, deadline=DEADLINE))
    await asyncio.sleep(2.0)  # steady state first
    stack.postgres.refuse()
    outage_started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as http, Client(f"{url}/mcp") as mcp:

        async def refused() -> bool:
            return (await http.get(f"/threads/{threads[0]}")).status_code == 503

        await wait_for(refused, "the outage to show")
        agui = await http.post("/agui/assistant", json=agui_input(threads[0], "hello"))
        with anyio.fail_after(DEADLINE):
            tool = await mcp.call_tool("get_thread", {"thread_id": threads[0]})
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - outage_started)))
        stack.postgres.restore()

        async def recovered() -> bool:
            responses = [await http.get(f"/threads/{t}") for t in threads]
            return all(r.status_code == 200 for r in responses)

        await wait_for(recovered, "the database to be used again", deadline=60)
        await asyncio.sleep(2.0)  # steady state after
    stop.set()
    tally = await load

    print(f"\n[PostgreSQL outage {OUTAGE_SECONDS:g} s, 8 clients] {tally.summary()}")
    for name, counts in sorted(tally.by_call.items()):
        slowest = tally.slowest_by_call[name]
        print(f"[PostgreSQL outage] {name}: {dict(sorted(counts.items()))}, slowest {slowest:.2f} s")
    assert tally.statuses[503] > 0, "the outage never showed"
    assert not tally.server_errors, tally.server_errors[:5]
    assert tally.no_retry_after == 0
    assert not tally.unanswered, tally.unanswered[:5]
    assert tally.dropped_connections == 0
    assert set(tally.statuses) <= {200, 503}, tally.statuses
    assert agui.status_code == 503, agui.text
    assert "retry-after" in agui.headers
    assert tool.is_error, text_of(tool)
    assert "unavailable" in text_of(tool), text_of(tool)
    for text in (agui.text, text_of(tool)):
        assert not [word for word in INTERNALS if word in text.lower()], text


# --- runs through a PostgreSQL outage (item 2) ---------------------------------------------------
async def run_status(http: httpx.AsyncClient, thread_id: str, run_id: str) -> str:
    response = await http.get(f"/threads/{thread_id}/runs/{run_id}")
    return str(response.json()["status"]) if response.status_code == 200 else f"http {response.status_code}"


async def test_runs_accepted_before_and_during_an_outage_end_success_after_it(stack: Stack) -> None:
    """Runs in flight when the database goes (their LLM answer held back so they are), and runs
    offered during the outage: every one that was accepted ends `success` once it is back, with one
    answer per question; the others were refused with a 503 and never accepted."""
    url = stack.citadel.url
    async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as http:
        for llm in stack.llms:  # each answer waits 3 s for its first token: the runs are mid-flight
            (await http.post(f"{llm.url}/_test/faults", json={"first_token_delay": 3.0})).raise_for_status()
        threads = [(await http.post("/threads", json={"graph_id": "assistant"})).json()["thread_id"] for _ in range(6)]
        accepted: dict[str, str] = {}
        for thread_id in threads[:3]:
            response = await http.post(
                f"/threads/{thread_id}/runs", json={"assistant_id": "assistant", "input": ask("hello")}
            )
            assert response.status_code == 200, response.text
            accepted[thread_id] = response.json()["run_id"]

        async def all_running() -> bool:
            return all([await run_status(http, t, r) == "running" for t, r in accepted.items()])

        await wait_for(all_running, "the runs to start")
        stack.postgres.refuse()
        outage_started = time.monotonic()
        refused = 0
        try:
            for thread_id in threads[3:]:
                response = await http.post(
                    f"/threads/{thread_id}/runs", json={"assistant_id": "assistant", "input": ask("hi there")}
                )
                if response.status_code == 200:
                    accepted[thread_id] = response.json()["run_id"]
                else:
                    assert response.status_code == 503, response.text
                    assert "retry-after" in response.headers
                    refused += 1
            await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - outage_started)))
        finally:
            stack.postgres.restore()
            for llm in stack.llms:
                (await http.post(f"{llm.url}/_test/faults", json={})).raise_for_status()

        async def all_over() -> dict[str, str] | None:
            statuses = {t: await run_status(http, t, r) for t, r in accepted.items()}
            return (
                statuses
                if all(s not in ("pending", "running") and not s.startswith("http") for s in statuses.values())
                else None
            )

        statuses = await wait_for(all_over, "every accepted run to end", deadline=180)
        answers = {}
        for thread_id in accepted:
            values = (await http.get(f"/threads/{thread_id}/state")).json()["values"]
            answers[thread_id] = [m.get("type") for m in values.get("messages", [])]

    print(
        f"\n[runs through a {OUTAGE_SECONDS:g}-s PostgreSQL outage] accepted {len(accepted)}, refused {refused}, "
        f"ended {dict(sorted(statuses.items()))}"
    )
    assert set(statuses.values()) == {"success"}, statuses
    for thread_id, kinds in answers.items():
        assert kinds == ["human", "ai"], (thread_id, kinds)  # one answer to one question: nothing lost, nothing twice


# --- no hung requests under concurrency (item 3) -------------------------------------------------
LOAD_SECONDS = float(os.environ.get("CITADEL_FAULT_LOAD_SECONDS", "60"))
STEP = {"steps": [{"type": "embedding", "text": "a short text to embed"}]}


async def test_no_request_hangs_under_32_concurrent_clients(stack: Stack) -> None:
    """The calls that once hung (a run taken up by recovery between its acceptance and its launch):
    create a thread then wait, stream, or create a background run and join it; a minute of 32 clients,
    every call answered within its deadline. The workflow graph's embedding step keeps runs short."""

    async def new_thread(client: httpx.AsyncClient) -> str:
        response = await client.post("/threads", json={"graph_id": "workflow"})
        response.raise_for_status()
        return str(response.json()["thread_id"])

    async def wait(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(
            f"/threads/{await new_thread(client)}/runs/wait", json={"assistant_id": "workflow", "input": STEP}
        )

    async def stream(client: httpx.AsyncClient) -> httpx.Response:
        body = {"assistant_id": "workflow", "input": STEP, "stream_mode": ["values"]}
        async with client.stream("POST", f"/threads/{await new_thread(client)}/runs/stream", json=body) as response:
            await response.aread()
        return response

    async def join(client: httpx.AsyncClient) -> httpx.Response:
        thread_id = await new_thread(client)
        created = await client.post(f"/threads/{thread_id}/runs", json={"assistant_id": "workflow", "input": STEP})
        if created.status_code != 200:
            return created
        return await client.get(f"/threads/{thread_id}/runs/{created.json()['run_id']}/join")

    stop = asyncio.Event()
    load = asyncio.create_task(
        steady_load(
            stack.citadel.url, {"wait": wait, "stream": stream, "join": join}, workers=32, stop=stop, deadline=DEADLINE
        )
    )
    await asyncio.sleep(LOAD_SECONDS)
    stop.set()
    tally = await load
    print(f"\n[{LOAD_SECONDS:g} s of 32 clients: create + wait / stream / join] {tally.summary()}")
    assert tally.requests > 32
    assert not tally.unanswered, tally.unanswered[:5]
    assert not tally.server_errors, tally.server_errors[:5]
    assert set(tally.statuses) == {200}, tally.statuses


# --- readiness with every LLM backend dead (item 5): last, it kills them ------------------------
async def test_ready_is_503_while_no_llm_backend_is_reachable(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.citadel.url, timeout=DEADLINE) as http:
        ready = await http.get("/health/ready")
        assert ready.status_code == 200, ready.text
        for server in stack.llms:
            server.kill()

        async def not_ready() -> httpx.Response | None:
            response = await http.get("/health/ready")
            return response if response.status_code == 503 else None

        down = await wait_for(not_ready, "readiness to see the backends gone", deadline=30)
        assert all(down.json()["checks"][f"llm:{s.name}"]["status"] == "down" for s in stack.llms), down.text
        # A chat request opens both circuits; once they go half-open, readiness must still say 503.
        chat = await http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert chat.status_code == 503, chat.text
        assert "retry-after" in chat.headers

        async def half_open() -> httpx.Response | None:
            response = await http.get("/health/ready")
            checks = response.json()["checks"]
            return response if all(checks[f"llm:{s.name}"]["circuit"] == "half_open" for s in stack.llms) else None

        later = await wait_for(half_open, "the circuits to go half-open", deadline=30)
        assert later.status_code == 503, later.text
        assert later.json()["status"] == "down"

"""Chat over Ollama's wire format, with routing, failover and circuit breaking, end to end.

Citadel (the real app, served over HTTP by uvicorn) is configured with two Ollama servers, llm-01
and llm-02, and no embedded LLM. The servers are `tests.ollama_wire_server` subprocesses (no
Ollama can run here) that answer from SmolLM2 with a delay per token, so a stream lasts long
enough to be cut. The tests speak to Citadel with the OpenAI Python client, stop servers with
SIGKILL, and read what Citadel reports: the `citadel` field and `X-Citadel-*` headers,
`/health/ready` and `/metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from citadel.settings import Settings
from tests.live_server import LiveServer, clients
from tests.ollama_wire_server import WireServerProcess

pytestmark = pytest.mark.slow

GENERAL = "general-model"
CODER = "coder-model"
TOKEN_DELAY = 0.05
BREAKER_RESET = 1.5
STORY = "Write a long story about a brave knight who fights a dragon."

Wire = dict[str, WireServerProcess]
StartCitadel = Callable[..., Awaitable[LiveServer]]


# --- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    """llm-01 serves the general model; llm-02 serves it and the coder model. Killed on exit."""
    log_dir = tmp_path_factory.mktemp("ollama-wire")
    servers = {
        "llm-01": WireServerProcess("llm-01", log_dir=log_dir, chat_models=[GENERAL], token_delay=TOKEN_DELAY),
        "llm-02": WireServerProcess("llm-02", log_dir=log_dir, chat_models=[GENERAL, CODER], token_delay=TOKEN_DELAY),
    }
    with WireServerProcess.running(list(servers.values())):
        yield servers


@pytest.fixture(autouse=True)
def servers_up(wire: Wire) -> None:
    """Each test starts with both servers running and no fault injected (a test may have stopped one)."""
    stopped = [server for server in wire.values() if not server.alive]
    for server in stopped:
        server.spawn()
    for server in stopped:
        server.wait_ready()
    for server in wire.values():
        httpx.post(f"{server.url}/_test/faults", json={}, timeout=5).raise_for_status()


@pytest.fixture
def start_citadel(make_settings: Callable[..., Settings], wire: Wire, tmp_path: Path) -> Iterator[StartCitadel]:
    """Start the real app in front of the wire servers (settings may be overridden per test); stopped
    after the test. It starts in a worker thread: starting blocks, and the test's event loop runs."""
    with contextlib.ExitStack() as stack:

        async def start(**overrides: Any) -> LiveServer:
            settings: dict[str, Any] = {
                "local_llm": False,
                "llm_servers": llm_servers(wire),
                "llm_routes": {"code": [CODER]},
                "breaker_failures": 2,
                "breaker_reset_seconds": BREAKER_RESET,
                "llm_retries": 1,
                "llm_retry_delay": 0.05,
                "health_interval": 0.25,
            }
            server = LiveServer.start(make_settings(**(settings | overrides)))
            return await asyncio.to_thread(stack.enter_context, server)

        yield start


# --- helpers ------------------------------------------------------------------------------------
def llm_servers(wire: Wire, **llm01: Any) -> list[dict[str, Any]]:
    """CITADEL_LLM_SERVERS for the two wire servers, with any setting of llm-01's overridden."""
    return [
        {"name": "llm-01", "url": wire["llm-01"].url, "models": [GENERAL], "timeout": 30} | llm01,
        {"name": "llm-02", "url": wire["llm-02"].url, "models": [GENERAL, CODER], "timeout": 30},
    ]


async def until(check: Callable[[], Any], what: str, within: float = 15.0) -> Any:
    """Poll `check` (sync or async) until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:g} s: {what}")
        await asyncio.sleep(0.02)


async def metric(http: httpx.AsyncClient, name: str, **labels: str) -> float | None:
    response = await http.get("/metrics")
    response.raise_for_status()
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def llm_check(http: httpx.AsyncClient, backend: str) -> dict[str, Any]:
    """What /health/ready says of one LLM backend: status, health, circuit."""
    checks: dict[str, Any] = (await http.get("/health/ready")).json()["checks"]
    return checks[f"llm:{backend}"]  # type: ignore[no-any-return]


async def chats_served(wire: Wire) -> dict[str, int]:
    """Chat requests each wire server has answered since it started."""
    async with httpx.AsyncClient(timeout=5) as http:
        return {name: (await http.get(f"{s.url}/_test/stats")).json().get("chat", 0) for name, s in wire.items()}


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


# --- tests --------------------------------------------------------------------------------------
async def test_the_wire_server_speaks_ollama_to_the_ollama_client(wire: Wire) -> None:
    """The double is checked against Ollama's own Python client before Citadel is put in front of it."""
    client = ollama.AsyncClient(host=wire["llm-02"].url)
    try:
        listed = await client.list()
        assert {m.model for m in listed.models} == {f"{GENERAL}:latest", f"{CODER}:latest"}
        assert all(m.size and m.digest and m.details and m.details.format == "gguf" for m in listed.models)

        parts = [p async for p in await client.chat(CODER, user(STORY), stream=True, options={"num_predict": 5})]
        assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
        assert "".join(p.message.content or "" for p in parts).strip()
        assert parts[-1].done_reason == "length"
        assert parts[-1].eval_count == len(parts) - 1
        assert parts[-1].model == CODER

        whole = await client.chat(f"{CODER}:latest", user("Say hello."), options={"num_predict": 4, "temperature": 0})
        assert whole.done
        assert whole.message.role == "assistant"
        assert whole.message.content

        with pytest.raises(ollama.ResponseError) as missing:
            await client.chat("missing-model", user("hi"))
        assert missing.value.status_code == 404
        assert missing.value.error == 'model "missing-model" not found, try pulling it first'
        with pytest.raises(ollama.ResponseError, match="does not support thinking") as thinking:
            await client.chat(GENERAL, user("hi"), think=True)
        assert thinking.value.status_code == 400
    finally:
        await client.close()


async def test_chat_goes_over_the_ollama_wire_and_names_the_backend(start_citadel: StartCitadel, wire: Wire) -> None:
    citadel = await start_citadel()
    before = await chats_served(wire)
    async with clients(citadel) as (client, _):
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=user("Tell me about the history of Rome."), max_tokens=6
        )
        completion = raw.parse()
        assert raw.headers["x-citadel-backend"] == "llm-01"
        assert raw.headers["x-citadel-model"] == GENERAL
        report = (completion.model_extra or {})["citadel"]
        assert report["backend"] == "llm-01"
        assert "default order" in report["reason"]
        assert report["passed_over"] == []
        assert completion.model == GENERAL
        assert completion.choices[0].message.content
        assert completion.choices[0].finish_reason == "length", "Ollama's done_reason must reach the client"

        async with client.chat.completions.with_streaming_response.create(
            model="auto", messages=user(STORY), max_tokens=6, stream=True
        ) as response:
            assert response.headers["x-citadel-backend"] == "llm-01"
            chunks = [chunk async for chunk in await response.parse()]
        assert "".join(c.choices[0].delta.content or "" for c in chunks).strip()
        assert len([c for c in chunks if c.choices[0].delta.content]) >= 3, "tokens arrive one by one"
        assert chunks[-1].choices[0].finish_reason == "length"
    after = await chats_served(wire)
    assert after["llm-01"] - before["llm-01"] == 2, (before, after)
    assert after["llm-02"] == before["llm-02"], (before, after)


async def test_routes_and_requested_models_choose_the_backend(start_citadel: StartCitadel, wire: Wire) -> None:
    citadel = await start_citadel()
    async with clients(citadel) as (client, _):
        coding = user("Write a Python function that reverses a linked list")
        code = await client.chat.completions.create(model="auto", messages=coding, max_tokens=4)
        report = (code.model_extra or {})["citadel"]
        assert (report["backend"], code.model, report["route"]) == ("llm-02", CODER, "code")
        assert report["reason"].startswith("route code (similarity ")

        named = await client.chat.completions.create(
            model=CODER, messages=user("What is the capital of France?"), max_tokens=4
        )
        assert ((named.model_extra or {})["citadel"]["backend"], named.model) == ("llm-02", CODER)
        assert (named.model_extra or {})["citadel"]["reason"] == "requested model"

        # llm-02 now fails every chat: whoever names the coder model gets an error, not another model.
        before = await chats_served(wire)
        async with httpx.AsyncClient() as http:
            (await http.post(f"{wire['llm-02'].url}/_test/faults", json={"chat_status": 500})).raise_for_status()
        with pytest.raises(openai.APIStatusError) as refused:
            await client.chat.completions.create(model=CODER, messages=user("hi"), max_tokens=4)
        assert refused.value.status_code == 503
        message = str(refused.value)
        assert "llm-02: HTTP 500" in message
        assert "llm-01" not in message
        assert (await chats_served(wire))["llm-01"] == before["llm-01"], "llm-01 does not serve the coder model"

        # The coding route itself falls back to the other backend's default model.
        fallback = await client.chat.completions.create(model="auto", messages=coding, max_tokens=4)
        report = (fallback.model_extra or {})["citadel"]
        assert (report["backend"], fallback.model, report["route"]) == ("llm-01", GENERAL, "code")
        assert report["reason"] == "failover"
        assert any(attempt.startswith("llm-02") for attempt in report["passed_over"])


@pytest.mark.parametrize(
    ("fault", "llm01", "passed_over"),
    [
        pytest.param({"chat_status": 500}, {}, "llm-01: HTTP 500", id="http-500"),
        pytest.param({"first_token_delay": 3.0}, {"timeout": 0.5}, "no first token within 0.5 s", id="stall"),
    ],
)
async def test_failure_before_the_first_token_fails_over_transparently(
    start_citadel: StartCitadel, wire: Wire, fault: dict[str, Any], llm01: dict[str, Any], passed_over: str
) -> None:
    # A high threshold keeps llm-01's circuit closed, so every request really tries it first.
    citadel = await start_citadel(llm_servers=llm_servers(wire, **llm01), breaker_failures=10)
    async with httpx.AsyncClient() as http:
        (await http.post(f"{wire['llm-01'].url}/_test/faults", json=fault)).raise_for_status()
    async with clients(citadel) as (client, _):
        completion = await client.chat.completions.create(model="auto", messages=user(STORY), max_tokens=4)
        report = (completion.model_extra or {})["citadel"]
        assert report["backend"] == "llm-02"
        assert completion.choices[0].message.content
        assert report["reason"] == "default order" or report["reason"].endswith(", default order")
        assert len(report["passed_over"]) == 1
        assert passed_over in report["passed_over"][0]

        async with client.chat.completions.with_streaming_response.create(
            model="auto", messages=user(STORY), max_tokens=4, stream=True
        ) as response:
            assert response.headers["x-citadel-backend"] == "llm-02"
            chunks = [chunk async for chunk in await response.parse()]
        assert "".join(c.choices[0].delta.content or "" for c in chunks).strip()
        assert chunks[-1].choices[0].finish_reason in ("stop", "length")


@dataclass
class Outcome:
    """One streamed request of the load: where it started and how it ended."""

    after_kill: bool
    backend: str | None = None
    tokens: int = 0
    finish: str | None = None
    error: str | None = None
    ended_at: float = math.inf

    @property
    def ok(self) -> bool:
        return self.error is None and self.finish is not None


async def test_killing_a_backend_mid_load(start_citadel: StartCitadel, wire: Wire) -> None:
    citadel = await start_citadel()
    llm01 = wire["llm-01"]
    outcomes: list[Outcome] = []
    mid_stream_on_01 = asyncio.Event()
    reported: list[tuple[str, str]] = []  # llm-01's (status, circuit) on /health/ready, each change once

    async with clients(citadel) as (client, http):

        async def watch_readiness() -> None:
            while True:
                check = await llm_check(http, "llm-01")
                if not reported or reported[-1] != (check["status"], check["circuit"]):
                    reported.append((check["status"], check["circuit"]))
                await asyncio.sleep(0.02)

        async def request(outcome: Outcome, max_tokens: int) -> None:
            try:
                async with client.chat.completions.with_streaming_response.create(
                    model="auto", messages=user(STORY), max_tokens=max_tokens, stream=True
                ) as response:
                    # Citadel answers only once a backend produced a first token: the stream has started there.
                    outcome.backend = response.headers["x-citadel-backend"]
                    async for chunk in await response.parse():
                        choice = chunk.choices[0]
                        if choice.delta.content:
                            outcome.tokens += 1
                            if outcome.backend == "llm-01" and outcome.tokens == 2:
                                mid_stream_on_01.set()
                        outcome.finish = choice.finish_reason or outcome.finish
            except openai.APIError as error:
                outcome.error = f"{type(error).__name__}: {error}"
            finally:
                outcome.ended_at = time.monotonic()

        def launch(count: int, after_kill: bool, max_tokens: int = 20) -> list[asyncio.Task[None]]:
            fresh = [Outcome(after_kill=after_kill) for _ in range(count)]
            outcomes.extend(fresh)
            return [asyncio.create_task(request(outcome, max_tokens)) for outcome in fresh]

        watcher = asyncio.create_task(watch_readiness())
        try:
            await until(lambda: reported, "a first /health/ready answer")
            # Requests go to llm-01 first. One streams from it; five more are held before their first
            # token (a stall injected once the first streams, so however the machine paces the
            # requests, these are still waiting on llm-01 when it is killed).
            tasks = launch(1, after_kill=False, max_tokens=200)  # 10 s of tokens: still streaming at the kill
            async with asyncio.timeout(30):
                await mid_stream_on_01.wait()
            (await http.post(f"{llm01.url}/_test/faults", json={"first_token_delay": 60.0})).raise_for_status()
            tasks += launch(5, after_kill=False)

            async def stalled() -> bool:
                return (await http.get(f"{llm01.url}/_test/stats")).json().get("chat_stalled", 0) >= 5

            await until(stalled, "five requests held by llm-01 before their first token")
            llm01.kill()
            killed_at = time.monotonic()
            tasks += launch(4, after_kill=True)
            async with asyncio.timeout(60):
                await asyncio.gather(*tasks)

            # Only streams llm-01 had started and not finished when it died may fail.
            in_flight = [o for o in outcomes if o.backend == "llm-01" and o.ended_at >= killed_at]
            failed = [o for o in outcomes if not o.ok]
            assert 1 <= len(failed) <= len(in_flight), [vars(o) for o in outcomes]
            for outcome in failed:
                assert outcome in in_flight, vars(outcome)
                assert "llm-01 failed mid-answer" in (outcome.error or ""), vars(outcome)
            # Requests still waiting for llm-01's first token failed over unseen; later ones went to llm-02.
            waiting = [o for o in outcomes if not o.after_kill and o.backend != "llm-01"]
            assert waiting, "the load should have had requests queued on llm-01 when it died"
            assert all(o.ok and o.backend == "llm-02" for o in waiting), [vars(o) for o in waiting]
            later = [o for o in outcomes if o.after_kill]
            assert all(o.ok and o.backend == "llm-02" for o in later), [vars(o) for o in later]

            # The breaker opened, and readiness said llm-01 was down.
            await until(lambda: ("down", "open") in reported, f"llm-01 reported down with its circuit open: {reported}")
            assert await metric(http, "citadel_backend_healthy", backend="llm-01") == 0
            assert await metric(http, "citadel_circuit_state", backend="llm-01") in (1, 2)  # half-open or open

            # Back on the same port: health checks see it, the breaker lets one trial through, it closes.
            await asyncio.to_thread(llm01.start)

            async def healthy_again() -> bool:
                return await metric(http, "citadel_backend_healthy", backend="llm-01") == 1

            await until(healthy_again, "llm-01 healthy again")
            await until(lambda: reported[-1][1] == "half_open", f"llm-01's circuit half-open: {reported}")
            trial = await client.chat.completions.create(model="auto", messages=user(STORY), max_tokens=4)
            assert (trial.model_extra or {})["citadel"]["backend"] == "llm-01"
            assert (await llm_check(http, "llm-01"))["circuit"] == "closed"
            assert await metric(http, "citadel_circuit_state", backend="llm-01") == 0
            await until(lambda: reported[-1] == ("ok", "closed"), f"llm-01 reported ok: {reported}")
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    circuit = [state for _, state in reported]
    assert _in_order(circuit, ["closed", "open", "half_open", "closed"]), reported


async def test_both_backends_down_answers_503_with_retry_after(start_citadel: StartCitadel, wire: Wire) -> None:
    reset = 30.0  # long enough that both circuits stay open for the whole test
    citadel = await start_citadel(breaker_reset_seconds=reset)
    for server in wire.values():
        server.kill()
    async with clients(citadel) as (client, http):
        with pytest.raises(openai.APIStatusError) as down:
            await client.chat.completions.create(model="auto", messages=user("hi"), max_tokens=4)
        assert down.value.status_code == 503
        # Retry-After says when the first circuit lets a trial call through.
        assert reset - 5 <= int(down.value.response.headers["retry-after"]) <= reset
        body = down.value.body
        assert isinstance(body, dict)
        assert body["code"] == "backend_unavailable"
        assert body["message"].startswith("no LLM backend could answer: ")
        assert "llm-01: unreachable" in body["message"]
        assert "llm-02: unreachable" in body["message"]

        # Both circuits are open now: a streamed request is refused the same way, before any event.
        with pytest.raises(openai.APIStatusError) as refused:
            await client.chat.completions.create(model="auto", messages=user("hi"), max_tokens=4, stream=True)
        assert refused.value.status_code == 503
        assert reset - 5 <= int(refused.value.response.headers["retry-after"]) <= reset
        assert "no LLM backend could answer: llm-01: circuit open; llm-02: circuit open" in str(refused.value)

        async def not_ready() -> bool:
            response = await http.get("/health/ready")
            return response.status_code == 503 and response.json()["status"] == "down"

        await until(not_ready, "/health/ready to answer 503")


def _in_order(seen: list[str], expected: list[str]) -> bool:
    """Whether `expected` occurs in `seen` in this order (other states may come between)."""
    remaining = iter(seen)
    return all(state in remaining for state in expected)

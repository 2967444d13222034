"""The LLM-routing tool: one chat interface over every configured backend.

For each request the router plans an ordered list of (backend, model) candidates:
1. a requested model: the backends that serve it (and only those: a caller who names a model
   gets that model or an error);
2. otherwise a route, given or chosen by the semantic router from the last user message: the
   models configured for it (`CITADEL_LLM_ROUTES`), then every other backend as failover.
It then tries them in order. Each backend has a circuit breaker, a timeout to the first token and
retries with exponential backoff and jitter on retryable errors. A stream that fails before its
first token fails over transparently; once tokens have been sent, a failure ends the stream.
Every decision is logged and counted: which backend, why, how long it took.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from citadel import metrics
from citadel.errors import BackendError, InvalidRequest, NotFound, Unavailable
from citadel.settings import Settings
from citadel.tools.circuit_breaker import CircuitBreaker, State, export_state
from citadel.tools.llm_backends import ChatBackend, GenerationParams
from citadel.tools.semantic_router import SemanticRouter

log = logging.getLogger(__name__)

AUTO = "auto"
NO_BACKEND = "no LLM backend: set CITADEL_LLM_SERVERS (Ollama servers) or CITADEL_LOCAL_LLM=true (the embedded model)"
NO_BACKEND_RETRY_SECONDS = 60.0
"""What a client is told to wait when no backend is configured: a restart with one, not a blip."""
HEALTH_TIMEOUT = 5.0
"""Seconds a backend's health check may take before it counts as failed."""


@dataclass
class Candidate:
    backend: ChatBackend
    model: str
    reason: str


@dataclass
class RouteDecision:
    backend: str
    model: str
    route: str | None
    reason: str
    attempts: list[str] = field(default_factory=list)
    """What was tried before, and why it was passed over."""
    first_token_seconds: float = 0.0


class RoutedStream:
    """A stream that has already produced its first chunk, so its backend is known."""

    def __init__(self, decision: RouteDecision, first: AIMessageChunk, rest: AsyncIterator[AIMessageChunk]) -> None:
        self.decision = decision
        self._first: AIMessageChunk | None = first
        self._rest = rest

    def __aiter__(self) -> AsyncIterator[AIMessageChunk]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[AIMessageChunk]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        async for chunk in self._rest:
            yield chunk

    async def aclose(self) -> None:
        await self._rest.aclose()  # type: ignore[attr-defined]


class LLMRouter:
    def __init__(self, settings: Settings, backends: list[ChatBackend], semantic: SemanticRouter | None) -> None:
        self._settings = settings
        self.backends = backends
        self.semantic = semantic
        self.breakers = {
            b.name: CircuitBreaker(
                b.name,
                failure_threshold=settings.breaker_failures,
                reset_timeout=settings.breaker_reset_seconds,
                on_change=export_state,
            )
            for b in backends
        }
        self.health: dict[str, tuple[bool, str]] = {b.name: (True, "not checked yet") for b in backends}
        self._health_task: asyncio.Task[None] | None = None
        self._checking: asyncio.Future[dict[str, tuple[bool, str]]] | None = None
        self._checked_at = -float("inf")
        for b in backends:
            metrics.CIRCUIT_STATE.labels(b.name).set(0)

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        await self.check_health()
        self._health_task = asyncio.create_task(self._health_loop(), name="llm-health")

    async def aclose(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        for backend in self.backends:
            await backend.aclose()

    async def check_health(self) -> dict[str, tuple[bool, str]]:
        async def check(backend: ChatBackend) -> None:
            timeout = min(HEALTH_TIMEOUT, backend.timeout)
            try:
                async with asyncio.timeout(timeout):
                    seconds = await backend.check_health()
            except BackendError as error:
                self.health[backend.name] = (False, error.message)
            except TimeoutError:
                self.health[backend.name] = (False, f"health check: no answer within {timeout:g} s")
            else:
                self.health[backend.name] = (True, f"{seconds * 1000:.0f} ms")
            metrics.BACKEND_HEALTHY.labels(backend.name).set(1 if self.health[backend.name][0] else 0)

        await asyncio.gather(*(check(b) for b in self.backends))
        self._checked_at = time.monotonic()
        return self.health

    async def fresh_health(self, max_age: float) -> dict[str, tuple[bool, str]]:
        """The backends' health as checked at most `max_age` seconds ago: checked now if older (what
        readiness answers; callers arriving during a check share it)."""
        if self._checking is None and time.monotonic() - self._checked_at <= max_age:
            return self.health
        if self._checking is None:
            self._checking = asyncio.ensure_future(self.check_health())
            self._checking.add_done_callback(lambda _: setattr(self, "_checking", None))
        return await asyncio.shield(self._checking)

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.health_interval)
            await self.check_health()

    # --- planning -----------------------------------------------------------------------------
    def models(self) -> dict[str, list[str]]:
        """Every model that can be requested, with the backends that serve it."""
        served: dict[str, list[str]] = {}
        for backend in self.backends:
            for model in backend.models:
                served.setdefault(model, []).append(backend.name)
        return served

    @property
    def default_max_tokens(self) -> int:
        return self._settings.llm_max_tokens

    def tool_model(self) -> BaseChatModel | None:
        """A chat model that can call tools: the default model of the first backend that declares
        `tool_calling`, is healthy and whose circuit is not open; None when there is none (e.g. only
        the embedded model). It calls its server directly, without the router's failover."""
        for backend in self.backends:
            if (
                backend.tool_calling
                and self.health[backend.name][0]
                and self.breakers[backend.name].state is not State.OPEN
            ):
                return backend.chat_model(backend.models[0])
        return None

    @property
    def routes(self) -> list[str]:
        return [r.name for r in self.semantic.routes] if self.semantic else []

    async def plan(
        self, messages: list[BaseMessage], model: str | None = None, route: str | None = None
    ) -> tuple[str | None, list[Candidate]]:
        if model and model != AUTO:
            requested = [Candidate(b, model, "requested model") for b in self.backends if model in b.models]
            if not requested:
                available = ", ".join([AUTO, *sorted(self.models())])
                raise NotFound(f"unknown model {model!r}; available: {available}", param="model")
            return None, requested
        reason = "route given"
        if route is not None and route not in self.routes:
            raise InvalidRequest(
                f"unknown route {route!r}; available: {', '.join(self.routes) or 'none'}", param="route"
            )
        if route is None and self.semantic is not None:
            text = next((m.text for m in reversed(messages) if m.type == "human"), "")
            if text.strip():
                match = await self.semantic.classify(text)
                if match.confident:
                    route, reason = match.route, f"route {match.route} (similarity {match.score:.2f})"
                else:
                    reason = f"no confident route (best {match.route} at {match.score:.2f})"
        candidates: list[Candidate] = []
        for wanted in self._settings.llm_routes.get(route or "", []):
            candidates += [Candidate(b, wanted, reason) for b in self.backends if wanted in b.models]
        chosen = {c.backend.name for c in candidates}
        default_reason = (
            "failover" if candidates else ("default order" if reason == "route given" else f"{reason}, default order")
        )
        candidates += [Candidate(b, b.models[0], default_reason) for b in self.backends if b.name not in chosen]
        # Backends whose last health check failed go last, not away: the check may be stale.
        candidates.sort(key=lambda c: not self.health[c.backend.name][0])
        return route, candidates

    # --- calling ------------------------------------------------------------------------------
    async def stream(
        self,
        messages: list[BaseMessage],
        *,
        model: str | None = None,
        route: str | None = None,
        params: GenerationParams | None = None,
    ) -> RoutedStream:
        """Open a stream on the first candidate that produces a first token.

        Raises NotFound / InvalidRequest for a bad request, Unavailable when every candidate failed.
        """
        if not messages:
            raise InvalidRequest("messages must not be empty", param="messages")
        if not self.backends:
            raise Unavailable(NO_BACKEND, retry_after=NO_BACKEND_RETRY_SECONDS)
        params = params or GenerationParams(max_tokens=self._settings.llm_max_tokens)
        chosen_route, candidates = await self.plan(messages, model, route)
        attempts: list[str] = []
        for candidate in candidates:
            breaker = self.breakers[candidate.backend.name]
            if not breaker.allow():
                attempts.append(f"{candidate.backend.name}: circuit {breaker.state.value}")
                continue
            try:
                opened = await self._open_with_retries(candidate, breaker, messages, params)
            except BackendError as error:
                attempts.append(error.message)
                log.warning("LLM backend %s failed, failing over: %s", candidate.backend.name, error.message)
                continue
            first, rest, seconds = opened
            decision = RouteDecision(
                backend=candidate.backend.name,
                model=candidate.model,
                route=chosen_route,
                reason=candidate.reason,
                attempts=attempts,
                first_token_seconds=seconds,
            )
            metrics.ROUTE_DECISIONS.labels(chosen_route or "", decision.backend, candidate.reason.split(" (")[0]).inc()
            log.info(
                "llm route: backend=%s model=%s route=%s reason=%r first_token=%.0fms passed_over=%s",
                decision.backend, decision.model, chosen_route, decision.reason, seconds * 1000, attempts or "none",
            )  # fmt: skip
            return RoutedStream(decision, first, self._watch(candidate, breaker, rest))
        retry_after = min((b.retry_after() for b in self.breakers.values()), default=0.0)
        raise Unavailable("no LLM backend could answer: " + "; ".join(attempts), retry_after=max(retry_after, 1.0))

    async def invoke(
        self,
        messages: list[BaseMessage],
        *,
        model: str | None = None,
        route: str | None = None,
        params: GenerationParams | None = None,
    ) -> tuple[AIMessage, RouteDecision]:
        stream = await self.stream(messages, model=model, route=route, params=params)
        parts: list[AIMessageChunk] = [chunk async for chunk in stream]
        merged = parts[0]
        for part in parts[1:]:
            merged = merged + part
        message = AIMessage(content=merged.content, response_metadata=merged.response_metadata)
        return message, stream.decision

    async def _open_with_retries(
        self, candidate: Candidate, breaker: CircuitBreaker, messages: list[BaseMessage], params: GenerationParams
    ) -> tuple[AIMessageChunk, AsyncIterator[AIMessageChunk], float]:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._settings.llm_retries + 1),
            wait=wait_exponential_jitter(
                multiplier=self._settings.llm_retry_delay, jitter=self._settings.llm_retry_delay, max=5.0
            ),
            retry=retry_if_exception(lambda e: isinstance(e, BackendError) and e.retryable),
            reraise=True,
        )
        first_attempt = True
        async for attempt in retrying:
            with attempt:
                if not first_attempt and not breaker.allow():
                    raise BackendError(candidate.backend.name, "circuit opened during retries", retryable=False)
                first_attempt = False
                return await self._open(candidate, breaker, messages, params)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _open(
        self, candidate: Candidate, breaker: CircuitBreaker, messages: list[BaseMessage], params: GenerationParams
    ) -> tuple[AIMessageChunk, AsyncIterator[AIMessageChunk], float]:
        backend = candidate.backend
        started = time.perf_counter()
        tokens = backend.stream(messages, candidate.model, params)
        try:
            async with asyncio.timeout(backend.timeout):
                first = await anext(tokens)  # type: ignore[call-overload]
        except StopAsyncIteration:
            first = AIMessageChunk(content="")
        except TimeoutError as error:
            await tokens.aclose()  # type: ignore[attr-defined]
            breaker.record_failure()
            metrics.BACKEND_CALLS.labels(backend.name, "timeout").inc()
            raise BackendError(backend.name, f"no first token within {backend.timeout:g} s", retryable=True) from error
        except BackendError as error:
            await tokens.aclose()  # type: ignore[attr-defined]
            if error.retryable:
                breaker.record_failure()
            else:
                breaker.release()
            metrics.BACKEND_CALLS.labels(backend.name, "failure").inc()
            raise
        except BaseException:
            await tokens.aclose()  # type: ignore[attr-defined]
            breaker.release()
            raise
        seconds = time.perf_counter() - started
        breaker.record_success()  # it answered; a later failure mid-stream counts against it again
        metrics.BACKEND_LATENCY.labels(backend.name).observe(seconds)
        return first, tokens, seconds

    async def _watch(
        self, candidate: Candidate, breaker: CircuitBreaker, tokens: AsyncIterator[AIMessageChunk]
    ) -> AsyncIterator[AIMessageChunk]:
        """The rest of a stream; a failure after the first token ends it and counts against the backend."""
        name = candidate.backend.name
        try:
            async for chunk in tokens:
                yield chunk
        except BackendError as error:
            if error.retryable:
                breaker.record_failure()
            metrics.BACKEND_CALLS.labels(name, "failure").inc()
            raise Unavailable(f"{name} failed mid-answer: {error.message}", retry_after=1.0) from error
        finally:
            await tokens.aclose()  # type: ignore[attr-defined]
        metrics.BACKEND_CALLS.labels(name, "success").inc()

"""A test double for an Ollama server: it speaks Ollama's documented REST wire format and answers
from Citadel's embedded models.

No Ollama server can run on the machines Citadel is tested on, so the Ollama path (langchain-ollama's
ChatOllama and OllamaEmbeddings, the router's circuit breakers, retries and failover) is tested
against this server instead, run as a subprocess that tests may kill mid-stream. It implements the
part of Ollama's API that Citadel uses:

- `GET /api/version`, `GET /api/tags` (the models, in Ollama's shape; names get the `:latest` tag);
- `POST /api/embed` (`model`, `input` text or list, `truncate`, `dimensions`, `options`,
  `keep_alive`): unit vectors from the embedded all-MiniLM-L6-v2 (`citadel.tools.minilm.MiniLM`);
- `POST /api/chat` (`model`, `messages`, `stream` (default true), `options` num_predict /
  temperature / top_p / stop, `keep_alive`, `format`, `think`, `tools`): answered by the embedded
  SmolLM2 (`citadel.tools.embedded_chat.EmbeddedLLM`), whatever the chat model's name: every name given
  with `--chat-models` is an alias for it. A stream is newline-delimited JSON, one object per token,
  then a final object with `"done": true`, `done_reason` and the timings.
An unknown model is a 404 `{"error": "model \\"x\\" not found, try pulling it first"}`, as in Ollama.
SmolLM2 has no thinking mode, no tool template and no constrained decoding here, so `think`,
`tools` and `format` are refused with a 400 and Ollama's kind of message, never silently ignored.

For tests, beyond Ollama's API:
- `--token-delay S` waits S seconds before sending each token, so a stream lasts long enough to be
  interrupted deterministically; `--threads N` (default 1) bounds the models' threads, so several
  servers and the app under test share a small machine without slowing each other down;
- `POST /_test/faults` `{"chat_status": 500, "first_token_delay": 2.0}` makes every chat request
  fail with that status (and an Ollama-style error body) or stall before its first token, until
  faults are posted again (`{}` clears them); `GET /_test/stats` counts the requests answered
  (`chat_stalled`: chat requests held by `first_token_delay`, counted as the stall begins).

Run: `python -m tests.ollama_wire_server --port P --chat-models m1,m2 --embed-models all-minilm`.
It prints `ready http://127.0.0.1:P` once it accepts requests; `/api/version` answers from then on.
`WireServerProcess` (below) starts it as a subprocess and waits for that with a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx
import uvicorn
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from citadel.errors import CitadelError
from citadel.tools.embedded_chat import EmbeddedLLM, bundled_model_path
from citadel.tools.minilm import MAX_TOKENS, MiniLM, model_files

OLLAMA_VERSION = "0.12.6"
"""The Ollama release whose documented API this double follows."""

NDJSON = "application/x-ndjson"


# --- state --------------------------------------------------------------------------------------
@dataclass
class Faults:
    chat_status: int | None = None
    """Answer every chat request with this HTTP status (and an Ollama-style error body)."""
    first_token_delay: float = 0.0
    """Seconds to stall before a chat answer's first token."""


@dataclass
class WireModel:
    name: str
    """With its tag, as Ollama lists it: `name:latest` when no tag was given."""
    path: Path
    family: str
    format: str
    parameter_size: str
    quantization_level: str

    def tag_entry(self, modified_at: str) -> dict[str, Any]:
        size = self.path.stat().st_size
        digest = hashlib.sha256(f"{self.name}:{self.path}:{size}".encode()).hexdigest()
        return {
            "name": self.name,
            "model": self.name,
            "modified_at": modified_at,
            "size": size,
            "digest": digest,
            "details": {
                "parent_model": "",
                "format": self.format,
                "family": self.family,
                "families": [self.family],
                "parameter_size": self.parameter_size,
                "quantization_level": self.quantization_level,
            },
        }


@dataclass
class WireState:
    chat_models: dict[str, WireModel]
    embed_models: dict[str, WireModel]
    token_delay: float
    started_at: str
    llm: EmbeddedLLM | None = None
    minilm: MiniLM | None = None
    faults: Faults = field(default_factory=Faults)
    counts: Counter[str] = field(default_factory=Counter)


def tagged(name: str) -> str:
    """Ollama's full model name: `all-minilm` is `all-minilm:latest`."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _not_found(model: str) -> JSONResponse:
    return _error(f'model "{model}" not found, try pulling it first', 404)


async def _json_body(request: Request) -> dict[str, Any] | JSONResponse:
    try:
        body = await request.json()
    except ValueError as error:
        return _error(f"invalid JSON body: {error}", 400)
    if not isinstance(body, dict):
        return _error("request body must be a JSON object", 400)
    return body


# --- routes -------------------------------------------------------------------------------------
async def version(request: Request) -> JSONResponse:
    return JSONResponse({"version": OLLAMA_VERSION})


async def tags(request: Request) -> JSONResponse:
    state: WireState = request.state.wire
    models = [*state.chat_models.values(), *state.embed_models.values()]
    return JSONResponse({"models": [m.tag_entry(state.started_at) for m in models]})


async def embed(request: Request) -> JSONResponse:
    state: WireState = request.state.wire
    body = await _json_body(request)
    if isinstance(body, JSONResponse):
        return body
    started = time.perf_counter_ns()
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _error("model is required", 400)
    if tagged(model) not in state.embed_models or state.minilm is None:
        return _not_found(model)
    raw = body.get("input", [])
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        return _error("invalid input type: input must be a string or a list of strings", 400)
    minilm = state.minilm
    counts = minilm.count_tokens(texts) if texts else []
    if body.get("truncate") is False and any(count > MAX_TOKENS for count in counts):
        return _error("the input length exceeds the context length", 400)
    vectors = await asyncio.to_thread(minilm.encode, texts)
    dimensions = body.get("dimensions")
    if isinstance(dimensions, int) and 0 < dimensions < vectors.shape[1]:
        vectors = vectors[:, :dimensions]
        vectors = vectors / (vectors**2).sum(axis=1, keepdims=True).clip(1e-24, None) ** 0.5
    state.counts["embed"] += 1
    state.counts["embed_texts"] += len(texts)
    return JSONResponse(
        {
            "model": model,
            "embeddings": vectors.tolist(),
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": 0,
            "prompt_eval_count": sum(min(c, MAX_TOKENS) for c in counts),
        }
    )


def _to_messages(raw: Any) -> list[BaseMessage] | str:
    """Ollama chat messages as LangChain messages, or what is wrong with them."""
    if not isinstance(raw, list):
        return "messages must be a list"
    messages: list[BaseMessage] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("role"), str):
            return f"messages[{index}] must be an object with a role"
        content = item.get("content") or ""
        if not isinstance(content, str):
            return f"messages[{index}].content must be a string"
        role = item["role"]
        if role == "system":
            messages.append(SystemMessage(content))
        elif role == "user":
            messages.append(HumanMessage(content))
        elif role == "assistant":
            messages.append(AIMessage(content))
        elif role == "tool":
            messages.append(ToolMessage(content, tool_call_id=str(item.get("tool_name") or "tool")))
        else:
            return f"messages[{index}]: unknown role {role!r}"
    return messages


def _capabilities_error(body: dict[str, Any], model: str) -> str | None:
    """What this model cannot do that the request asks for (Ollama answers these with a 400)."""
    if body.get("think") not in (None, False):
        return f'"{model}" does not support thinking'
    if body.get("tools"):
        return f"registry.ollama.ai/library/{model} does not support tools"
    if body.get("format") not in (None, ""):
        return "format is not supported by this test double (SmolLM2 cannot be constrained here)"
    return None


@dataclass
class _Generation:
    model: str
    started_ns: int
    prompt_tokens: int
    tokens: int = 0
    done_reason: str = "stop"

    def message(self, content: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "created_at": _now(),
            "message": {"role": "assistant", "content": content},
            "done": False,
        }

    def final(self, content: str = "") -> dict[str, Any]:
        total = time.perf_counter_ns() - self.started_ns
        return {
            **self.message(content),
            "done": True,
            "done_reason": self.done_reason,
            "total_duration": total,
            "load_duration": 0,
            "prompt_eval_count": self.prompt_tokens,
            "prompt_eval_duration": 0,
            "eval_count": self.tokens,
            "eval_duration": total,
        }


async def chat(request: Request) -> Response:
    state: WireState = request.state.wire
    body = await _json_body(request)
    if isinstance(body, JSONResponse):
        return body
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _error("model is required", 400)
    if tagged(model) not in state.chat_models or state.llm is None:
        return _not_found(model)
    messages = _to_messages(body.get("messages", []))
    if isinstance(messages, str):
        return _error(messages, 400)
    if problem := _capabilities_error(body, model):
        return _error(problem, 400)
    generation = _Generation(
        model=model,
        started_ns=time.perf_counter_ns(),
        prompt_tokens=sum(state.llm.count_tokens(m.text) for m in messages),
    )
    if not messages:  # Ollama loads the model and answers at once
        return JSONResponse({**generation.final(), "done_reason": "load"})
    faults = state.faults
    if faults.first_token_delay:
        state.counts["chat_stalled"] += 1
        await asyncio.sleep(faults.first_token_delay)
    if faults.chat_status is not None:
        return _error(
            f"llama runner process has terminated: fault injected (HTTP {faults.chat_status})", faults.chat_status
        )
    options = body.get("options") or {}
    try:
        num_predict = int(options.get("num_predict", -1))
        temperature = float(options.get("temperature", 0.8))
        top_p = float(options.get("top_p", 0.9))
    except (TypeError, ValueError, AttributeError) as error:
        return _error(f"invalid options: {error}", 400)
    stop = options.get("stop")
    tokens = state.llm.stream(
        messages,
        max_tokens=num_predict if num_predict > 0 else -1,  # llama.cpp: <= 0 means up to the context size
        temperature=temperature,
        top_p=top_p,
        stop=[stop] if isinstance(stop, str) else stop,
    )
    try:
        first = await anext(tokens)  # type: ignore[call-overload]
    except StopAsyncIteration:
        first = AIMessageChunk(content="")
    except CitadelError as error:  # the prompt does not fit, or llama.cpp failed
        await tokens.aclose()  # type: ignore[attr-defined]
        return _error(error.message, 400 if error.status == 400 else 500)
    state.counts["chat"] += 1
    if body.get("stream", True):
        return StreamingResponse(_stream(state, generation, first, tokens), media_type=NDJSON)
    try:
        parts = [text async for text in _paced(state, generation, first, tokens)]
    except CitadelError as error:
        return _error(error.message, 500)
    return JSONResponse(generation.final("".join(parts)))


async def _paced(
    state: WireState, generation: _Generation, first: AIMessageChunk, rest: AsyncIterator[AIMessageChunk]
) -> AsyncIterator[str]:
    """The answer's texts, one per token, each after the configured token delay."""
    try:
        chunk: AIMessageChunk | None = first
        while chunk is not None:
            if reason := chunk.response_metadata.get("finish_reason"):
                generation.done_reason = "length" if reason == "length" else "stop"
            if chunk.text:
                if state.token_delay:
                    await asyncio.sleep(state.token_delay)
                generation.tokens += 1
                yield chunk.text
            chunk = await anext(rest, None)  # type: ignore[call-overload]
    finally:
        await rest.aclose()  # type: ignore[attr-defined]


async def _stream(
    state: WireState, generation: _Generation, first: AIMessageChunk, rest: AsyncIterator[AIMessageChunk]
) -> AsyncIterator[str]:
    try:
        async for text in _paced(state, generation, first, rest):
            yield json.dumps(generation.message(text), separators=(",", ":")) + "\n"
    except CitadelError as error:  # Ollama reports a failure after the first token in the stream
        yield json.dumps({"error": error.message}, separators=(",", ":")) + "\n"
        return
    yield json.dumps(generation.final(), separators=(",", ":")) + "\n"


async def set_faults(request: Request) -> JSONResponse:
    state: WireState = request.state.wire
    body = await _json_body(request)
    if isinstance(body, JSONResponse):
        return body
    try:
        state.faults = Faults(**body)
    except TypeError as error:
        return _error(str(error), 400)
    return JSONResponse(asdict(state.faults))


async def stats(request: Request) -> JSONResponse:
    state: WireState = request.state.wire
    return JSONResponse(dict(state.counts))


# --- the app and its command line ---------------------------------------------------------------
def create_app(
    chat_models: Sequence[str], embed_models: Sequence[str], token_delay: float = 0.0, threads: int = 1
) -> Starlette:
    chat_path = bundled_model_path() if chat_models else Path()
    minilm_path = model_files()[0]
    state = WireState(
        chat_models={tagged(n): WireModel(tagged(n), chat_path, "llama", "gguf", "135M", "Q4_1") for n in chat_models},
        embed_models={
            tagged(n): WireModel(tagged(n), minilm_path, "bert", "onnx", "23M", "int8") for n in embed_models
        },
        token_delay=token_delay,
        started_at=_now(),
    )
    for name in state.embed_models:
        if name != tagged(MiniLM.name):
            raise ValueError(f"only {MiniLM.name} can be served as an embedding model, not {name}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        if state.embed_models:
            state.minilm = await asyncio.to_thread(MiniLM, threads)
        if state.chat_models:
            state.llm = await asyncio.to_thread(EmbeddedLLM, None, context=2048, threads=threads)
            # One token first, so the first request does not pay llama.cpp's warm-up.
            async for _chunk in state.llm.stream([HumanMessage("Hi")], max_tokens=1, temperature=0, top_p=1, stop=None):
                pass
        try:
            yield {"wire": state}
        finally:
            if state.llm is not None:
                await asyncio.to_thread(state.llm.close)

    return Starlette(
        routes=[
            Route("/api/version", version, methods=["GET"]),
            Route("/api/tags", tags, methods=["GET"]),
            Route("/api/embed", embed, methods=["POST"]),
            Route("/api/chat", chat, methods=["POST"]),
            Route("/_test/faults", set_faults, methods=["POST"]),
            Route("/_test/stats", stats, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


class _AnnouncingServer(uvicorn.Server):
    """Prints `ready <url>` once the socket accepts connections."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            print(f"ready http://{host}:{port}", flush=True)


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.ollama_wire_server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434, help="0 picks a free port")
    parser.add_argument("--chat-models", type=_names, default=[], help="comma-separated names, all SmolLM2")
    parser.add_argument("--embed-models", type=_names, default=[], help="comma-separated; only all-minilm")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds before each streamed token")
    parser.add_argument(
        "--threads", type=int, default=1, help="model threads (one keeps several servers on a small machine fast)"
    )
    args = parser.parse_args(argv)
    if not args.chat_models and not args.embed_models:
        parser.error("serve at least one model (--chat-models and/or --embed-models)")
    app = create_app(args.chat_models, args.embed_models, args.token_delay, args.threads)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    _AnnouncingServer(config).run()


# --- for tests: the server as a subprocess --------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class WireServerProcess:
    """One wire server in a subprocess, on a fixed loopback port so it can be restarted in place.

    `kill()` sends SIGKILL: the server gets no chance to finish its streams, as when a machine dies."""

    def __init__(
        self,
        name: str,
        *,
        log_dir: Path,
        chat_models: Sequence[str] = (),
        embed_models: Sequence[str] = (),
        token_delay: float = 0.0,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        self._args = [
            sys.executable, "-m", "tests.ollama_wire_server", "--port", str(self.port),
            "--chat-models", ",".join(chat_models), "--embed-models", ",".join(embed_models),
            "--token-delay", str(token_delay),
        ]  # fmt: skip
        self._process: subprocess.Popen[bytes] | None = None
        self._log: TextIO | None = None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def spawn(self) -> None:
        """Start the process without waiting for it (see `wait_ready`)."""
        if self.alive:
            raise RuntimeError(f"{self.name} is already running")
        self._close_log()
        self._log = self.log_path.open("a")
        repo = Path(__file__).resolve().parent.parent
        self._process = subprocess.Popen(self._args, cwd=repo, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll `/api/version` until it answers, the process exits, or the deadline passes."""
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=1.0) as client:
            while time.monotonic() < deadline:
                if not self.alive:
                    raise RuntimeError(f"{self.name} exited during start-up:\n{self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/api/version").status_code == 200:
                        return
                time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not answer within {timeout:g} s:\n{self.log_tail()}")

    def start(self, timeout: float = 60.0) -> None:
        self.spawn()
        self.wait_ready(timeout)

    def kill(self) -> None:
        """SIGKILL, then reap the process."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)

    def close(self) -> None:
        self.kill()
        self._close_log()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    @classmethod
    @contextlib.contextmanager
    def running(cls, servers: Sequence[WireServerProcess], timeout: float = 60.0) -> Iterator[None]:
        """Start `servers` together and wait for all of them; kill them all on exit, whatever happens."""
        try:
            for server in servers:
                server.spawn()
            for server in servers:
                server.wait_ready(timeout)
            yield
        finally:
            for server in servers:
                server.close()


if __name__ == "__main__":
    main()

"""The same example project under LangGraph's own server, `langgraph dev` (PyPI `langgraph-cli[inmem]`),
with no change: the proof that a project Citadel serves is still a plain LangGraph project.

The test installs `langgraph-cli[inmem]`, Citadel (for the graph's `citadel.runtime.kit`) and the
example (as its README says: `pip install -e .`) into a throwaway environment under
~/.cache/citadel/peers, made once per checkout (uv's cache makes it quick). With no Citadel server
around, the kit opens its own services from the environment: the documents are ingested into that
data directory first with `citadel ingest`, and the chat model is an Ollama-protocol server (the
tests' stand-in, `tests/ollama_wire_server.py`, answering from the embedded SmolLM2)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import Command

from tests.graphs.run_inputs import DOCS
from tests.ollama_wire_server import WireServerProcess
from tests.processes import START_DEADLINE, free_port, stop_process, wait_for

# The first run on a machine installs langgraph-cli and Citadel into a throwaway environment (measured
# 5-6 min on a fresh, busy 2-core machine) inside the first test's setup: more than the suite's
# default 300-s timeout per test.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "research_agent"
UV = os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")  # `uv run` sets UV


def langgraph_cli() -> Path:
    """The `langgraph` command of a throwaway environment holding it, Citadel and the example."""
    # One environment per checkout and dependency set: a change to Citadel's dependencies or the
    # example's makes a new one (the code itself is installed editable).
    key = hashlib.sha256(str(ROOT).encode())
    for manifest in (ROOT / "pyproject.toml", ROOT / "uv.lock", EXAMPLE / "pyproject.toml"):
        key.update(manifest.read_bytes())
    folder = Path("~/.cache/citadel/peers").expanduser() / f"langgraph-dev-{key.hexdigest()[:10]}"
    marker = folder / ".installed"
    if not marker.exists():
        # Links from uv's cache (same file system under ~/.cache) instead of the project's copy mode:
        # the first install on a fresh machine takes minutes less.
        env = {**os.environ, "UV_LINK_MODE": "hardlink"}
        subprocess.run([UV, "venv", "-q", "--clear", "--python", "3.11", str(folder)], check=True, env=env)
        # Without the local-llm extra (no llama.cpp build here): the kit's chat model talks to an
        # Ollama-protocol server. Versions as langgraph-api's own pins resolve them with Citadel's ranges.
        packages = ["langgraph-cli[inmem]>=0.4", "-e", str(ROOT), "-e", str(EXAMPLE)]
        python = str(folder / "bin" / "python")
        subprocess.run([UV, "pip", "install", "-q", "--python", python, *packages], check=True, env=env)
        marker.touch()
    return folder / "bin" / "langgraph"


@pytest.fixture(scope="module")
def ollama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireServerProcess]:
    """The chat backend of the kit's own services: the test stand-in for an Ollama server (embedded SmolLM2)."""
    server = WireServerProcess("llm-01", log_dir=tmp_path_factory.mktemp("ollama"), chat_models=["smollm2"])
    server.start(120)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def langgraph_dev(tmp_path_factory: pytest.TempPathFactory, ollama: WireServerProcess) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("langgraph-dev")
    env = {
        "CITADEL_DATA_DIR": str(folder / "data"),
        "CITADEL_URL": "http://127.0.0.1:9",
        "CITADEL_LLM_MAX_TOKENS": "24",
        "CITADEL_LOCAL_LLM": "false",
        "CITADEL_LLM_SERVERS": json.dumps([{"name": "llm-01", "url": ollama.url, "models": ["smollm2"]}]),
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    }
    corpus = folder / "docs.jsonl"
    corpus.write_text("\n".join(json.dumps({"_id": d.id, "text": d.text, **d.metadata}) for d in DOCS))
    ingested = subprocess.run(
        [sys.executable, "-m", "citadel.runtime.cli", "ingest", str(corpus), "-c", "docs"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ingested.returncode == 0, ingested.stderr
    cli = langgraph_cli()
    port = free_port()
    command = [str(cli), "dev", "--config", str(EXAMPLE / "langgraph.json"), "--port", str(port)]
    # --allow-blocking: the kit's own embedded services (the ONNX model, Qdrant's local mode) read files
    # on their first use, which langgraph dev's blocking-call detector refuses by default.
    command += ["--host", "127.0.0.1", "--no-browser", "--no-reload", "--allow-blocking"]
    url = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, cwd=EXAMPLE, stdout=output, stderr=subprocess.STDOUT
        )
    try:

        def ready() -> bool:
            assert process.poll() is None, f"langgraph dev exited: {log.read_text()[-4000:]}"
            try:
                return httpx.get(f"{url}/ok", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, f"langgraph dev on {url}", START_DEADLINE)
        yield url
    finally:
        stop_process(process)


@pytest.fixture
async def client(langgraph_dev: str) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=langgraph_dev, timeout=300) as client:
        yield client


async def test_the_research_agent_searches_with_the_kits_own_services(client: LangGraphClient) -> None:
    graphs = {a["graph_id"] for a in await client.assistants.search()}
    assert graphs == {"research_agent", "publish"}
    answer = await client.runs.wait(
        None, "research_agent", input={"messages": [{"role": "user", "content": "How efficient are solar panels?"}]}
    )
    assert isinstance(answer, dict)
    messages = answer["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "ai"]
    assert "solar-101" in messages[2]["content"]


async def test_the_interrupt_and_resume(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    ask = {"messages": [{"role": "user", "content": "Say something about wind power."}]}
    await client.runs.wait(thread["thread_id"], "publish", input=ask)
    state = await client.threads.get_state(thread["thread_id"])
    assert state["next"] == ["review"]
    done = await client.runs.wait(thread["thread_id"], "publish", command=Command(resume="approve"))
    assert isinstance(done, dict)
    assert done["status"] == "published"

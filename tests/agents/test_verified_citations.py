"""A made-up citation never leaves the researcher: a scripted model (standing in for a capable
backend; the embedded one cannot be made to invent on cue) answers citing a source that was not
retrieved, and the answer reaches REST, AG-UI and MCP without it (voice: `voice/test_text_mode.py`;
the extractive answer of the embedded defaults: `graphs/test_rag.py`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import anyio
import httpx
import pytest
from ag_ui.core import EventType
from langchain_core.messages import AIMessage
from mcp import Client

from citadel.agents.citations import check_citations
from citadel.agents.deps import AgentDeps
from citadel.settings import Settings
from tests.agents.scripted_model import ScriptedChatModel
from tests.graphs.run_inputs import DOCS
from tests.live_server import LiveServer
from tests.mcp_server.client_kit import LLM_DEADLINE, text_of
from tests.ui_bridge import agui_client

INVENTED = "Solar-102"
ANSWER = (
    "Silicon panels convert about 20 percent of sunlight [solar-101]. "
    f"[{INVENTED}] The Solar Energy Industry Report 2 says more [solar-101, {INVENTED}]."
)
QUESTION = "How efficient are solar panels?"


def test_unknown_ids_are_removed_and_prose_in_brackets_kept() -> None:
    checked = check_citations(ANSWER + " See [the table above] and [a](https://x.y).", {"solar-101"}, where="test")
    assert checked.removed == [INVENTED, INVENTED]
    assert checked.cited == ["solar-101"]
    assert INVENTED not in checked.text
    assert checked.text.count("[solar-101]") == 2
    assert checked.text.endswith("See [the table above] and [a](https://x.y).")


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    model = ScriptedChatModel(responses=[AIMessage(ANSWER)])
    adjust = lambda deps: replace(deps, tool_model=lambda: model)  # noqa: E731 (a capable backend)
    with LiveServer.start(settings, 120, adjust_deps=adjust) as live:
        documents = [{"id": d.id, "text": d.text, "metadata": d.metadata} for d in DOCS]
        with httpx.Client(base_url=live.url, timeout=120) as http:
            http.post("/v1/collections", json={"name": "docs"}).raise_for_status()
            http.post("/v1/collections/docs/points", json={"documents": documents}).raise_for_status()
        yield live


def _assert_clean(text: str, sources: list[dict[str, Any]]) -> None:
    assert "[solar-101]" in text
    assert INVENTED not in text
    assert INVENTED not in {source["id"] for source in sources}


def test_rest_never_returns_a_made_up_citation(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        thread = http.post("/threads", json={}).json()["thread_id"]
        body = {"assistant_id": "rag", "input": {"messages": [{"role": "user", "content": QUESTION}]}}
        values = http.post(f"/threads/{thread}/runs/wait", json=body).json()
        _assert_clean(values["messages"][-1]["content"], values["sources"])
        metrics = http.get("/metrics").text
    removed = [line for line in metrics.splitlines() if line.startswith("citadel_citations_removed_total")]
    assert removed
    assert float(removed[0].split()[-1]) >= 2


def test_ag_ui_never_streams_a_made_up_citation(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        stream = agui_client.post_run(
            http, "rag", agui_client.run_input(str(uuid.uuid4()), [agui_client.user(QUESTION)])
        )
    assert INVENTED not in stream.body
    (start,) = stream.of(EventType.TEXT_MESSAGE_START)
    _assert_clean(stream.text(start.message_id), stream.state().get("sources", []))


async def test_mcp_never_answers_with_a_made_up_citation(server: LiveServer) -> None:
    async with Client(f"{server.url}/mcp") as client:
        with anyio.fail_after(LLM_DEADLINE):
            result = await client.call_tool("ask_rag", {"messages": [{"role": "user", "content": QUESTION}]})
    assert not result.is_error, text_of(result)
    assert INVENTED not in text_of(result)
    content = result.structured_content or {}
    _assert_clean(content["answer"], content.get("sources", []))


def test_the_deps_seam_is_the_capable_backend(deps: AgentDeps) -> None:
    """The faces above take the generative path because a tool-calling model is there; without one
    (the embedded defaults) the answer is extractive."""
    from citadel.agents.researcher import answer_mode

    assert answer_mode(deps) == "extractive"
    assert answer_mode(replace(deps, tool_model=lambda: ScriptedChatModel(responses=[]))) == "generative"

"""The analyst: the document-analysis workflow.

1. `analyst_plan` splits the document (the input's `document`, else what follows the request in
   the user's message, else the message) into sections at its headings, and classifies each
   section's content type with the LLM router's semantic router (which embeds it) → the route
   (task class) whose backend suits it;
2. `analyst_approve` pauses for approval (`interrupt()`) when there are more sections than
   `CITADEL_ANALYST_APPROVAL_SECTIONS`; rejected, the turn ends saying so;
3. `analyst_section` runs once per section, one super-step each so progress streams: it sends the
   section to the backend for its route (`route=`) and records the finding and who produced it;
4. `analyst_report` merges the findings into one report (the turn's answer).
The per-section calls are tagged internal: their text reaches the user inside the report.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_text_splitters import Language, RecursiveCharacterTextSplitter
from langgraph.graph import END, StateGraph
from typing_extensions import TypedDict

from citadel.agents.approval import ask_approval
from citadel.agents.deps import AgentDeps
from citadel.agents.history import last_human_text
from citadel.agents.state import ConversationState, Progress
from citadel.agents.supervisor import split_request
from citadel.agents.tags import INTERNAL
from citadel.tools.chat_model import ROUTE_METADATA

SECTION_CHARS = 1500
_HEADING = re.compile(r"^(?=#{1,6}\s)", re.MULTILINE)
TITLE_CHARS = 60
PROMPT = (
    "You are analysing one section of a longer document. State the section's main points and "
    "anything notable (risks, numbers, decisions) in two or three sentences."
)


class Section(TypedDict):
    index: int
    title: str
    text: str
    content_type: str | None
    """The task class the section reads as (the LLM router's routes), None without a semantic router."""
    similarity: float | None
    route: str | None
    """The route it was sent on: its content type when that was a confident match, else None."""
    backend: str | None
    model: str | None
    finding: str | None


class AnalysisState(ConversationState, total=False):
    document: str | None
    """The document to analyse; cleared once analysed (else the user's message is the document)."""
    sections: list[Section]
    progress: Progress
    report: str | None
    analysis: Literal["planned", "running", "rejected", "done"]


def split_sections(document: str) -> list[str]:
    """Sections at the document's markdown headings (each heading starts one), and within a
    section longer than SECTION_CHARS (or a document without headings) at paragraphs."""
    splitter = RecursiveCharacterTextSplitter.from_language(
        Language.MARKDOWN, chunk_size=SECTION_CHARS, chunk_overlap=0
    )
    blocks = [block for block in _HEADING.split(document) if block.strip()]
    return [piece for block in blocks for piece in splitter.split_text(block.strip()) if piece.strip()]


def section_title(text: str) -> str:
    line = next((line for line in text.splitlines() if line.strip()), "")
    title = line.strip().lstrip("#").strip()
    return title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1].rstrip() + "…"


def label(section: Section) -> str:
    return f"section {section['index'] + 1}: {section['title']}"


def merge_report(sections: list[Section]) -> str:
    kinds = Counter(s["content_type"] or "unclassified" for s in sections)
    lines = [
        f"# Analysis report ({len(sections)} section{'s' if len(sections) != 1 else ''})",
        "",
        "Content: " + ", ".join(f"{count} {kind}" for kind, count in kinds.most_common()) + ".",
    ]
    for section in sections:
        lines += [
            "",
            f"## {section['index'] + 1}. {section['title']}",
            f"*{section['content_type'] or 'unclassified'}, analysed by {section['backend']}/{section['model']}*",
            "",
            (section["finding"] or "").strip() or "(no finding)",
        ]
    return "\n".join(lines)


def add_analyst(graph: StateGraph[Any, Any, Any, Any], deps: AgentDeps) -> str:
    """Add the analyst's nodes to `graph`; returns its entry node. Its turn ends at END."""

    async def classify(index: int, text: str) -> Section:
        kind: str | None = None
        similarity: float | None = None
        route: str | None = None
        if deps.llm.semantic is not None:
            match = await deps.llm.semantic.classify(text)
            kind, similarity = match.route, round(match.score, 4)
            route = match.route if match.confident else None
        return Section(
            index=index, title=section_title(text), text=text, content_type=kind, similarity=similarity,
            route=route, backend=None, model=None, finding=None,
        )  # fmt: skip

    async def analyst_plan(state: AnalysisState) -> dict[str, Any]:
        document = state.get("document") or ""
        if not document:
            request, pasted = split_request(last_human_text(state))
            document = pasted or request
        pieces = split_sections(document)
        sections = list(await asyncio.gather(*(classify(i, text) for i, text in enumerate(pieces))))
        progress = Progress(completed=0, total=len(sections), current=None)
        update: dict[str, Any] = {"sections": sections, "progress": progress, "report": None, "analysis": "planned"}
        if not sections:
            update |= {"messages": [AIMessage("There is no document to analyse.")], "analysis": "done"}
        return update

    async def analyst_approve(state: AnalysisState) -> dict[str, Any]:
        sections = state["sections"]
        limit = deps.settings.analyst_approval_sections
        if len(sections) > limit and not ask_approval(
            "long_document",
            f"The document has {len(sections)} sections (more than {limit}); analysing it calls the LLM "
            f"{len(sections)} times. Approve?",
            sections=len(sections),
        ):
            reply = f"Understood: I did not analyse the document ({len(sections)} sections)."
            progress = Progress(completed=0, total=len(sections), current=None)
            return {"messages": [AIMessage(reply)], "analysis": "rejected", "document": None, "progress": progress}
        progress = Progress(completed=0, total=len(sections), current=label(sections[0]))
        return {"analysis": "running", "progress": progress}

    async def analyst_section(state: AnalysisState) -> dict[str, Any]:
        sections = list(state["sections"])
        done = state["progress"]["completed"]
        section = sections[done]
        chat = deps.chat().with_config(
            tags=[INTERNAL], metadata={"citadel_step": "analyst_section", "citadel_section": done}
        )
        reply = await chat.ainvoke([SystemMessage(PROMPT), HumanMessage(section["text"])], route=section["route"])
        decision = reply.response_metadata.get(ROUTE_METADATA, {})
        finished = Section(**section)
        finished["finding"] = reply.text
        finished["backend"] = decision.get("backend")
        finished["model"] = decision.get("model")
        sections[done] = finished
        following = label(sections[done + 1]) if done + 1 < len(sections) else None
        return {"sections": sections, "progress": Progress(completed=done + 1, total=len(sections), current=following)}

    async def analyst_report(state: AnalysisState) -> dict[str, Any]:
        report = merge_report(state["sections"])
        return {"messages": [AIMessage(report)], "report": report, "document": None, "analysis": "done"}

    def after_plan(state: AnalysisState) -> str:
        return "analyst_approve" if state.get("sections") else END

    def after_approve(state: AnalysisState) -> str:
        return END if state.get("analysis") == "rejected" else "analyst_section"

    def after_section(state: AnalysisState) -> str:
        progress = state["progress"]
        return "analyst_section" if progress["completed"] < progress["total"] else "analyst_report"

    graph.add_node("analyst_plan", analyst_plan)
    graph.add_node("analyst_approve", analyst_approve)
    graph.add_node("analyst_section", analyst_section)
    graph.add_node("analyst_report", analyst_report)
    graph.add_conditional_edges("analyst_plan", after_plan, ["analyst_approve", END])
    graph.add_conditional_edges("analyst_approve", after_approve, ["analyst_section", END])
    graph.add_conditional_edges("analyst_section", after_section, ["analyst_section", "analyst_report"])
    graph.add_edge("analyst_report", END)
    return "analyst_plan"

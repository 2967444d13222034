"""The small pieces the specialists are built from: approvals, keyword scores, sections and
reports, history trimming, citations."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from citadel.agents.analyst import Section, merge_report, section_title, split_sections
from citadel.agents.approval import is_approval
from citadel.agents.history import current_turn, recent_history
from citadel.agents.keyword_match import KeywordMatcher
from citadel.agents.researcher import with_citations
from citadel.agents.state import Source
from citadel.agents.supervisor import ROUTES_FILE
from citadel.agents.toolkit import merge_sources
from citadel.tools.semantic_router import load_routes


@pytest.mark.parametrize(
    ("decision", "approved"),
    [
        (True, True),
        (False, False),
        ("approve", True),
        (" Yes ", True),
        ("reject", False),
        ("maybe", False),
        ({"approved": True}, True),
        ({"decision": "approve"}, True),
        ({"action": "reject"}, False),
        (None, False),
        (1, False),
    ],
)
def test_only_a_clear_approval_approves(decision: Any, approved: bool) -> None:
    assert is_approval(decision) is approved


def test_keyword_scores_favour_the_route_whose_words_a_request_uses() -> None:
    matcher = KeywordMatcher(load_routes(ROUTES_FILE))
    scores = matcher.scores("please remember this for later")
    assert max(scores, key=lambda name: scores[name]) == "remember"
    scores = matcher.scores("what do our docs in the knowledge base say")
    assert max(scores, key=lambda name: scores[name]) == "researcher"
    assert set(matcher.scores("zzz qqq").values()) == {0.0}


def test_sections_follow_headings_and_long_sections_are_split() -> None:
    document = "Preface.\n\n# One\n" + "Words go here. " * 200 + "\n\n## Two\nShort."
    sections = split_sections(document)
    assert sections[0] == "Preface."
    assert sections[1].startswith("# One")
    assert len(sections) > 3, "the long section is cut at its sentences"
    assert sections[-1] == "## Two\nShort."
    assert all(len(s) <= 1500 for s in sections)
    assert split_sections("") == []


def test_a_section_title_is_its_first_line_shortened() -> None:
    assert section_title("## Costs and risks\nbody") == "Costs and risks"
    assert section_title("\n\n" + "x" * 100) == "x" * 59 + "…"


def test_the_report_merges_every_finding_with_who_made_it() -> None:
    sections = [
        Section(index=0, title="Intro", text="", content_type="chat", similarity=0.4, route="chat",
                backend="llm-01", model="qwen", finding="Says hello."),
        Section(index=1, title="Code", text="", content_type="code", similarity=0.6, route="code",
                backend="llm-02", model="coder", finding=""),
    ]  # fmt: skip
    report = merge_report(sections)
    assert report.splitlines()[0] == "# Analysis report (2 sections)"
    assert "Content: 1 chat, 1 code." in report
    assert "## 1. Intro\n*chat, analysed by llm-01/qwen*\n\nSays hello." in report
    assert report.endswith("(no finding)")


def test_history_keeps_the_latest_turns_that_fit() -> None:
    messages = [HumanMessage("old " * 300), AIMessage("old answer " * 100), HumanMessage("new question")]
    assert recent_history(messages, 50) == [messages[-1]]
    assert recent_history(messages, 10_000) == messages
    huge = [HumanMessage("x " * 5000)]
    assert recent_history(huge, 50) == huge, "the current turn is kept even when it is too long"
    turn = current_turn([*messages, AIMessage("", tool_calls=[]), ToolMessage("r", tool_call_id="c")])
    assert turn[0] is messages[-1]
    assert len(turn) == 3
    assert current_turn([SystemMessage("s")]) == [SystemMessage("s")]


SOURCES = [
    Source(id="a", title="A", score=0.5, text=""),
    Source(id="b", title="B", score=0.4, text=""),
]


def test_an_answer_without_citations_gets_a_sources_line() -> None:
    cited = AIMessage("It is so [a].", id="m1")
    assert with_citations(cited, SOURCES) is cited
    plain = with_citations(AIMessage("It is so.", id="m2"), SOURCES)
    assert plain.text == "It is so.\n\nSources: [a] A; [b] B"
    assert plain.id == "m2", "the streamed message keeps its id"
    assert with_citations(AIMessage("x"), []).text == "x"


def test_sources_are_merged_by_id_keeping_the_best_score() -> None:
    merged = merge_sources(SOURCES, [Source(id="b", title="B", score=0.9, text="")])
    assert [(s["id"], s["score"]) for s in merged] == [("b", 0.9), ("a", 0.5)]

"""The supervisor: picks the specialist for each turn of the assistant.

It routes by meaning first, on the request part of the message (`routing_text`): the semantic
router (one embedding) scores each specialist by the centroid of its labelled example requests
(`specialist_routes.json`; they share an intent, not a topic), and a lexical match over the same
examples adds the words that carry intent (hybrid dense + sparse routing). Only when the result is
not confident does it ask the LLM for one short decision between the two best candidates, parsed
leniently; an answer naming neither means the generalist. A document given with the input goes to
the analyst without either. The decision and its reason are recorded in the state (`specialist`,
`route_reason`) for the faces to show.

Thresholds are tuned for the embedded all-minilm model with `citadel eval routing`.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage

from citadel.agents.deps import AgentDeps
from citadel.agents.history import last_human_text
from citadel.agents.keyword_match import KeywordMatcher
from citadel.agents.state import ConversationState
from citadel.agents.tags import INTERNAL
from citadel.tools.semantic_router import SemanticRouter, best_match, load_routes

Specialist = Literal["researcher", "analyst", "generalist", "remember"]
SPECIALISTS: tuple[Specialist, ...] = ("researcher", "analyst", "generalist", "remember")
DEFAULT: Specialist = "generalist"
ROUTES_FILE = Path(__file__).with_name("specialist_routes.json")
KEYWORD_WEIGHT = 0.5
"""Weight of the lexical score beside the semantic one (centroid similarity, all-minilm)."""
THRESHOLD = 0.3
"""Least combined score for the routing to count as confident."""
MARGIN = 0.03
"""Least lead over the runner-up specialist for the routing to count as confident."""
REQUEST_CHARS = 400
"""A message whose first paragraph is at most this long and followed by more is routed on that
paragraph: the request comes first, a pasted document after it."""
LLM_PROMPT = "You route a user's request to the specialist who should handle it. Reply with one word: {names}.\n{roles}"
_WORDS = re.compile(r"\b(researcher|research|analyst|analy[sz]e|analysis|generalist|general|remember|memory)\b")
_ALIASES: dict[str, Specialist] = {
    "researcher": "researcher",
    "research": "researcher",
    "analyst": "analyst",
    "analyse": "analyst",
    "analyze": "analyst",
    "analysis": "analyst",
    "generalist": "generalist",
    "general": "generalist",
    "remember": "remember",
    "memory": "remember",
}


class RoutingState(ConversationState, total=False):
    specialist: Specialist
    route_reason: str
    document: str | None
    """A document to analyse, given with the input (sends the turn to the analyst)."""


@dataclass(frozen=True)
class Decision:
    specialist: Specialist
    reason: str
    method: Literal["input", "semantic", "llm", "default"]


def parse_specialist(answer: str) -> Specialist | None:
    """The first specialist an LLM's answer names (leniently: `Research.`, `analysis`), or None."""
    match = _WORDS.search(answer.lower())
    return _ALIASES[match.group(1)] if match else None


def split_request(text: str) -> tuple[str, str]:
    """(what a message asks, what follows it): its first paragraph and the rest when the first
    paragraph is short and more follows (a request, then a pasted document), else (text, "")."""
    parts = re.split(r"\n\s*\n", text.strip(), maxsplit=1)
    if len(parts) == 2 and len(parts[0]) <= REQUEST_CHARS and parts[1].strip():
        return parts[0].strip(), parts[1].strip()
    return text, ""


def routing_text(text: str) -> str:
    return split_request(text)[0]


class Supervisor:
    def __init__(self, deps: AgentDeps, *, threshold: float = THRESHOLD, margin: float = MARGIN) -> None:
        self._deps = deps
        routes = load_routes(ROUTES_FILE)
        self._roles = {route.name: route.description for route in routes}
        self._semantic = SemanticRouter(routes, deps.embeddings, threshold=threshold, margin=margin, scoring="centroid")
        self._keywords = KeywordMatcher(routes)
        self._threshold, self._margin = threshold, margin
        self._started = False
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Embed the examples (once; also done on first use)."""
        async with self._lock:
            if not self._started:
                await self._semantic.start()
                self._started = True

    async def decide(self, text: str, *, use_llm: bool = True) -> Decision:
        """The specialist for a message. When the semantic router is unsure, the LLM picks between
        its two best candidates; an answer naming neither means the generalist."""
        if not text.strip():
            return Decision(DEFAULT, "empty message", "default")
        await self.start()
        request = routing_text(text)
        semantic, lexical = await self._semantic.scores(request), self._keywords.scores(request)
        scores = {name: semantic[name] + KEYWORD_WEIGHT * lexical[name] for name in semantic}
        match = best_match(scores, threshold=self._threshold, margin=self._margin)
        if match.confident:
            reason = (
                f"semantic: {match.route} (score {match.score:.2f}, ahead of {match.runner_up} by {match.margin:.2f})"
            )
            return Decision(match.route, reason, "semantic")  # type: ignore[arg-type]
        unsure = f"semantic unsure (best {match.route} {match.score:.2f}, {match.runner_up} {match.margin:.2f} behind)"
        candidates = [name for name in (match.route, match.runner_up) if name]
        if not use_llm:
            return Decision(DEFAULT, f"{unsure}; default {DEFAULT}", "default")
        answer = await self._ask_llm(text, candidates)
        chosen = parse_specialist(answer)
        if chosen is None or chosen not in candidates:
            heard = f"LLM answer {answer[:40]!r} names neither"
            return Decision(DEFAULT, f"{unsure}; {heard}; default {DEFAULT}", "default")
        return Decision(chosen, f"{unsure}; LLM chose {chosen}", "llm")

    async def _ask_llm(self, text: str, candidates: list[str]) -> str:
        system = LLM_PROMPT.format(
            names=" or ".join(candidates), roles="\n".join(f"{name}: {self._roles[name]}" for name in candidates)
        )
        question = (
            f'Request: "{routing_text(text)[:1500]}"\n\nWhich specialist should handle it: {" or ".join(candidates)}?'
        )
        chat = self._deps.chat(max_tokens=8, temperature=0.0).with_config(
            tags=[INTERNAL], metadata={"citadel_step": "supervisor"}
        )
        reply = await chat.ainvoke([SystemMessage(system), HumanMessage(question)])
        return reply.text

    async def node(self, state: RoutingState) -> dict[str, Any]:
        """The graph node: records the chosen specialist and why."""
        if state.get("document"):
            decision = Decision("analyst", "a document was given with the input", "input")
        else:
            decision = await self.decide(last_human_text(state))
        return {"specialist": decision.specialist, "route_reason": decision.reason}

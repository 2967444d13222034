"""Finding the passages a question needs: one search (hybrid on a hybrid collection), with a
relevance floor on the passages' cosine similarity to the question.

The researcher's retrieve node, its search tool and the workflow's `vector_search` step all search
through here, so they choose collections and cut off irrelevant hits the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig

from citadel.agents.deps import AgentDeps
from citadel.agents.state import Source
from citadel.errors import NotFound
from citadel.tools.embedding_models import EMBEDDING_MODELS
from citadel.tools.vector_store import SearchHit

SNIPPET_CHARS = 300


@dataclass
class Retrieved:
    collection: str
    status: Literal["found", "nothing_relevant", "no_collection"]
    sources: list[Source]
    passages: dict[str, str]
    """Full text of each source's matching chunk, by id (the sources keep a snippet)."""
    best_score: float | None = None


def collection_for(state: Mapping[str, Any], config: RunnableConfig | None, deps: AgentDeps) -> str:
    """The collection a run searches: the state's `collection`, else `configurable.collection`,
    else `CITADEL_DEFAULT_COLLECTION`."""
    configurable = (config or {}).get("configurable", {})
    return str(state.get("collection") or configurable.get("collection") or deps.settings.default_collection)


def to_source(hit: SearchHit) -> Source:
    title = hit.metadata.get("title")
    return Source(
        id=hit.id,
        title=str(title) if title else hit.id,
        score=round(float(hit.similarity), 4),
        text=hit.text[:SNIPPET_CHARS],
    )


async def retrieve(
    deps: AgentDeps, collection: str, query: str, *, k: int = 4, min_score: float | None = None
) -> Retrieved:
    """The top `k` passages for `query` scoring at least `min_score` (default
    `CITADEL_RESEARCH_MIN_SCORE`)."""
    floor = deps.settings.research_min_score if min_score is None else min_score
    try:
        info = await deps.vectors.info(collection)
    except NotFound:
        return Retrieved(collection, "no_collection", [], {})
    fitted = deps.embeddings.truncate(query, EMBEDDING_MODELS[info.model])
    hits = await deps.vectors.search(collection, query=fitted, k=k) if fitted.strip() else []
    best = max((h.similarity for h in hits), default=None)
    relevant = [h for h in hits if h.similarity >= floor]
    if not relevant:
        return Retrieved(collection, "nothing_relevant", [], {}, best)
    return Retrieved(collection, "found", [to_source(h) for h in relevant], {h.id: h.text for h in relevant}, best)

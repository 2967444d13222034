"""Routing by meaning: a text goes to the route whose labelled examples it is most like.

Costs one embedding (usually cached) and no LLM call. Used by the LLM router to pick a task class
and by the graphs' supervisor to pick a specialist; when the best route is not clearly ahead, the
match says so (`confident=False`) and the caller decides what to do.

A route's score is its nearest example's similarity (`scoring="nearest"`), or the similarity to the
mean of its examples (`"centroid"`): the centroid averages out what the examples are about, which
suits routes defined by intent (ask, remember, analyse) rather than topic.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, TypeAdapter

from citadel.tools.embeddings import EmbeddingService


class Route(BaseModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str = ""
    examples: list[str] = Field(min_length=1)


_ROUTES = TypeAdapter(list[Route])


def load_routes(path: Path) -> list[Route]:
    """Routes from a JSON file: `[{"name", "description", "examples": [...]}, ...]`."""
    try:
        routes = _ROUTES.validate_python(json.loads(path.read_text()))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot load routes from {path}: {error}") from error
    if len({r.name for r in routes}) != len(routes):
        raise ValueError(f"{path}: route names must be unique")
    return routes


@dataclass(frozen=True)
class RouteMatch:
    route: str
    score: float
    runner_up: str | None
    margin: float
    confident: bool


class SemanticRouter:
    def __init__(
        self,
        routes: list[Route],
        embeddings: EmbeddingService,
        *,
        threshold: float,
        margin: float = 0.05,
        scoring: Literal["nearest", "centroid"] = "nearest",
    ) -> None:
        if not routes:
            raise ValueError("a semantic router needs at least one route")
        self.routes = routes
        self._embeddings = embeddings
        self._threshold = threshold
        self._margin = margin
        self._scoring = scoring
        self._matrix: np.ndarray | None = None
        self._labels: list[str] = []
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        """Embed the routes' examples now (otherwise done on the first classification)."""
        async with self._starting:
            if self._matrix is None:
                await self._embed_examples()

    async def _embed_examples(self) -> None:
        texts = [example for route in self.routes for example in route.examples]
        self._labels = [route.name for route in self.routes for _ in route.examples]
        self._matrix = (await self._embeddings.embed(texts)).vectors
        if self._scoring == "centroid":
            names = [route.name for route in self.routes]
            centroids = np.stack(
                [self._matrix[[i for i, n in enumerate(self._labels) if n == name]].mean(axis=0) for name in names]
            )
            self._matrix = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
            self._labels = names

    async def classify(self, text: str) -> RouteMatch:
        return best_match(await self.scores(text), threshold=self._threshold, margin=self._margin)

    async def scores(self, text: str) -> dict[str, float]:
        """Each route's score for `text` (for callers that combine it with other evidence)."""
        if self._matrix is None:
            await self.start()
        assert self._matrix is not None
        text = self._embeddings.truncate(text, self._embeddings.model(None))
        query = (await self._embeddings.embed([text])).vectors[0]
        similarities = self._matrix @ query
        best: dict[str, float] = {}
        for label, score in zip(self._labels, similarities.tolist(), strict=True):
            best[label] = max(score, best.get(label, -1.0))
        return best


def best_match(scores: dict[str, float], *, threshold: float, margin: float) -> RouteMatch:
    """The best-scoring route, confident when it reaches `threshold` and leads by `margin`."""
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (route, score), runner = ranked[0], (ranked[1] if len(ranked) > 1 else (None, -1.0))
    lead = score - runner[1]
    confident = score >= threshold and lead >= margin
    return RouteMatch(route=route, score=score, runner_up=runner[0], margin=lead, confident=confident)

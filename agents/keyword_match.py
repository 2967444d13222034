"""Lexical route scores: how much a text's words are the words of each route's examples.

TF-IDF over the examples' words (stop words kept: `this`, `our`, `my` carry the intent here), one
centroid per route, cosine similarity. The supervisor adds these to the semantic router's scores
(hybrid dense + sparse routing): a small sentence embedding hears mostly what a request is about,
while the words that say what to do with it (`remember`, `the following`, `our docs`) are few.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

from citadel.tools.semantic_router import Route

_TOKEN = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class KeywordMatcher:
    def __init__(self, routes: list[Route]) -> None:
        examples = [(route.name, example) for route in routes for example in route.examples]
        vocabulary = sorted({w for _, example in examples for w in words(example)})
        self._index = {w: i for i, w in enumerate(vocabulary)}
        counts = Counter(w for _, example in examples for w in set(words(example)))
        self._idf = np.array([math.log((len(examples) + 1) / (counts[w] + 1)) + 1 for w in vocabulary])
        vectors = np.stack([self._vector(example) for _, example in examples])
        self.names = [route.name for route in routes]
        centroids = np.stack(
            [vectors[[i for i, (name, _) in enumerate(examples) if name == route]].mean(axis=0) for route in self.names]
        )
        self._centroids = centroids / np.clip(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12, None)

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(len(self._index))
        for word, count in Counter(words(text)).items():
            if (i := self._index.get(word)) is not None:
                vector[i] = (1 + math.log(count)) * self._idf[i]
        norm = np.linalg.norm(vector)
        return vector / norm if norm else vector

    def scores(self, text: str) -> dict[str, float]:
        similarities = self._centroids @ self._vector(text)
        return dict(zip(self.names, similarities.tolist(), strict=True))

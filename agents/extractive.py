"""Extractive answers: the retrieved sentences that best match the question, each with its source id.

The embedded chat model is too small to write a faithful answer (it invents sources); the
embedding model can still tell which of the retrieved sentences speak to the question. Each
sentence of each passage is embedded (cached, like every embedding) and ranked by cosine
similarity to the question; the best few are quoted in the order of their passages, each
followed by its passage's id. Nothing is written that the documents do not say. Square brackets
inside a quoted sentence (`[3H]thymidine`, a paper's own `[12]`) become round ones, so that every
bracketed id in the answer is one of its sources.
"""

from __future__ import annotations

import re

import numpy as np

from citadel.agents.state import Source
from citadel.tools.embeddings import EmbeddingService

SENTENCES = 3
"""Sentences an answer quotes at most."""
MIN_SIMILARITY = 0.2
"""Sentences less similar than this to the question are left out (the best one is always kept)."""
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n")
_MIN_CHARS = 20


def sentences(text: str) -> list[str]:
    """`text` cut into sentences (at `.`, `!` or `?` before a capital, and at blank lines)."""
    pieces = (" ".join(piece.split()) for piece in _SENTENCE_END.split(text))
    return [piece for piece in pieces if len(piece) >= _MIN_CHARS]


def _unbracketed(sentence: str) -> str:
    return sentence.replace("[", "(").replace("]", ")")


async def extractive_answer(
    embeddings: EmbeddingService, question: str, sources: list[Source], passages: dict[str, str]
) -> str:
    """An answer quoting the passages' best sentences for `question`, each cited as `[id]`."""
    candidates = [
        (rank, source["id"], sentence)
        for rank, source in enumerate(sources)
        for sentence in sentences(passages.get(source["id"], source["text"]))
    ]
    if not candidates:
        return "; ".join(f"[{s['id']}] {s['title']}" for s in sources)
    model = embeddings.model(None)
    texts = [embeddings.truncate(text, model) for text in [question, *(sentence for _, _, sentence in candidates)]]
    vectors = (await embeddings.embed(texts)).vectors
    similarity = vectors[1:] @ vectors[0]
    best = [int(i) for i in np.argsort(-similarity)[:SENTENCES]]
    chosen = [i for i in best if similarity[i] >= MIN_SIMILARITY] or best[:1]
    quoted = [f"{_unbracketed(candidates[i][2])} [{candidates[i][1]}]" for i in sorted(chosen)]
    return "From the documents:\n" + "\n".join(f"- {quote}" for quote in quoted)

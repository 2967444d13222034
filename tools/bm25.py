"""Keyword vectors for hybrid search: BM25's term-frequency part as a sparse vector.

A text becomes terms as Lucene's English analyzer makes them, near enough: `\\w+` runs, lowercased,
its English stop words dropped, each word stemmed with the Snowball English stemmer (PyStemmer; no
download). A term's id is the CRC-32 of its stem, so every process maps a word to the same index.

A stored chunk's weight for a term is BM25's saturated term frequency
`tf·(k1+1) / (tf + k1·(1 − b + b·len/AVG_TERMS))`; the other half of BM25, the term's inverse document
frequency, is Qdrant's to apply (the collection's sparse vector has `Modifier.IDF`), so it stays right
as documents come and go. A query weighs each of its distinct terms 1.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from functools import cache
from typing import TYPE_CHECKING

import Stemmer

if TYPE_CHECKING:
    from qdrant_client import models

K1 = 1.2
B = 0.75
AVG_TERMS = 100
"""The length (in kept terms) BM25 normalises against: about what a chunk of the embedded model's
256 tokens holds (SciFact: 164 per abstract, 9,052 chunks from 5,183 abstracts). A constant, so a
chunk's weights never change when others are added."""

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET.
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these "  # noqa: SIM905
    "they this to was will with".split()
)
_WORD = re.compile(r"\w+")


@cache
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def terms(text: str) -> list[str]:
    """The stemmed, stop-word-free terms of `text`, in order."""
    words = [word for word in _WORD.findall(text.lower()) if word not in STOP_WORDS]
    return list(_stemmer().stemWords(words))


def _term_id(term: str) -> int:
    return zlib.crc32(term.encode())


def _vector(weights: dict[int, float]) -> models.SparseVector:
    from qdrant_client import models

    indices = sorted(weights)
    return models.SparseVector(indices=indices, values=[weights[i] for i in indices])


def document_vector(text: str) -> models.SparseVector:
    found = terms(text)
    norm = K1 * (1 - B + B * len(found) / AVG_TERMS)
    weights: dict[int, float] = {}
    for term, tf in Counter(found).items():
        term_id = _term_id(term)
        weights[term_id] = weights.get(term_id, 0.0) + tf * (K1 + 1) / (tf + norm)
    return _vector(weights)


def query_vector(text: str) -> models.SparseVector:
    """Weight 1 per distinct term (empty when the text has none, e.g. only stop words)."""
    return _vector(dict.fromkeys((_term_id(term) for term in terms(text)), 1.0))

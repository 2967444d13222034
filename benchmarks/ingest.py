"""Ingestion speed against the model's: chunking + embedding + keyword vectors + upsert, in one run.

(a) baseline: the chunks `VectorStore.upsert` makes of the first N SciFact abstracts (titles
    prefixed, as it embeds them), embedded by `MiniLM.encode` directly in batches of 256;
(b) `citadel.tools.ingest.ingest` of the same abstracts into a fresh hybrid collection in Qdrant
    local mode (a temporary folder), 256 documents per upsert, as `citadel ingest` and the SciFact
    eval do.
Printed: seconds and chunks/s of each, the ratio (b)/(a) in chunks/s (target >= 0.9), and the CPU
seconds of each. (a) and (b) alternate over a few rounds; medians are compared.

    python -m benchmarks.ingest [--documents 1024] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from citadel.evals.scifact import DATA_DIR_ENV, default_data_dir, eval_settings
from citadel.runtime.services import open_services
from citadel.tools.embedding_models import EMBEDDING_MODELS
from citadel.tools.ingest import ingest, read_documents
from citadel.tools.minilm import MiniLM
from citadel.tools.vector_store import Document

BATCH = 256


def _documents(corpus: Path, count: int) -> list[Document]:
    documents = []
    for document in read_documents([corpus]):
        documents.append(document)
        if len(documents) == count:
            break
    return documents


async def _ingest_once(documents: list[Document]) -> tuple[float, float, int, list[str]]:
    """(wall seconds, CPU seconds, chunks, the texts embedded) of one ingest into a fresh store."""
    with tempfile.TemporaryDirectory(prefix="citadel-bench-ingest-") as folder:
        async with open_services(eval_settings(Path(folder)), llm=False) as services:
            vectors = services.vectors
            await vectors.create_collection("bench", "all-minilm", hybrid=True)
            model = EMBEDDING_MODELS["all-minilm"]
            texts = [
                f"{d.metadata['title']} {piece}" if d.metadata.get("title") else piece
                for d in documents
                for piece in vectors.chunk(d.text, model)
            ]
            started, cpu = time.perf_counter(), time.process_time()
            _, chunks = await ingest(vectors, "bench", documents, batch_size=BATCH)
            return time.perf_counter() - started, time.process_time() - cpu, chunks, texts


def _model_once(model: MiniLM, texts: list[str]) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), BATCH):
        model.encode(texts[start : start + BATCH])
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get(DATA_DIR_ENV) or default_data_dir()))
    args = parser.parse_args()
    documents = _documents(args.data_dir / "corpus.jsonl", args.documents)
    model = MiniLM()
    ingests, raws = [], []
    for round_number in range(args.rounds):
        wall, cpu, chunks, texts = asyncio.run(_ingest_once(documents))
        ingests.append((wall, cpu))
        raws.append(_model_once(model, texts))
        print(f"round {round_number + 1}: ingest {wall:.1f} s, model {raws[-1][0]:.1f} s ({chunks} chunks)")
    ingest_wall = statistics.median(w for w, _ in ingests)
    model_wall = statistics.median(w for w, _ in raws)
    print(f"{len(documents)} SciFact abstracts as {chunks} chunks, medians of {args.rounds} rounds:")
    print(
        f"  model alone (MiniLM.encode, batches of {BATCH}): {model_wall:.1f} s, {chunks / model_wall:.1f} chunks/s, "
        f"CPU {statistics.median(c for _, c in raws):.1f} s"
    )
    print(
        f"  ingest (chunk + embed + keywords + upsert):    {ingest_wall:.1f} s, {chunks / ingest_wall:.1f} chunks/s, "
        f"CPU {statistics.median(c for _, c in ingests):.1f} s"
    )
    print(f"  ratio ingest/model: {model_wall / ingest_wall:.2f}x (target >= 0.9)")


if __name__ == "__main__":
    main()

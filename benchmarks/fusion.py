"""Which fusion for hybrid search: reciprocal-rank fusion against distribution-based score fusion.

On the SciFact collection `citadel eval scifact` cached (run it first), the same dense and sparse
prefetches (`vector_store.PREFETCH` chunks each) fused by Qdrant with `Fusion.RRF` and with
`Fusion.DBSF`, best chunk per document, scored with nDCG@10 and Recall@10 on the train queries.
Prints both and the ratio DBSF/RRF (Citadel's hybrid search uses DBSF).

    python -m benchmarks.fusion [--limit-queries N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from qdrant_client import models

from citadel.evals.scifact import (
    CACHE_DIR_ENV,
    COLLECTION,
    DATA_DIR_ENV,
    MARKER,
    K,
    default_cache_dir,
    default_data_dir,
    eval_settings,
    fingerprint,
    load_qrels,
    load_queries,
    ndcg_at_k,
    recall_at_k,
)
from citadel.runtime.services import open_services
from citadel.tools import bm25
from citadel.tools.vector_store import PREFETCH, SPARSE


async def _rank(store_root: Path, queries: dict[str, str], fusion: models.Fusion) -> dict[str, list[str]]:
    ranked: dict[str, list[str]] = {}
    async with open_services(eval_settings(store_root), llm=False) as services:
        info = await services.vectors.info(COLLECTION)
        qdrant = await services.vectors.qdrant()
        for query_id, text in queries.items():
            vector = (await services.embeddings.embed([text], info.model)).vectors[0].tolist()
            found = await qdrant.query_points(
                COLLECTION,
                prefetch=[
                    models.Prefetch(query=vector, using=info.model, limit=PREFETCH),
                    models.Prefetch(query=bm25.query_vector(text), using=SPARSE, limit=PREFETCH),
                ],
                query=models.FusionQuery(fusion=fusion),
                limit=4 * K,
                with_payload=["doc_id"],
            )
            documents: list[str] = []
            for point in found.points:
                doc = str((point.payload or {}).get("doc_id"))
                if doc not in documents:
                    documents.append(doc)
            ranked[query_id] = documents[:K]
    return ranked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit-queries", type=int, default=0)
    args = parser.parse_args()
    data = Path(os.environ.get(DATA_DIR_ENV) or default_data_dir())
    root = Path(os.environ.get(CACHE_DIR_ENV) or default_cache_dir()) / f"scifact-{fingerprint(data / 'corpus.jsonl')}"
    if not (root / MARKER).is_file():
        raise SystemExit(f"no complete SciFact collection at {root}: run `citadel eval scifact` first")
    qrels = load_qrels(data / "qrels_train.tsv")
    queries = {q: t for q, t in load_queries(data / "queries_train.jsonl").items() if q in qrels}
    if args.limit_queries:
        queries = dict(list(queries.items())[: args.limit_queries])
    scores = {}
    for fusion in (models.Fusion.RRF, models.Fusion.DBSF):
        ranked = asyncio.run(_rank(root, queries, fusion))
        ndcg = sum(ndcg_at_k(ranked[q], qrels[q]) for q in queries) / len(queries)
        recall = sum(recall_at_k(ranked[q], qrels[q]) for q in queries) / len(queries)
        scores[fusion] = ndcg
        print(f"{fusion.value:>5}: nDCG@10 {ndcg:.4f}, Recall@10 {recall:.4f} ({len(queries)} queries)")
    print(f"DBSF/RRF nDCG@10: {scores[models.Fusion.DBSF] / scores[models.Fusion.RRF]:.3f}x")


if __name__ == "__main__":
    main()

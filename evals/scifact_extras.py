"""What the SciFact eval measures beside nDCG: grounding of the researcher's answers, the latency of
embedding a query, and nDCG by chunk length on a subsample.

- Grounding: the `rag` graph (the researcher as every face runs it, on the embedded defaults, so with
  extractive answers) answers a sample of claims from the scored collection. Measured on its final
  answer: the share of answers whose `[id]` citations are all among the run's retrieved sources, the
  share of claims whose gold abstract is cited, and the share whose gold abstract was retrieved at all.
- Embedding latency: each sampled claim embedded alone, uncached.
- Chunk length: a subsample of the corpus (the gold abstracts of the first queries plus the
  abstracts that follow in the corpus file, up to `SWEEP_DOCUMENTS`) ingested again at each length
  into a temporary store; its results are kept beside the cached collection, so only a first run
  pays for them.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

from citadel.agents.citations import check_citations
from citadel.agents.researcher import answer_mode
from citadel.core.services import Services
from citadel.graphs import rag
from citadel.settings import Settings
from citadel.tools.ingest import ingest, read_documents
from citadel.tools.vector_store import SEARCH_MODES, Document, VectorStore

SWEEP_SIZES = (128, 256, 512)
SWEEP_QUERIES = 100
SWEEP_DOCUMENTS = 600


def _judged(queries: dict[str, str], qrels: dict[str, dict[str, int]], count: int) -> list[str]:
    return [q for q in queries if q in qrels][:count]


async def grounding(
    services: Services, collection: str, queries: dict[str, str], qrels: dict[str, dict[str, int]], sample: int
) -> dict[str, Any]:
    deps = services.agent_deps()
    graph = rag.build(deps).compile()
    exist = gold_cited = gold_retrieved = 0
    claims = _judged(queries, qrels, sample)
    for query_id in claims:
        state = await graph.ainvoke({"messages": [HumanMessage(queries[query_id])], "collection": collection})
        answer = state["messages"][-1].text
        retrieved = {source["id"] for source in state.get("sources", [])}
        checked = check_citations(answer, retrieved, where="eval")
        gold = {doc for doc, score in qrels[query_id].items() if score > 0}
        exist += not checked.removed
        gold_cited += bool(gold & set(checked.cited))
        gold_retrieved += bool(gold & retrieved)
    return {
        "claims": len(claims),
        "answer_mode": answer_mode(deps),
        "citations_exist": exist / len(claims),
        "gold_cited": gold_cited / len(claims),
        "gold_retrieved": gold_retrieved / len(claims),
    }


async def embedding_latency(services: Services, queries: dict[str, str], sample: int) -> list[float]:
    seconds = []
    for text in list(queries.values())[:sample]:
        began = time.perf_counter()
        await services.embeddings.embed([text], cache=False)
        seconds.append(time.perf_counter() - began)
    return seconds


def _sweep_documents(corpus: Path, qrels: dict[str, dict[str, int]], query_ids: list[str]) -> list[Document]:
    gold = {doc for q in query_ids for doc in qrels[q]}
    chosen = [d for d in read_documents([corpus]) if d.id in gold]
    for document in read_documents([corpus]):
        if len(chosen) >= SWEEP_DOCUMENTS:
            break
        if document.id not in gold:
            chosen.append(document)
    return chosen


async def chunk_sweep(
    services: Services,
    corpus: Path,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    score: Any,
    kept: Path | None,
) -> dict[str, Any]:
    """nDCG@10 / Recall@10 by mode at each chunk length on the subsample (`score(store, name,
    queries, qrels, mode)` ranks and scores); read from `kept` when a first run left it there."""
    if kept is not None and await asyncio.to_thread(kept.is_file):
        return json.loads(await asyncio.to_thread(kept.read_text))  # type: ignore[no-any-return]
    query_ids = _judged(queries, qrels, SWEEP_QUERIES)
    sample_queries = {q: queries[q] for q in query_ids}
    documents = _sweep_documents(corpus, qrels, query_ids)
    sizes: dict[str, Any] = {}
    for size in SWEEP_SIZES:
        with tempfile.TemporaryDirectory(prefix="citadel-chunk-sweep-") as folder:
            settings = Settings(_env_file=None, data_dir=Path(folder), qdrant_url=None)  # type: ignore[call-arg]
            store = VectorStore(settings, services.embeddings, chunk_tokens=size)
            await store.start()
            try:
                await store.create_collection("sweep", services.embeddings.default_model, hybrid=True)
                _, chunks = await ingest(store, "sweep", documents, batch_size=256)
                sizes[str(size)] = {"chunks": chunks}
                for mode in SEARCH_MODES:
                    sizes[str(size)][mode] = await score(store, "sweep", sample_queries, qrels, mode)
            finally:
                await store.aclose()
    result = {"documents": len(documents), "queries": len(query_ids), "sizes": sizes}
    if kept is not None:
        await asyncio.to_thread(kept.write_text, json.dumps(result))
    return result

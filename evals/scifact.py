"""Retrieval correctness on SciFact: nDCG@10 of Citadel's own ingestion and search.

The corpus goes through the path users take (`citadel.tools.ingest.read_documents` → `citadel.tools.ingest.ingest`
→ `VectorStore.upsert`: chunking, titles, the embedded all-minilm model, keyword vectors, Qdrant
local mode) into one hybrid collection; then each training claim is searched with
`VectorStore.search(k=10)` in each mode (dense, sparse, hybrid: the mode picks the vectors, so one
collection serves all three) and scored with nDCG@10 as BEIR computes it (pytrec_eval: gain = qrel
score, log2 discount, ideal DCG from the qrels, averaged over the queries that have qrels).
`--min-ndcg` gates the hybrid mode, the default for new collections.

Embedding the corpus takes minutes, so a complete ingest is kept under
`~/.cache/citadel/evals/scifact-<fingerprint>`; the fingerprint covers the corpus file, the model
(name and files), the chunking parameters and `PIPELINE_VERSION`. It is reused only when its
completion marker is there and the collection still holds the number of points recorded in it.

Beside it (`scifact_extras`): grounding of the researcher's answers, embedding latency and nDCG by
chunk length; everything goes into the eval report (`citadel.evals.report`).

    citadel eval scifact [--min-ndcg 0.70] [--data-dir DIR] [--limit-queries N] [--no-cache]
        [--sparse-sample N] [--grounding-sample 100] [--no-chunk-sweep] [--report-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from citadel.core.services import Services, ServicesOpener
from citadel.evals import report as eval_report
from citadel.evals import scifact_extras
from citadel.settings import Settings
from citadel.tools import bm25
from citadel.tools.embedding_models import EMBEDDING_MODELS
from citadel.tools.ingest import ingest, read_documents
from citadel.tools.minilm import model_files
from citadel.tools.vector_store import SEARCH_MODES, SearchMode, VectorStore

PIPELINE_VERSION = 2
"""Bump when ingestion changes in a way the fingerprint cannot see (chunking code, title handling)."""
MODEL = "all-minilm"
COLLECTION = "scifact"
K = 10
INGEST_BATCH = 256
"""Documents per upsert: enough chunks that the model's batches hold texts of one length."""
GATED_MODE: SearchMode = "hybrid"
MARKER = "complete.json"
DATA_DIR_ENV = "CITADEL_SCIFACT_DIR"
CACHE_DIR_ENV = "CITADEL_EVAL_CACHE_DIR"


def default_data_dir() -> Path:
    """`shared/data/scifact` beside the repository checkout (as on the dev machine and in CI)."""
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "citadel" / "evals"


# --- data ---------------------------------------------------------------------------------------
def load_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                record = json.loads(line)
                queries[str(record["_id"])] = record["text"]
    return queries


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as rows:
        for row in csv.DictReader(rows, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return qrels


# --- scoring ------------------------------------------------------------------------------------
def ndcg_at_k(ranked: list[str], relevant: dict[str, int], k: int = K) -> float:
    """nDCG@k as pytrec_eval's `ndcg_cut`: linear gains (the qrel score), 1/log2(rank + 1)."""
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted((score for score in relevant.values() if score > 0), reverse=True)[:k]
    idcg = sum(score / math.log2(rank + 2) for rank, score in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: list[str], relevant: dict[str, int], k: int = K) -> float:
    wanted = {doc for doc, score in relevant.items() if score > 0}
    return len(wanted.intersection(ranked[:k])) / len(wanted) if wanted else 0.0


# --- the cached collection ----------------------------------------------------------------------
def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(corpus: Path) -> str:
    """What a stored collection depends on: corpus, model, chunking parameters, pipeline version."""
    spec = EMBEDDING_MODELS[MODEL]
    parts = {
        "corpus": _file_digest(corpus),
        "model": spec.name,
        "model_files": [_file_digest(path) for path in model_files()],
        "chunk_tokens": spec.chunk_tokens,
        "max_tokens": spec.max_tokens,
        "pipeline": PIPELINE_VERSION,
        "keywords": [bm25.K1, bm25.B, bm25.AVG_TERMS, sorted(bm25.STOP_WORDS)],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def eval_settings(data_dir: Path) -> Settings:
    """Embedded model and Qdrant local mode, whatever the environment configures for production."""
    return Settings(
        data_dir=data_dir,
        qdrant_url=None,
        redis_url=None,
        database_url=None,
        embedding_model=MODEL,
        embedding_servers={},
        local_llm=False,
    )


@dataclass
class IngestReport:
    cached: bool
    seconds: float
    documents: int
    chunks: int
    first_ingest_seconds: float
    location: str


class _Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.docs = self.chunks = 0
        self.started = time.perf_counter()
        self._next = max(total // 10, 1)

    def __call__(self, docs: int, chunks: int) -> None:
        self.docs += docs
        self.chunks += chunks
        if self.docs >= self._next or self.docs == self.total:
            elapsed = time.perf_counter() - self.started
            print(
                f"  ingest {self.docs}/{self.total} documents, {self.chunks} chunks, "
                f"{elapsed:.0f} s ({self.docs / elapsed:.1f} docs/s)",
                file=sys.stderr,
                flush=True,
            )
            self._next += max(self.total // 10, 1)


async def _count_points(store: VectorStore) -> int | None:
    if COLLECTION not in {info.name for info in await store.list_collections()}:
        return None
    return (await store.info(COLLECTION)).chunks


@dataclass
class Store:
    """Where the collection lives and what a complete ingest there recorded (None: nothing usable)."""

    root: Path
    marker: Path | None
    """Written after a complete ingest; None when the store is temporary."""
    recorded: dict[str, Any] | None


def prepare_store(corpus: Path, cache_dir: Path | None, stack: contextlib.ExitStack) -> Store:
    """The cache folder for this corpus and pipeline (a temporary one without a cache)."""
    if cache_dir is not None:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            print(f"cache unavailable ({error}); ingesting into a temporary directory", file=sys.stderr)
            cache_dir = None
    if cache_dir is None:
        return Store(Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="citadel-scifact-"))), None, None)
    root = cache_dir / f"scifact-{fingerprint(corpus)}"
    marker = root / MARKER
    if marker.is_file():
        with contextlib.suppress(ValueError):
            recorded = json.loads(marker.read_text())
            if isinstance(recorded, dict) and {"documents", "chunks", "seconds"} <= recorded.keys():
                return Store(root, marker, recorded)
    if root.exists():
        shutil.rmtree(root)  # an interrupted ingest: start clean
    return Store(root, marker, None)


async def fill(services: Services, store: Store, corpus: Path, total: int, opened_at: float) -> IngestReport:
    """Reuse the stored collection if it is complete, or ingest the corpus through Citadel.

    A reused collection's time counts from `opened_at` (before the services, and with them the
    stored points, were loaded); an ingest's time is the ingest alone."""
    started = opened_at
    points = await _count_points(services.vectors)
    location = str(store.root) if store.marker else "temporary directory (no cache)"
    if store.recorded is not None:
        if points is not None and points == store.recorded["chunks"]:
            return IngestReport(
                cached=True,
                seconds=time.perf_counter() - started,
                documents=store.recorded["documents"],
                chunks=points,
                first_ingest_seconds=store.recorded["seconds"],
                location=location,
            )
        print(
            f"cached collection is incomplete ({points} points, expected {store.recorded['chunks']}); redoing it",
            file=sys.stderr,
        )
    if points is not None:
        await services.vectors.delete_collection(COLLECTION)
    await services.vectors.create_collection(COLLECTION, MODEL, hybrid=True)
    started = time.perf_counter()
    docs, chunks = await ingest(
        services.vectors, COLLECTION, read_documents([corpus]), batch_size=INGEST_BATCH, on_progress=_Progress(total)
    )
    seconds = time.perf_counter() - started
    points = await _count_points(services.vectors)
    if points != chunks:
        raise RuntimeError(f"ingest reported {chunks} chunks but the collection holds {points}")
    if store.marker is not None:
        record = json.dumps({"documents": docs, "chunks": chunks, "seconds": round(seconds, 1)})
        await asyncio.to_thread(store.marker.write_text, record)
    return IngestReport(
        cached=False, seconds=seconds, documents=docs, chunks=chunks, first_ingest_seconds=seconds, location=location
    )


# --- the run ------------------------------------------------------------------------------------
@dataclass
class Result:
    mode: SearchMode
    ndcg: float
    recall: float
    queries: int
    seconds: float
    latencies: list[float]
    """Seconds per search, in query order."""
    ranked: dict[str, list[str]]


async def search_all(
    store: VectorStore,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    mode: SearchMode,
    collection: str = COLLECTION,
) -> Result:
    """Search every query that has qrels, one at a time (local mode answers one query at a time
    anyway), timing each search."""
    ranked: dict[str, list[str]] = {}
    latencies: list[float] = []
    judged = [q for q in queries if q in qrels]
    started = time.perf_counter()
    for query_id in judged:
        began = time.perf_counter()
        hits = await store.search(collection, query=queries[query_id], k=K, mode=mode)
        latencies.append(time.perf_counter() - began)
        ranked[query_id] = [hit.id for hit in hits]
    seconds = time.perf_counter() - started
    ndcg = sum(ndcg_at_k(ranked[q], qrels[q]) for q in judged) / len(judged)
    recall = sum(recall_at_k(ranked[q], qrels[q]) for q in judged) / len(judged)
    return Result(mode, ndcg, recall, len(judged), seconds, latencies, ranked)


@dataclass
class Extras:
    grounding: dict[str, Any] | None
    embed_seconds: list[float]
    chunk_sizes: dict[str, Any] | None


async def _sweep_score(
    store: VectorStore, name: str, queries: dict[str, str], qrels: dict[str, dict[str, int]], mode: SearchMode
) -> dict[str, float]:
    result = await search_all(store, queries, qrels, mode, name)
    return {"ndcg": result.ndcg, "recall": result.recall}


async def evaluate(
    store: Store,
    corpus: Path,
    total: int,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    open_services: ServicesOpener,
    args: argparse.Namespace,
) -> tuple[IngestReport, list[Result], Extras]:
    opened_at = time.perf_counter()
    async with open_services(eval_settings(store.root), llm=False) as services:
        ingested = await fill(services, store, corpus, total, opened_at)
        results = []
        for mode in SEARCH_MODES:
            scored = queries
            if mode == "sparse" and args.sparse_sample:  # sparse alone is informative, not gated
                scored = {q: queries[q] for q in [q for q in queries if q in qrels][: args.sparse_sample]}
            results.append(await search_all(services.vectors, scored, qrels, mode))
            print(f"  {mode}: nDCG@10 {results[-1].ndcg:.4f}", file=sys.stderr, flush=True)
        grounded = None
        if args.grounding_sample:
            grounded = await scifact_extras.grounding(services, COLLECTION, queries, qrels, args.grounding_sample)
        embed_seconds = await scifact_extras.embedding_latency(services, queries, 200)
        sizes = None
        if args.chunk_sweep:
            kept = store.root / "chunk-sweep.json" if store.marker is not None else None
            sizes = await scifact_extras.chunk_sweep(services, corpus, queries, qrels, _sweep_score, kept)
        return ingested, results, Extras(grounded, embed_seconds, sizes)


def _record(args: argparse.Namespace, ingested: IngestReport, results: list[Result], extras: Extras) -> Path:
    modes = {
        r.mode: {"ndcg": r.ndcg, "recall": r.recall, "ms_per_query": 1000 * r.seconds / r.queries, "queries": r.queries}
        for r in results
    }
    retrieval = {
        "modes": modes,
        "queries": results[0].queries,
        "documents": ingested.documents,
        "chunks": ingested.chunks,
        "min_ndcg": args.min_ndcg,
        "gated_mode": GATED_MODE,
        "first_ingest_seconds": ingested.first_ingest_seconds,
    }
    eval_report.record(args.report_dir, "retrieval", retrieval)
    latency = {"search": {r.mode: r.latencies for r in results}, "embed": extras.embed_seconds}
    eval_report.record(args.report_dir, "latency", latency)
    if extras.grounding is not None:
        eval_report.record(args.report_dir, "grounding", extras.grounding)
    if extras.chunk_sizes is not None:
        return eval_report.record(args.report_dir, "chunk_sizes", extras.chunk_sizes)
    return args.report_dir / "report.html"


def run(args: argparse.Namespace, open_services: ServicesOpener) -> int:
    data_dir: Path = args.data_dir
    corpus = data_dir / "corpus.jsonl"
    for needed in (corpus, data_dir / "queries_train.jsonl", data_dir / "qrels_train.tsv"):
        if not needed.is_file():
            print(f"error: {needed} not found (set --data-dir or {DATA_DIR_ENV})", file=sys.stderr)
            return 2
    queries = load_queries(data_dir / "queries_train.jsonl")
    qrels = load_qrels(data_dir / "qrels_train.tsv")
    if args.limit_queries:
        queries = dict([(q, t) for q, t in queries.items() if q in qrels][: args.limit_queries])
    with corpus.open(encoding="utf-8") as lines:
        total = sum(1 for line in lines if line.strip())

    with contextlib.ExitStack() as stack:
        store = prepare_store(corpus, None if args.no_cache else args.cache_dir, stack)
        ingested, results, extras = asyncio.run(evaluate(store, corpus, total, queries, qrels, open_services, args))

    _print(args, ingested, results)
    if extras.grounding is not None:
        g = extras.grounding
        print(
            f"  grounding ({g['claims']} claims, {g['answer_mode']} answers): citations all exist "
            f"{g['citations_exist']:.1%}, gold abstract cited {g['gold_cited']:.1%}, "
            f"retrieved {g['gold_retrieved']:.1%}"
        )
    print(f"report: {_record(args, ingested, results, extras)}")
    gated = next(result for result in results if result.mode == GATED_MODE)
    if gated.ndcg < args.min_ndcg:
        print(f"FAIL: {GATED_MODE} nDCG@10 {gated.ndcg:.4f} is below --min-ndcg {args.min_ndcg}")
        return 1
    return 0


def _print(args: argparse.Namespace, ingested: IngestReport, results: list[Result]) -> None:
    if ingested.cached:
        ingest_line = (
            f"cached: {ingested.seconds:.1f} s to load the model and the stored collection "
            f"(the first ingest took {ingested.first_ingest_seconds:.1f} s, "
            f"{ingested.documents / ingested.first_ingest_seconds:.1f} docs/s)"
        )
    else:
        ingest_line = f"{ingested.seconds:.1f} s ({ingested.documents / ingested.seconds:.1f} docs/s), uncached"
    print(f"SciFact retrieval: {MODEL} (embedded), Citadel ingest + VectorStore.search(k={K}, mode=...)")
    print(f"  {'mode':<8} {'nDCG@10':>8} {'Recall@10':>10} {'ms/query':>9}")
    for result in results:
        gate = f"  (gate: min {args.min_ndcg})" if result.mode == GATED_MODE else ""
        print(
            f"  {result.mode:<8} {result.ndcg:>8.4f} {result.recall:>10.4f} "
            f"{1000 * result.seconds / result.queries:>9.1f}  ({result.queries} queries){gate}"
        )
    rows = [
        ("queries", f"{results[0].queries} (train split, with qrels)"),
        ("documents", f"{ingested.documents} as {ingested.chunks} chunks"),
        ("ingest", ingest_line),
        ("store", ingested.location),
    ]
    for name, value in rows:
        print(f"  {name:<10} {value}")
    print("command: citadel eval scifact " + " ".join(args.argv))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="citadel eval scifact", description=__doc__.split("\n\n")[0])
    parser.add_argument("--min-ndcg", type=float, default=0.0, help=f"Exit 1 when {GATED_MODE} nDCG@10 is below this.")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get(DATA_DIR_ENV) or default_data_dir()),
        help=f"SciFact in BEIR format (default: shared/data/scifact beside the repo, or ${DATA_DIR_ENV}).",
    )
    parser.add_argument("--limit-queries", type=int, default=0, help="Score only the first N judged queries.")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get(CACHE_DIR_ENV) or default_cache_dir()),
        help=f"Where complete ingests are kept (default ~/.cache/citadel/evals, or ${CACHE_DIR_ENV}).",
    )
    parser.add_argument("--no-cache", action="store_true", help="Ingest into a temporary directory.")
    parser.add_argument(
        "--grounding-sample", type=int, default=100, help="Claims the researcher answers for the grounding figures."
    )
    parser.add_argument(
        "--sparse-sample",
        type=int,
        default=0,
        help="Score sparse search on the first N judged queries only (local mode scores every chunk in Python: "
        "slow); 0 = all.",
    )
    parser.add_argument(
        "--no-chunk-sweep", dest="chunk_sweep", action="store_false", help="Skip nDCG by chunk length (subsample)."
    )
    parser.add_argument(
        "--report-dir", type=Path, default=eval_report.default_report_dir(), help="Where the eval report is written."
    )
    args = parser.parse_args(argv)
    args.argv = list(argv or [])
    return args


def main(argv: list[str] | None, open_services: ServicesOpener) -> int:
    return run(parse_args(argv), open_services)

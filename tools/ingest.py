"""Reading documents from files and feeding them to the vector store in batches.

Inputs: a JSONL corpus (one document per line: `_id` or `id`, `text`, optional `title`, other
fields kept as metadata; the BEIR format among others), or plain text files (`.txt`, `.md`, `.rst`),
one document each, found in the folders given too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path

from citadel.errors import InvalidRequest
from citadel.tools.vector_store import Document, UpsertResult, VectorStore

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}


def _jsonl(path: Path) -> Iterator[Document]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InvalidRequest(f"{path}:{number}: not valid JSON ({error.msg})") from error
            if not isinstance(record, dict):
                raise InvalidRequest(f"{path}:{number}: expected a JSON object")
            doc_id = record.pop("_id", None) or record.pop("id", None)
            text = record.pop("text", None)
            if not doc_id or not isinstance(text, str) or not text.strip():
                raise InvalidRequest(f"{path}:{number}: needs an `_id` (or `id`) and a non-empty `text`")
            metadata = record.pop("metadata", None) or {}
            metadata.update({k: v for k, v in record.items() if v not in (None, "", {}, [])})
            yield Document(id=str(doc_id), text=text, metadata=metadata)


def _text_file(path: Path, root: Path) -> Document:
    text = path.read_text(encoding="utf-8", errors="replace")
    rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    return Document(id=rel, text=text, metadata={"source": str(path), "title": path.stem})


def read_documents(paths: Iterable[Path]) -> Iterator[Document]:
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.suffix.lower() in TEXT_SUFFIXES and p.is_file()):
                if file.read_text(encoding="utf-8", errors="replace").strip():
                    yield _text_file(file, path)
        elif path.suffix.lower() == ".jsonl":
            yield from _jsonl(path)
        elif path.is_file():
            yield _text_file(path, path.parent)
        else:
            raise InvalidRequest(f"{path}: no such file or folder")


def count_documents(paths: Iterable[Path]) -> int:
    """A cheap count for progress bars (lines of JSONL, files elsewhere)."""
    total = 0
    for path in paths:
        if path.is_dir():
            total += sum(1 for p in path.rglob("*") if p.suffix.lower() in TEXT_SUFFIXES and p.is_file())
        elif path.suffix.lower() == ".jsonl":
            with path.open(encoding="utf-8") as lines:
                total += sum(1 for line in lines if line.strip())
        else:
            total += 1
    return total


def batched(documents: Iterable[Document], size: int) -> Iterator[list[Document]]:
    iterator = iter(documents)
    while batch := list(islice(iterator, size)):
        yield batch


async def ingest(
    store: VectorStore,
    collection: str,
    documents: Iterable[Document],
    *,
    batch_size: int = 256,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Upsert `documents` in batches; `on_progress(documents, chunks)` after each. Returns the totals.

    Each batch is embedded while the one before it is written (the model runs in a worker thread,
    the store's writes on the event loop), so neither waits for the other."""
    total_docs = total_chunks = 0
    writing: asyncio.Task[UpsertResult] | None = None

    async def written() -> None:
        nonlocal total_docs, total_chunks
        assert writing is not None
        result = await writing
        total_docs += result.documents
        total_chunks += result.chunks
        if on_progress:
            on_progress(result.documents, result.chunks)

    try:
        for batch in batched(documents, batch_size):
            prepared = await store.prepare(collection, batch)
            if writing is not None:
                await written()
            writing = asyncio.create_task(store.write(collection, prepared))
        if writing is not None:
            await written()
    finally:
        if writing is not None and not writing.done():  # a later batch failed: let this write finish whole
            with contextlib.suppress(Exception):
                await writing
    return total_docs, total_chunks

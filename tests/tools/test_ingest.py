"""Ingest in batches, each embedded while the one before it is written: every document lands, in
order (a document repeated in a later batch ends as its later text), and progress counts each batch."""

from __future__ import annotations

from citadel.runtime.services import Services
from citadel.tools.ingest import ingest
from citadel.tools.vector_store import Document


async def test_batches_overlap_and_all_land_in_order(services: Services) -> None:
    await services.vectors.create_collection("many")
    documents = [Document(f"doc-{i}", f"Document number {i} talks about topic {i % 5}.") for i in range(10)]
    documents.append(Document("doc-0", "Replaced: the first document now talks about volcanoes."))
    progress: list[tuple[int, int]] = []
    total = await ingest(
        services.vectors, "many", documents, batch_size=4, on_progress=lambda d, c: progress.append((d, c))
    )
    assert total == (11, 11)
    assert progress == [(4, 4), (4, 4), (3, 3)]
    assert (await services.vectors.info("many")).chunks == 10
    (hit,) = await services.vectors.search("many", query="volcanoes", k=1)
    assert (hit.id, hit.text) == ("doc-0", "Replaced: the first document now talks about volcanoes.")

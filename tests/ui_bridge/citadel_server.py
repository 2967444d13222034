"""Citadel on embedded defaults for the Node and browser tests, which start it (`node --test` in
ui_bridge/web): a fresh data directory, the `docs` collection of the graph tests ingested over the
HTTP API, then one line `READY <url>` on stdout. It stops when its stdin closes.

    python -m tests.ui_bridge.citadel_server
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

import httpx

from citadel.settings import Settings
from tests.graphs.run_inputs import DOCS
from tests.live_server import LiveServer


def ingest(url: str) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        client.post("/v1/collections", json={"name": "docs", "model": "all-minilm"}).raise_for_status()
        documents = [{"id": d.id, "text": d.text, "metadata": d.metadata} for d in DOCS]
        client.post("/v1/collections/docs/points", json={"documents": documents}).raise_for_status()


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="citadel-ui-tests-") as data:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=Path(data) / "data",
            llm_max_tokens=int(os.environ.get("CITADEL_TEST_MAX_TOKENS", "24")),
        )
        with LiveServer.start(settings) as live:
            ingest(live.url)
            print(f"READY {live.url}", flush=True)
            sys.stdin.read()


if __name__ == "__main__":
    main()

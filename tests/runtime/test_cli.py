"""The `citadel` command, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from citadel.memory.database import HEAD_REVISION, create_engine, current_revision, head_revision, migrate
from citadel.runtime.services import open_services
from tests.live_server import LiveServer

NO_SERVER = "http://127.0.0.1:9"
"""A CITADEL_URL where no Citadel answers (a server of the machine's on :8000 must not be used)."""


def citadel(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CITADEL_DATA_DIR": str(data_dir), "CITADEL_URL": NO_SERVER, "COLUMNS": "200", **env}
    return subprocess.run(
        [sys.executable, "-m", "citadel.runtime.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


async def test_ingest_jsonl_and_text_files(tmp_path: Path, make_settings: Any) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"_id": "d1", "title": "Volcanoes", "text": "Magma rises through the crust and erupts as lava."},
                {"_id": "d2", "title": "Tides", "text": "The moon's gravity pulls the oceans, causing tides."},
            ]
        )
    )
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "coffee.md").write_text("Espresso is brewed by forcing hot water through fine coffee grounds.")
    (notes / "empty.txt").write_text("   ")
    data = tmp_path / "data"
    result = citadel("ingest", str(corpus), str(notes), "--collection", "geo", data_dir=data)
    assert result.returncode == 0, result.stderr
    assert "ingested 3 documents as 3 chunks into 'geo'" in result.stderr

    async with open_services(make_settings(data_dir=data), llm=False) as services:
        hits = await services.vectors.search("geo", query="why do oceans have tides", k=3)
        assert hits[0].id == "d2"
        assert hits[0].metadata == {"title": "Tides"}
        coffee = await services.vectors.search("geo", query="how is espresso made", k=1)
        assert coffee[0].id == "coffee.md"
        assert coffee[0].metadata["title"] == "coffee"


def test_ingest_reports_bad_input_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "1", "text": "fine"}\n{"_id": "2"}\n')
    result = citadel("ingest", str(bad), "--collection", "c", data_dir=tmp_path / "data")
    assert result.returncode == 1
    assert "bad.jsonl:2: needs an `_id` (or `id`) and a non-empty `text`" in result.stderr
    assert "Traceback" not in result.stderr
    missing = citadel("ingest", str(tmp_path / "nope.txt"), "--collection", "c", data_dir=tmp_path / "data")
    assert missing.returncode == 1
    assert "no such file or folder" in missing.stderr


def test_models_lists_backends_and_health(tmp_path: Path) -> None:
    result = citadel("models", data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert "all-minilm (default)" in result.stdout
    assert "embedded" in result.stdout
    assert "smollm2" in result.stdout


def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    result = citadel("models", data_dir=tmp_path / "data", CITADEL_LLM_SERVERS='[{"name": "a"}]')
    assert result.returncode == 2
    assert "configuration error" in result.stderr
    assert "llm_servers" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_is_idempotent_and_serve_refuses_an_old_schema(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = citadel("migrate", data_dir=data)
    assert first.returncode == 0, first.stderr
    assert f"migrated empty → {head_revision()}" in first.stderr
    again = citadel("migrate", data_dir=data)
    assert f"schema already at {head_revision()}" in again.stderr


def test_the_server_knows_the_latest_migration() -> None:
    """A server checks the schema against `HEAD_REVISION` without loading Alembic: it must be Alembic's head."""
    assert head_revision() == HEAD_REVISION


def test_migrate_on_postgres(tmp_path: Path, database_url: str) -> None:
    result = citadel("migrate", data_dir=tmp_path / "data", CITADEL_DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    assert "postgresql+asyncpg://127.0.0.1:5432/citadel_test_" in result.stderr
    assert f"→ {head_revision()}" in result.stderr


async def test_an_empty_database_gets_its_schema_and_an_old_one_is_refused(make_settings: Any) -> None:
    settings = make_settings()
    async with open_services(settings, llm=False, state=True) as services:  # empty: made on first start
        assert services.engine is not None
        assert await current_revision(services.engine) == head_revision()

    old = make_settings(data_dir=settings.data_dir.parent / "old")
    engine = create_engine(old)
    try:
        await migrate(engine, "0001")  # a database left at the first migration
    finally:
        await engine.dispose()
    with pytest.raises(RuntimeError, match="run `citadel migrate`"):
        async with open_services(old, llm=False, state=True):
            pass


def test_ingest_goes_through_a_running_server(tmp_path: Path, live_server: LiveServer) -> None:
    (tmp_path / "notes.md").write_text("Tides follow the moon.")
    result = citadel(
        "ingest",
        str(tmp_path / "notes.md"),
        "--collection",
        "notes",
        data_dir=tmp_path / "own",
        CITADEL_URL=live_server.url,
    )
    assert result.returncode == 0, result.stderr
    assert f"ingesting through the Citadel server at {live_server.url}" in result.stderr
    described = httpx.get(f"{live_server.url}/v1/collections/notes", timeout=30)
    assert described.status_code == 200, described.text  # in the server's store, not a local one
    assert not (tmp_path / "own" / "qdrant").exists()


def test_production_mode_without_redis_or_postgres_refuses_to_start(tmp_path: Path) -> None:
    for command in ("serve", "worker"):
        result = citadel(command, data_dir=tmp_path / "data", CITADEL_TEMPORAL_ADDRESS="127.0.0.1:9")
        assert result.returncode == 2, result.stderr
        assert "CITADEL_REDIS_URL (run events go through Redis Streams" in result.stderr
        assert "CITADEL_DATABASE_URL" in result.stderr
        assert "Traceback" not in result.stderr

"""What an embedded (SQLite) `citadel serve` imports before its first answer: the app and the opened
core, in a fresh interpreter. The PostgreSQL drivers and LangGraph's PostgreSQL persistence load only
with `CITADEL_DATABASE_URL` (issue 15: start-up time and idle memory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

POSTGRES_ONLY = ("psycopg", "psycopg_pool", "asyncpg", "langgraph.checkpoint.postgres", "langgraph.store.postgres")

OPEN_THE_APP = """
import asyncio, json, sys
from citadel.runtime.app import create_app
from citadel.settings import Settings

async def main():
    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        print(json.dumps(sorted(sys.modules)))

asyncio.run(main())
"""


def test_an_embedded_start_loads_no_postgres_driver(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITADEL_")}
    env.update(CITADEL_DATA_DIR=str(tmp_path), CITADEL_LOG_LEVEL="warning")
    subprocess.run([sys.executable, "-m", "citadel.runtime.cli", "migrate"], env=env, check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-c", OPEN_THE_APP], env=env, check=True, capture_output=True, text=True)
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = [m for m in modules if any(m == name or m.startswith(name + ".") for name in POSTGRES_ONLY)]
    assert loaded == []

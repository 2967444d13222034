"""The app database on both backends, for the tests of what is stored in it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from citadel.memory.database import create_engine
from citadel.settings import Settings
from tests.live_server import migrate_database


@pytest.fixture(params=["sqlite", "postgres"])
def app_settings(request: pytest.FixtureRequest, make_settings: Any) -> Settings:
    """SQLite in the test's data directory, or a fresh PostgreSQL database (made synchronously, so
    not from inside an async fixture)."""
    overrides = {"database_url": request.getfixturevalue("database_url")} if request.param == "postgres" else {}
    return make_settings(**overrides)  # type: ignore[no-any-return]


@pytest.fixture
async def app_engine(app_settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The app database of `app_settings`, migrated."""
    settings = app_settings
    await migrate_database(settings)
    engine = create_engine(settings)
    yield engine
    await engine.dispose()

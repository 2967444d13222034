"""The app database on both backends (`app_settings`, tests/conftest.py), for the tests of what is
stored in it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from citadel.memory.database import create_engine
from citadel.settings import Settings
from tests.live_server import migrate_database


@pytest.fixture
async def app_engine(app_settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The app database of `app_settings`, migrated."""
    settings = app_settings
    await migrate_database(settings)
    engine = create_engine(settings)
    yield engine
    await engine.dispose()

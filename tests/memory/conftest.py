"""The app database on both backends (`app_settings`, tests/conftest.py), for the tests of what is
stored in it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event
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


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """The first word of each statement any engine sends (the store's on SQLite is one of its own,
    on its threads), from the test's start."""
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement.split(None, 1)[0].upper())

    event.listen(Engine, "before_cursor_execute", count)
    yield sent
    event.remove(Engine, "before_cursor_execute", count)

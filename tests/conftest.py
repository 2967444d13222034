"""Shared fixtures: settings on a temporary data directory, the real PostgreSQL and Redis of this
machine, and the app served by uvicorn on a loopback port.

With `CI=true` a missing PostgreSQL or Redis fails the tests that need it; elsewhere they skip.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from citadel.agents.deps import AgentDeps
from citadel.core.registry import GraphRegistry, build_registry
from citadel.core.services import Services
from citadel.runtime.services import open_services
from citadel.settings import Settings
from tests.live_server import LiveServer, fresh_database

DATABASE_URL = os.environ.get("CITADEL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CITADEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), timeout=2):
            return True
    except OSError:
        return False


def _require(url: str, what: str) -> str:
    if _reachable(url):
        return url
    message = f"{what} is not reachable at {url}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing service is a failure)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    return _require(DATABASE_URL, "PostgreSQL")


@pytest.fixture
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards), on the real server."""
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _require(REDIS_URL, "Redis")


@pytest.fixture
def make_settings(tmp_path: Path) -> Any:
    """Settings on a fresh data directory, ignoring any `.env` in the working tree."""

    def build(**overrides: Any) -> Settings:
        overrides.setdefault("data_dir", tmp_path / "data")
        return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]

    return build


@pytest.fixture(params=["sqlite", "postgres"])
def app_settings(request: pytest.FixtureRequest, make_settings: Any) -> Settings:
    """SQLite in the test's data directory, or a fresh PostgreSQL database (made synchronously, so
    not from inside an async fixture)."""
    overrides = {"database_url": request.getfixturevalue("database_url")} if request.param == "postgres" else {}
    return make_settings(**overrides)  # type: ignore[no-any-return]


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    return make_settings()  # type: ignore[no-any-return]


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The whole app on embedded defaults, served over real HTTP."""
    with LiveServer.start(settings) as server:
        yield server


@pytest.fixture
async def services(make_settings: Any) -> AsyncIterator[Services]:
    """Real services on the embedded defaults, with short answers to keep the tiny model quick."""
    async with open_services(make_settings(llm_max_tokens=32), state=False) as opened:
        yield opened


@pytest.fixture
def deps(services: Services) -> AgentDeps:
    return services.agent_deps()


@pytest.fixture
def registry(deps: AgentDeps) -> GraphRegistry:
    """The built-in graphs on these services, with in-memory persistence."""
    return build_registry(deps, InMemorySaver(), InMemoryStore())

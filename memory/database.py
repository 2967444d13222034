"""The app database: PostgreSQL (asyncpg) when `CITADEL_DATABASE_URL` is set, else a SQLite file in
the data directory. Its schema is migrated by `citadel migrate` (Alembic). At start, an empty
database gets the schema (as `langgraph dev` creates its own); one at an older schema is refused,
saying to run `citadel migrate`: an upgrade stays an explicit step. A database already at the
latest revision (`HEAD_REVISION`, read from Alembic's version table) is checked without loading
Alembic, which only migrating needs (its import and its reading of the scripts: 0.1 s of CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from citadel.memory.transactions import sqlite_pragmas
from citadel.settings import Settings

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD_REVISION = "0002"
"""The latest migration's revision (a test checks it is Alembic's head): what a server needs."""
VERSION_TABLE = "alembic_version"
POOL_RECYCLE_SECONDS = 1800
"""PostgreSQL connections are reopened after this long (before a proxy or server drops idle ones)."""


def redact_url(url: str) -> str:
    """A service URL without its credentials, fit for logs and error messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{host}{port}", parts.path, "", ""))


def sqlalchemy_url(settings: Settings) -> str:
    if settings.database_url:
        scheme, rest = settings.database_url.split("://", 1)
        if scheme not in ("postgres", "postgresql", "postgresql+asyncpg"):
            raise ValueError(f"CITADEL_DATABASE_URL must be a postgresql:// URL, got {scheme}://")
        return f"postgresql+asyncpg://{rest}"
    return f"sqlite+aiosqlite:///{(settings.data_dir / 'citadel.db').resolve()}"


def create_engine(settings: Settings) -> AsyncEngine:
    url = sqlalchemy_url(settings)
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": settings.database_timeout})
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.database_pool_max,
        max_overflow=0,
        pool_timeout=settings.database_timeout,
        # No ping before each checkout (a round trip per transaction): a connection found dead fails
        # its call as an outage (`store_errors`: 503, or a run waiting it out), and SQLAlchemy then
        # drops every connection opened before it, so one failed call per outage, not one per connection.
        pool_recycle=POOL_RECYCLE_SECONDS,
        connect_args={"timeout": settings.database_timeout, "command_timeout": settings.database_timeout},
    )


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """Alembic's head: the latest migration in `migrations/versions`."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


async def migrate(engine: AsyncEngine, target: str = "head") -> tuple[str | None, str]:
    """Apply pending migrations (up to `target`); returns (revision before, revision after)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    def upgrade(connection: Connection) -> str | None:
        if connection.dialect.name == "postgresql":  # replicas starting together: one migrates at a time
            connection.execute(text("select pg_advisory_xact_lock(hashtext('citadel_migrate'))"))
        before = MigrationContext.configure(connection).get_current_revision()
        command.upgrade(_alembic_config(connection), target)
        return before

    async with engine.begin() as connection:
        before = await connection.run_sync(upgrade)
    return before, head_revision() if target == "head" else target


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision Alembic recorded in the database, None when it recorded none."""
    async with engine.connect() as connection:
        return await connection.run_sync(_recorded_revision)


def _recorded_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    revisions = connection.execute(text(f"select version_num from {VERSION_TABLE}")).scalars().all()
    if len(revisions) > 1:  # Alembic's branches, which Citadel's migrations never make
        raise RuntimeError(f"the database records several schema revisions ({', '.join(revisions)})")
    return revisions[0] if revisions else None


async def ensure_schema(engine: AsyncEngine) -> bool:
    """Create the schema in an empty database (True when it did); otherwise as `check_schema`."""
    if await current_revision(engine) is None:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        if not any(name.startswith("citadel_") for name in tables):
            await migrate(engine)
            return True
    await check_schema(engine)
    return False


async def check_schema(engine: AsyncEngine) -> None:
    """Raise RuntimeError, saying what to run, unless the schema is at the latest migration."""
    current, head = await current_revision(engine), HEAD_REVISION
    if current != head:
        raise RuntimeError(
            f"the database schema is at {current or 'nothing'}, this Citadel needs {head}: run `citadel migrate`"
        )


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("select 1"))

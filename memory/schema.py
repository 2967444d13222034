"""Citadel's own tables (threads and runs), as SQLAlchemy Core metadata: one definition for
PostgreSQL (asyncpg) and SQLite (aiosqlite). Changes to it ship as Alembic migrations in
`memory/migrations/versions/`, applied by `citadel migrate`, never on import."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

# JSONB on PostgreSQL (indexable, comparable), JSON text on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData()

threads = Table(
    "citadel_threads",
    metadata,
    Column("thread_id", String(64), primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("graph", String(64), nullable=True),
    Column("title", Text, nullable=True),
    Column("status", String(16), nullable=False, server_default="idle"),
    Column("metadata", JSONType, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_citadel_threads_owner_updated", "owner", "updated_at"),
)

runs = Table(
    "citadel_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("thread_id", String(64), nullable=True),
    Column("graph", String(64), nullable=False),
    Column("owner", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("payload", JSONType, nullable=False),
    Column("metadata", JSONType, nullable=False),
    Column("error", Text, nullable=True),
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_citadel_runs_thread_created", "thread_id", "created_at"),
    Index("ix_citadel_runs_status_lease", "status", "lease_expires_at"),
)

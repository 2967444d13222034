"""Citadel's own tables (threads and runs), as SQLAlchemy Core metadata: one definition for
PostgreSQL (asyncpg) and SQLite (aiosqlite). Changes to it ship as Alembic migrations in
`memory/migrations/versions/`, applied by `citadel migrate`, never on import."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

# JSONB on PostgreSQL (indexable, comparable), JSON text on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData()

ID_LENGTH = 64
"""Longest thread, run and graph id the tables hold."""

threads = Table(
    "citadel_threads",
    metadata,
    Column("thread_id", String(ID_LENGTH), primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("graph", String(ID_LENGTH), nullable=True),
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
    Column("run_id", String(ID_LENGTH), primary_key=True),
    Column("thread_id", String(ID_LENGTH), nullable=True),
    Column("graph", String(ID_LENGTH), nullable=False),
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

audit = Table(
    "citadel_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user_id", String(255), nullable=True),
    Column("session_id", String(255), nullable=True),
    Column("action", String(255), nullable=False),
    Column("resource_type", String(64), nullable=True),
    Column("resource_id", String(255), nullable=True),
    Column("method", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("client_ip", String(64), nullable=True),
    Column("user_agent", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("body_sha256", String(64), nullable=True),
    Index("ix_citadel_audit_at", "at"),
    Index("ix_citadel_audit_user_at", "user_id", "at"),
)

"""Which failures mean a store (PostgreSQL, SQLite, Redis) cannot be reached for now, as opposed to
a request it refused: the first kind is worth waiting out, the second is not.

The drivers say it in their own words: psycopg (the checkpointer's pool) raises `OperationalError`
or the pool's `PoolTimeout`, asyncpg (the app tables, through SQLAlchemy) connection errors that
SQLAlchemy wraps in `DBAPIError` with `connection_invalidated`, redis-py its `ConnectionError` /
`TimeoutError`, and any of them may let a socket error through."""

from __future__ import annotations

import errno
import socket

import asyncpg
import psycopg
import psycopg_pool
import redis.exceptions
from sqlalchemy import exc as sqlalchemy_errors

_OUTAGES: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, broken pipe
    TimeoutError,
    socket.gaierror,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg_pool.PoolTimeout,
    psycopg_pool.PoolClosed,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)

_NETWORK_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.ETIMEDOUT}


def is_outage(error: BaseException) -> bool:
    """True when `error` (or what it wraps) says a store is unreachable or went away mid-call."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _OUTAGES):
            return True
        if isinstance(current, sqlalchemy_errors.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sqlalchemy_errors.TimeoutError | sqlalchemy_errors.InterfaceError):
            return True  # the engine's pool timed out waiting for a connection; a closed connection
        if isinstance(current, OSError) and current.errno in _NETWORK_ERRNOS:
            return True
        current = current.__cause__ or current.__context__
    return False

"""How the stores' failures reach callers: one mapping for every database error, applied where the
stores are called (the app tables, the audit log, the checkpointer and the long-term store), and one
test of what counts as an outage (`is_outage`), which runs also use to wait a blip out.

- The database cannot be reached (refused, reset, closed, timed out, no connection in the pool,
  shutting down, busy): `Unavailable` (503 with `Retry-After`), whichever driver raised it (asyncpg
  under SQLAlchemy, psycopg and its pool, sqlite3; redis-py for the stores on Redis).
- The database refuses a value (a NUL character, text longer than its column, a number out of
  range): `InvalidRequest` (400), saying what kind of value, never the SQL.
Anything else is a bug, and goes on as it is.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import sqlite3
import sys
import time
from collections.abc import Iterator
from typing import Any

import redis.exceptions
from sqlalchemy import exc as sa

from citadel.errors import CitadelError, InvalidRequest, Unavailable

log = logging.getLogger(__name__)

RETRY_AFTER = 5.0
"""Seconds a client is told to wait when the database is unreachable."""

_UNREACHABLE_STATES = ("08", "53", "57P01", "57P02", "57P03")
"""SQLSTATEs of a lost or refused connection: class 08 (connection exception), class 53 (insufficient
resources: too many connections), admin shutdown, crash shutdown, cannot connect now."""
_REFUSED_VALUES = {
    "22001": "a value is longer than its field allows",
    "22003": "a number is out of range",
    "22021": "text contains a character the database cannot store (NUL, \\u0000)",
    "22P05": "text contains a character the database cannot store (NUL, \\u0000)",
}
_OUTAGES: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, broken pipe
    TimeoutError,
    sa.OperationalError,
    sa.InterfaceError,
    sa.DisconnectionError,
    sa.TimeoutError,  # no connection free in SQLAlchemy's pool
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)
"""Besides the PostgreSQL drivers' own (`_driver_outages`)."""
_NETWORK_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.ETIMEDOUT}
_SQLITE_BUSY = ("locked", "busy", "unable to open", "disk i/o error")
"""sqlite3.OperationalError messages that pass (another process holds the file; the disk hiccupped),
unlike its others (`no such table`), which are bugs."""
_warned_at = 0.0


def _loaded(name: str) -> Any | None:
    """The driver module if something imported it, else None. An error can only come from a driver
    that is loaded, so the PostgreSQL drivers' classes are looked up here rather than imported: the
    embedded (SQLite) defaults never load psycopg or asyncpg."""
    return sys.modules.get(name)


def _driver_outages() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = []
    if (psycopg := _loaded("psycopg")) is not None:
        found += [psycopg.OperationalError, psycopg.InterfaceError]  # psycopg_pool's PoolTimeout among them
    if (psycopg_pool := _loaded("psycopg_pool")) is not None:
        found.append(psycopg_pool.PoolClosed)
    if (asyncpg := _loaded("asyncpg")) is not None:
        exceptions = asyncpg.exceptions
        found += [exceptions.PostgresConnectionError, exceptions.ConnectionDoesNotExistError, exceptions.InterfaceError]
    return tuple(found)


def _driver_data_errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = []
    if (psycopg := _loaded("psycopg")) is not None:
        found.append(psycopg.DataError)
    if (asyncpg := _loaded("asyncpg")) is not None:
        found.append(asyncpg.exceptions.DataError)
    return tuple(found)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and what caused it (SQLAlchemy wraps the driver's error, which wraps the socket's)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, sa.DBAPIError) and current.orig is not None:
            current = current.orig
        else:
            current = current.__cause__ or current.__context__


def _sqlstate(error: BaseException) -> str | None:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return state if isinstance(state, str) else None


def _refused_value(error: BaseException) -> str | None:
    for link in _chain(error):
        state = _sqlstate(link)
        if state is not None and state.startswith("22"):
            return _REFUSED_VALUES.get(state, "a value does not fit the database")
        if isinstance(link, (OverflowError, *_driver_data_errors())):
            return "a number is out of range"
        if isinstance(link, UnicodeEncodeError):
            return "text contains a character that cannot be stored (an unpaired surrogate)"
    return None


def is_outage(error: BaseException) -> bool:
    """True when `error` (or what it wraps) says a store is unreachable or went away mid-call: worth
    answering 503 and waiting out, as opposed to a request the store refused or a bug."""
    for link in _chain(error):
        state = _sqlstate(link)
        if state is not None and state.startswith(_UNREACHABLE_STATES):
            return True
        if isinstance(link, sa.DBAPIError) and link.connection_invalidated:
            return True
        if isinstance(link, sa.DBAPIError) and isinstance(link.orig, sqlite3.Error):
            continue  # judged by the sqlite3 error it wraps, below
        if isinstance(link, (*_OUTAGES, *_driver_outages())):
            return True
        if isinstance(link, OSError) and link.errno in _NETWORK_ERRNOS:
            return True
        if isinstance(link, sqlite3.OperationalError) and any(word in str(link).lower() for word in _SQLITE_BUSY):
            return True
    return False


def translate(error: BaseException) -> CitadelError | None:
    """The Citadel error a store failure means to a caller, or None if it is not a store failure."""
    if isinstance(error, CitadelError):
        return None
    refused = _refused_value(error)
    if refused is not None:
        return InvalidRequest(refused)
    if is_outage(error):
        _warn(error)
        return Unavailable("the database is unavailable; retry shortly", retry_after=RETRY_AFTER)
    return None


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """Around a store call: its failures raised as `translate` maps them (the original as cause)."""
    try:
        yield
    except Exception as error:
        mapped = translate(error)
        if mapped is None:
            raise
        raise mapped from error


def _warn(error: BaseException) -> None:
    global _warned_at
    now = time.monotonic()
    if now - _warned_at > 5:  # one line per outage burst, not one per request
        _warned_at = now
        log.warning("database unavailable: %s: %s", type(error).__name__, str(error)[:200])

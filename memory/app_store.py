"""Threads and runs in the app database: who owns a thread, which graph it talks to, its runs and
their status, and the lease that keeps two processes from executing one run at once.

An owner sees only their own threads; someone else's thread is answered exactly like a missing one.
`owner=None` means an administrator, who sees all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import ColumnElement, Connection, Exists, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from citadel.errors import Conflict, InvalidRequest, NotFound
from citadel.memory.schema import ID_LENGTH, runs, threads
from citadel.memory.store_errors import store_errors
from citadel.memory.transactions import EngineTransactions, SqliteTransactions, Transactions

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
RunStatus = Literal["pending", "running", "success", "error", "interrupted", "cancelled", "timeout"]
ThreadAfter = Literal["idle", "interrupted", "error", "delete"]
ACTIVE_RUN = ("pending", "running")
T = TypeVar("T")


def now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time Citadel stores is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass
class Thread:
    thread_id: str
    owner: str
    graph: str | None
    title: str | None
    status: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: RowMapping) -> Thread:
        values = dict(row)
        values["created_at"] = _aware(values["created_at"])
        values["updated_at"] = _aware(values["updated_at"])
        return cls(**values)


@dataclass
class Run:
    run_id: str
    thread_id: str | None
    graph: str
    owner: str
    status: str
    payload: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    attempt: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    created_at: datetime = field(default_factory=now)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    updated_at: datetime = field(default_factory=now)

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Run:
        values = dict(row)
        for key in ("lease_expires_at", "created_at", "started_at", "ended_at", "updated_at"):
            values[key] = _aware(values[key])
        return cls(**values)


def _metadata_matches(column: Any, wanted: dict[str, Any]) -> list[ColumnElement[bool]]:
    conditions = []
    for key, value in wanted.items():
        item = column[key]
        if isinstance(value, bool):
            conditions.append(item.as_boolean() == value)
        elif isinstance(value, int):
            conditions.append(item.as_integer() == value)
        elif isinstance(value, float):
            conditions.append(item.as_float() == value)
        else:
            conditions.append(item.as_string() == str(value))
    return conditions


def check_thread_id(thread_id: str) -> None:
    """A thread id the tables can hold: 1 to 64 characters, no NUL (PostgreSQL refuses it)."""
    if "\x00" in thread_id:
        raise InvalidRequest("thread_id must not contain NUL (\\u0000)", param="thread_id")
    if not thread_id or len(thread_id) > ID_LENGTH:
        raise InvalidRequest(f"thread_id must be 1 to {ID_LENGTH} characters; got {len(thread_id)}", param="thread_id")


def _refuse_claim(found: Thread, run: Run, thread: Literal["if_missing", "existing"]) -> None:
    """Why the thread `found` was not claimed for `run`: raises, except for someone else's thread
    wanted as `existing` (missing, to this owner: the caller says so)."""
    if found.owner != run.owner:
        if thread == "if_missing":  # someone else's id is refused like one's own duplicate: no probing
            raise Conflict(f"thread {found.thread_id} already exists", param="thread_id")
        return
    if found.graph and found.graph != run.graph:
        raise Conflict(
            f"thread {found.thread_id} belongs to graph {found.graph!r}, not {run.graph!r}", param="assistant_id"
        )
    busy = f"thread {found.thread_id} already has a run in progress; wait for it or cancel it"
    raise Conflict(busy, param="thread_id")


BIGINT = 2**63 - 1


def check_page(limit: int, offset: int) -> None:
    """A page the databases can be asked for (their LIMIT and OFFSET are 64-bit integers)."""
    for name, value in (("limit", limit), ("offset", offset)):
        if not 0 <= value <= BIGINT:
            raise InvalidRequest(f"{name} must be between 0 and {BIGINT}; got {value}", param=name)


# The statements every run executes, built once with bound parameters: a statement built per call
# with its values inline costs SQLAlchemy about as much CPU again as executing it (its cache key is
# computed anew each time), a few hundred microseconds a statement, several statements a run.
_INSERT_THREAD = insert(threads)
_INSERT_THREAD_IF_NEW = {  # by dialect: ON CONFLICT is not in SQLAlchemy's generic insert()
    "postgresql": postgresql.insert(threads).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(threads).on_conflict_do_nothing(),
}
_INSERT_RUN = insert(runs)
_GET_THREAD = select(threads).where(threads.c.thread_id == bindparam("p_thread_id"))
_GET_OWN_THREAD = _GET_THREAD.where(threads.c.owner == bindparam("p_owner"))
_GET_RUN = select(runs).where(runs.c.run_id == bindparam("p_run_id"))
_GET_RUNS = {  # by (of a thread, of an owner)
    (False, False): _GET_RUN,
    (True, False): _GET_RUN.where(runs.c.thread_id == bindparam("p_thread_id")),
    (False, True): _GET_RUN.where(runs.c.owner == bindparam("p_owner")),
    (True, True): _GET_RUN.where(runs.c.thread_id == bindparam("p_thread_id"), runs.c.owner == bindparam("p_owner")),
}
# A run's thread and the run, in one statement: no row, no such thread; a row without a run_id, no
# such run of it.
_GET_RUN_OF_THREAD = (
    select(threads.c.thread_id.label("thread_found"), *runs.columns)
    .select_from(
        threads.outerjoin(runs, and_(runs.c.thread_id == threads.c.thread_id, runs.c.run_id == bindparam("p_run_id")))
    )
    .where(threads.c.thread_id == bindparam("p_thread_id"))
)
_GET_RUN_OF_OWN_THREAD = _GET_RUN_OF_THREAD.where(threads.c.owner == bindparam("p_owner"))
_CLAIM_RUN = (
    update(runs)
    .where(runs.c.run_id == bindparam("p_run_id"), runs.c.status.in_(ACTIVE_RUN))
    .values(
        status="running",
        lease_owner=bindparam("p_owner"),
        lease_expires_at=bindparam("p_expires"),
        started_at=func.coalesce(runs.c.started_at, bindparam("p_stamp")),
        updated_at=bindparam("p_stamp"),
    )
    .returning(*runs.columns)
)
_CLAIM_RUN_BY_LEASE = _CLAIM_RUN.where(
    or_(
        runs.c.lease_owner.is_(None),
        runs.c.lease_expires_at < bindparam("p_stamp"),
        runs.c.lease_owner == bindparam("p_owner"),
    )
).values(attempt=runs.c.attempt + 1)
_CLAIM_RUN_BY_ATTEMPT = _CLAIM_RUN.where(runs.c.attempt < bindparam("p_attempt")).values(attempt=bindparam("p_attempt"))
_CLAIM_OWN_THREAD = (
    # The owner's thread, for a run of a graph: unless it is busy or talks to another graph.
    update(threads)
    .where(
        threads.c.thread_id == bindparam("p_thread_id"),
        threads.c.owner == bindparam("p_owner"),
        threads.c.status != "busy",
        or_(threads.c.graph.is_(None), threads.c.graph == bindparam("p_graph")),
    )
    .values(
        status="busy",
        graph=bindparam("p_graph"),
        title=func.coalesce(threads.c.title, bindparam("p_title")),
        updated_at=bindparam("p_stamp"),
    )
    .returning(*threads.columns)
)
_FINISH_RUN = (
    update(runs)
    .where(
        runs.c.run_id == bindparam("p_run_id"), runs.c.lease_owner == bindparam("p_owner"), runs.c.status == "running"
    )
    .values(
        status=bindparam("p_status"),
        error=bindparam("p_error"),
        ended_at=bindparam("p_stamp"),
        updated_at=bindparam("p_stamp"),
        lease_owner=None,
        lease_expires_at=None,
    )
)
_DELETE_RUNS_OF_THREAD = delete(runs).where(runs.c.thread_id == bindparam("p_thread_id"))
_DELETE_THREAD = delete(threads).where(threads.c.thread_id == bindparam("p_thread_id"))


def _active_run_of_thread(*also: ColumnElement[bool]) -> Exists:
    """Whether the thread `p_thread_id` has a run pending or running (and meeting `also`)."""
    return (
        select(runs.c.run_id)
        .where(runs.c.thread_id == bindparam("p_thread_id"), runs.c.status.in_(ACTIVE_RUN), *also)
        .exists()
    )


_RELEASE_THREAD = (
    # The thread's status after its run ended, unless another run has taken the thread since.
    update(threads)
    .where(threads.c.thread_id == bindparam("p_thread_id"), ~_active_run_of_thread())
    .values(status=bindparam("p_status"), updated_at=bindparam("p_stamp"))
)


# On PostgreSQL, a run's usual acceptance and end are each one statement in autocommit (a transaction
# of two statements is four round trips, and about 0.4 ms more of the server's CPU through SQLAlchemy):
# the owner's thread claimed and the run's row added only if it was (a data-modifying CTE); the run
# ended and its thread released only if the run was still this holder's. All of a statement's parts
# see one snapshot, so the release looks for another active run than this one.
_CLAIMED = _CLAIM_OWN_THREAD.cte("claimed")
_CLAIM_OWN_THREAD_FOR_RUN = select(_CLAIMED).add_cte(
    insert(runs)
    .from_select(
        [column.name for column in runs.columns],
        # Named apart from the columns: an UPDATE's parameters that name a column of its table are set.
        select(*(bindparam(f"r_{column.name}", type_=column.type) for column in runs.columns)).select_from(_CLAIMED),
    )
    .cte("added")
)
_FINISHED = _FINISH_RUN.returning(runs.c.run_id).cte("finished")
_FINISH_RUN_AND_RELEASE = (
    select(func.count())
    .select_from(_FINISHED)
    .add_cte(
        update(threads)
        .where(
            threads.c.thread_id == bindparam("p_thread_id"),
            select(_FINISHED.c.run_id).exists(),
            ~_active_run_of_thread(runs.c.run_id != bindparam("p_run_id")),
        )
        .values(status=bindparam("p_status_after"), updated_at=bindparam("p_stamp"))
        .cte("released")
    )
)


class AppStore:
    """Every call's database failure arrives as a Citadel error (`store_errors`): 503 when the
    database cannot be reached, 400 for a value it refuses. Each call is one transaction, its
    statements a plain function of a connection (`transactions`: one hop to SQLite's thread and
    back), or, where each of its statements stands alone (one UPDATE, say), statements each committed
    as they run: on PostgreSQL, a BEGIN and a COMMIT are a round trip each. Close it (`close`, or use
    it as `async with`) before disposing of its engine."""

    def __init__(self, engine: AsyncEngine, *, timeout: float = 10.0) -> None:  # CITADEL_DATABASE_TIMEOUT
        self.engine = engine
        self._insert_thread_if_new = _INSERT_THREAD_IF_NEW[engine.dialect.name]
        self._one_statement = engine.dialect.name == "postgresql"  # data-modifying CTEs
        self._transactions: Transactions = (
            SqliteTransactions(engine.url, timeout) if engine.dialect.name == "sqlite" else EngineTransactions(engine)
        )

    async def close(self) -> None:
        await self._transactions.close()

    async def __aenter__(self) -> AppStore:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def _read(self, work: Callable[[Connection], T]) -> T:
        with store_errors():
            return await self._transactions.read(work)

    async def _write(self, work: Callable[[Connection], T]) -> T:
        """`work` in a transaction, committed when it returns, rolled back when it raises."""
        with store_errors():
            return await self._transactions.write(work)

    async def _write_each(self, work: Callable[[Connection], T]) -> T:
        """`work` whose every statement stands alone, each committed as it runs."""
        with store_errors():
            return await self._transactions.write_each(work)

    # --- threads ------------------------------------------------------------------------------
    async def create_thread(
        self,
        owner: str,
        *,
        thread_id: str | None = None,
        graph: str | None = None,
        metadata: dict[str, Any] | None = None,
        if_exists: Literal["raise", "do_nothing"] = "raise",
    ) -> Thread:
        thread_id = thread_id or str(uuid.uuid4())
        check_thread_id(thread_id)
        stamp = now()
        made = Thread(thread_id, owner, graph, None, "idle", metadata or {}, stamp, stamp)

        def create(connection: Connection) -> Thread:
            # One statement in the usual case: the thread is new (a read first was three round trips more).
            while connection.execute(self._insert_thread_if_new, vars(made)).rowcount != 1:
                found = connection.execute(_GET_THREAD, {"p_thread_id": thread_id}).mappings().first()
                if found is not None:  # (None: deleted since the insert met it; try again)
                    if found["owner"] != owner or if_exists == "raise":
                        # Someone else's id is refused the same way as one's own duplicate: no probing.
                        raise Conflict(f"thread {thread_id} already exists", param="thread_id")
                    return Thread.from_row(found)
            return made

        return await self._write_each(create)

    async def get_thread(self, thread_id: str, owner: str | None) -> Thread:
        query = _GET_THREAD if owner is None else _GET_OWN_THREAD
        values = {"p_thread_id": thread_id, "p_owner": owner}
        row = await self._read(lambda c: c.execute(query, values).mappings().first())
        if row is None:
            raise NotFound(f"thread {thread_id} not found", param="thread_id")
        return Thread.from_row(row)

    async def search_threads(
        self,
        owner: str | None,
        *,
        metadata: dict[str, Any] | None = None,
        status: str | None = None,
        graph: str | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str = "updated_at",
        descending: bool = True,
    ) -> list[Thread]:
        check_page(limit, offset)
        query = select(threads)
        if owner is not None:
            query = query.where(threads.c.owner == owner)
        if status:
            query = query.where(threads.c.status == status)
        if graph:
            query = query.where(threads.c.graph == graph)
        if metadata:
            query = query.where(and_(*_metadata_matches(threads.c.metadata, metadata)))
        column = (
            threads.c[sort_by]
            if sort_by in ("created_at", "updated_at", "thread_id", "status")
            else threads.c.updated_at
        )
        query = query.order_by(column.desc() if descending else column.asc()).limit(limit).offset(offset)
        rows = await self._read(lambda c: c.execute(query).mappings().all())
        return [Thread.from_row(row) for row in rows]

    async def count_threads(self, owner: str | None) -> int:
        query = select(func.count()).select_from(threads)
        if owner is not None:
            query = query.where(threads.c.owner == owner)
        return await self._read(lambda c: int(c.execute(query).scalar_one()))

    async def update_thread(
        self,
        thread_id: str,
        owner: str | None,
        *,
        metadata: dict[str, Any] | None = None,
        status: str | None = None,
        graph: str | None = None,
        title: str | None = None,
    ) -> Thread:
        thread = await self.get_thread(thread_id, owner)
        values: dict[str, Any] = {"updated_at": now()}
        if metadata is not None:
            values["metadata"] = {**thread.metadata, **metadata}
        if status is not None:
            values["status"] = status
        if graph is not None and thread.graph is None:
            values["graph"] = graph
        if title is not None and not thread.title:
            values["title"] = title[:200]
        query = update(threads).where(threads.c.thread_id == thread_id).values(**values)
        await self._write_each(lambda c: c.execute(query))
        return await self.get_thread(thread_id, owner)

    async def delete_thread(self, thread_id: str, owner: str | None) -> None:
        await self.get_thread(thread_id, owner)

        def delete_it(connection: Connection) -> None:
            connection.execute(_DELETE_RUNS_OF_THREAD, {"p_thread_id": thread_id})
            connection.execute(_DELETE_THREAD, {"p_thread_id": thread_id})

        await self._write(delete_it)

    async def try_mark_busy(self, thread_id: str) -> bool:
        """Atomically claim a thread for a new run (across replicas): False if it already has one."""
        query = (
            update(threads)
            .where(threads.c.thread_id == thread_id, threads.c.status != "busy")
            .values(status="busy", updated_at=now())
        )
        return await self._write_each(lambda c: c.execute(query).rowcount == 1)

    # --- runs ---------------------------------------------------------------------------------
    async def accept_run(
        self,
        run: Run,
        *,
        thread: Literal["new", "if_missing", "existing"],
        title: str | None = None,
        thread_metadata: dict[str, Any] | None = None,
    ) -> Thread:
        """Accept `run` in one transaction: its thread (`new`: made for it; `if_missing`: made unless
        the owner has it; `existing`: the owner's, else NotFound) claimed for it, atomically across
        replicas (Conflict if the thread is busy or belongs to another graph), with the run's graph
        and `title` when the thread has none yet, and the run's row. Nothing is written on refusal."""
        thread_id = run.thread_id
        assert thread_id is not None
        stamp = now()
        run_row = vars(run)  # its fields are the table's columns (not iterated: 1% of a run's CPU)

        title = title[:200] if title else None
        if thread != "new" and self._one_statement:
            claim = {"p_thread_id": thread_id, "p_owner": run.owner, "p_graph": run.graph, "p_title": title}
            query = _CLAIM_OWN_THREAD_FOR_RUN
            values = {**claim, "p_stamp": stamp, **{f"r_{name}": value for name, value in run_row.items()}}
            claimed = await self._write_each(lambda c: c.execute(query, values).first())
            if claimed is not None:
                return Thread.from_row(claimed._mapping)
            # Refused, or a thread to make (`if_missing`): as below, where the claim finds nothing.

        def accept(connection: Connection) -> Thread:
            if thread != "new":  # the owner's thread claimed at once; only a refusal reads it, to say why
                claim = {"p_thread_id": thread_id, "p_owner": run.owner, "p_graph": run.graph, "p_title": title}
                claimed = connection.execute(_CLAIM_OWN_THREAD, {**claim, "p_stamp": stamp}).mappings().first()
                if claimed is not None:
                    connection.execute(_INSERT_RUN, run_row)
                    return Thread.from_row(claimed)
                found = connection.execute(_GET_THREAD, {"p_thread_id": thread_id}).mappings().first()
                if found is not None:
                    _refuse_claim(Thread.from_row(found), run, thread)
                if thread == "existing":
                    raise NotFound(f"thread {thread_id} not found", param="thread_id")
            check_thread_id(thread_id)
            accepted = Thread(
                thread_id=thread_id,
                owner=run.owner,
                graph=run.graph,
                title=title,
                status="busy",
                metadata=thread_metadata or {},
                created_at=stamp,
                updated_at=stamp,
            )
            # vars(), not dataclasses.asdict: that deep-copies every value (the datetimes through
            # copy's reduce protocol), 4% of the server's CPU a streamed run in a profile.
            connection.execute(_INSERT_THREAD, vars(accepted))
            connection.execute(_INSERT_RUN, run_row)
            return accepted

        return await self._write(accept)

    async def get_owned_run(self, run_id: str, thread_id: str, owner: str | None) -> Run:
        """The run `run_id` of the thread `thread_id`, the thread the owner's (`owner` None: anyone's):
        `get_thread` then `get_run`, with their NotFound, in one statement."""
        query = _GET_RUN_OF_THREAD if owner is None else _GET_RUN_OF_OWN_THREAD
        values = {"p_run_id": run_id, "p_thread_id": thread_id, "p_owner": owner}
        row = await self._read(lambda c: c.execute(query, values).mappings().first())
        if row is None:
            raise NotFound(f"thread {thread_id} not found", param="thread_id")
        if row["run_id"] is None:
            raise NotFound(f"run {run_id} not found", param="run_id")
        return Run.from_row({name: value for name, value in row.items() if name != "thread_found"})

    async def get_run(self, run_id: str, *, thread_id: str | None = None, owner: str | None = None) -> Run:
        query = _GET_RUNS[thread_id is not None, owner is not None]
        values = {"p_run_id": run_id, "p_thread_id": thread_id, "p_owner": owner}
        row = await self._read(lambda c: c.execute(query, values).mappings().first())
        if row is None:
            raise NotFound(f"run {run_id} not found", param="run_id")
        return Run.from_row(row)

    async def list_runs(
        self, thread_id: str, *, limit: int = 10, offset: int = 0, status: str | None = None
    ) -> list[Run]:
        check_page(limit, offset)
        query = select(runs).where(runs.c.thread_id == thread_id)
        if status:
            query = query.where(runs.c.status == status)
        query = query.order_by(runs.c.created_at.desc()).limit(limit).offset(offset)
        rows = await self._read(lambda c: c.execute(query).mappings().all())
        return [Run.from_row(row) for row in rows]

    async def active_run(self, thread_id: str) -> Run | None:
        query = (
            select(runs)
            .where(runs.c.thread_id == thread_id, runs.c.status.in_(ACTIVE_RUN))
            .order_by(runs.c.created_at.desc())
        )
        row = await self._read(lambda c: c.execute(query).mappings().first())
        return Run.from_row(row) if row else None

    async def claim_run(
        self, run_id: str, owner: str, lease_seconds: float, *, attempt: int | None = None
    ) -> Run | None:
        """Take a run to execute it: the run as claimed, or None if it is over or someone else holds it.

        Without `attempt`, the lease decides: a run nobody holds, or whose holder stopped renewing it
        (or `owner`'s own). With `attempt` (Temporal's attempt number), the attempt decides: a later
        attempt always takes the run over, an earlier or equal one never does."""
        stamp = now()
        query = _CLAIM_RUN_BY_LEASE if attempt is None else _CLAIM_RUN_BY_ATTEMPT
        values = {
            "p_run_id": run_id,
            "p_owner": owner,
            "p_stamp": stamp,
            "p_expires": stamp + timedelta(seconds=lease_seconds),
            "p_attempt": attempt,
        }
        row = await self._write_each(lambda c: c.execute(query, values).mappings().first())
        return Run.from_row(row) if row is not None else None

    async def renew_lease(self, run_id: str, owner: str, lease_seconds: float) -> bool:
        """Extend the lease; False if the run was taken over, finished or asked to stop."""
        stamp = now()
        query = (
            update(runs)
            .where(runs.c.run_id == run_id, runs.c.lease_owner == owner, runs.c.status == "running")
            .values(lease_expires_at=stamp + timedelta(seconds=lease_seconds), updated_at=stamp)
        )
        return await self._write_each(lambda c: c.execute(query).rowcount == 1)

    async def finish_run(
        self,
        run_id: str,
        owner: str,
        status: RunStatus,
        error: str | None = None,
        *,
        thread_id: str | None = None,
        thread_after: ThreadAfter | None = None,
    ) -> bool:
        """End a run `owner` holds; False if it no longer does (cancelled, or taken over meanwhile).
        In the same transaction, its thread `thread_id` gets the status `thread_after` (unless another
        run has taken it since), or is deleted with its runs (`delete`: a stateless run's)."""
        stamp = now()
        ending = {"p_run_id": run_id, "p_owner": owner, "p_status": status, "p_error": error, "p_stamp": stamp}
        if self._one_statement and thread_id is not None and thread_after not in (None, "delete"):
            released = {**ending, "p_thread_id": thread_id, "p_status_after": thread_after}
            return bool(await self._write_each(lambda c: c.execute(_FINISH_RUN_AND_RELEASE, released).scalar_one()))

        def finish(connection: Connection) -> bool:
            result = connection.execute(_FINISH_RUN, ending)
            if result.rowcount != 1:
                return False
            if thread_id is not None and thread_after == "delete":
                connection.execute(_DELETE_RUNS_OF_THREAD, {"p_thread_id": thread_id})
                connection.execute(_DELETE_THREAD, {"p_thread_id": thread_id})
            elif thread_id is not None and thread_after is not None:
                connection.execute(
                    _RELEASE_THREAD, {"p_thread_id": thread_id, "p_status": thread_after, "p_stamp": stamp}
                )
            return True

        return await self._write(finish)

    async def fail_run(self, run_id: str, error: str) -> bool:
        """End an unfinished run as failed, whoever holds it (its executor is known to be gone)."""
        stamp = now()
        query = (
            update(runs)
            .where(runs.c.run_id == run_id, runs.c.status.in_(ACTIVE_RUN))
            .values(status="error", error=error, ended_at=stamp, updated_at=stamp,
                    lease_owner=None, lease_expires_at=None)
        )  # fmt: skip
        return await self._write_each(lambda c: c.execute(query).rowcount == 1)

    async def cancel_run(self, run_id: str, thread_id: str | None) -> str | None:
        """Mark an unfinished run cancelled and, in the same transaction, free its thread if no other
        run holds it. The status it had (`pending`: it never started; `running`), or None if it had
        already ended."""
        stamp = now()

        def cancel(connection: Connection) -> str | None:
            for previous in ACTIVE_RUN:
                result = connection.execute(
                    update(runs)
                    .where(runs.c.run_id == run_id, runs.c.status == previous)
                    .values(status="interrupted", error="cancelled", ended_at=stamp, updated_at=stamp,
                            lease_owner=None, lease_expires_at=None)
                )  # fmt: skip
                if result.rowcount == 1:
                    break
            else:
                return None
            if thread_id is not None:
                others = select(runs.c.run_id).where(runs.c.thread_id == thread_id, runs.c.status.in_(ACTIVE_RUN))
                connection.execute(
                    update(threads)
                    .where(threads.c.thread_id == thread_id, threads.c.status == "busy", ~others.exists())
                    .values(status="idle", updated_at=stamp)
                )
            return previous

        return await self._write(cancel)

    async def release_thread(self, thread_id: str, status: str) -> None:
        """Set a thread's status after its run ended, unless another run has taken the thread since."""
        values = {"p_thread_id": thread_id, "p_status": status, "p_stamp": now()}
        await self._write_each(lambda c: c.execute(_RELEASE_THREAD, values))

    async def release_lease(self, run_id: str, owner: str) -> None:
        """Give a run back unfinished (a clean shutdown): the next process resumes it at once."""
        query = (
            update(runs)
            .where(runs.c.run_id == run_id, runs.c.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None, updated_at=now())
        )
        await self._write_each(lambda c: c.execute(query))

    async def recoverable_runs(self, pending_for: float) -> list[Run]:
        """Runs accepted but not finished whose lease nobody holds: to be resumed. A run still
        `pending` counts only once it has waited `pending_for` seconds: until then the process that
        accepted it is about to start it."""
        stamp = now()
        query = (
            select(runs)
            .where(
                runs.c.status.in_(ACTIVE_RUN),
                or_(runs.c.lease_owner.is_(None), runs.c.lease_expires_at < stamp),
                or_(runs.c.status != "pending", runs.c.created_at < stamp - timedelta(seconds=pending_for)),
            )
            .order_by(runs.c.created_at)
        )
        rows = await self._read(lambda c: c.execute(query).mappings().all())
        return [Run.from_row(row) for row in rows]

    async def stalled_runs(self, pending_for: float, running_for: float) -> list[Run]:
        """Runs `pending` for over `pending_for` seconds, or `running` without a sign of life (a lease
        renewal) for over `running_for`: what the Temporal reconciler looks into."""
        stamp = now()
        query = (
            select(runs)
            .where(
                or_(
                    and_(runs.c.status == "pending", runs.c.created_at < stamp - timedelta(seconds=pending_for)),
                    and_(runs.c.status == "running", runs.c.updated_at < stamp - timedelta(seconds=running_for)),
                )
            )
            .order_by(runs.c.created_at)
            .limit(500)
        )
        rows = await self._read(lambda c: c.execute(query).mappings().all())
        return [Run.from_row(row) for row in rows]

    async def count_active_runs(self) -> dict[str, int]:
        """Runs accepted and not finished, by status (`pending`, `running`), across every replica."""
        query = select(runs.c.status, func.count()).where(runs.c.status.in_(ACTIVE_RUN)).group_by(runs.c.status)
        rows = await self._read(lambda c: c.execute(query).all())
        return {status: 0 for status in ACTIVE_RUN} | {str(status): int(count) for status, count in rows}

"""Opening the core every face serves: the services, the graph registry compiled on the shared
checkpointer and store, the run event log and the run manager with its executor. The HTTP app's
lifespan opens it, `citadel mcp` when no server answers, and `citadel worker` its own form of it.

The binding chooses per process how runs execute and where their events go:
- embedded mode (no `CITADEL_TEMPORAL_ADDRESS`): runs execute as tasks of the server process
  (`InProcessExecutor`) and their events stay in its memory (Redis, when configured, serves the
  caches and rate limits, which go on without it while it is down);
- production mode: runs start Temporal workflows executed by `citadel worker` processes
  (`TemporalExecutor`); events go through Redis Streams, so production mode needs Redis (and
  PostgreSQL, which every replica and worker shares), and refuses to start without them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from citadel.agents.deps import AgentDeps
from citadel.core.in_process_executor import InProcessExecutor
from citadel.core.project import Project, find_config, read_project
from citadel.core.redis_run_events import RedisRunEvents
from citadel.core.registry import SPECS, RegisteredGraph, build_registry
from citadel.core.run_events import LocalRunEvents, RunEventLog
from citadel.core.runs import RunExecutor, RunManager
from citadel.core.services import Core, Services
from citadel.core.user_graphs import open_user_graphs
from citadel.runtime import kit
from citadel.runtime.services import open_services
from citadel.settings import Settings

if TYPE_CHECKING:  # temporalio is imported only in production mode (it costs half a second at start)
    from temporalio.client import Client

log = logging.getLogger(__name__)

DepsAdjuster = Callable[[AgentDeps], AgentDeps]


def check_production(settings: Settings) -> None:
    """Production mode's prerequisites, or RuntimeError saying what is missing and why."""
    if not settings.temporal_address:
        return
    missing = []
    if not settings.redis_url:
        missing.append(
            "CITADEL_REDIS_URL (run events go through Redis Streams, so that any replica streams any run "
            "and finds a stateless run's result)"
        )
    if not settings.database_url:
        missing.append(
            "CITADEL_DATABASE_URL (threads, runs and checkpoints live in PostgreSQL, shared by every replica "
            "and worker)"
        )
    if missing:
        raise RuntimeError(
            f"production mode (CITADEL_TEMPORAL_ADDRESS={settings.temporal_address}) needs " + " and ".join(missing)
        )
    if not settings.qdrant_url:
        log.warning(
            "production mode without CITADEL_QDRANT_URL: each process keeps its own local vector store in its "
            "data directory, so workers do not see the collections the servers hold"
        )


async def connect_temporal(settings: Settings) -> Client:
    from temporalio.client import Client

    assert settings.temporal_address is not None
    try:
        return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    except Exception as error:  # the SDK raises RuntimeError / RPCError for an unreachable server
        raise RuntimeError(
            f"cannot reach Temporal at {settings.temporal_address} (CITADEL_TEMPORAL_ADDRESS): {error}"
        ) from error


@contextlib.asynccontextmanager
async def open_event_log(settings: Settings) -> AsyncIterator[RunEventLog]:
    if not (settings.temporal_address and settings.redis_url):
        events = LocalRunEvents(keep_seconds=min(settings.run_events_ttl, 300), maxlen=settings.run_events_max)
        yield events
        return
    shared = RedisRunEvents(settings.redis_url, maxlen=settings.run_events_max, ended_ttl=settings.run_events_ttl)
    try:
        await shared.ping()
    except Exception as error:
        await shared.aclose()
        raise RuntimeError(f"cannot reach Redis (CITADEL_REDIS_URL) for run events: {error}") from error
    try:
        yield shared
    finally:
        await shared.aclose()


def load_project(settings: Settings) -> Project | None:
    """The project of `CITADEL_CONFIG` (or `./langgraph.json`), its environment applied; None when
    there is none. ProjectError names the file and the fault."""
    config = find_config(settings.config)
    if config is None:
        return None
    project = read_project(config)
    project.apply_env()
    return project


def serves_builtins(settings: Settings, project: Project | None) -> bool:
    if settings.builtin_graphs is not None:
        return settings.builtin_graphs
    return project.builtin_graphs if project is not None else True


@contextlib.asynccontextmanager
async def open_project_graphs(
    settings: Settings, project: Project | None, services: Services, deps: AgentDeps
) -> AsyncIterator[list[RegisteredGraph]]:
    """The project's graphs on the shared checkpointer and store, the kit bound to the server's
    services before the project's modules are imported (they may use it at import time)."""
    if project is None:
        yield []
        return
    if project.unused_keys:
        log.warning(
            "%s: keys Citadel does not use (they are for LangGraph Platform's build and server): %s",
            project.config.name, ", ".join(project.unused_keys),
        )  # fmt: skip
    assert services.persistence is not None
    reserved = frozenset(spec.name for spec in SPECS) if serves_builtins(settings, project) else frozenset()
    with kit.bind(deps):
        async with open_user_graphs(
            project, services.persistence.checkpointer, services.persistence.store, reserved=reserved
        ) as graphs:
            log.info("serving %s from %s", ", ".join(e.name for e in graphs), project.config)
            yield graphs


@contextlib.asynccontextmanager
async def open_core(
    settings: Settings, *, executes: bool = True, adjust_deps: DepsAdjuster | None = None
) -> AsyncIterator[Core]:
    """`executes=False` for a `citadel worker`: it executes the runs Temporal hands it and accepts
    none. `adjust_deps` swaps what the graphs are built with (the tests' scripted tool model)."""
    check_production(settings)
    project = load_project(settings)
    async with open_services(settings, state=True) as services, open_event_log(settings) as events:
        assert services.persistence is not None
        assert services.app_store is not None
        deps = services.agent_deps()
        if adjust_deps is not None:
            deps = adjust_deps(deps)
        async with open_project_graphs(settings, project, services, deps) as user_graphs:
            no_builtins: dict[str, Any] = {} if serves_builtins(settings, project) else {"specs": ()}
            registry = build_registry(
                deps,
                services.persistence.checkpointer,
                services.persistence.store,
                user_graphs=user_graphs,
                **no_builtins,
            )
            executor: Callable[[RunManager], RunExecutor] | None = None
            if executes and settings.temporal_address:
                from citadel.core.temporal_executor import TemporalExecutor

                executor = functools.partial(TemporalExecutor, client=await connect_temporal(settings))
            elif executes:
                executor = InProcessExecutor
            runs = RunManager(settings, services.app_store, registry, events, executor)
            await runs.start()
            try:
                yield Core(services=services, registry=registry, runs=runs)
            finally:
                await runs.aclose()

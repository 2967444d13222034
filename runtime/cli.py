"""The `citadel` command: `serve`, `worker`, `mcp`, `ingest`, `migrate`, `models`, and the rest.

In embedded mode the `citadel serve` process owns the stores; `citadel mcp` and `citadel ingest` go
through it when it answers (`CITADEL_URL`), and open services of their own only when none does."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from citadel.errors import CitadelError
from citadel.runtime.logging_setup import configure_logging
from citadel.settings import Settings

app = typer.Typer(help="Citadel agent runtime.", no_args_is_help=True, add_completion=False)
console = Console(stderr=True)
log = logging.getLogger("citadel.cli")
PROBE_SECONDS = 2.0


def running_server(settings: Settings) -> str | None:
    """The URL of the Citadel server of these settings (`CITADEL_URL`) if one answers, else None."""
    url = settings.server_url
    try:
        answered = httpx.get(f"{url}/health", timeout=PROBE_SECONDS).status_code == 200
    except httpx.HTTPError:
        return None
    return url if answered else None


def _refused(url: str) -> bool:
    """Whether `url` answers 401 to a caller without a token (headers only: /mcp may hold a stream open)."""
    try:
        with httpx.stream("GET", url, timeout=PROBE_SECONDS) as response:
            return response.status_code == 401
    except httpx.HTTPError:
        return False


def _token(settings: Settings) -> str | None:
    return settings.token.get_secret_value() if settings.token else None


def load_settings(**overrides: Any) -> Settings:
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        console.print(f"[red]configuration error[/red]:\n{error}")
        raise typer.Exit(2) from error
    configure_logging(settings.log_level)
    return settings


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="The project's langgraph.json (CITADEL_CONFIG; default ./langgraph.json when there is one)."
    ),
]


class _ProjectErrorLine(logging.Filter):
    """A project that fails while the server starts (a factory that raises, or returns no graph)
    is reported in the one line of its ProjectError, not the traceback uvicorn logs."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "ProjectError: " in text:
            self.seen = True
            line = text.rsplit("ProjectError: ", 1)[1].strip().splitlines()[0]
            record.msg, record.args, record.exc_info, record.exc_text = f"error: {line}", (), None, None
            return True
        return not (self.seen and "Application startup failed" in text)


def load_project_settings(config: Path | None, **overrides: Any) -> Settings:
    """Settings with the project's environment applied, after its graphs were imported and checked:
    a project Citadel cannot serve exits here, naming the file and the fault in one line."""
    from citadel.core.project import ProjectError
    from citadel.core.registry import SPECS
    from citadel.core.user_graphs import import_graphs
    from citadel.runtime.core import load_project, serves_builtins

    settings = load_settings(config=config, **overrides)
    try:
        project = load_project(settings)
        if project is None:
            return settings
        settings = load_settings(config=project.config, **overrides)  # with the project's env
        reserved = frozenset(spec.name for spec in SPECS) if serves_builtins(settings, project) else frozenset()
        import_graphs(project, reserved)
    except ProjectError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    return settings


def _check_bind(settings: Settings) -> None:
    if not settings.auth_enabled and not _is_loopback(settings.host):
        console.print(
            f"[red]refusing to serve on {settings.host}[/red]: authentication is off, so anyone who can reach this "
            "address could use Citadel. Configure Clerk (CITADEL_CLERK_JWT_KEY or CITADEL_CLERK_SECRET_KEY), "
            "or bind to 127.0.0.1 / ::1."
        )
        raise typer.Exit(2)
    _require_production_services(settings)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (CITADEL_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (CITADEL_PORT).")] = None,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
    config: ConfigOption = None,
) -> None:
    """Start the HTTP server: the built-in graphs and the project's (langgraph.json), on every face."""
    import uvicorn

    settings = load_project_settings(config, host=host, port=port)
    _check_bind(settings)
    logging.getLogger("uvicorn.error").addFilter(_ProjectErrorLine())
    if reload:
        _serve_reloading(settings, [Path.cwd()])
        return
    from citadel.runtime.app import create_app

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level)


@app.command()
def dev(
    host: Annotated[str | None, typer.Option(help="Bind address (CITADEL_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (CITADEL_PORT).")] = None,
    config: ConfigOption = None,
) -> None:
    """`serve`, restarted when the project's files change (its Python files, langgraph.json, .env),
    like `langgraph dev`."""
    settings = load_project_settings(config, host=host, port=port)
    _check_bind(settings)
    logging.getLogger("uvicorn.error").addFilter(_ProjectErrorLine())
    root = settings.config.resolve().parent if settings.config else Path.cwd()
    _serve_reloading(settings, [root])


def _serve_reloading(settings: Settings, folders: list[Path]) -> None:
    """uvicorn's reloader: the app is made afresh in each new process, from the environment."""
    import uvicorn

    os.environ["CITADEL_HOST"], os.environ["CITADEL_PORT"] = settings.host, str(settings.port)
    if settings.config is not None:
        os.environ["CITADEL_CONFIG"] = str(settings.config.resolve())
    uvicorn.run(
        "citadel.runtime.app:create_app", factory=True, host=settings.host, port=settings.port, reload=True,
        reload_dirs=[str(folder) for folder in folders], reload_includes=["*.py", "*.json", ".env"],
        log_level=settings.log_level,
    )  # fmt: skip


def _require_production_services(settings: Settings) -> None:
    """Exit, saying what is missing, when production mode lacks a service it needs."""
    from citadel.runtime.core import check_production

    try:
        check_production(settings)
    except RuntimeError as error:
        console.print(f"[red]refusing to start[/red]: {error}")
        raise typer.Exit(2) from error


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="JSONL corpora, text files or folders of them.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection to fill (made if missing).")],
    model: Annotated[str | None, typer.Option(help="Embedding model for a new collection.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="Documents per upsert.")] = 256,
    hybrid: Annotated[
        bool, typer.Option(help="A new collection keeps keyword vectors too, for sparse and hybrid search.")
    ] = True,
    server: Annotated[
        str | None, typer.Option(help="Send to the Citadel at this URL (default: CITADEL_URL when a server answers).")
    ] = None,
) -> None:
    """Embed documents into a collection, with a progress bar: through the running server when one
    answers (it owns the vector store), else into the local store."""
    from citadel.tools.ingest import count_documents

    settings = load_settings()
    server = server or running_server(settings)
    if server:
        console.print(f"ingesting through the Citadel server at {server}")
    total = count_documents(paths)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[chunks]} chunks"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    try:
        with progress:
            task = progress.add_task(f"ingest → {collection}", total=total, chunks=0)
            chunks = 0

            def advance(docs: int, new_chunks: int) -> None:
                nonlocal chunks
                chunks += new_chunks
                progress.update(task, advance=docs, chunks=chunks)

            runner = _ingest_remote if server else _ingest_local
            docs, chunks = asyncio.run(runner(settings, server, paths, collection, model, hybrid, batch_size, advance))
    except CitadelError as error:
        console.print(f"[red]error[/red]: {error.message}")
        raise typer.Exit(1) from error
    except (RuntimeError, httpx.HTTPError) as error:
        console.print(f"[red]error[/red]: {error}")
        raise typer.Exit(1) from error
    console.print(f"ingested {docs} documents as {chunks} chunks into {collection!r}")


async def _ingest_local(settings, server, paths, collection, model, hybrid, batch_size, advance):  # type: ignore[no-untyped-def]
    from citadel.runtime.services import open_services
    from citadel.tools.ingest import ingest as run_ingest
    from citadel.tools.ingest import read_documents

    async with open_services(settings, llm=False) as services:
        await services.vectors.create_collection(collection, model, hybrid=hybrid)
        return await run_ingest(
            services.vectors, collection, read_documents(paths), batch_size=batch_size, on_progress=advance
        )


async def _ingest_remote(settings, server, paths, collection, model, hybrid, batch_size, advance):  # type: ignore[no-untyped-def]
    from citadel.tools.ingest import batched, read_documents

    docs = chunks = 0
    headers = {"Authorization": f"Bearer {token}"} if (token := _token(settings)) else None
    async with httpx.AsyncClient(base_url=server, timeout=300, headers=headers) as client:
        response = await client.post("/v1/collections", json={"name": collection, "model": model, "hybrid": hybrid})
        _raise_for(response)
        for batch in batched(read_documents(paths), batch_size):
            body = {"documents": [{"id": d.id, "text": d.text, "metadata": d.metadata} for d in batch]}
            response = await client.post(f"/v1/collections/{collection}/points", json=body)
            _raise_for(response)
            result = response.json()
            docs += result["upserted"]
            chunks += result["chunks"]
            advance(result["upserted"], result["chunks"])
    return docs, chunks


def _raise_for(response: httpx.Response) -> None:
    if response.is_error:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        raise RuntimeError(f"server answered {response.status_code}: {message}")


@app.command()
def migrate() -> None:
    """Create or upgrade the app database's tables (PostgreSQL, or SQLite in the data directory)."""
    from citadel.memory.database import create_engine, redact_url, sqlalchemy_url
    from citadel.memory.database import migrate as run_migrations

    settings = load_settings()

    async def upgrade() -> tuple[str | None, str]:
        engine = create_engine(settings)
        try:
            return await run_migrations(engine)
        finally:
            await engine.dispose()

    try:
        before, after = asyncio.run(upgrade())
    except (OSError, RuntimeError) as error:
        console.print(f"[red]error[/red]: cannot migrate {redact_url(sqlalchemy_url(settings))}: {error}")
        raise typer.Exit(1) from error
    where = redact_url(sqlalchemy_url(settings))
    if before == after:
        console.print(f"{where}: schema already at {after}")
    else:
        console.print(f"{where}: migrated {before or 'empty'} → {after}")


@app.command("audit-prune")
def audit_prune(
    days: Annotated[int | None, typer.Option(min=1, help="Keep this many days (CITADEL_AUDIT_RETENTION_DAYS).")] = None,
) -> None:
    """Delete audit records older than the retention period."""
    from citadel.memory.audit import AuditLog
    from citadel.memory.database import create_engine

    settings = load_settings()
    keep = days or settings.audit_retention_days

    async def prune() -> int:
        engine = create_engine(settings)
        try:
            return await AuditLog.prune(engine, keep)
        finally:
            await engine.dispose()

    deleted = asyncio.run(prune())
    console.print(f"deleted {deleted} audit records older than {keep} days")


@app.command("mcp")
def mcp_stdio(config: ConfigOption = None) -> None:
    """Serve Citadel's tools and graphs over MCP on stdin/stdout (for desktop clients); logs go to stderr.

    Relays to the running server's /mcp (CITADEL_URL) when one answers (its graphs are the ones it
    serves); else serves from its own services, with the project's graphs (--config)."""
    from citadel.mcp_server.stdio import run_bridge, run_stdio

    settings = load_project_settings(config)
    server = running_server(settings)
    if server is not None:
        token = _token(settings)
        if token is None and _refused(f"{server}/mcp"):
            console.print(
                f"[red]error[/red]: the Citadel server at {server} has authentication on: set CITADEL_TOKEN to a "
                "token it accepts (a Clerk machine token or API key)"
            )
            raise typer.Exit(2)
        run_bridge(f"{server}/mcp", token)
        return
    from citadel.runtime.core import open_core

    log.info("no Citadel server answers at %s: serving from %s", settings.server_url, settings.data_dir)
    run_stdio(settings, lambda: open_core(settings))


@app.command()
def worker(config: ConfigOption = None) -> None:
    """Execute runs from Temporal (production mode: CITADEL_TEMPORAL_ADDRESS), until SIGTERM/SIGINT;
    the servers' project (--config) gives it the same graphs."""
    from citadel.runtime.run_worker import serve_worker

    settings = load_project_settings(config)
    if not settings.temporal_address:
        console.print(
            "[red]error[/red]: `citadel worker` executes runs handed out by Temporal: set CITADEL_TEMPORAL_ADDRESS "
            "(without it, `citadel serve` executes runs itself)"
        )
        raise typer.Exit(2)
    _require_production_services(settings)
    try:
        code = asyncio.run(serve_worker(settings))
    except RuntimeError as error:
        console.print(f"[red]error[/red]: {error}")
        code = 1
    # temporalio/sdk-python#300: the Temporal core's threads can abort the interpreter's finalization.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@app.command()
def models() -> None:
    """Show the configured embedding models and LLM backends, and whether each is healthy."""
    settings = load_settings()

    async def report() -> None:
        from citadel.runtime.services import open_services

        async with open_services(settings) as services:
            table = Table(title="Embedding models")
            for column in ("model", "dims", "max tokens", "providers"):
                table.add_column(column)
            for model in services.embeddings.models():
                providers = ", ".join(f"{n} ({s.value})" for n, s in services.embeddings.providers(model.name))
                default = " (default)" if model.name == services.embeddings.default_model else ""
                table.add_row(model.name + default, str(model.dims), str(model.max_tokens), providers)
            Console().print(table)
            table = Table(title="LLM backends")
            for column in ("backend", "models", "healthy", "detail", "tool calling"):
                table.add_column(column)
            for backend in services.llm.backends:
                healthy, detail = services.llm.health[backend.name]
                table.add_row(
                    backend.name,
                    ", ".join(backend.models),
                    "yes" if healthy else "NO",
                    detail,
                    str(backend.tool_calling),
                )
            Console().print(table)
            routes = ", ".join(f"{r} → {settings.llm_routes.get(r) or 'default order'}" for r in services.llm.routes)
            Console().print(f"routes: {routes}")

    asyncio.run(report())


# --- evals (citadel.evals) ---------------------------------------------------------------------------
eval_app = typer.Typer(help="Measure Citadel: routing accuracy and retrieval quality.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@eval_app.command("routing", context_settings=PASS_THROUGH, add_help_option=False)
def eval_routing(ctx: typer.Context) -> None:
    """Routing accuracy of the assistant's supervisor on a labelled set (`--help` for its options)."""
    from citadel.evals import routing
    from citadel.runtime.services import open_services

    raise typer.Exit(routing.main(ctx.args, open_services))


@eval_app.command("scifact", context_settings=PASS_THROUGH, add_help_option=False)
def eval_scifact(ctx: typer.Context) -> None:
    """Retrieval quality (nDCG@10, Recall@10) on SciFact with the embedded model (`--help` for its options)."""
    from citadel.evals import scifact
    from citadel.runtime.services import open_services

    raise typer.Exit(scifact.main(ctx.args, open_services))


# --- voice (agents/voice; the voice extra) ---------------------------------------------------------
voice_app = typer.Typer(help="The LiveKit voice worker (livekit-agents' `dev` / `start`).", no_args_is_help=True)
app.add_typer(voice_app, name="voice")
LiveKitURL = Annotated[str | None, typer.Option("--url", help="LiveKit server URL (CITADEL_LIVEKIT_URL).")]
LiveKitKey = Annotated[str | None, typer.Option("--api-key", help="LiveKit API key (CITADEL_LIVEKIT_API_KEY).")]
LiveKitSecret = Annotated[
    str | None, typer.Option("--api-secret", help="LiveKit API secret (CITADEL_LIVEKIT_API_SECRET).")
]


def _voice_worker(dev: bool, url: str | None, api_key: str | None, api_secret: str | None) -> None:
    settings = load_settings(livekit_url=url, livekit_api_key=api_key, livekit_api_secret=api_secret)
    try:
        from citadel.agents.voice._extra import ensure_voice_extra

        ensure_voice_extra()  # says what to install, instead of a bare ModuleNotFoundError
        from citadel.agents.voice.worker import run_worker
    except ImportError as error:
        console.print(f"[red]error[/red]: {error}")
        raise typer.Exit(1) from error
    if running_server(settings) is None:
        log.warning("no Citadel server answers at %s yet: voice conversations need it running", settings.server_url)
    run_worker(settings, dev=dev, log_level="debug" if dev else settings.log_level)


@voice_app.command("dev")
def voice_dev(url: LiveKitURL = None, api_key: LiveKitKey = None, api_secret: LiveKitSecret = None) -> None:
    """Run the voice worker for development: debug logs, jobs in fresh processes."""
    _voice_worker(True, url, api_key, api_secret)


@voice_app.command("start")
def voice_start(url: LiveKitURL = None, api_key: LiveKitKey = None, api_secret: LiveKitSecret = None) -> None:
    """Run the voice worker in production: joins the rooms it is dispatched to, drains on SIGTERM."""
    _voice_worker(False, url, api_key, api_secret)


if __name__ == "__main__":  # pragma: no cover
    app()

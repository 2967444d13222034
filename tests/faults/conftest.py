"""The fault suite's stack: real PostgreSQL and Redis behind TCP proxies the tests control, two
Ollama wire servers as the only LLM backends, and `citadel serve` in its own process on top.
Built once per module (starting it takes most of the suite's time)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.citadel_process import CitadelProcess
from tests.faults.tcp_proxy import TcpProxy
from tests.live_server import fresh_database
from tests.ollama_wire_server import WireServerProcess

CHAT_MODEL = "llama3.1:8b"
REDIS_TIMEOUT = 0.5


@dataclass
class Stack:
    citadel: CitadelProcess
    postgres: TcpProxy
    redis: TcpProxy
    llms: list[WireServerProcess]


def _through(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}"))


@pytest.fixture(scope="module")
def stack(postgres_server_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root: Path = tmp_path_factory.mktemp("faults")
    pg, rd = urlsplit(postgres_server_url), urlsplit(redis_url)
    llms = [WireServerProcess(f"llm-0{i}", log_dir=root, chat_models=[CHAT_MODEL]) for i in (1, 2)]
    with (
        fresh_database(postgres_server_url) as database_url,
        TcpProxy.running(pg.hostname or "127.0.0.1", pg.port or 5432) as postgres,
        TcpProxy.running(rd.hostname or "127.0.0.1", rd.port or 6379) as redis,
        WireServerProcess.running(llms),
    ):
        env = {
            "CITADEL_DATA_DIR": str(root / "data"),
            "CITADEL_DATABASE_URL": _through(database_url, postgres),
            "CITADEL_DATABASE_TIMEOUT": "3",
            "CITADEL_REDIS_URL": _through(redis_url, redis),
            "CITADEL_REDIS_TIMEOUT": str(REDIS_TIMEOUT),
            "CITADEL_REDIS_RETRY_SECONDS": "1",
            "CITADEL_LOCAL_LLM": "false",
            "CITADEL_LLM_SERVERS": json.dumps(
                [{"name": s.name, "url": s.url, "models": [CHAT_MODEL], "timeout": 30} for s in llms]
            ),
            "CITADEL_LLM_MAX_TOKENS": "8",
            "CITADEL_LLM_RETRY_DELAY": "0.01",
            "CITADEL_BREAKER_RESET_SECONDS": "1",
            "CITADEL_HEALTH_INTERVAL": "600",  # readiness must probe for itself
            "CITADEL_MCP_SESSION_IDLE_SECONDS": "2",
            "CITADEL_MCP_MAX_SESSIONS": "2",
            "CITADEL_LOG_LEVEL": "info",
            **{f"CITADEL_RATE_LIMIT_{kind}": "1000000/minute" for kind in ("CHAT", "EMBEDDINGS", "MCP", "DEFAULT")},
        }
        citadel = CitadelProcess(env, root / "citadel.log")
        citadel.migrate()
        citadel.start()
        try:
            yield Stack(citadel=citadel, postgres=postgres, redis=redis, llms=llms)
        finally:
            citadel.stop()

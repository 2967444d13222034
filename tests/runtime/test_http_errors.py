"""An error no handler answers is still answered in the one error shape, and the keep-alive
connection it came on stays open for the client's next request (Starlette's ServerErrorMiddleware
re-raises after its 500, and uvicorn then closes the connection: Citadel's request pipeline does not)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.exc import OperationalError

from citadel.runtime.app import create_app
from tests.live_server import LiveServer


def test_unhandled_errors_keep_the_connection(make_settings: Any) -> None:
    settings = make_settings()
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug, with details the client must not see")

    @app.get("/store-down")
    async def store_down() -> None:  # a store failure that escaped its boundary
        raise OperationalError("SELECT secret FROM t", {}, ConnectionRefusedError(111, "refused"))

    connects = 0

    def trace(event: str, info: dict[str, Any]) -> None:
        nonlocal connects
        connects += event == "connection.connect_tcp.complete"

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with LiveServer.start(settings, app=app) as live, httpx.Client(base_url=live.url, limits=limits) as http:
        answers = [http.get(path, extensions={"trace": trace}) for path in ("/boom", "/store-down", "/health")]

    failed, down, health = answers
    assert failed.status_code == 500
    assert failed.json()["error"]["type"] == "internal_error"
    assert "details" not in failed.text
    assert down.status_code == 503
    assert int(down.headers["retry-after"]) >= 1
    assert "SELECT" not in down.text
    assert health.status_code == 200
    assert connects == 1, "the server closed the connection after an error"

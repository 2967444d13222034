"""The request pipeline's own decisions, over real HTTP against the app: CORS only for requests that
carry an Origin (preflights still answered, allowed and exposed headers still sent), and refusals
counted in the metrics (as "refused", with their status) and recorded in the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.live_server import LiveServer

APP_ORIGIN = "http://app.example"


@pytest.fixture
def live(make_settings: Any) -> Iterator[LiveServer]:
    with LiveServer.start(make_settings(cors_origins=[APP_ORIGIN], max_body_bytes=4096)) as server:
        yield server


def _options_counted(metrics: str) -> float:
    """OPTIONS requests in `citadel_http_requests_total`, whatever their route and status (the
    registry is the process's: other tests' requests are in it too)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("citadel_http_requests_total{") and 'method="OPTIONS"' in line
    )


def test_cors_preflight_and_exposed_headers(live: LiveServer) -> None:
    preflight_headers = {"Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST"}
    with httpx.Client(base_url=live.url, timeout=30) as http:
        options_before = _options_counted(http.get("/metrics").text)
        preflight = http.options("/v1/embeddings", headers=preflight_headers)
        refused = http.options("/v1/embeddings", headers={**preflight_headers, "Origin": "http://evil.example"})
        cross_origin = http.post("/v1/embeddings", json={"input": "hello"}, headers={"Origin": APP_ORIGIN})
        same_origin = http.post("/v1/embeddings", json={"input": "hello"})
        metrics = http.get("/metrics").text

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert cross_origin.status_code == 200
    assert cross_origin.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "X-Citadel-Route" in cross_origin.headers["access-control-expose-headers"]
    assert same_origin.status_code == 200, "a request without Origin skips CORS and is served"
    assert not any(name.startswith("access-control-") for name in same_origin.headers)
    assert _options_counted(metrics) == options_before, "preflights are answered before the pipeline counts"


def test_refusals_are_counted_by_route_and_audited(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as http:
        too_large = http.post("/v1/embeddings", json={"input": "x" * 5000})
        metrics = http.get("/metrics").text
        records = http.get("/admin/audit", params={"status": 413}).json()["records"]

    assert too_large.status_code == 413
    assert "CITADEL_MAX_BODY_BYTES" in too_large.json()["error"]["message"]
    assert 'citadel_http_requests_total{method="POST",route="refused",status="413"}' in metrics
    assert [(r["method"], r["path"], r["error"]) for r in records] == [("POST", "/v1/embeddings", "HTTP 413")]


def test_mcp_is_served_past_the_router_and_still_counted_and_audited(live: LiveServer) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    accept = {"Accept": "application/json, text/event-stream"}
    with httpx.Client(base_url=live.url, timeout=30) as http:
        answered = http.post("/mcp", json=ping, headers=accept)
        metrics = http.get("/metrics").text
        records = http.get("/admin/audit", params={"action": "POST /mcp"}).json()["records"]

    assert answered.json()["jsonrpc"] == "2.0", "the MCP server answered (a ping outside a session: its 400)"
    status = answered.status_code
    assert f'citadel_http_requests_total{{method="POST",route="/mcp",status="{status}"}}' in metrics
    assert [(r["resource_type"], r["status"]) for r in records] == [("mcp", status)]

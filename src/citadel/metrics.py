"""Prometheus metrics, defined once per process and scraped at `GET /metrics`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "citadel_http_requests_total", "HTTP requests by route template, method and status.", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "citadel_http_request_seconds",
    "HTTP request latency by route template (to the end of the response body).",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
EMBEDDED_TEXTS = Counter("citadel_embeddings_total", "Texts embedded, by model and source.", ["model", "source"])
EMBED_CACHE = Counter("citadel_embedding_cache_total", "Embedding cache lookups, by result.", ["result"])
EMBED_BATCH_SIZE = Histogram(
    "citadel_embedding_batch_size",
    "Texts per model call after micro-batching, by provider.",
    ["provider"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
BACKEND_CALLS = Counter(
    "citadel_backend_calls_total", "Calls to backends, by backend and outcome.", ["backend", "outcome"]
)
BACKEND_LATENCY = Histogram(
    "citadel_backend_first_token_seconds",
    "Time from the call to a backend to its first token (chat) or its answer (embeddings).",
    ["backend"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CIRCUIT_STATE = Gauge("citadel_circuit_state", "Circuit state per backend: 0 closed, 1 half-open, 2 open.", ["backend"])
BACKEND_HEALTHY = Gauge("citadel_backend_healthy", "1 if the backend's last health check passed.", ["backend"])
ROUTE_DECISIONS = Counter(
    "citadel_llm_route_decisions_total",
    "LLM routing decisions, by route, backend and reason.",
    ["route", "backend", "reason"],
)
CITATIONS_REMOVED = Counter(
    "citadel_citations_removed_total",
    "Citations of sources an answer's run did not retrieve, taken out of the answer before any face saw it.",
    ["where"],
)

"""Citadel's configuration: every setting, read once from the environment (and `.env`).

Variables carry the `CITADEL_` prefix; structured values (lists, maps) are JSON. Nothing else in
Citadel reads the environment: the entry point builds one `Settings` and passes it down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class LLMServer(BaseModel):
    """One Ollama server that answers chat requests."""

    name: str = Field(description="A short name used in logs, metrics and routing, e.g. `llm-01`.")
    url: str = Field(description="Base URL, e.g. `http://llm-01:11434`.")
    models: list[str] = Field(min_length=1, description="Models this server serves, first = its default.")
    timeout: float = Field(default=60.0, gt=0, description="Seconds before a request to it is abandoned.")
    tool_calling: bool = Field(default=False, description="Whether its models can call tools reliably.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITADEL_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- server -----------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Address `citadel serve` binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `citadel serve` listens on.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    data_dir: Path = Field(default=Path("./data"), description="Where embedded stores keep their files.")

    # --- production services (all optional) --------------------------------------------------
    qdrant_url: str | None = Field(default=None, description="Qdrant server; unset = local mode in data_dir.")
    qdrant_api_key: SecretStr | None = None
    redis_url: str | None = Field(default=None, description="Redis for caches; unset = in-process.")
    database_url: str | None = Field(default=None, description="PostgreSQL; unset = SQLite in data_dir.")
    database_pool_min: int = Field(default=1, ge=0)
    database_pool_max: int = Field(default=10, ge=1)
    database_timeout: float = Field(default=10.0, gt=0, description="Seconds to wait for a connection.")
    run_lease_seconds: float = Field(
        default=30.0, ge=1, description="A background run not renewed for this long is resumed by another process."
    )

    # --- embeddings ---------------------------------------------------------------------------
    embedding_model: str = Field(default="all-minilm", description="Model used when a request names none.")
    embedding_servers: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Ollama servers per embedding model, e.g. {"nomic-embed-text": ["http://emb-01:11434"]}.',
    )
    embedding_fallbacks: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "nomic-embed-text": ["mxbai-embed-large", "bge-m3", "all-minilm"],
            "mxbai-embed-large": ["bge-m3", "nomic-embed-text", "all-minilm"],
            "bge-m3": ["mxbai-embed-large", "nomic-embed-text", "all-minilm"],
        },
        description="Models to try, in order, when a caller that accepts another model finds one down.",
    )
    embedding_timeout: float = Field(default=30.0, gt=0)
    embedding_max_inputs: int = Field(default=2048, ge=1, description="Most texts in one request.")
    embedding_batch_size: int = Field(default=64, ge=1, description="Most texts one model call embeds.")
    embedding_batch_wait_ms: float = Field(
        default=2.0, ge=0, description="How long a batch waits for more callers before it runs."
    )
    embedding_threads: int = Field(default=0, ge=0, description="ONNX threads for the embedded model (0 = all cores).")
    embedding_cache_size: int = Field(default=50_000, ge=0, description="In-process cache entries (0 = off).")
    embedding_cache_ttl: int = Field(default=7 * 24 * 3600, ge=0, description="Redis cache TTL in seconds.")

    # --- LLMs ---------------------------------------------------------------------------------
    llm_servers: list[LLMServer] = Field(default_factory=list, description="Ollama chat servers (JSON list).")
    local_llm: bool = Field(default=True, description="Serve the embedded SmolLM2 model (needs the local-llm extra).")
    local_llm_path: Path | None = Field(default=None, description="Another GGUF file for the embedded backend.")
    local_llm_context: int = Field(default=2048, ge=256)
    local_llm_threads: int = Field(default=0, ge=0, description="llama.cpp threads (0 = all cores).")
    llm_max_tokens: int = Field(default=256, ge=1, description="Answer length when a request sets none.")
    llm_routes: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Models per task class, best first, e.g. {"code": ["qwen2.5-coder:7b"]}.',
    )
    llm_routes_file: Path | None = Field(default=None, description="JSON file of labelled example utterances.")
    llm_route_threshold: float = Field(default=0.3, ge=-1, le=1, description="Least similarity to pick a route.")
    llm_retries: int = Field(default=2, ge=0, description="Retries per backend on retryable errors.")
    llm_retry_delay: float = Field(default=0.25, ge=0, description="First retry delay (doubles, with jitter).")
    breaker_failures: int = Field(default=3, ge=1, description="Consecutive failures that open a circuit.")
    breaker_reset_seconds: float = Field(default=30.0, gt=0, description="Open time before a trial call.")
    health_interval: float = Field(default=15.0, gt=0, description="Seconds between backend health checks.")

    # --- agents and graphs --------------------------------------------------------------------
    default_collection: str = Field(
        default="docs", description="Collection the researcher searches when a run names none."
    )
    research_min_score: float = Field(
        default=0.3, ge=-1, le=1, description="Least similarity for a passage to count as relevant to a question."
    )
    analyst_approval_sections: int = Field(
        default=12, ge=1, description="Documents with more sections than this ask for approval before analysis."
    )
    agent_history_tokens: int = Field(
        default=1024, ge=64, description="Conversation history (in tokens, estimated) sent with each turn."
    )

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @model_validator(mode="after")
    def _unique_server_names(self) -> Settings:
        names = [server.name for server in self.llm_servers]
        if len(names) != len(set(names)):
            raise ValueError(f"llm_servers: names must be unique, got {names}")
        if self.database_pool_min > self.database_pool_max:
            raise ValueError("database_pool_min must not exceed database_pool_max")
        return self

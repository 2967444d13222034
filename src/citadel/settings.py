"""Citadel's configuration: every setting, read once from the environment (and `.env`).

Variables carry the `CITADEL_` prefix; structured values (lists, maps) are JSON. Nothing else in
Citadel reads the environment: the entry point builds one `Settings` and passes it down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from platformdirs import user_data_path
from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """The per-user data directory (`~/.local/share/citadel` on Linux, or under `$XDG_DATA_HOME`),
    the same whatever the working directory: `make run`, `citadel mcp` started by a desktop client
    and the other commands all find it."""
    return user_data_path("citadel", appauthor=False)


class LLMServer(BaseModel):
    """One Ollama server that answers chat requests."""

    name: str = Field(description="A short name used in logs, metrics and routing, e.g. `llm-01`.")
    url: str = Field(description="Base URL, e.g. `http://llm-01:11434`.")
    models: list[str] = Field(min_length=1, description="Models this server serves, first = its default.")
    timeout: float = Field(default=60.0, gt=0, description="Seconds before a request to it is abandoned.")
    tool_calling: bool = Field(default=False, description="Whether its models can call tools reliably.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CITADEL_", env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # --- server -----------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Address `citadel serve` binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `citadel serve` listens on.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    gc_threshold: int = Field(
        default=20_000,
        ge=0,
        description="New container objects between two young garbage collections once the server has started "
        "(Python's default 700; 0 keeps it). What start-up loaded is frozen out of the collector either way.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where embedded stores keep their files (default: the per-user data directory).",
    )
    url: str | None = Field(
        default=None,
        description="The running Citadel server other Citadel processes (`citadel mcp`, `citadel ingest`, the "
        "voice worker) use; unset = http://127.0.0.1:{port}.",
    )
    token: SecretStr | None = Field(
        default=None,
        description="Bearer token those processes send to the server when it has auth on (a Clerk machine token "
        "or API key with the admin role).",
    )

    # --- access -------------------------------------------------------------------------------
    clerk_jwt_key: SecretStr | None = Field(
        default=None, description="Clerk instance PEM public key: verify session tokens without a network call."
    )
    clerk_secret_key: SecretStr | None = Field(
        default=None, description="Clerk secret key: verify via JWKS, and machine tokens / API keys via Clerk's API."
    )
    clerk_api_url: str = Field(default="https://api.clerk.com", description="Clerk Backend API (machine tokens, JWKS).")
    clerk_issuer: str | None = Field(
        default=None, description="Clerk Frontend API URL, advertised to MCP clients as the authorization server."
    )
    clerk_authorized_parties: list[str] = Field(
        default_factory=list, description="Accepted `azp` origins (JSON list); empty = any."
    )
    clerk_clock_skew_ms: int = Field(default=5000, ge=0, description="Allowed clock difference for exp/nbf/iat.")
    clerk_role_claim: str = Field(
        default="metadata.role", description="Claim (dotted path) holding a user's role when no organisation role."
    )
    clerk_role_map: dict[str, str] = Field(
        default_factory=lambda: {"org:admin": "admin", "org:developer": "developer", "org:member": "user"},
        description="Organisation roles (or role-claim values) to Citadel roles: admin, developer, user.",
    )
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS (JSON list).")
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, description="Largest request body accepted.")
    max_message_chars: int = Field(
        default=100_000,
        ge=1000,
        description="Longest text (a chat message, a document given to a run, any string field) a request may "
        "carry, on every face but embeddings and collections (413 naming the field). About 25k tokens: more than "
        "the embedded model's context and Ollama's default one; raise it for long-context backends.",
    )
    rate_limit_chat: str = Field(default="60/minute", description="Runs and chat completions per user (or IP).")
    rate_limit_embeddings: str = Field(default="600/minute", description="Embedding, search and upsert calls.")
    rate_limit_mcp: str = Field(default="600/minute", description="MCP requests.")
    rate_limit_default: str = Field(default="1200/minute", description="Every other request.")
    audit_retention_days: int = Field(default=90, ge=1, description="`citadel audit-prune` deletes older records.")

    @property
    def server_url(self) -> str:
        """Where the Citadel server of these settings answers (CITADEL_URL, else this machine's port)."""
        return (self.url or f"http://127.0.0.1:{self.port}").rstrip("/")

    @property
    def auth_enabled(self) -> bool:
        return self.clerk_jwt_key is not None or self.clerk_secret_key is not None

    # --- production services (all optional) --------------------------------------------------
    qdrant_url: str | None = Field(default=None, description="Qdrant server; unset = local mode in data_dir.")
    qdrant_api_key: SecretStr | None = None
    redis_url: str | None = Field(
        default=None,
        description="Redis for caches and rate limits, and in production mode for run events; unset = in-process.",
    )
    redis_timeout: float = Field(
        default=0.5, gt=0, description="Seconds a cache or rate-limit call waits for Redis before going on without it."
    )
    redis_retry_seconds: float = Field(
        default=5.0,
        gt=0,
        description="After Redis failed or timed out, it is skipped, and pinged in the background this often "
        "until it answers again.",
    )
    database_url: str | None = Field(default=None, description="PostgreSQL; unset = SQLite in data_dir.")
    database_pool_min: int = Field(default=1, ge=0)
    database_pool_max: int = Field(default=10, ge=2)
    database_timeout: float = Field(default=10.0, gt=0, description="Seconds to wait for a connection.")
    run_lease_seconds: float = Field(
        default=30.0, ge=1, description="A background run not renewed for this long is resumed by another process."
    )
    run_events_max: int = Field(
        default=20_000, ge=100, description="Events kept per run (the oldest are dropped past it; Redis: about)."
    )
    run_events_ttl: int = Field(
        default=3600, ge=1, description="Seconds a run's events (and a stateless run's result) are kept after it ends."
    )
    temporal_address: str | None = Field(
        default=None,
        description="Temporal frontend (host:port): runs execute on `citadel worker` processes; unset = in-process.",
    )
    temporal_namespace: str = Field(default="default", description="Temporal namespace of Citadel's workflows.")
    temporal_task_queue: str = Field(default="citadel-runs", description="Task queue `citadel worker` polls.")
    run_heartbeat_timeout: float = Field(
        default=5.0,
        ge=1,
        description="A worker silent for this long is presumed dead: Temporal hands its runs to another worker.",
    )
    worker_concurrency: int = Field(default=20, ge=1, description="Runs one `citadel worker` executes at once.")

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
    embedding_threads: int = Field(
        default=0, ge=0, description="Batches the embedded model runs at once, one thread each (0 = one per core)."
    )
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
    answer_mode: Literal["extractive", "generative", "auto"] = Field(
        default="auto",
        description="How the researcher answers: `extractive` quotes the retrieved sentences that best match the "
        "question, each with its source id; `generative` has the LLM write the answer (its citations checked "
        "against the retrieved passages); `auto` = generative when Ollama servers are configured, else extractive.",
    )
    analyst_approval_sections: int = Field(
        default=12, ge=1, description="Documents with more sections than this ask for approval before analysis."
    )
    agent_history_tokens: int = Field(
        default=1024, ge=64, description="Conversation history (in tokens, estimated) sent with each turn."
    )

    # --- AG-UI face (ui_bridge) ---------------------------------------------------------------
    agui_ping_seconds: float = Field(
        default=15.0, gt=0, description="Seconds between SSE keep-alive pings on an /agui/{graph} stream."
    )
    agui_text_batch_ms: float = Field(
        default=50.0,
        ge=0,
        le=1000,
        description="A message's text deltas coming within this many ms of its last one sent are held and "
        "sent together when the window ends (0 = one TEXT_MESSAGE_CONTENT per token); a message's first "
        "delta, and one after a longer pause, is sent at once.",
    )

    # --- MCP (mcp_server/) --------------------------------------------------------------------
    mcp_stateless: bool = Field(
        default=False,
        description="Serve handshake-era MCP clients on /mcp without sessions (for replicas behind a load "
        "balancer); clients of the 2026-07-28 revision are served statelessly either way.",
    )
    mcp_allowed_hosts: list[str] = Field(
        default_factory=list,
        description='Host headers /mcp accepts besides loopback ones (JSON list, e.g. ["citadel.example.com", '
        '"10.0.0.5:*"]); setting any turns the DNS-rebinding check on whatever the bind address.',
    )
    mcp_allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origin headers /mcp accepts besides loopback ones (JSON list, e.g. "
        '["https://app.example.com"]); requests without Origin are always accepted.',
    )
    mcp_session_idle_seconds: float = Field(
        default=600.0,
        gt=0,
        description="A handshake-era MCP session with no request in flight for this long is closed.",
    )
    mcp_max_sessions: int = Field(
        default=1000,
        ge=1,
        description="Most MCP sessions open at once; past it a new session is refused with 503 and Retry-After.",
    )
    mcp_max_output_chars: int = Field(
        default=20_000,
        ge=1000,
        description="Most characters of text one MCP result carries; longer texts are cut, with a note saying so.",
    )
    mcp_request_state_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Secret (32+ characters) sealing what an MCP call hands its client between rounds (approval "
        "asked by elicitation); give every replica the same. Unset = a new key per process.",
    )

    # --- the user's project (langgraph.json) -----------------------------------------------------
    config: Path | None = Field(
        default=None,
        description="The project's `langgraph.json` (its graphs are served beside the built-ins); unset = "
        "`./langgraph.json` when there is one. `citadel serve --config` sets it too.",
    )
    builtin_graphs: bool | None = Field(
        default=None,
        description="Serve the built-in graphs (assistant, rag, workflow) beside a project's; unset = the "
        "project's `citadel.builtin_graphs` (default true).",
    )

    # --- voice (LiveKit; needs the voice extra) -----------------------------------------------
    # Each also read from LiveKit's own variable (LIVEKIT_URL, ...), as LiveKit's tools and the worker do.
    livekit_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CITADEL_LIVEKIT_URL", "LIVEKIT_URL"),
        description="LiveKit server WebSocket URL (wss://...); unset = LiveKit's own LIVEKIT_URL.",
    )
    livekit_api_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CITADEL_LIVEKIT_API_KEY", "LIVEKIT_API_KEY"),
        description="LiveKit API key (signs tokens, registers the worker); unset = LIVEKIT_API_KEY.",
    )
    livekit_api_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("CITADEL_LIVEKIT_API_SECRET", "LIVEKIT_API_SECRET"),
        description="LiveKit API secret; unset = LIVEKIT_API_SECRET.",
    )
    voice_graph: str = Field(default="assistant", description="The graph the voice agent talks to.")
    voice_agent_name: str = Field(
        default="citadel",
        description="Agent name for explicit dispatch (tokens from /voice/token dispatch it); empty = every new room.",
    )
    voice_room_prefix: str = Field(default="citadel-", description="Voice rooms are named this + the thread id.")
    voice_token_ttl: int = Field(default=3600, ge=60, description="Lifetime of a /voice/token token, seconds.")
    voice_stt: str = Field(
        default="citadel",
        description="Speech-to-text: `citadel` (embedded Whisper-base), a plugin name (`deepgram`, `openai`, "
        "`assemblyai`, `groq`) or a LiveKit Inference model (`deepgram/nova-3`).",
    )
    voice_stt_model: str | None = Field(default=None, description="Model for the STT plugin (its default if unset).")
    voice_tts: str = Field(
        default="citadel",
        description="Text-to-speech: `citadel` (embedded espeak-ng), a plugin name (`cartesia`, `elevenlabs`, "
        "`openai`, `deepgram`) or a LiveKit Inference model (`cartesia/sonic-2`).",
    )
    voice_tts_model: str | None = Field(default=None, description="Model for the TTS plugin (its default if unset).")
    voice_tts_voice: str | None = Field(
        default=None, description="Voice for the TTS (espeak-ng: a voice such as `en-us`; plugins: their voice id)."
    )
    voice_language: str = Field(default="en", description="Language spoken (ISO 639-1), for STT and TTS.")
    voice_turn_detection: Literal["vad", "stt"] = Field(
        default="vad", description="End of a user's turn from voice activity (Silero VAD) or from the STT."
    )
    voice_min_endpointing_delay: float = Field(
        default=0.5, ge=0, description="Silence, seconds, before a user's turn counts as finished."
    )
    voice_tool_notice_seconds: float = Field(
        default=1.0, ge=0, description="Say what the agent is doing (`Searching…`) when a tool runs longer than this."
    )
    voice_model_dir: Path = Field(
        default=Path("~/.cache/citadel/voice"), description="Where the embedded Whisper model is assembled."
    )
    voice_metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Port for the voice worker's Prometheus /metrics; unset = none."
    )

    @field_validator("data_dir", "voice_model_dir")
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

"""What the registry knows about a graph besides the graph itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from langgraph.graph import StateGraph
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from citadel.agents.deps import AgentDeps
from citadel.graphs.errors import InvalidInput


class RunConfigurable(BaseModel):
    """The `config.configurable` keys Citadel's graphs read (besides `thread_id`, which the
    checkpointer uses)."""

    model_config = ConfigDict(extra="allow")

    user_id: str | None = Field(
        default=None, description="Whose long-term memories a run reads and writes (default `anonymous`)."
    )
    collection: str | None = Field(
        default=None,
        description="Collection to search when the input names none (default `CITADEL_DEFAULT_COLLECTION`).",
    )


class ServedGraph(Protocol):
    """What every face knows of a graph besides the compiled graph: a built-in's `GraphSpec`, or a
    project's graph (`citadel.core.user_graphs.UserGraphSpec`, its schemas read from the graph)."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def input_model(self) -> type[BaseModel]:
        """Validates input (`validate_input`); its fields are the input keys (AG-UI state, MCP arguments)."""

    @property
    def output_model(self) -> type[BaseModel]: ...
    @property
    def ui_state_keys(self) -> tuple[str, ...] | None:
        """State keys an AG-UI client sees; None = the face's default."""

    @property
    def tool_name(self) -> str | None:
        """Name of its MCP tool; None = the face's default."""

    @property
    def takes_messages(self) -> bool:
        """Whether a run's input is new messages (else new state, as a workflow's steps)."""

    def input_schema(self) -> dict[str, Any]: ...
    def output_schema(self) -> dict[str, Any]: ...
    def config_schema(self) -> dict[str, Any]: ...
    def context_schema(self) -> dict[str, Any] | None: ...
    def validate_input(self, payload: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class GraphSpec:
    name: str
    description: str
    input_model: type[BaseModel]
    """Validates a run's input (`validate_input`) and publishes its JSON schema."""
    output_model: type[BaseModel]
    """Documents the state a run returns (its JSON schema is published; not enforced)."""
    build: Callable[[AgentDeps], StateGraph[Any, Any, Any, Any]]
    config_model: type[BaseModel] = RunConfigurable
    ui_state_keys: tuple[str, ...] | None = None
    tool_name: str | None = None

    @property
    def takes_messages(self) -> bool:
        fields = self.input_model.model_fields
        return "messages" in fields and fields["messages"].is_required()

    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        return self.output_model.model_json_schema()

    def config_schema(self) -> dict[str, Any]:
        return self.config_model.model_json_schema()

    def context_schema(self) -> dict[str, Any] | None:
        return None

    def validate_input(self, payload: Any) -> dict[str, Any]:
        """The input as the graph takes it; InvalidInput (422) naming the first bad field."""
        try:
            model = self.input_model.model_validate(payload)
        except ValidationError as error:
            raise InvalidInput.from_validation(self.name, error) from error
        return model.model_dump(mode="json", exclude_unset=True, exclude_none=True)

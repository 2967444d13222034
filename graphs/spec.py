"""What the registry knows about a graph besides the graph itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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

    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        return self.output_model.model_json_schema()

    def config_schema(self) -> dict[str, Any]:
        return self.config_model.model_json_schema()

    def validate_input(self, payload: Any) -> dict[str, Any]:
        """The input as the graph takes it; InvalidInput (422) naming the first bad field."""
        try:
            model = self.input_model.model_validate(payload)
        except ValidationError as error:
            raise InvalidInput.from_validation(self.name, error) from error
        return model.model_dump(mode="json", exclude_unset=True, exclude_none=True)

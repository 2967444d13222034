"""A project's own graphs (`langgraph.json`), loaded and compiled on Citadel's checkpointer and store.

    resolved = import_graphs(project)        # at start-up: imports; ProjectError names the file and the fault
    async with open_user_graphs(project, checkpointer, store) as entries:
        registry = GraphRegistry([*builtins, *entries])

A graph entry names (as LangGraph Platform accepts it):
- a compiled graph (`StateGraph.compile()`, a functional-API `@entrypoint`, any `Pregel`): copied
  with Citadel's checkpointer and store in place of its own;
- an uncompiled `StateGraph`: compiled with them;
- a factory, sync or async, taking nothing or a `RunnableConfig`, returning either of those, or an
  async (or sync) context manager yielding one: called once at start-up, its context exited at
  shutdown.

Modules are loaded the way `langgraph dev` loads them: a file by its path, under a module name of its
own (so a project's `tools.py`, `agents/` or `memory.py` never meets Citadel's, which is importable
as `citadel.*` only), after the project's folders were put first on `sys.path`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import re
import sys
import types
import typing
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from citadel.core.project import GraphEntry, Project, ProjectError
from citadel.core.registry import RegisteredGraph
from citadel.graphs.errors import InvalidInput
from citadel.graphs.schemas import MessageInput

AnyGraph = Pregel[Any, Any, Any, Any]


@dataclass(frozen=True)
class UserGraphSpec:
    """What the faces know of a project's graph: its schemas come from the graph itself."""

    name: str
    description: str
    graph: AnyGraph
    input_model: type[BaseModel]
    """The graph's input schema for validation and MCP: its fields, messages as chat messages."""
    output_model: type[BaseModel]
    ui_state_keys: tuple[str, ...] | None = None
    tool_name: str | None = None

    @property
    def takes_messages(self) -> bool:
        return "messages" in self.input_model.model_fields

    def input_schema(self) -> dict[str, Any]:
        return _schema(self.graph.get_input_jsonschema)

    def output_schema(self) -> dict[str, Any]:
        return _schema(self.graph.get_output_jsonschema)

    def config_schema(self) -> dict[str, Any]:
        schema = self.context_schema()
        return {"type": "object", "properties": {"configurable": schema}} if schema else {"type": "object"}

    def context_schema(self) -> dict[str, Any] | None:
        try:
            return self.graph.get_context_jsonschema()
        except (ValueError, TypeError):
            return None

    def validate_input(self, payload: Any) -> dict[str, Any]:
        """The input unchanged when it fits the graph's input schema; InvalidInput (422) naming the field."""
        if not isinstance(payload, Mapping):
            raise InvalidInput(f"input for graph {self.name!r} must be an object", param="input")
        try:
            self.input_model.model_validate(dict(payload))
        except ValidationError as error:
            raise InvalidInput.from_validation(self.name, error) from error
        return dict(payload)


def _schema(read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return read()
    except Exception:  # a state type pydantic cannot describe: the schema says only "an object"
        return {"type": "object"}


# --- importing ------------------------------------------------------------------------------------
def _where(project: Project, entry: GraphEntry) -> str:
    """How an error names an entry: `langgraph.json: graphs.agent: ./src/agent/graph.py`."""
    return f"{project.config.name}: graphs.{entry.name}: {entry.location}"


def _module_name(entry: GraphEntry) -> str:
    return "citadel_user_graph_" + re.sub(r"\W", "_", entry.name)


def _load_file(project: Project, entry: GraphEntry) -> types.ModuleType:
    path = (project.root / entry.location).resolve()
    where = _where(project, entry)
    if not path.is_file():
        raise ProjectError(f"{where}: no such file")
    name = _module_name(entry)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ProjectError(f"{where}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        sys.modules.pop(name, None)
        raise ProjectError(f"{where}: import failed: {type(error).__name__}: {error}") from error
    return module


def _load_module(project: Project, entry: GraphEntry) -> types.ModuleType:
    where = _where(project, entry)
    try:
        return importlib.import_module(entry.location)
    except ModuleNotFoundError as error:
        if error.name and entry.location.startswith(error.name):
            raise ProjectError(f"{where}: no such module") from error
        raise ProjectError(f"{where}: import failed: {type(error).__name__}: {error}") from error
    except Exception as error:
        raise ProjectError(f"{where}: import failed: {type(error).__name__}: {error}") from error


def resolve(project: Project, entry: GraphEntry) -> Any:
    """The object an entry names: a graph, a StateGraph or a factory (ProjectError otherwise)."""
    for path in reversed(project.import_paths):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    module = _load_file(project, entry) if entry.is_file else _load_module(project, entry)
    where = _where(project, entry)
    if not hasattr(module, entry.attribute):
        raise ProjectError(f"{where} has no attribute {entry.attribute!r}")
    target = getattr(module, entry.attribute)
    if not isinstance(target, Pregel | StateGraph) and not callable(target):
        raise ProjectError(
            f"{where}:{entry.attribute} is a {type(target).__name__}, not a graph (a compiled graph, a StateGraph "
            "or a function returning one)"
        )
    return target


def import_graphs(project: Project, reserved: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Every entry's object, by graph name; `reserved` names the built-in graphs served beside them."""
    for name in project.graphs:
        if name in reserved:
            raise ProjectError(
                f"{project.config.name}: graphs.{name}: the name of a built-in graph; rename it, or turn the "
                'built-in graphs off ("citadel": {"builtin_graphs": false} or CITADEL_BUILTIN_GRAPHS=false)'
            )
    return {name: resolve(project, entry) for name, entry in project.graphs.items()}


# --- building -------------------------------------------------------------------------------------
async def _call_factory(factory: Callable[..., Any], config: RunnableConfig, stack: contextlib.AsyncExitStack) -> Any:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    result = factory(config) if parameters else factory()
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, contextlib.AbstractAsyncContextManager) or hasattr(result, "__aenter__"):
        result = await stack.enter_async_context(result)
    elif isinstance(result, contextlib.AbstractContextManager) and not isinstance(result, Pregel | StateGraph):
        result = stack.enter_context(result)
    return result


def compile_graph(
    name: str, target: Any, checkpointer: BaseCheckpointSaver[Any] | None, store: BaseStore | None
) -> AnyGraph | None:
    """The graph on Citadel's checkpointer and store; None when `target` is not a graph."""
    if isinstance(target, StateGraph):
        return target.compile(checkpointer=checkpointer, store=store, name=name)
    if isinstance(target, Pregel):
        return target.copy(update={"checkpointer": checkpointer, "store": store})
    return None


def _is_messages(annotation: Any) -> bool:
    """Whether a field holds chat messages (LangChain messages, alone or in lists and unions)."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseMessage):
        return True
    return any(_is_messages(arg) for arg in typing.get_args(annotation))


def _fields(schema: Any) -> dict[str, Any]:
    """A state schema's fields and their types (a TypedDict, a dataclass or a pydantic model)."""
    if inspect.isclass(schema) and issubclass(schema, BaseModel):
        return {key: info.annotation for key, info in schema.model_fields.items()}
    try:
        return typing.get_type_hints(schema, include_extras=True)
    except Exception:  # forward references the module cannot resolve, or no class at all
        return {}


def _state_fields(graph: AnyGraph, side: str) -> dict[str, Any]:
    if isinstance(graph, CompiledStateGraph):
        return _fields(getattr(graph.builder, f"{side}_schema"))
    try:
        model = graph.get_input_schema() if side == "input" else graph.get_output_schema()
    except Exception:
        return {}
    fields = {key: info.annotation for key, info in model.model_fields.items()}
    return {} if list(fields) == ["root"] else fields


def input_model(name: str, graph: AnyGraph) -> type[BaseModel]:
    """The graph's input schema as a model to validate with: its own fields, every one optional (as
    LangGraph takes any subset of the state), messages as Citadel's chat messages (the `role`/`type`
    dicts LangGraph parses)."""
    config = ConfigDict(extra="allow", arbitrary_types_allowed=True)
    definitions: dict[str, Any] = {}
    for key, annotation in _state_fields(graph, "input").items():
        if _is_messages(annotation):
            annotation = list[MessageInput]
        definitions[key] = (Any if annotation is None else annotation | None, None)
    try:
        return create_model(f"{name}_input", __config__=config, **definitions)  # type: ignore[call-overload,no-any-return]
    except Exception:  # a type pydantic cannot validate: the keys are still known, not their types
        loose = {key: (Any, None) for key in definitions}
        return create_model(f"{name}_input", __config__=config, **loose)  # type: ignore[call-overload,no-any-return]


def output_model(name: str, graph: AnyGraph) -> type[BaseModel]:
    """The keys of the graph's output (for the faces that list them; values are not checked)."""
    keys = {key: (Any, None) for key in _state_fields(graph, "output")}
    return create_model(f"{name}_output", __config__=ConfigDict(extra="allow"), **keys)  # type: ignore[call-overload,no-any-return]


def spec_for(entry: GraphEntry, graph: AnyGraph) -> UserGraphSpec:
    options = entry.options
    outputs = output_model(entry.name, graph)
    return UserGraphSpec(
        name=entry.name,
        description=entry.description or f"The project's {entry.name} graph.",
        graph=graph,
        input_model=input_model(entry.name, graph),
        output_model=outputs,
        ui_state_keys=tuple(
            [k for k in outputs.model_fields if k != "messages"]
            if options.ui_state_keys is None
            else options.ui_state_keys
        ),
        tool_name=options.mcp_tool,
    )


@contextlib.asynccontextmanager
async def open_user_graphs(
    project: Project,
    checkpointer: BaseCheckpointSaver[Any] | None,
    store: BaseStore | None,
    *,
    reserved: frozenset[str] = frozenset(),
) -> AsyncIterator[list[RegisteredGraph]]:
    """The project's graphs, ready to serve; factories' contexts are exited when this one is."""
    targets = import_graphs(project, reserved)
    async with contextlib.AsyncExitStack() as stack:
        entries = []
        for name, target in targets.items():
            entry = project.graphs[name]
            made = target
            if not isinstance(target, Pregel | StateGraph):
                where = f"{project.config.name}: graphs.{name}: {entry.target}"
                try:
                    made = await _call_factory(target, RunnableConfig(configurable={}), stack)
                except Exception as error:
                    raise ProjectError(f"{where}: the factory failed: {type(error).__name__}: {error}") from error
            graph = compile_graph(name, made, checkpointer, store)
            if graph is None:
                raise ProjectError(
                    f"{project.config.name}: graphs.{name}: {entry.target} gave a {type(made).__name__}, not a graph "
                    "(a compiled graph or a StateGraph)"
                )
            entries.append(RegisteredGraph(spec_for(entry, graph), graph))
        yield entries

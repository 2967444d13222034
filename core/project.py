"""A user's LangGraph project: its `langgraph.json`, in the LangGraph CLI's format, read and checked.

    project = read_project(Path("langgraph.json"))   # ProjectError naming the file and the fault
    project.graphs["agent"].target                    # "./src/agent/graph.py:graph"

What Citadel uses of the file:
- `graphs`: name → `"path/to/file.py:attr"` or `"package.module:attr"`, or `{"path": ..., "description": ...}`;
- `dependencies`: local ones (`"."`, `"./src"`, ...) are put on `sys.path` (with their `src/`), as
  `langgraph dev` finds the packages of a project installed in development mode; package names are
  the user's to install;
- `env`: a mapping, or the path of a `.env` file; set in the environment where not already set;
- `citadel` (Citadel's own section, which the other runtimes ignore): `builtin_graphs` (serve the
  built-in graphs beside the user's, default true) and, per graph, `description`, `ui_state_keys`
  (what an AG-UI client sees of its state) and `mcp_tool` (the name of its MCP tool).
Every other key (`python_version`, `dockerfile_lines`, `store`, `auth`, `http`, ...) is for the
LangGraph platform's image builder or server; `unused_keys` names them for one warning line.

Where the file is: `citadel serve --config PATH`, else `CITADEL_CONFIG`, else `./langgraph.json`
when there is one (`find_config`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONFIG_NAME = "langgraph.json"
USED_KEYS = frozenset({"graphs", "dependencies", "env", "citadel", "$schema"})


class ProjectError(Exception):
    """A project Citadel cannot serve: the message names the file and the fault, in one line."""


class GraphOptions(BaseModel):
    """`citadel.graphs.<name>`: how Citadel shows one of the project's graphs."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, description="What the graph does (assistants, MCP, AG-UI).")
    ui_state_keys: list[str] | None = Field(
        default=None, description="State keys an AG-UI client sees; default every JSON-serialisable key but messages."
    )
    mcp_tool: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.-]{1,128}$", description="Name of its MCP tool (default `run_<graph>`)."
    )


class CitadelSection(BaseModel):
    """The `citadel` section of `langgraph.json`."""

    model_config = ConfigDict(extra="forbid")

    builtin_graphs: bool = Field(default=True, description="Serve Citadel's built-in graphs beside the project's.")
    graphs: dict[str, GraphOptions] = Field(default_factory=dict)


@dataclass(frozen=True)
class GraphEntry:
    name: str
    target: str
    """`path/to/file.py:attr` (relative to the project) or `package.module:attr`."""
    description: str | None = None
    options: GraphOptions = field(default_factory=GraphOptions)

    @property
    def location(self) -> str:
        return self.target.rsplit(":", 1)[0]

    @property
    def attribute(self) -> str:
        return self.target.rsplit(":", 1)[1]

    @property
    def is_file(self) -> bool:
        return self.location.endswith(".py") or "/" in self.location or self.location.startswith(".")


@dataclass(frozen=True)
class Project:
    config: Path
    graphs: dict[str, GraphEntry]
    import_paths: list[Path]
    """Folders put first on `sys.path`: the project's own, its local dependencies and their `src/`."""
    env: dict[str, str]
    builtin_graphs: bool
    unused_keys: list[str]

    @property
    def root(self) -> Path:
        return self.config.parent

    def apply_env(self) -> None:
        """Set the project's environment variables, where the environment does not set them already."""
        for key, value in self.env.items():
            os.environ.setdefault(key, value)


def find_config(given: Path | None, cwd: Path | None = None) -> Path | None:
    """The project file: the one given (flag or `CITADEL_CONFIG`), else `./langgraph.json` if present."""
    if given is not None:
        return given
    here = (cwd or Path.cwd()) / CONFIG_NAME
    return here if here.is_file() else None


def read_project(config: Path) -> Project:
    path = config.expanduser().resolve()
    where = str(config)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ProjectError(f"{where}: cannot read it: {error}") from None
    except json.JSONDecodeError as error:
        raise ProjectError(
            f"{where}: not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(raw, dict):
        raise ProjectError(f"{where}: expected a JSON object with `graphs`")
    section = _citadel_section(where, raw.get("citadel", {}))
    graphs = _graphs(where, raw.get("graphs"), section)
    return Project(
        config=path,
        graphs=graphs,
        import_paths=_import_paths(where, path.parent, raw.get("dependencies", [])),
        env=_env(where, path.parent, raw.get("env")),
        builtin_graphs=section.builtin_graphs,
        unused_keys=sorted(key for key in raw if key not in USED_KEYS),
    )


def _citadel_section(where: str, raw: Any) -> CitadelSection:
    try:
        return CitadelSection.model_validate(raw)
    except ValidationError as error:
        problem = error.errors(include_url=False)[0]
        loc = ".".join(str(part) for part in problem["loc"])
        raise ProjectError(f"{where}: citadel.{loc}: {problem['msg']}") from None


def _graphs(where: str, raw: Any, section: CitadelSection) -> dict[str, GraphEntry]:
    if not isinstance(raw, dict) or not raw:
        raise ProjectError(f'{where}: `graphs` must name at least one graph, e.g. {{"agent": "./src/graph.py:graph"}}')
    graphs = {}
    for name, value in raw.items():
        description = None
        if isinstance(value, Mapping):
            description = value.get("description")
            value = value.get("path")
        if not isinstance(value, str) or value.count(":") != 1 or not all(value.split(":")):
            raise ProjectError(f"{where}: graphs.{name}: expected 'path/to/file.py:attribute' or 'module:attribute'")
        if not name.replace("-", "_").replace(".", "_").isidentifier():
            raise ProjectError(f"{where}: graphs.{name}: a graph name takes letters, digits, '_', '-' and '.'")
        options = section.graphs.get(name, GraphOptions())
        graphs[name] = GraphEntry(name, value, options.description or description, options)
    for name in section.graphs:
        if name not in graphs:
            raise ProjectError(f"{where}: citadel.graphs.{name}: no graph of that name in `graphs`")
    return graphs


def _import_paths(where: str, root: Path, dependencies: Any) -> list[Path]:
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise ProjectError(f"{where}: `dependencies` must be a list of strings")
    paths = [root]
    for dependency in dependencies:
        if not dependency.startswith("."):
            continue  # a package from an index: the user's environment provides it
        folder = (root / dependency).resolve()
        if not folder.is_dir():
            raise ProjectError(f"{where}: dependencies: {dependency}: no such folder")
        paths += [folder, folder / "src"]
    unique = []
    for path in paths:
        if path.is_dir() and path not in unique:
            unique.append(path)
    return unique


def _env(where: str, root: Path, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, str):
        file = root / raw
        if not file.is_file():
            raise ProjectError(f"{where}: env: {raw}: no such file")
        return {k: v for k, v in dotenv_values(file).items() if v is not None}
    raise ProjectError(f"{where}: `env` must be a mapping or the path of a .env file")

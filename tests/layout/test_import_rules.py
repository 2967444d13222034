"""The one rule of imports: each layer imports only the layers below it (see `citadel/__init__.py`).

Read from the source with `ast`, every import counts, also those inside functions and under
`TYPE_CHECKING`: a lazy import is still a dependency."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "citadel"

# Layers, bottom (0) to top. Faces share a layer and never import each other.
LAYERS: dict[str, int] = {
    "citadel": 0,  # errors, settings, metrics: the vocabulary every layer shares
    "citadel.memory": 1,
    "citadel.tools": 2,
    "citadel.agents": 3,
    "citadel.graphs": 4,
    "citadel.core": 5,
    "citadel.evals": 6,
    "citadel.rest_api": 6,
    "citadel.mcp_server": 6,
    "citadel.ui_bridge": 6,
    "citadel.agents.voice": 6,
    "citadel.runtime": 7,  # the binding: imports everything, imported by nothing
}
FACES = {"citadel.rest_api", "citadel.mcp_server", "citadel.ui_bridge", "citadel.agents.voice"}


def part_of(module: str) -> str:
    """The longest layer name `module` lies in (`citadel.agents.voice.llm` → `citadel.agents.voice`)."""
    best = "citadel"
    for name in LAYERS:
        if (module == name or module.startswith(name + ".")) and len(name) > len(best):
            best = name
    return best


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE).with_suffix("")
    parts = ["citadel", *relative.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def citadel_imports(path: Path, module: str) -> list[tuple[int, str]]:
    found = []
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] if base == "citadel" else [base]
            found += [(node.lineno, name) for name in names]
    return [(line, name) for line, name in found if name == "citadel" or name.startswith("citadel.")]


def sources() -> list[Path]:
    """Every module, reached through `citadel/` (its parts are links, which `os.walk` follows)."""
    found = []
    for folder, _, files in os.walk(PACKAGE, followlinks=True):
        if "node_modules" not in folder:
            found += [Path(folder) / name for name in files if name.endswith(".py")]
    return sorted(found)


def forbidden(here: str, there: str) -> str | None:
    """Why a module of part `here` may not import one of part `there`, or None if it may."""
    if there == here or (here == "citadel.agents.voice" and there == "citadel.agents"):
        return None
    if there in FACES and here in FACES:
        return "a face imports another face"
    if there == "citadel.runtime":
        return "only the binding's own modules import it"
    if LAYERS[there] >= LAYERS[here]:
        return f"{there} is not below {here}"
    return None


def violations() -> list[str]:
    problems = []
    for path in sources():
        module = module_name(path)
        here = part_of(module)
        for line, imported in citadel_imports(path, module):
            reason = forbidden(here, part_of(imported))
            if reason:
                problems.append(f"{path.relative_to(PACKAGE)}:{line}: {module} imports {imported} ({reason})")
    return problems


def test_the_package_holds_every_part() -> None:
    for part in LAYERS:
        assert (ROOT / "src" / part.replace(".", "/")).is_dir(), part
    assert len(sources()) > 100  # the links were followed


def test_every_import_points_down() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    ("module", "imported", "allowed"),
    [
        ("citadel.tools.embeddings", "citadel.memory.cache", True),
        ("citadel.memory.persistence", "citadel.tools.embeddings", False),
        ("citadel.core.runs", "citadel.mcp_server.state", False),
        ("citadel.ui_bridge.routes", "citadel.rest_api.threads", False),
        ("citadel.agents.deps", "citadel.agents.voice.llm", False),
        ("citadel.mcp_server.tools", "citadel.core.runs", True),
        ("citadel.rest_api.runs", "citadel.runtime.app", False),
    ],
)
def test_the_rule_itself(module: str, imported: str, allowed: bool) -> None:
    """The checker tells an allowed import from a forbidden one (so an empty list above means something)."""
    assert (forbidden(part_of(module), part_of(imported)) is None) == allowed

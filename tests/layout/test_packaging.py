"""Citadel is importable as `citadel.<part>` only: in the wheel, and beside a user's own modules
named like Citadel's parts (`tools.py`, `agents.py`, `memory.py`, ...)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
USER_MODULES = ("tools", "agents", "memory", "graphs", "utils")


def uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    assert Path(found).exists(), "uv is installed by `make install`"
    return found


@pytest.mark.slow
def test_the_wheel_holds_one_top_level_package(tmp_path: Path) -> None:
    subprocess.run(
        [uv(), "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("citadel-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"citadel"}
    for needed in (
        "citadel/errors.py",
        "citadel/tools/embeddings.py",  # a part's real file, not a link
        "citadel/tools/llm_routes.json",  # data files travel with their part
        "citadel/memory/migrations/env.py",
        "citadel/runtime/cli.py",
    ):
        assert needed in names
    assert not [name for name in names if name.startswith("citadel/ui_bridge/web/")]  # the Node page stays out
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "citadel = citadel.runtime.cli:app" in zipfile.ZipFile(wheel).read(entry_points).decode()


IMPORT_ALL = """
import importlib, json, pkgutil, sys
import citadel
names = ["citadel"] + [m.name for m in pkgutil.walk_packages(citadel.__path__, "citadel.")]
files = {}
for name in names:
    if ".migrations." in name:  # Alembic's scripts run inside a migration, not on import
        continue
    module = importlib.import_module(name)
    files[name] = getattr(module, "__file__", None)
user = {name: importlib.import_module(name).__file__ for name in sys.argv[1:]}
print(json.dumps({"citadel": files, "user": user, "modules": sorted(sys.modules)}))
"""


@pytest.mark.slow
def test_every_module_imports_beside_user_modules_of_the_same_names(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in USER_MODULES:
        (project / f"{name}.py").write_text(f"WHO = 'the user: {name}'\n")
    environment = {**os.environ, "PYTHONPATH": str(project)}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, *USER_MODULES],
        cwd=project,  # as a user runs it: their project, not Citadel's checkout, is the working directory
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.splitlines()[-1])
    assert len(found["citadel"]) > 100
    package = Path(found["citadel"]["citadel"]).parent
    for name, file in found["citadel"].items():
        assert file is not None, name
        assert Path(file).is_relative_to(package), (name, file)
    for name, file in found["user"].items():
        assert Path(file) == project / f"{name}.py", (name, file)
    # No part of Citadel was imported under a top-level name of its own.
    parts = {"agents", "graphs", "tools", "mcp_server", "ui_bridge", "memory", "evals", "runtime", "core", "rest_api"}
    stray = [m for m in found["modules"] if m.split(".")[0] in parts and m.split(".")[0] not in USER_MODULES]
    assert stray == []

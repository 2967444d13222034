"""A project's own graphs (`langgraph.json`): every kind of entry LangGraph Platform accepts, loaded
and compiled on Citadel's checkpointer and store; a project whose modules are named like Citadel's
parts; and every bad project stopping `citadel serve` with one line and a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from citadel.core.project import ProjectError, read_project
from citadel.core.user_graphs import open_user_graphs
from tests.processes import Server

STATE = """
from typing import Annotated
from typing_extensions import TypedDict
from langchain_core.messages import AIMessage, AnyMessage
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    count: int


def reply(state):
    return {"messages": [AIMessage("hi")], "count": state.get("count", 0) + 1}


def builder():
    made = StateGraph(State)
    made.add_node("reply", reply)
    made.add_edge(START, "reply")
    return made
"""


def project(folder: Path, graphs: dict[str, object], files: dict[str, str], **extra: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text))
    config = folder / "langgraph.json"
    config.write_text(json.dumps({"dependencies": ["."], "graphs": graphs, **extra}))
    return config


KINDS = (
    STATE
    + """
import contextlib
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver

compiled_own_saver = builder().compile(checkpointer=InMemorySaver())
uncompiled = builder()


def factory(config: RunnableConfig):
    return builder().compile()


async def async_factory():
    return builder()


EXITED = []


@contextlib.asynccontextmanager
async def context_factory(config: RunnableConfig):
    yield builder().compile()
    EXITED.append(True)
"""
)


async def test_every_kind_of_entry_gets_citadels_checkpointer_and_store(tmp_path: Path) -> None:
    names = ["compiled_own_saver", "uncompiled", "factory", "async_factory", "context_factory"]
    config = project(tmp_path / "kinds", {n: f"./kinds_graph.py:{n}" for n in names}, {"kinds_graph.py": KINDS})
    saver, store = InMemorySaver(), InMemoryStore()
    async with open_user_graphs(read_project(config), saver, store) as entries:
        assert [e.name for e in entries] == names
        module = sys.modules["citadel_user_graph_context_factory"]
        for entry in entries:
            assert entry.graph.checkpointer is saver, entry.name
            assert entry.graph.store is store, entry.name
            thread = {"configurable": {"thread_id": f"t-{entry.name}"}}
            await entry.graph.ainvoke({"messages": [{"role": "user", "content": "hello"}]}, thread)
            state = await entry.graph.aget_state(thread)
            assert state.values["count"] == 1
            assert entry.spec.ui_state_keys == ("count",)
            assert entry.spec.validate_input({"messages": [{"role": "user", "content": "x"}]})
        assert module.EXITED == []
    assert module.EXITED == [True]  # the context factory's context is exited at shutdown


def test_input_is_checked_against_the_graphs_own_schema(tmp_path: Path) -> None:
    from citadel.core.user_graphs import compile_graph, import_graphs, spec_for
    from citadel.graphs.errors import InvalidInput

    config = project(tmp_path / "schema", {"g": "./g.py:graph"}, {"g.py": STATE + "\ngraph = builder()\n"})
    loaded = read_project(config)
    graph = compile_graph("g", import_graphs(loaded)["g"], None, None)
    assert graph is not None
    spec = spec_for(loaded.graphs["g"], graph)
    assert spec.input_schema()["properties"].keys() >= {"messages", "count"}
    with pytest.raises(InvalidInput) as refused:
        spec.validate_input({"count": "many"})
    assert refused.value.param == "count"
    with pytest.raises(InvalidInput) as refused:
        spec.validate_input({"messages": [{"content": "who am I?"}]})
    assert refused.value.param == "messages.0"


OWN_MODULES = {
    "tools.py": "def shout(text):\n    return text.upper()\n",
    "memory.py": "REMEMBERED = 'from the project memory module'\n",
    "agents/__init__.py": "",
    "agents/greeter.py": "def greet(name):\n    return f'hello {name}'\n",
    "graph.py": STATE.replace('AIMessage("hi")', "AIMessage(f'{shout(greet(\"you\"))} {REMEMBERED}')")
    + "\nfrom tools import shout\nfrom agents.greeter import greet\nfrom memory import REMEMBERED\n"
    + "\ngraph = builder()\n",
}


def serve_env(tmp_path: Path) -> dict[str, str]:
    return {
        "CITADEL_DATA_DIR": str(tmp_path / "data"),
        "CITADEL_URL": "http://127.0.0.1:9",
    }


def test_a_project_with_modules_named_tools_agents_and_memory(tmp_path: Path) -> None:
    config = project(tmp_path / "own", {"own": "./graph.py:graph"}, OWN_MODULES, citadel={"builtin_graphs": False})
    server = Server(serve_env(tmp_path), tmp_path / "server.log")
    server.args += ["--config", str(config)]
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            graphs = [a["graph_id"] for a in http.post("/assistants/search", json={}).json()]
            answer = http.post(
                "/runs/wait", json={"assistant_id": "own", "input": {"messages": [{"role": "user", "content": "x"}]}}
            )
        assert graphs == ["own"]  # the built-in graphs are off
        assert answer.status_code == 200, answer.text
        assert answer.json()["messages"][-1]["content"] == "HELLO YOU from the project memory module"
    finally:
        server.stop()


BAD: dict[str, tuple[dict[str, object], dict[str, str], str]] = {
    "missing file": ({"a": "./nowhere.py:graph"}, {}, "graphs.a: ./nowhere.py: no such file"),
    "missing attribute": ({"a": "./g.py:nothing"}, {"g.py": "x = 1\n"}, "./g.py has no attribute 'nothing'"),
    "import error": (
        {"a": "./g.py:graph"},
        {"g.py": "import no_such_module_here\n"},
        "import failed: ModuleNotFoundError",
    ),
    "not a graph": ({"a": "./g.py:graph"}, {"g.py": "graph = 42\n"}, "is a int, not a graph"),
    "built-in name": ({"assistant": "./g.py:graph"}, {"g.py": STATE + "graph = builder()\n"}, "the name of a built-in"),
    "bad entry": ({"a": "./g.py"}, {}, "graphs.a: expected 'path/to/file.py:attribute'"),
    "factory fails": (
        {"a": "./g.py:make"},
        {"g.py": "def make():\n    raise RuntimeError('no key set')\n"},
        "the factory failed: RuntimeError: no key set",
    ),
    "factory gives no graph": (
        {"a": "./g.py:make"},
        {"g.py": "def make():\n    return 'x'\n"},
        "gave a str, not a graph",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_project_stops_start_up_with_one_line(case: str, tmp_path: Path) -> None:
    graphs, files, expected = BAD[case]
    config = project(tmp_path / "bad", graphs, files)
    done = subprocess.run(
        [sys.executable, "-m", "citadel.runtime.cli", "serve", "--config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        env={**os.environ, **serve_env(tmp_path)},
        timeout=300,
    )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, done.stderr
    assert expected in errors[0]
    assert "langgraph.json" in errors[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{", "not valid JSON"),
        ('{"graphs": {}}', "`graphs` must name at least one graph"),
        ('{"graphs": {"a": "./g.py:g"}, "env": 3}', "`env` must be a mapping"),
        ('{"graphs": {"a": "./g.py:g"}, "citadel": {"graphs": {"b": {}}}}', "citadel.graphs.b: no graph of that name"),
        ('{"graphs": {"a": "./g.py:g"}, "citadel": {"colour": 1}}', "citadel.colour: Extra inputs are not permitted"),
    ],
)
def test_a_bad_file_names_the_fault(content: str, expected: str, tmp_path: Path) -> None:
    config = tmp_path / "langgraph.json"
    config.write_text(content)
    with pytest.raises(ProjectError) as refused:
        read_project(config)
    assert expected in str(refused.value)
    assert str(refused.value).startswith(str(config))


def test_unused_keys_and_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PROJECT_ONLY_VARIABLE=from-dotenv\n")
    config = project(tmp_path, {"a": "./g.py:g"}, {}, env=".env", python_version="3.12", dockerfile_lines=[], store={})
    loaded = read_project(config)
    assert loaded.unused_keys == ["dockerfile_lines", "python_version", "store"]
    assert loaded.env == {"PROJECT_ONLY_VARIABLE": "from-dotenv"}
    assert tmp_path.resolve() in loaded.import_paths

"""`python -m tests.core.citadel_with_slow_graph serve|worker ...`: the `citadel` command with the
test graph `slow_steps` (tests/core/slow_graph.py) registered beside the built-in ones.

TEST ONLY, and reachable only from the test tree: it wraps the binding's `build_registry` before
running the real CLI. (Once user graphs load from a `langgraph.json`, the tests can name this graph
there instead.)"""

from __future__ import annotations

import functools

from citadel.core.registry import SPECS
from citadel.runtime import core
from citadel.runtime.cli import app
from tests.core.slow_graph import SLOW

core.build_registry = functools.partial(core.build_registry, specs=(*SPECS, SLOW))  # type: ignore[assignment]

if __name__ == "__main__":
    app()

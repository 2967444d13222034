"""The started server's heap (`runtime/heap.py`): what start-up loaded is frozen out of the cyclic
garbage collector and the young-collection threshold raised, while the app runs; both undone when
it stops (issue 15: collections walking the libraries' objects cost a run's CPU, 7.6% at the median of 18 pairs)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from citadel.runtime.heap import settled_heap

OPEN_THE_APP = """
import asyncio, gc, json
from citadel.runtime.app import create_app
from citadel.settings import Settings

async def main():
    before = gc.get_threshold()
    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        running = {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}
    after = {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}
    print(json.dumps({"before": before, "running": running, "after": after}))

asyncio.run(main())
"""


def heap_of_an_app(data_dir: Path, **env: str) -> dict[str, Any]:
    """The collector's state before, while and after an app runs, in a fresh interpreter."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CITADEL_")}
    base.update(CITADEL_DATA_DIR=str(data_dir), CITADEL_LOG_LEVEL="warning", **env)
    subprocess.run([sys.executable, "-m", "citadel.runtime.cli", "migrate"], env=base, check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-c", OPEN_THE_APP], env=base, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_a_running_app_has_frozen_its_start_up_heap_and_undoes_it_on_stop(tmp_path: Path) -> None:
    seen = heap_of_an_app(tmp_path)
    running, after = seen["running"], seen["after"]
    assert running["frozen"] > 50_000, "the libraries and graphs loaded at start-up are frozen"
    assert running["threshold"] == [20_000, 20, 20], "CITADEL_GC_THRESHOLD's default"
    assert after == {"frozen": 0, "threshold": seen["before"]}, "stopped: the collector as it was"


def test_gc_threshold_zero_keeps_pythons_threshold_and_still_freezes(tmp_path: Path) -> None:
    seen = heap_of_an_app(tmp_path, CITADEL_GC_THRESHOLD="0")
    running = seen["running"]
    assert running["threshold"] == seen["before"]
    assert running["frozen"] > 50_000


def test_settled_heap_restores_the_collector_even_when_the_block_raises() -> None:
    before = gc.get_threshold()
    try:
        with settled_heap(5_000):
            assert gc.get_threshold() == (5_000, 20, 20)
            assert gc.get_freeze_count() > 0
            raise RuntimeError("the server failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_apps_side_by_side_keep_the_settled_heap_until_the_last_stops() -> None:
    """Two apps in one process whose lifetimes overlap without nesting: the first one's stop must not
    undo what the second still runs with, and the second's restores what was there before both."""
    before = gc.get_threshold()
    first, second = settled_heap(5_000), settled_heap(5_000)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold() == (5_000, 20, 20), "the second app still runs"
    assert gc.get_freeze_count() > 0
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0

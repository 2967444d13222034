"""The server's heap once it has started: what start-up loaded is set aside from the cyclic garbage
collector, and the collector runs less often.

    with settled_heap(settings.gc_threshold):
        ...  # serve

A started server holds some 270,000 long-lived objects (the libraries, the compiled graphs, the
settings): every full collection walked all of them again, and with Python's default threshold
(a young collection every 700 new container objects) a run started several collections, each
promoting the short-lived objects it found into the generations walked less often but longer.
`gc.freeze()` moves what is alive at start-up into a generation the collector never walks; a
higher first threshold lets most of a request's objects die by reference count before a
collection looks at them. Measured on the peers' workload at 32 clients, alternating (README,
"Issue 15's sixth round"): server CPU a run lower in 16 pairs of 18, by 7.6% at the median.

Both are undone when the last block open in the process exits (the threshold restored, the frozen
objects handed back to the collector): the collector is the process's, and a process that runs
several apps, one after another or side by side (the tests), must not keep the cyclic garbage of
the earlier ones, nor have one app's stop undo what another still runs with.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_open = 0  # blocks open in this process
_saved = gc.get_threshold()  # the threshold before the first of them


@contextmanager
def settled_heap(threshold: int) -> Iterator[None]:
    """Freeze the objects alive now; with `threshold` > 0, run a young collection after that many
    new container objects (Python's default: 700), the older generations after 20 of the one below.
    Only the first block open in the process does so; only the last to exit undoes it."""
    global _open, _saved
    with _lock:
        if _open == 0:
            _saved = gc.get_threshold()
            gc.collect()
            gc.freeze()
            if threshold > 0:
                gc.set_threshold(threshold, 20, 20)
        _open += 1
    try:
        yield
    finally:
        with _lock:
            _open -= 1
            if _open == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()

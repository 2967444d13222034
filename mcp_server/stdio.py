"""`citadel mcp`: the MCP server on stdin/stdout, for desktop clients that start it themselves.

stdout carries only the protocol: logs go to stderr, and while it serves the SDK points file
descriptor 1 at stderr, so nothing a library prints can corrupt the stream. The process opens its
own services (as `citadel serve` does; the binding hands `run_stdio` the opener), so it needs the
app tables (`citadel migrate`) and, with the embedded vector store, a data directory no server is using.

When the client closes stdin the session ends, the lifespan closes every service, and the process
leaves at once: clients give a server about two seconds before they kill it, and the interpreter's
own teardown of the native model runtimes takes longer than that, with nothing left to save.
"""

from __future__ import annotations

import logging
import os
import sys

from citadel.mcp_server.server import create_server
from citadel.mcp_server.state import StateProvider
from citadel.settings import Settings


def run_stdio(settings: Settings, open_state: StateProvider) -> None:
    """Serve until the client closes stdin; `open_state` opens the core for the session."""
    create_server(settings, open_state).run("stdio")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

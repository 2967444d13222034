"""OpenAPI links: which operation's answer supplies another's parameter (the thread id a thread's
creation returns, for every route under `/threads/{thread_id}`). Clients and API tools that follow
links (schemathesis' stateful tests among them) reach real resources instead of guessed ids."""

from __future__ import annotations

from typing import Any


def operation_ref(path: str, method: str) -> str:
    """A JSON-pointer reference to an operation of this API's own schema."""
    escaped = path.replace("~", "~0").replace("/", "~1").replace("{", "%7B").replace("}", "%7D")
    return f"#/paths/{escaped}/{method}"


def links(parameter: str, source: str, operations: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Links named as `operations` keys, each passing `source` (a runtime expression such as
    `$response.body#/thread_id`) as the operation's `parameter`."""
    return {
        name: {"operationRef": operation_ref(path, method), "parameters": {parameter: source}}
        for name, (path, method) in operations.items()
    }

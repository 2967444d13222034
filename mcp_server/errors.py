"""Citadel's errors as MCP tool errors: the call's result has `isError: true` and a text naming the
problem (what, which argument, whether retrying can help); the session stays healthy.

Argument validation is the SDK's (it names the field); a tool's own failures are CitadelErrors,
converted here; anything unexpected becomes the SDK's generic error result and is logged."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mcp.server.mcpserver.exceptions import ToolError

from citadel.errors import CitadelError, Unavailable


def describe(error: CitadelError) -> str:
    text = f"{error.code}: {error.message}"
    if error.param and error.param not in error.message:
        text += f" (argument: {error.param})"
    if isinstance(error, Unavailable):
        text += f"; retrying in {error.retry_after:.0f} s may help"
    elif error.retryable:
        text += "; retrying may help"
    return text


@contextmanager
def tool_errors() -> Iterator[None]:
    """Turn a CitadelError raised inside into a ToolError (an `isError` result)."""
    try:
        yield
    except CitadelError as error:
        raise ToolError(describe(error)) from error

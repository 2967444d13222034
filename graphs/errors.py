"""Errors the graph registry raises, beside the tools' own (`citadel.errors`)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from citadel.errors import InvalidRequest


class InvalidInput(InvalidRequest):
    """A run's input does not fit the graph's input schema. `param` names the first field at fault
    (dotted: `steps.1.type`); `errors` lists every problem as pydantic reports it."""

    status = 422
    code = "validation_error"

    def __init__(self, message: str, *, param: str | None = None, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, param=param)
        self.errors = errors or []

    @classmethod
    def from_validation(cls, graph: str, error: ValidationError) -> InvalidInput:
        problems = error.errors(include_url=False, include_context=False, include_input=False)
        where = [".".join(str(part) for part in p["loc"]) or "input" for p in problems]
        message = f"input does not fit graph {graph!r}: " + "; ".join(
            f"{loc}: {p['msg']}" for loc, p in zip(where[:5], problems[:5], strict=False)
        )
        return cls(message, param=where[0] if where else None, errors=[dict(p) for p in problems])

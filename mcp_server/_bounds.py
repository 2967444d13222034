"""Keeping MCP results small enough for a client's context: long texts are cut with a note that
says how much was left out, long lists and vectors are summarised."""

from __future__ import annotations

from typing import Any

MIN_SHARE = 200
MAX_LIST = 50
MAX_NUMBERS = 16


def clip(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters and a note saying how many were cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [cut: {len(text) - limit} more characters]"


def share(budget: int, parts: int) -> int:
    """Each of `parts` texts' share of a result's character budget (never below MIN_SHARE)."""
    return max(MIN_SHARE, budget // max(parts, 1))


def shrink(value: Any, text_limit: int) -> Any:
    """JSON data with every string clipped, long lists cut and vectors summarised."""
    if isinstance(value, str):
        return clip(value, text_limit)
    if isinstance(value, dict):
        return {key: shrink(item, text_limit) for key, item in value.items()}
    if isinstance(value, list):
        if len(value) > MAX_NUMBERS and all(isinstance(item, int | float) for item in value):
            return f"[{len(value)} numbers]"
        items = [shrink(item, text_limit) for item in value[:MAX_LIST]]
        if len(value) > MAX_LIST:
            items.append(f"… {len(value) - MAX_LIST} more items")
        return items
    return value

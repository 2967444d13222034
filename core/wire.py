"""Turning LangGraph objects into the JSON shapes of the LangGraph Platform API (threads, state,
checkpoints, interrupts), which the official `langgraph-sdk` clients parse."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any
from uuid import UUID

from langchain_core.messages import BaseMessage
from langgraph.types import Interrupt, StateSnapshot
from pydantic import BaseModel

_PLAIN = frozenset((str, int, float, bool, type(None)))
"""Types that are JSON as they are (exactly these: subclasses take the general path)."""


def to_jsonable(value: Any) -> Any:
    """Plain JSON data from state values, messages, interrupts and the like."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    # Plain containers of plain values (state values, vectors) are the bulk: no call per item.
    if kind is dict:
        return {str(k): v if type(v) in _PLAIN else to_jsonable(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [v if type(v) in _PLAIN else to_jsonable(v) for v in value]
    return _to_jsonable(value)


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseMessage):
        return value.model_dump()
    if isinstance(value, BaseModel):
        return to_jsonable(value.model_dump())
    if isinstance(value, Interrupt):
        return {"value": to_jsonable(value.value), "id": value.id}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), separators=(",", ":"), ensure_ascii=False)


def checkpoint_ref(config: dict[str, Any] | None) -> dict[str, Any] | None:
    if not config:
        return None
    configurable = config.get("configurable", {})
    return {
        "thread_id": configurable.get("thread_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
        "checkpoint_map": configurable.get("checkpoint_map"),
    }


def state_to_wire(snapshot: StateSnapshot) -> dict[str, Any]:
    """A `ThreadState` as the SDK expects it."""
    tasks = [
        {
            "id": task.id,
            "name": task.name,
            "error": str(task.error) if task.error else None,
            "interrupts": to_jsonable(list(task.interrupts)),
            "checkpoint": None,
            "state": None,
            "result": to_jsonable(task.result) if task.result is not None else None,
        }
        for task in snapshot.tasks
    ]
    return {
        "values": to_jsonable(snapshot.values),
        "next": list(snapshot.next),
        "checkpoint": checkpoint_ref(snapshot.config),  # type: ignore[arg-type]
        "metadata": to_jsonable(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
        "parent_checkpoint": checkpoint_ref(snapshot.parent_config),  # type: ignore[arg-type]
        "tasks": tasks,
        "interrupts": to_jsonable(list(snapshot.interrupts)),
    }


def interrupts_by_task(snapshot: StateSnapshot | None) -> dict[str, list[Any]]:
    if snapshot is None:
        return {}
    return {task.id: to_jsonable(list(task.interrupts)) for task in snapshot.tasks if task.interrupts}


def empty_state(thread_id: str) -> dict[str, Any]:
    return {
        "values": {},
        "next": [],
        "checkpoint": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": None, "checkpoint_map": None},
        "metadata": {},
        "created_at": None,
        "parent_checkpoint": None,
        "tasks": [],
        "interrupts": [],
    }

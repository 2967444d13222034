"""The documents the graph tests search, and short-hands for run inputs and configs."""

from __future__ import annotations

from typing import Any

from citadel.tools.vector_store import Document

DOCS = [
    Document(
        "solar-101",
        "Solar panels turn sunlight into electricity with photovoltaic cells. Modern silicon panels convert "
        "about 20 percent of the sunlight that reaches them into electric power.",
        {"title": "How solar panels work"},
    ),
    Document(
        "wind-202",
        "Wind turbines turn the kinetic energy of moving air into electricity. Offshore wind farms reach higher "
        "capacity factors than onshore ones because the wind at sea is steadier.",
        {"title": "Wind power basics"},
    ),
    Document(
        "battery-303",
        "Lithium-ion batteries store energy for the grid. Their capacity fades with each charge cycle, "
        "faster at high temperatures.",
        {"title": "Grid batteries"},
    ),
]


def config(thread: str, **configurable: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread, **configurable}}


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}

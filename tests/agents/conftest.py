"""Real services on the embedded defaults, with short answers to keep the tiny model quick."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agents.deps import AgentDeps
from runtime.services import Services, open_services


@pytest.fixture
async def services(make_settings: Any) -> AsyncIterator[Services]:
    async with open_services(make_settings(llm_max_tokens=32), state=False) as opened:
        yield opened


@pytest.fixture
def deps(services: Services) -> AgentDeps:
    return AgentDeps.from_services(services)

"""Routing by meaning with the real embedded model: clear cases are routed, vague ones are not."""

from __future__ import annotations

from typing import Any

import pytest

from citadel.runtime.services import default_routes_file, open_services
from citadel.tools.semantic_router import Route, SemanticRouter, load_routes


@pytest.mark.parametrize(
    ("text", "route"),
    [
        ("Write a Go function that parses a CSV file", "code"),
        ("Summarise the main risks in this lease agreement", "analysis"),
        ("Write a haiku about autumn leaves", "creative"),
        ("Hello! How is your day going?", "chat"),
    ],
)
async def test_default_routes_classify_clear_requests(make_settings: Any, text: str, route: str) -> None:
    async with open_services(make_settings(), llm=False) as services:
        router = SemanticRouter(load_routes(default_routes_file()), services.embeddings, threshold=0.3)
        await router.start()
        match = await router.classify(text)
    assert match.route == route
    assert match.confident, match


async def test_unclear_text_is_not_confident(make_settings: Any) -> None:
    async with open_services(make_settings(), llm=False) as services:
        router = SemanticRouter(
            [Route(name="a", examples=["pasta recipes"]), Route(name="b", examples=["tomato sauce recipes"])],
            services.embeddings,
            threshold=0.35,
            margin=0.05,
        )
        await router.start()
        match = await router.classify("the history of the Byzantine empire")
    assert not match.confident


def test_bad_routes_file_is_a_clear_error(tmp_path: Any) -> None:
    path = tmp_path / "routes.json"
    path.write_text('[{"name": "Bad Name", "examples": []}]')
    with pytest.raises(ValueError, match="cannot load routes from"):
        load_routes(path)

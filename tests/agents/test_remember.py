"""Long-term memory: what is stored from a request to remember, and what is recalled for a turn."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.store.memory import InMemoryStore

from citadel.agents.deps import AgentDeps
from citadel.agents.remember import extract_fact, namespace, recall, to_second_person, user_id


@pytest.mark.parametrize(
    ("request_text", "fact"),
    [
        ("Remember that my favourite colour is green", "my favourite colour is green"),
        ("Please remember my birthday is on 3 March.", "my birthday is on 3 March"),
        ("Can you remember that I work night shifts?", "I work night shifts"),
        ("Keep in mind: I'm allergic to peanuts!", "I'm allergic to peanuts"),
        ("Don't forget that my manager is Priya, please", "my manager is Priya"),
        ("Make a note that I prefer short answers", "I prefer short answers"),
        ("I'd like you to remember that I'm vegetarian", "I'm vegetarian"),
        ("My locker code is 2291", "My locker code is 2291"),
    ],
)
def test_the_fact_is_what_follows_the_request(request_text: str, fact: str) -> None:
    assert extract_fact(request_text) == fact


def test_a_fact_is_confirmed_in_the_second_person() -> None:
    assert to_second_person("my favourite colour is green") == "your favourite colour is green"
    assert to_second_person("I'm vegetarian and I like my tea") == "you're vegetarian and you like your tea"


def test_the_user_comes_from_the_run_config() -> None:
    assert user_id({"configurable": {"user_id": "ada"}}) == "ada"
    assert user_id({"configurable": {}}) == "anonymous"
    assert user_id(None) == "anonymous"


FACTS = ["my dog is called Rex", "I live in Lisbon", "my favourite colour is green", "I work at Acme"]


async def _remember(store: InMemoryStore, user: str, facts: list[str]) -> None:
    for index, fact in enumerate(facts):
        await store.aput(namespace(user), f"k{index}", {"text": fact})


@pytest.mark.parametrize("indexed", [False, True])
async def test_recall_ranks_a_users_facts_by_meaning_and_keeps_users_apart(deps: AgentDeps, indexed: bool) -> None:
    index: Any = None
    if indexed:

        async def embed(texts: list[str]) -> list[list[float]]:
            return (await deps.embeddings.embed(texts)).vectors.tolist()  # type: ignore[no-any-return]

        index = {"dims": 384, "embed": embed, "fields": ["text"]}
    store = InMemoryStore(index=index)
    await _remember(store, "ada", FACTS)
    await _remember(store, "bob", ["my favourite colour is red"])

    found = await recall(store, "ada", "What colour do I like best?", deps.embeddings, limit=2)
    assert found[0] == "my favourite colour is green"
    assert len(found) == 2
    assert await recall(store, "carol", "What colour do I like best?", deps.embeddings) == []
    assert await recall(None, "ada", "anything", deps.embeddings) == []
    assert set(await recall(store, "ada", "", deps.embeddings, limit=10)) == set(FACTS)

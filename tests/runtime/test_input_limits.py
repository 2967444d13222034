"""The input limit finds the one text over the limit in a JSON body and names where it is (the
whole path is tested end to end by tests/faults: a 5 MB message refused at once on every face)."""

from __future__ import annotations

from citadel.runtime.input_limits import longest_text


def test_longest_text_names_the_field() -> None:
    document = {"messages": [{"role": "user", "content": "short"}, {"role": "user", "content": "x" * 50}], "k": 1}
    assert longest_text(document, 40) == ("messages.1.content", 50)
    assert longest_text(document, 50) is None
    assert longest_text({"y" * 60: 1}, 40) == ("y" * 60, 60)

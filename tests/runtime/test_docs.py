"""The README's configuration table and `.env.example` list every setting, and the example parses."""

from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values

from citadel.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
VARIABLES = [f"CITADEL_{name.upper()}" for name in Settings.model_fields]


@pytest.mark.parametrize("variable", VARIABLES)
def test_every_setting_is_documented(variable: str) -> None:
    assert f"| `{variable}` |" in (ROOT / "README.md").read_text(), f"{variable} missing from the README table"
    assert variable in (ROOT / ".env.example").read_text(), f"{variable} missing from .env.example"


def test_env_example_is_valid_configuration() -> None:
    values = {k: v for k, v in dotenv_values(ROOT / ".env.example").items() if v is not None}
    Settings(_env_file=None, **{k.removeprefix("CITADEL_").lower(): v for k, v in values.items()})  # type: ignore[call-arg]

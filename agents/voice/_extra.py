"""The voice extra's guarded imports: a clear message instead of a bare ModuleNotFoundError."""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL = "uv sync --extra voice  (or: pip install 'citadel[voice]')"


class VoiceExtraMissing(ImportError):
    pass


def require(module: str, *, package: str | None = None) -> ModuleType:
    """Import `module`, or raise VoiceExtraMissing saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        what = f"the package {package}" if package else "the voice extra"
        hint = f"pip install {package}" if package else INSTALL
        raise VoiceExtraMissing(f"Citadel's voice agent needs {what} ({module} is missing): {hint}") from error


def ensure_voice_extra() -> None:
    """Raise VoiceExtraMissing unless the voice extra's packages import."""
    for module in ("livekit.agents", "livekit.api", "livekit.plugins.silero"):
        require(module)

"""Who is calling. Until authentication is configured (the auth issue fills this in), every caller
is the local user `anonymous`, and the server only binds to loopback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request


@dataclass(frozen=True)
class Identity:
    user_id: str
    is_admin: bool = False

    @property
    def owner_filter(self) -> str | None:
        """The owner to restrict reads to; None for an administrator, who sees everyone's."""
        return None if self.is_admin else self.user_id


ANONYMOUS = Identity(user_id="anonymous")


async def current_identity(request: Request) -> Identity:
    return getattr(request.state, "identity", ANONYMOUS)  # type: ignore[no-any-return]


IdentityDep = Annotated[Identity, Depends(current_identity)]

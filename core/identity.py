"""Who is calling, as every face sees it.

With Clerk configured, the auth middleware (`citadel.runtime.auth`) verifies each request's token and puts
an `Identity` on `request.state.identity`. Without it, auth is off: every caller is the local
operator `anonymous`, with every role, and `citadel serve` refuses to bind anywhere but loopback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request

from citadel.errors import Forbidden

Role = Literal["user", "developer", "admin"]
RANK: dict[str, int] = {"user": 0, "developer": 1, "admin": 2}


@dataclass(frozen=True)
class Identity:
    user_id: str
    role: Role = "user"
    session_id: str | None = None
    org_id: str | None = None
    kind: Literal["user", "machine", "local"] = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def owner_filter(self) -> str | None:
        """The owner to restrict reads to; None for an administrator, who sees everyone's."""
        return None if self.is_admin else self.user_id

    def allows(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]

    def require(self, role: Role) -> None:
        if not self.allows(role):
            raise Forbidden(f"this needs the {role} role; you are {self.role}")


LOCAL = Identity(user_id="anonymous", role="admin", kind="local")


async def current_identity(request: Request) -> Identity:
    return getattr(request.state, "identity", LOCAL)  # type: ignore[no-any-return]


IdentityDep = Annotated[Identity, Depends(current_identity)]


def require_role(role: Role):  # type: ignore[no-untyped-def]
    """A route dependency: 403 unless the caller has `role` (or a higher one)."""

    async def check(request: Request) -> Identity:
        identity = await current_identity(request)
        identity.require(role)
        return identity

    return Depends(check)

"""Administration: the audit log (admins only), and the OAuth protected-resource metadata that MCP
clients read to find where to get a token."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request

from citadel.core.dependencies import ServicesDep
from citadel.core.identity import require_role
from citadel.memory.audit import AuditLog

router = APIRouter(tags=["admin"])


@router.get("/admin/audit", dependencies=[require_role("admin")])
async def audit_log(
    request: Request,
    user_id: str | None = None,
    action: str | None = Query(default=None, description='e.g. "POST /threads/{thread_id}/runs/wait"'),
    status: int | None = Query(default=None, ge=100, le=599),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=50, ge=1, le=1000),
    offset: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    log: AuditLog = request.state.audit
    await log.flush()  # what was just done is visible at once
    records = await log.query(
        user_id=user_id, action=action, status=status, since=since, until=until, limit=limit, offset=offset
    )
    for record in records:
        record["at"] = record["at"].isoformat()
    return {"records": records, "limit": limit, "offset": offset}


@router.get("/.well-known/oauth-protected-resource", include_in_schema=False)
@router.get("/.well-known/oauth-protected-resource/mcp", include_in_schema=False)
async def protected_resource(request: Request, services: ServicesDep) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    issuer = services.settings.clerk_issuer
    return {
        "resource": f"{base}/mcp",
        "authorization_servers": [issuer] if issuer else [],
        "bearer_methods_supported": ["header"],
        "resource_documentation": f"{base}/docs",
    }

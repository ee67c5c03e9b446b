"""Session analytics: who was connected, how long, how much they sent and received."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from livespace.api.deps import MemberOf

router = APIRouter(prefix="/api/workspaces/{workspace_id}", tags=["analytics"])


@router.get("/stats", summary="Events by type and day, sessions, delivery rate")
async def stats(m: MemberOf) -> dict[str, Any]:
    """Members see their own session figures; owners and admins see everyone's."""
    return await m.stats()


@router.get("/sessions", summary="Sessions (active=true: open ones only)")
async def sessions(m: MemberOf, active: bool | None = None) -> dict[str, Any]:
    rows = await m.sessions(active=active)
    return {"sessions": [s.to_json() for s in rows], "count": len(rows)}
